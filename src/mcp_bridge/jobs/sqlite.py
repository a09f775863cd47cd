"""The SQLite job registry (WAL): one file, one host; the embedded default.

Every write is one IMMEDIATE transaction (the file's write lock taken up front), so each
compare-and-set reads and writes the row with no other writer in between.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mcp_bridge.jobs.models import Attempt, Claim, FinishedEvent, Job, Status
from mcp_bridge.jobs.registry import DuplicateKey, RegistryUnavailable, check_version

#: Schema steps; step N brings the file to version N. Step 1 is the schema of 0.1.0, written with
#: IF NOT EXISTS so a file made before versioning adopts version 1 unchanged.
MIGRATIONS: tuple[str, ...] = (
    """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    idempotency_key TEXT,
    fingerprint TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    lease_expires_at REAL,
    dispatched_at REAL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency
    ON jobs (owner, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, dispatched_at);
CREATE INDEX IF NOT EXISTS jobs_owner_created ON jobs (owner, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at, id);
CREATE TABLE IF NOT EXISTS attempts (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    attempt INTEGER NOT NULL,
    worker TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    outcome TEXT,
    PRIMARY KEY (job_id, attempt)
);
CREATE TABLE IF NOT EXISTS job_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    status TEXT NOT NULL,
    queue_wait REAL,
    runtime REAL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
