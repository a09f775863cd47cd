"""The bridge under test as the suite sees it: an API server, Celery workers, a registry file.

Only public surfaces are used: the documented commands and environment variables, HTTP, signals,
the Celery wire protocol (a worker is ready when it answers a Celery ping) and the registry file,
opened read-only.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
from celery import Celery
from psycopg.rows import dict_row

from .deadlines import PROBE_SECONDS, Deadlines
from .latch import Latch
from .launch import shell_env
from .managed import ManagedProcess
from .process import free_port, wait_until
from .redis import RedisServer

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})

#: Defaults that make fault recovery observable within seconds instead of minutes.
FAST_RECOVERY_ENV = {
    "ENVIRONMENT": "test",
    "JOB_LEASE_SECONDS": "2",
    "CELERY_VISIBILITY_TIMEOUT": "60",
    "DISPATCH_INTERVAL_SECONDS": "0.2",
    "PUBLISH_TIMEOUT_SECONDS": "1",
    "JOB_REDISPATCH_SECONDS": "600",
    # Checks that need MCP servers name their own file (qualification/test_mcp.py), or ask for
    # the bridge's packaged default with `env={"MCP_SERVERS_FILE": None}`.
    "MCP_SERVERS_FILE": "",
}


class ApiProcess(ManagedProcess):
    """`uvicorn mcp_bridge.app:create_app --factory` on a free loopback port; ready on /readyz."""

    def __init__(self, env: dict[str, str], log_dir: Path, cwd: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "mcp_bridge.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
        ]
        super().__init__("api", argv, env, log_dir, self._ready, cwd=cwd)

    def _ready(self) -> bool:
        # /readyz pings the broker (PUBLISH_TIMEOUT_SECONDS at most)
        timeout = Deadlines(self.env).setting("PUBLISH_TIMEOUT_SECONDS") + PROBE_SECONDS
        return httpx.get(f"{self.url}/readyz", timeout=timeout).status_code == 200


class WorkerPinger:
    """Pings workers over the broker with Celery's remote-control protocol."""

    def __init__(self, broker_url: str) -> None:
        self._app = Celery("qualification-ping", broker=broker_url)

    def answers(self, node: str, timeout: float = PROBE_SECONDS) -> bool:
        """One ping; it returns as soon as `node` replies (a busy worker is given `timeout`)."""
        replies = self._app.control.ping(destination=[node], timeout=timeout)
        return any(node in reply for reply in replies)

    def close(self) -> None:
        self._app.close()


