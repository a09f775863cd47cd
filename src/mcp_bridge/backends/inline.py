"""The inline backend: a thread pool inside the API process, same registry semantics."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

from mcp_bridge.config import Settings
from mcp_bridge.jobs.executor import execute
from mcp_bridge.jobs.ports import Tools
from mcp_bridge.jobs.registry import Registry


class InlineBackend:
    name = "inline"

    def __init__(self, settings: Settings, registry: Registry, catalog: Tools) -> None:
        self._settings, self._registry, self._catalog = settings, registry, catalog
        self._pool: ThreadPoolExecutor | None = None
        self._worker = f"inline@{socket.gethostname()}"

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self._settings.inline_concurrency, "inline-job")
        # Queued jobs were only in the previous process's memory: let the dispatcher resend them.
        self._registry.forget_dispatch()

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def publish(self, job_id: str) -> None:
        if self._pool is None:
            raise RuntimeError("inline backend is not running")
        self._pool.submit(self._run, job_id)

    def _run(self, job_id: str) -> None:
        execute(
            job_id,
            registry=self._registry,
            catalog=self._catalog,
            worker=self._worker,
            lease_seconds=self._settings.job_lease_seconds,
        )

    def check(self) -> tuple[bool, str]:
        return (self._pool is not None, "thread pool" if self._pool else "not started")
