"""Run one job attempt: claim it, keep its lease alive, record the outcome."""

from __future__ import annotations

import threading
from typing import Any

from mcp_bridge.jobs.models import Claim, Status
from mcp_bridge.jobs.ports import ToolContext, ToolError, Tools
from mcp_bridge.jobs.registry import Registry


class _LeaseKeeper(threading.Thread):
    """Renews the claim's lease until stopped; flags cancellation (or a lost lease) to the tool."""

    def __init__(
        self, registry: Registry, claim: Claim, lease: float, cancelled: threading.Event
    ) -> None:
        super().__init__(name=f"lease-{claim.job_id}", daemon=True)
        self._registry, self._claim, self._lease = registry, claim, lease
        self._cancelled, self._halt = cancelled, threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self._lease / 3):
            try:
                cancel = self._registry.renew(self._claim, self._lease)
            except Exception:  # a busy registry: try again next period
                continue
            if cancel is None or cancel:
                self._cancelled.set()

    def stop(self) -> None:
        self._halt.set()


def execute(
    job_id: str, *, registry: Registry, catalog: Tools, worker: str, lease_seconds: float
) -> Status | None:
    """Run the job if this worker wins its claim; None when it is not ours to run."""
    claim = registry.claim(job_id, worker, lease_seconds)
    if claim is None:
        return None
    ctx = ToolContext(job_id)
    keeper = _LeaseKeeper(registry, claim, lease_seconds, ctx.cancelled)
    keeper.start()
    result: Any = None
    error: str | None = None
    try:
        result = catalog.get(claim.tool).run(claim.arguments, ctx)
        status = Status.SUCCEEDED
    except ToolError as failure:
        status = Status.CANCELLED if ctx.cancelled.is_set() else Status.FAILED
        error = str(failure)
    except Exception as failure:  # a tool bug must end the job, not the worker
        status, error = Status.FAILED, f"{type(failure).__name__}: {failure}"
    finally:
        keeper.stop()
    registry.finish(claim, status, result, error)
    return status
