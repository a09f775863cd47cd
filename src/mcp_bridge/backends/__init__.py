"""Execution backends: where a committed job is sent to run."""

from __future__ import annotations

from typing import Protocol

from mcp_bridge.config import Settings
from mcp_bridge.jobs.registry import Registry
from mcp_bridge.tools.catalog import Catalog


class Backend(Protocol):
    name: str

    def publish(self, job_id: str) -> None:
        """Hand the job to the executors; raise if it could not be handed over."""

    def check(self) -> tuple[bool, str]:
        """Is the backend able to take work now (readiness)?"""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def build_backend(settings: Settings, registry: Registry, catalog: Catalog) -> Backend:
    if settings.job_backend == "celery":
        from mcp_bridge.backends.celery import CeleryBackend

        return CeleryBackend(settings, registry, catalog)
    from mcp_bridge.backends.inline import InlineBackend

    return InlineBackend(settings, registry, catalog)