class WorkerProcess(ManagedProcess):
    """`python -m mcp_bridge.worker` with a unique node name; ready once Celery logs
    `<node> ready.` (it consumes) and it answers a ping over the broker (a ping sent before it
    listens would be lost, and waited for in vain)."""

    def __init__(
        self,
        index: int,
        env: dict[str, str],
        log_dir: Path,
        cwd: Path,
        pinger: WorkerPinger,
        pool: str = "solo",
        concurrency: int = 1,
    ) -> None:
        self.node = f"w{index}-{secrets.token_hex(3)}@qualification"
        argv = [
            sys.executable,
            "-m",
            "mcp_bridge.worker",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "-n",
            self.node,
        ]
        super().__init__(
            f"worker-{index}",
            argv,
            env,
            log_dir,
            lambda: self._logged_ready() and pinger.answers(self.node),
            cwd=cwd,
        )

    def _logged_ready(self) -> bool:
        """Celery logged `<node> ready.` since the latest start."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return False
        return f"{self.node} ready." in text.rpartition("\n--- start #")[2]


class BridgeStack:
    """Redis (optional), one API and N workers sharing a registry file in `workdir`."""

    def __init__(
        self,
        workdir: Path,
        redis: RedisServer | None,
        backend: str = "celery",
        env: dict[str, str | None] | None = None,
        base_env: dict[str, str] | None = None,
        registry_url: str | None = None,
    ) -> None:
        """`env` overrides the defaults; a None value unsets the variable (the bridge's default).
        `registry_url`: a PostgreSQL database for the registry (else the SQLite file)."""
        self.workdir = workdir
        self.log_dir = workdir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.redis = redis
        self.secret = secrets.token_urlsafe(32)
        self.registry_path = workdir / "var" / "jobs" / "registry.db"
        self.env: dict[str, str] = {
            **shell_env(base_env or {}),
            **FAST_RECOVERY_ENV,
            "JOB_BACKEND": backend,
            "JOB_REGISTRY_PATH": str(self.registry_path),
            **({"JOB_REGISTRY_URL": registry_url} if registry_url else {}),
            "AUTH_DEV_SECRET": self.secret,
            "PYTHONUNBUFFERED": "1",
            # the processes' temporary files (and the `latch` tool's files) stay in the workdir
            "TMPDIR": str(workdir / "tmp"),
        }
        if redis is not None:
            self.env["CELERY_BROKER_URL"] = redis.url_for(0)
            self.env["CELERY_RESULT_BACKEND"] = redis.url_for(1)
        for name, value in (env or {}).items():
            if value is None:
                self.env.pop(name, None)
            else:
                self.env[name] = value
        self.secret = self.env.get("AUTH_SECRET") or self.env["AUTH_DEV_SECRET"]
        Path(self.env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
        self.deadlines = Deadlines(self.env)
        self.api = ApiProcess(self.env, self.log_dir, workdir)
        self.workers: list[WorkerProcess] = []
        self._pinger = WorkerPinger(self.env["CELERY_BROKER_URL"]) if redis else None
        self.http = httpx.Client(base_url=self.api.url, timeout=self.deadlines.client())

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, workers: int = 0, api: bool = True) -> BridgeStack:
        """Spawn the API and the workers together, then wait for each to be ready."""
        new = [self.add_worker(start=False) for _ in range(workers)]
        parts: list[ManagedProcess] = ([self.api] if api else []) + new
        for part in parts:
            part.spawn()
        for part in parts:
            part.wait_ready()
        return self

    def add_worker(self, start: bool = True, **options: Any) -> WorkerProcess:
        if self._pinger is None:
            raise RuntimeError("workers need a Redis broker")
        worker = WorkerProcess(
            len(self.workers) + 1, self.env, self.log_dir, self.workdir, self._pinger, **options
        )
        self.workers.append(worker)
        return worker.start() if start else worker

    @property
    def broker(self) -> RedisServer | None:
        """The broker node (None without Redis)."""
        return self.redis

    def processes(self) -> list[ManagedProcess]:
        return [self.api, *self.workers]

    def log_files(self) -> list[Path]:
        return [p.log_path for p in self.processes() if p.log_path.exists()]

    def close(self) -> None:
        for part in self.processes():
            with contextlib.suppress(Exception):  # teardown must reach every part
                part.close()
        self.http.close()
        if self._pinger is not None:
            self._pinger.close()

    # -- clients -----------------------------------------------------------------------------

    def token(
        self,
        subject: str = "qualification",
        roles: Iterable[str] = ("operator",),
        secret: str | None = None,
        **claims: Any,
    ) -> str:
        body = {"sub": subject, "roles": list(roles), "exp": int(time.time()) + 3600, **claims}
        return jwt.encode(body, secret or self.secret, algorithm="HS256")

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token()}", **extra}

    def submit(
        self,
        tool: str,
        arguments: dict[str, Any] | None = None,
        key: str | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        headers = self.headers(token)
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.http.post(
            "/v1/jobs", json={"tool": tool, "arguments": arguments or {}}, headers=headers
        )

    def submit_ok(self, tool: str, arguments: dict[str, Any] | None = None, **kw: Any) -> str:
        response = self.submit(tool, arguments, **kw)
        assert response.status_code == 202, response.text
        return response.json()["id"]

    def latch(self) -> Latch:
        """A new latch for the built-in `latch` tool of this stack's processes."""
        return Latch(Path(self.env["TMPDIR"]))

    def job(self, job_id: str, token: str | None = None, wait: float = 0) -> dict[str, Any]:
        response = self.http.get(
            f"/v1/jobs/{job_id}",
            params={"wait": wait},
            headers=self.headers(token),
            timeout=self.deadlines.client(self.deadlines.long_poll(wait)),
        )
        response.raise_for_status()
        return response.json()

    def wait_terminal(
        self, job_ids: Iterable[str], timeout: float | None = None
    ) -> dict[str, dict]:
        """Long-poll each job until terminal; returns id → job. The default deadline: as many
        short jobs, published to live workers (`deadlines.jobs`)."""
        job_ids = list(job_ids)
        timeout = self.deadlines.jobs(len(job_ids)) if timeout is None else timeout
        deadline = time.monotonic() + timeout
        done: dict[str, dict] = {}
        for job_id in job_ids:
            while True:
                remaining = deadline - time.monotonic()
                job = self.job(job_id, wait=max(min(remaining, 10), 0))
                if job["status"] in TERMINAL:
                    done[job_id] = job
                    break
                if remaining <= 0:
                    raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:g}s")
        return done

    def wait_status(self, job_id: str, status: str, timeout: float | None = None) -> dict[str, Any]:
        """Poll until the job has `status` (default deadline: one job published to a worker)."""
        timeout = self.deadlines.jobs() if timeout is None else timeout
        return wait_until(
            lambda: (job := self.job(job_id))["status"] == status and job,
            timeout,
            what=f"job {job_id} to be {status}",
        )

    # -- the registry (read-only): the SQLite file, or the PostgreSQL database -----------------

    @property
    def registry_url(self) -> str | None:
        """The PostgreSQL registry's URL; None when the registry is the SQLite file."""
        return self.env.get("JOB_REGISTRY_URL") or None

    @property
    def registry_kind(self) -> str:
        return "postgres" if self.registry_url else "sqlite"

    def registry_present(self) -> bool:
        """The registry exists where the bridge was told to keep it (file, or schema in the DB)."""
        if self.registry_url is None:
            return self.registry_path.exists()
        return bool(self._query("SELECT to_regclass('jobs') IS NOT NULL AS present")[0]["present"])

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows as dicts; `sql` uses `?` placeholders (translated for PostgreSQL)."""
        if self.registry_url is None:
            conn = sqlite3.connect(f"file:{self.registry_path}?mode=ro", uri=True, timeout=10)
            conn.row_factory = sqlite3.Row
            with contextlib.closing(conn):
                return [dict(row) for row in conn.execute(sql, params)]
        with psycopg.connect(self.registry_url, row_factory=dict_row, connect_timeout=10) as conn:
            conn.read_only = True
            return list(conn.execute(sql.replace("?", "%s"), params))

    def executions(self, job_id: str) -> list[dict[str, Any]]:
        """Every recorded execution attempt of a job, from the registry."""
        return self._query("SELECT * FROM attempts WHERE job_id = ? ORDER BY attempt", (job_id,))

    def registry_rows(self, table: str = "jobs") -> list[dict[str, Any]]:
        rows = self._query(f"SELECT * FROM {table}")  # noqa: S608
        for row in rows:  # one shape whatever the registry: SQLite stores booleans as 0/1
            if isinstance(row.get("cancel_requested"), bool):
                row["cancel_requested"] = int(row["cancel_requested"])
        return rows


def broker_drained(stack: BridgeStack) -> bool:
    """True when the job queue is empty and no message awaits an ack (kombu's `unacked` hash)."""
    if stack.redis is None:
        return True
    with stack.redis.client(0) as client:
        return client.llen(stack.env["CELERY_QUEUE"]) == 0 and client.hlen("unacked") == 0


def queue_length(stack: BridgeStack) -> int:
    assert stack.redis is not None
    with stack.redis.client(0) as client:
        return int(client.llen(stack.env["CELERY_QUEUE"]))
