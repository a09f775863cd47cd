"""The reference bridge's processes: an API server and Celery workers sharing a registry.

The reference driver's nodes (`drivers/reference.py` speaks to them). Only public surfaces are
used: the documented commands and environment variables, HTTP readiness, signals and the Celery
wire protocol (a worker is ready when it answers a Celery ping).
"""

from __future__ import annotations

import contextlib
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx
from celery import Celery

from .deadlines import PROBE_SECONDS, Deadlines
from .latch import Latch
from .launch import shell_env
from .managed import ManagedProcess
from .process import free_port
from .redis import RedisServer

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
        if self._pinger is not None:
            self._pinger.close()

    def latch(self) -> Latch:
        """A new latch for the built-in `latch` tool of this stack's processes."""
        return Latch(Path(self.env["TMPDIR"]))

    @property
    def registry_url(self) -> str | None:
        """The PostgreSQL registry's URL; None when the registry is the SQLite file."""
        return self.env.get("JOB_REGISTRY_URL") or None