""",
)
VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
)

JOB_COLUMNS = (
    "id, owner, tool, arguments, status, attempts, result, error, idempotency_key, fingerprint, "
    "cancel_requested, worker, created_at, started_at, finished_at, dispatched_at"
)


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        owner=row["owner"],
        tool=row["tool"],
        arguments=json.loads(row["arguments"]),
        status=Status(row["status"]),
        attempts=row["attempts"],
        result=json.loads(row["result"]) if row["result"] is not None else None,
        error=row["error"],
        idempotency_key=row["idempotency_key"],
        fingerprint=row["fingerprint"],
        cancel_requested=bool(row["cancel_requested"]),
        worker=row["worker"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        dispatched_at=row["dispatched_at"],
    )


class SqliteRegistry:
    """Thread-safe (a connection per thread and process) access to the registry file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn().execute("PRAGMA journal_mode=WAL")
            self._migrate()
        except (OSError, sqlite3.Error) as error:
            raise RegistryUnavailable(f"{self.path}: {error}") from error

    def _migrate(self) -> None:
        """Apply the steps this file lacks, under the write lock (concurrent starts serialise)."""
        with self._write() as conn:
            conn.execute(VERSION_TABLE)
            found = self._version(conn)
            check_version(found, len(MIGRATIONS), self.location)
            for version in range(found + 1, len(MIGRATIONS) + 1):
                for statement in MIGRATIONS[version - 1].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, time.time()),
                )

    @staticmethod
    def _version(conn: sqlite3.Connection) -> int:
        return conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]

    def schema_version(self) -> int:
        return self._version(self._conn())

    # -- connections -------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        held = getattr(self._local, "conn", None)
        if held is not None and held[1] == os.getpid():
            return held[0]
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        self._local.conn = (conn, os.getpid())
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: the write lock is taken up front, so CAS reads stay true."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise RegistryUnavailable(str(error)) from error
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def close(self) -> None:
        held = getattr(self._local, "conn", None)
        if held is not None:
            held[0].close()
            self._local.conn = None

    # -- submit and read ---------------------------------------------------------------------

    def insert(self, job: Job) -> Job:
        """Commit a new queued job; raise DuplicateKey if its idempotency key is taken."""
        try:
            with self._write() as conn:
                conn.execute(
                    f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES "
                    "(?, ?, ?, ?, ?, 0, NULL, NULL, ?, ?, 0, NULL, ?, NULL, NULL, NULL)",
                    (
                        job.id,
                        job.owner,
                        job.tool,
                        json.dumps(job.arguments, separators=(",", ":")),
                        Status.QUEUED.value,
                        job.idempotency_key,
                        job.fingerprint,
                        job.created_at,
                    ),
                )
        except sqlite3.IntegrityError:
            existing = self.find_by_key(job.owner, job.idempotency_key or "")
            if existing is None:  # pragma: no cover - a unique index violation names a row
                raise
            raise DuplicateKey(existing) from None
        return job

    def get(self, job_id: str) -> Job | None:
        row = self._conn().execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        found = row.fetchone()
        return _job(found) if found else None

    def find_by_key(self, owner: str, key: str) -> Job | None:
        row = (
            self._conn()
            .execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE owner = ? AND idempotency_key = ?",
                (owner, key),
            )
            .fetchone()
        )
        return _job(row) if row else None

    def list(
        self,
        owner: str | None,
        status: Status | None,
        limit: int,
        after: tuple[float, str] | None,
    ) -> list[Job]:
        """Jobs newest first; `after` is the (created_at, id) of the previous page's last job."""
        clauses, params = [], []
        if owner is not None:
            clauses.append("owner = ?")
            params.append(owner)
        if status is not None:
            clauses.append("status = ?")
            params.append(status.value)
        if after is not None:
            clauses.append("(created_at, id) < (?, ?)")
            params.extend(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._conn().execute(
            f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY created_at DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [_job(row) for row in rows]

    def attempts(self, job_id: str) -> list[Attempt]:
        rows = self._conn().execute(
            "SELECT job_id, attempt, worker, started_at, finished_at, outcome FROM attempts "
            "WHERE job_id = ? ORDER BY attempt",
            (job_id,),
        )
        return [Attempt(*row) for row in rows]

    def count_by_status(self) -> dict[Status, int]:
        rows = self._conn().execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        counts = {status: 0 for status in Status}
        counts.update({Status(status): n for status, n in rows})
        return counts

    def check_writable(self) -> None:
        """Prove the file takes a write (readiness)."""
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('readyz', ?)",
                    (str(time.time()),),
                )
        except sqlite3.Error as error:
            raise RegistryUnavailable(str(error)) from error

    # -- dispatch ----------------------------------------------------------------------------

    def mark_dispatched(self, job_id: str, at: float) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE jobs SET dispatched_at = ? WHERE id = ? AND status = 'queued'", (at, job_id)
            )

    def due_for_dispatch(
        self, now: float, redispatch_after: float, limit: int, grace: float = 0.0
    ) -> list[str]:
        """Queued jobs never published, or published so long ago their message looks lost.

        A job younger than `grace` seconds is left to the request that is publishing it now.
        """
        rows = self._conn().execute(
            "SELECT id FROM jobs WHERE status = 'queued' AND "
            "((dispatched_at IS NULL AND created_at < ?) OR dispatched_at < ?) "
            "ORDER BY created_at LIMIT ?",
            (now - grace, now - redispatch_after, limit),
        )
        return [row[0] for row in rows]

    def forget_dispatch(self) -> int:
        """Mark every queued job undispatched (the inline backend's queue died with its process)."""
        with self._write() as conn:
            return conn.execute(
                "UPDATE jobs SET dispatched_at = NULL WHERE status = 'queued'"
            ).rowcount

    def reap_expired(self, now: float) -> list[str]:
        """Running jobs whose lease ran out (their worker died): queue them again."""
        requeued: list[str] = []
        with self._write() as conn:
            rows = conn.execute(
                "SELECT id, attempts, cancel_requested FROM jobs "
                "WHERE status = 'running' AND lease_expires_at < ?",
                (now,),
            ).fetchall()
            for job_id, attempt, cancel_requested in rows:
                self._close_attempt(conn, job_id, attempt, now, "lost")
                if cancel_requested:
                    self._finish_row(
                        conn, job_id, attempt, Status.CANCELLED, None, "cancelled", now
                    )
                    continue
                conn.execute(
                    "UPDATE jobs SET status = 'queued', worker = NULL, lease_expires_at = NULL, "
                    "dispatched_at = NULL WHERE id = ?",
                    (job_id,),
                )
                requeued.append(job_id)
        return requeued

    # -- execution (workers) -----------------------------------------------------------------

    def claim(self, job_id: str, worker: str, lease_seconds: float) -> Claim | None:
        """Compare-and-set queued → running (or take over an expired lease); None if not ours."""
        now = time.time()
        with self._write() as conn:
            row = conn.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, worker = ?, "
                "lease_expires_at = ?, started_at = COALESCE(started_at, ?) "
                "WHERE id = ? AND cancel_requested = 0 AND (status = 'queued' OR "
                "(status = 'running' AND lease_expires_at < ?)) "
                "RETURNING attempts, tool, arguments",
                (worker, now + lease_seconds, now, job_id, now),
            ).fetchone()
            if row is None:
                return None
            attempt = row["attempts"]
            if attempt > 1:
                self._close_attempt(conn, job_id, attempt - 1, now, "lost")
            conn.execute(
                "INSERT INTO attempts (job_id, attempt, worker, started_at) VALUES (?, ?, ?, ?)",
                (job_id, attempt, worker, now),
            )
        return Claim(job_id, attempt, row["tool"], json.loads(row["arguments"]))

    def renew(self, claim: Claim, lease_seconds: float) -> bool | None:
        """Extend the lease; returns whether a cancel was requested, None if the job is lost."""
        with self._write() as conn:
            row = conn.execute(
                "UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND status = 'running' "
                "AND attempts = ? RETURNING cancel_requested",
                (time.time() + lease_seconds, claim.job_id, claim.attempt),
            ).fetchone()
        return None if row is None else bool(row[0])

    def finish(
        self, claim: Claim, status: Status, result: Any = None, error: str | None = None
    ) -> bool:
        """Record the attempt's terminal outcome; False if another attempt superseded this one."""
        now = time.time()
        with self._write() as conn:
            done = self._finish_row(conn, claim.job_id, claim.attempt, status, result, error, now)
            self._close_attempt(
                conn, claim.job_id, claim.attempt, now, status.value if done else "superseded"
            )
        return done

    def request_cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once; flag a running one. Returns the job as it now stands."""
        now = time.time()
        with self._write() as conn:
            row = conn.execute("SELECT status, attempts FROM jobs WHERE id = ?", (job_id,))
            found = row.fetchone()
            if found is None:
                return None
            if found["status"] == Status.QUEUED:
                conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
                self._finish_row(
                    conn,
                    job_id,
                    found["attempts"],
                    Status.CANCELLED,
                    None,
                    "cancelled",
                    now,
                    from_status=Status.QUEUED,
                )
            elif found["status"] == Status.RUNNING:
                conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
        return self.get(job_id)

    def last_event_seq(self) -> int:
        """The newest finish event's sequence number: changes whenever a job turns terminal."""
        row = self._conn().execute("SELECT MAX(seq) FROM job_events").fetchone()
        return row[0] or 0

    def events_since(self, seq: int, limit: int = 10_000) -> list[FinishedEvent]:
        rows = self._conn().execute(
            "SELECT seq, job_id, tool, status, queue_wait, runtime FROM job_events "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        )
        return [FinishedEvent(r[0], r[1], r[2], Status(r[3]), r[4], r[5]) for r in rows]

    # -- helpers (inside a write transaction) ------------------------------------------------

    @staticmethod
    def _close_attempt(
        conn: sqlite3.Connection, job_id: str, attempt: int, now: float, outcome: str
    ) -> None:
        conn.execute(
            "UPDATE attempts SET finished_at = ?, outcome = ? "
            "WHERE job_id = ? AND attempt = ? AND finished_at IS NULL",
            (now, outcome, job_id, attempt),
        )

    @staticmethod
    def _finish_row(
        conn: sqlite3.Connection,
        job_id: str,
        attempt: int,
        status: Status,
        result: Any,
        error: str | None,
        now: float,
        from_status: Status = Status.RUNNING,
    ) -> bool:
        row = conn.execute(
            "UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ?, "
            "lease_expires_at = NULL WHERE id = ? AND status = ? AND attempts = ? "
            "RETURNING tool, created_at, started_at",
            (
                status.value,
                None if result is None else json.dumps(result, separators=(",", ":")),
                error,
                now,
                job_id,
                from_status.value,
                attempt,
            ),
        ).fetchone()
        if row is None:
            return False
        last_start = conn.execute(
            "SELECT started_at FROM attempts WHERE job_id = ? AND attempt = ?", (job_id, attempt)
        ).fetchone()
        started = row["started_at"]
        conn.execute(
            "INSERT INTO job_events (job_id, tool, status, queue_wait, runtime) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                job_id,
                row["tool"],
                status.value,
                None if started is None else started - row["created_at"],
                None if last_start is None else now - last_start[0],
            ),
        )
        return True
