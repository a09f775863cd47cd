"""Execution backends: adapters of the job core's `Backend` port (where a job is sent to run)."""

from __future__ import annotations

from mcp_bridge.config import Settings
from mcp_bridge.jobs.ports import Backend, Tools
from mcp_bridge.jobs.registry import Registry

__all__ = ["Backend", "build_backend"]


def build_backend(settings: Settings, registry: Registry, catalog: Tools) -> Backend:
    if settings.job_backend == "celery":
        from mcp_bridge.backends.celery import CeleryBackend

        return CeleryBackend(settings, registry, catalog)
    from mcp_bridge.backends.inline import InlineBackend

    return InlineBackend(settings, registry, catalog)
