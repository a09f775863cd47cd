"""The PostgreSQL job registry: any number of hosts share one database (psycopg 3 + a pool).

Connections are in autocommit: a compare-and-set is one `UPDATE … WHERE <expected state>
RETURNING` statement (PostgreSQL re-checks the WHERE on the newest row version when it waited on
a concurrent writer, so exactly one of racing claims wins); multi-row steps run in explicit
transactions that lock their rows first (`FOR UPDATE`).

The finish log's sequence numbers come from one counter row updated in the finishing
statement: its row lock is held until commit, so numbers are handed out in commit order and a
reader reading `seq > n` never skips an event that commits late (a plain sequence would let it).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from mcp_bridge.jobs.models import Attempt, Claim, FinishedEvent, Job, Status
from mcp_bridge.jobs.registry import DuplicateKey, RegistryUnavailable, check_version, redact

#: Schema steps; step N brings the database to version N.
MIGRATIONS: tuple[str, ...] = (
    """
CREATE TABLE jobs (
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
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    worker TEXT,
    lease_expires_at DOUBLE PRECISION,
    dispatched_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX jobs_idempotency
    ON jobs (owner, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_status ON jobs (status, dispatched_at);
CREATE INDEX jobs_owner_created ON jobs (owner, created_at, id);
CREATE INDEX jobs_created ON jobs (created_at, id);
CREATE TABLE attempts (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    attempt INTEGER NOT NULL,
    worker TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    outcome TEXT,
    PRIMARY KEY (job_id, attempt)
);
CREATE TABLE job_events (
    seq BIGINT PRIMARY KEY,
    job_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    status TEXT NOT NULL,
    queue_wait DOUBLE PRECISION,
    runtime DOUBLE PRECISION
);
CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO counters (name, value) VALUES ('job_events', 0);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
""",
)
VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
)
RECONNECT_SECONDS = 5.0
MIGRATION_LOCK = 0x6D63_7062  # pg_advisory_xact_lock key: concurrent starts migrate one by one

JOB_COLUMNS = (
    "id, owner, tool, arguments, status, attempts, result, error, idempotency_key, fingerprint, "
    "cancel_requested, worker, created_at, started_at, finished_at, dispatched_at"
)

# The terminal transition of one attempt, its finish event, and (FINISH only) the attempt's close.
_DONE = """
done AS (
    UPDATE jobs SET status = %(status)s, result = %(result)s, error = %(error)s,
        finished_at = %(now)s, lease_expires_at = NULL
    WHERE id = %(id)s AND status = %(from)s AND attempts = %(attempt)s
    RETURNING tool, created_at, started_at),
seq AS (
    UPDATE counters SET value = value + 1
    WHERE name = 'job_events' AND EXISTS (SELECT 1 FROM done) RETURNING value),
event AS (
    INSERT INTO job_events (seq, job_id, tool, status, queue_wait, runtime)
    SELECT seq.value, %(id)s, done.tool, %(status)s, done.started_at - done.created_at,
        %(now)s - (SELECT started_at FROM attempts WHERE job_id = %(id)s AND attempt = %(attempt)s)
    FROM done, seq)
"""
FINISH_ROW = f"WITH {_DONE} SELECT EXISTS (SELECT 1 FROM done) AS done"
FINISH = f"""WITH {_DONE},
closed AS (
    UPDATE attempts SET finished_at = %(now)s,
        outcome = CASE WHEN EXISTS (SELECT 1 FROM done) THEN %(status)s ELSE 'superseded' END
    WHERE job_id = %(id)s AND attempt = %(attempt)s AND finished_at IS NULL)
SELECT EXISTS (SELECT 1 FROM done) AS done"""
CLAIM = """
WITH claimed AS (
    UPDATE jobs SET status = 'running', attempts = attempts + 1, worker = %(worker)s,
        lease_expires_at = %(lease)s, started_at = COALESCE(started_at, %(now)s)
    WHERE id = %(id)s AND NOT cancel_requested AND (status = 'queued' OR
        (status = 'running' AND lease_expires_at < %(now)s))
    RETURNING attempts, tool, arguments),
lost AS (
    UPDATE attempts SET finished_at = %(now)s, outcome = 'lost'
    WHERE job_id = %(id)s AND attempt = (SELECT attempts - 1 FROM claimed)
        AND finished_at IS NULL),
opened AS (
    INSERT INTO attempts (job_id, attempt, worker, started_at)
    SELECT %(id)s, attempts, %(worker)s, %(now)s FROM claimed)
SELECT attempts, tool, arguments FROM claimed
"""
CLOSE_ATTEMPT = (
    "UPDATE attempts SET finished_at = %s, outcome = %s "
    "WHERE job_id = %s AND attempt = %s AND finished_at IS NULL"
)

#: Pools inherited through fork: never used, never closed (closing would end the parent's
#: sessions on the shared sockets), only kept from the garbage collector for the same reason.
_INHERITED: list[ConnectionPool] = []


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _job(row: dict[str, Any]) -> Job:
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


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


class PostgresRegistry:
    """Thread-safe (a pool per process) access to the registry database."""

    def __init__(
        self, url: str, pool_size: int = 10, connect_timeout: float = 5.0, wait: float = 10.0
    ) -> None:
        """`wait`: how long a caller waits for a pooled connection before the registry counts as
        unavailable (a request then gets a 503, a worker retries its message)."""
        self.url, self.location = url, redact(url)
        self._size, self._wait = pool_size, wait
        self._kwargs: dict[str, Any] = {
            "autocommit": True,
            "row_factory": dict_row,
            "connect_timeout": max(1, math.ceil(connect_timeout)),
            "application_name": "mcp-bridge",
        }
        try:
            with psycopg.connect(url, **self._kwargs) as conn:
                self._migrate(conn)
        except psycopg.Error as error:
            raise RegistryUnavailable(f"{self.location}: {_one_line(error)}") from None
        self._pool: ConnectionPool | None = None
        self._pid = 0
        self._lock = threading.Lock()

    # -- connections -------------------------------------------------------------------------

    def _migrate(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(VERSION_TABLE)
            found = self._version(conn)
            check_version(found, len(MIGRATIONS), self.location)
            for version in range(found + 1, len(MIGRATIONS) + 1):
                conn.execute(MIGRATIONS[version - 1])
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (%s, %s)",
                    (version, time.time()),
                )

    @staticmethod
    def _version(conn: psycopg.Connection) -> int:
        row = conn.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        return row.fetchone()["v"]

    def _connections(self) -> ConnectionPool:
        pool = self._pool
        if pool is not None and self._pid == os.getpid():
            return pool
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                return self._pool
            if self._pool is not None:
                _INHERITED.append(self._pool)
            self._pool = ConnectionPool(
                self.url,
                min_size=1,
                max_size=self._size,
                kwargs=self._kwargs,
                check=ConnectionPool.check_connection,
                timeout=self._wait,
                # The pool retries a lost connection with exponential backoff; a short chain
                # (then a fresh one on demand) keeps the bridge within seconds of a database
                # that comes back, instead of a backoff step that grew during the outage.
                reconnect_timeout=RECONNECT_SECONDS,
                name="mcp-bridge-registry",
                open=True,
            )
            self._pid = os.getpid()
            return self._pool

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection]:
        try:
            with self._connections().connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as error:
            raise RegistryUnavailable(f"{self.location}: {_one_line(error)}") from error

    def _one(self, sql: str, params: Any = None) -> dict[str, Any] | None:
        with self._conn() as conn:
            return conn.execute(sql, params).fetchone()

    def _exec(self, sql: str, params: Any = None) -> int:
        """A write that returns no rows; its row count."""
        with self._conn() as conn:
            return conn.execute(sql, params).rowcount

    def _all(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        with self._conn() as conn:
            return conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.close()
            self._pool = None

    def schema_version(self) -> int:
        with self._conn() as conn:
            return self._version(conn)

    # -- submit and read ---------------------------------------------------------------------

    def insert(self, job: Job) -> Job:
        try:
            with self._conn() as conn:
                conn.execute(
                    f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES "
                    "(%s, %s, %s, %s, 'queued', 0, NULL, NULL, %s, %s, FALSE, NULL, %s, NULL, "
                    "NULL, NULL)",
                    (
                        job.id,
                        job.owner,
                        job.tool,
                        _dumps(job.arguments),
                        job.idempotency_key,
                        job.fingerprint,
                        job.created_at,
                    ),
                )
        except psycopg.errors.UniqueViolation:
            existing = self.find_by_key(job.owner, job.idempotency_key or "")
            if existing is None:  # pragma: no cover - a unique index violation names a row
                raise
            raise DuplicateKey(existing) from None
        return job

    def get(self, job_id: str) -> Job | None:
        row = self._one(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
        return _job(row) if row else None

    def find_by_key(self, owner: str, key: str) -> Job | None:
        row = self._one(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE owner = %s AND idempotency_key = %s",
            (owner, key),
        )
        return _job(row) if row else None

    def list(
        self, owner: str | None, status: Status | None, limit: int, after: tuple[float, str] | None
    ) -> list[Job]:
        clauses: list[str] = []
        params: list[Any] = []
        if owner is not None:
            clauses.append("owner = %s")
            params.append(owner)
        if status is not None:
            clauses.append("status = %s")
            params.append(status.value)
        if after is not None:
            clauses.append("(created_at, id) < (%s, %s)")
            params.extend(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._all(
            f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY created_at DESC, id DESC LIMIT %s",
            (*params, limit),
        )
        return [_job(row) for row in rows]

    def attempts(self, job_id: str) -> list[Attempt]:
        rows = self._all(
            "SELECT job_id, attempt, worker, started_at, finished_at, outcome FROM attempts "
            "WHERE job_id = %s ORDER BY attempt",
            (job_id,),
        )
        return [Attempt(**row) for row in rows]

    def count_by_status(self) -> dict[Status, int]:
        rows = self._all("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
        counts = {status: 0 for status in Status}
        counts.update({Status(row["status"]): row["n"] for row in rows})
        return counts

    def check_writable(self) -> None:
        self._exec(
            "INSERT INTO meta (key, value) VALUES ('readyz', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (str(time.time()),),
        )

    # -- dispatch ----------------------------------------------------------------------------

    def mark_dispatched(self, job_id: str, at: float) -> None:
        self._exec(
            "UPDATE jobs SET dispatched_at = %s WHERE id = %s AND status = 'queued'", (at, job_id)
        )

    def due_for_dispatch(
        self, now: float, redispatch_after: float, limit: int, grace: float = 0.0
    ) -> list[str]:
        rows = self._all(
            "SELECT id FROM jobs WHERE status = 'queued' AND "
            "((dispatched_at IS NULL AND created_at < %s) OR dispatched_at < %s) "
            "ORDER BY created_at LIMIT %s",
            (now - grace, now - redispatch_after, limit),
        )
        return [row["id"] for row in rows]

    def forget_dispatch(self) -> int:
        return self._exec("UPDATE jobs SET dispatched_at = NULL WHERE status = 'queued'")

    def reap_expired(self, now: float) -> list[str]:
        requeued: list[str] = []
        with self._conn() as conn, conn.transaction():
            rows = conn.execute(
                "SELECT id, attempts, cancel_requested FROM jobs "
                "WHERE status = 'running' AND lease_expires_at < %s "
                "ORDER BY id FOR UPDATE SKIP LOCKED",
                (now,),
            ).fetchall()
            for row in rows:
                job_id, attempt = row["id"], row["attempts"]
                conn.execute(CLOSE_ATTEMPT, (now, "lost", job_id, attempt))
                if row["cancel_requested"]:
                    self._finish_row(
                        conn, job_id, attempt, Status.CANCELLED, None, "cancelled", now
                    )
                    continue
                conn.execute(
                    "UPDATE jobs SET status = 'queued', worker = NULL, lease_expires_at = NULL, "
                    "dispatched_at = NULL WHERE id = %s",
                    (job_id,),
                )
                requeued.append(job_id)
        return requeued

    # -- execution (workers) -----------------------------------------------------------------

    def claim(self, job_id: str, worker: str, lease_seconds: float) -> Claim | None:
        now = time.time()
        row = self._one(
            CLAIM, {"id": job_id, "worker": worker, "now": now, "lease": now + lease_seconds}
        )
        if row is None:
            return None
        return Claim(job_id, row["attempts"], row["tool"], json.loads(row["arguments"]))

    def renew(self, claim: Claim, lease_seconds: float) -> bool | None:
        row = self._one(
            "UPDATE jobs SET lease_expires_at = %s WHERE id = %s AND status = 'running' "
            "AND attempts = %s RETURNING cancel_requested",
            (time.time() + lease_seconds, claim.job_id, claim.attempt),
        )
        return None if row is None else bool(row["cancel_requested"])

    def finish(
        self, claim: Claim, status: Status, result: Any = None, error: str | None = None
    ) -> bool:
        row = self._one(
            FINISH,
            self._finish_params(
                claim.job_id, claim.attempt, status, result, error, time.time(), Status.RUNNING
            ),
        )
        return bool(row and row["done"])

    def request_cancel(self, job_id: str) -> Job | None:
        now = time.time()
        with self._conn() as conn, conn.transaction():
            found = conn.execute(
                "SELECT status, attempts FROM jobs WHERE id = %s FOR UPDATE", (job_id,)
            ).fetchone()
            if found is None:
                return None
            if found["status"] in (Status.QUEUED, Status.RUNNING):
                conn.execute("UPDATE jobs SET cancel_requested = TRUE WHERE id = %s", (job_id,))
            if found["status"] == Status.QUEUED:
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
        return self.get(job_id)

    def last_event_seq(self) -> int:
        row = self._one("SELECT COALESCE(MAX(seq), 0) AS seq FROM job_events")
        return row["seq"] if row else 0

    def events_since(self, seq: int, limit: int = 10_000) -> list[FinishedEvent]:
        rows = self._all(
            "SELECT seq, job_id, tool, status, queue_wait, runtime FROM job_events "
            "WHERE seq > %s ORDER BY seq LIMIT %s",
            (seq, limit),
        )
        return [
            FinishedEvent(
                r["seq"], r["job_id"], r["tool"], Status(r["status"]), r["queue_wait"], r["runtime"]
            )
            for r in rows
        ]

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _finish_params(
        job_id: str,
        attempt: int,
        status: Status,
        result: Any,
        error: str | None,
        now: float,
        from_status: Status,
    ) -> dict[str, Any]:
        return {
            "id": job_id,
            "attempt": attempt,
            "status": status.value,
            "result": _dumps(result),
            "error": error,
            "now": now,
            "from": from_status.value,
        }

    def _finish_row(
        self,
        conn: psycopg.Connection,
        job_id: str,
        attempt: int,
        status: Status,
        result: Any,
        error: str | None,
        now: float,
        from_status: Status = Status.RUNNING,
    ) -> bool:
        params = self._finish_params(job_id, attempt, status, result, error, now, from_status)
        row = conn.execute(FINISH_ROW, params).fetchone()
        return bool(row and row["done"])
