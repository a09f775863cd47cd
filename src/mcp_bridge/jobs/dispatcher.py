"""The dispatcher: re-publishes jobs the broker has not taken; re-queues jobs whose worker died."""

from __future__ import annotations

import logging
import threading
import time

from mcp_bridge.jobs.registry import Registry
from mcp_bridge.jobs.service import JobService

log = logging.getLogger(__name__)


class Dispatcher(threading.Thread):
    """A background loop in the API process; every step is a CAS on the registry, so several
    API replicas may run one each."""

    def __init__(
        self,
        registry: Registry,
        service: JobService,
        interval: float,
        redispatch_after: float,
        grace: float = 0.0,
    ) -> None:
        """`grace`: how long a new job is left to the request publishing it (no duplicates)."""
        super().__init__(name="dispatcher", daemon=True)
        self._registry, self._service = registry, service
        self._interval, self._redispatch_after = interval, redispatch_after
        self._grace = grace
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.step()
            except Exception:  # the registry may be busy or briefly unwritable; try next tick
                log.exception("dispatcher step failed")
            self._halt.wait(self._interval)

    def step(self) -> int:
        """Reap expired leases, then publish what is due; returns how many were published."""
        now = time.time()
        reaped = self._registry.reap_expired(now)
        if reaped:
            log.warning("re-queued %d job(s) whose worker stopped renewing its lease", len(reaped))
        published = 0
        for job_id in self._registry.due_for_dispatch(
            now, self._redispatch_after, limit=500, grace=self._grace
        ):
            if not self._service.dispatch(job_id):
                break  # the broker is down: wait for the next tick
            published += 1
        return published

    def stop(self) -> None:
        self._halt.set()
