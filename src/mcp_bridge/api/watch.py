"""Wake long-polling requests when their job turns terminal.

One loop per API process, running only while someone waits, reads the registry's new finish
events every `interval` seconds (one indexed range read, whatever the number of waiters) and wakes
exactly the waiters of the jobs that finished. Workers in other processes write those events, so
this sees their work too.

A waiter passes the event number it read *before* reading its job (`mark`); a finish after that
read has a higher number, so it is either still to come or already in `_recent`: no lost wakeups.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi.concurrency import run_in_threadpool

from mcp_bridge.jobs.models import Job
from mcp_bridge.jobs.registry import Registry

RECENT = 50_000  # finished job ids remembered for waiters that registered late


class FinishWatcher:
    def __init__(self, registry: Registry, interval: float = 0.01) -> None:
        self._registry, self._interval = registry, interval
        self._waiters: dict[str, list[asyncio.Event]] = {}
        self._recent: OrderedDict[str, int] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._seq = 0

    def mark(self) -> int:
        """The newest finish event now (blocking: call from a worker thread)."""
        return self._registry.last_event_seq()

    async def until_terminal(
        self, job_id: str, read: Callable[[], Job | None], seconds: float
    ) -> Job | None:
        """`read()` (run in a worker thread) until the job is terminal, gone, or `seconds` pass."""
        deadline = time.monotonic() + seconds

        def marked() -> tuple[int, Job | None]:
            return (self.mark() if seconds > 0 else 0), read()

        while True:
            mark, job = await run_in_threadpool(marked)
            remaining = deadline - time.monotonic()
            if job is None or job.status.terminal or remaining <= 0:
                return job
            await self.wait(job_id, mark, remaining)

    async def wait(self, job_id: str, mark: int, timeout: float) -> None:
        """Return once `job_id` finished after `mark`, or after `timeout` seconds."""
        if timeout <= 0 or self._recent.get(job_id, -1) > mark:
            return
        if self._task is None or self._task.done():
            self._seq = mark
            self._task = asyncio.create_task(self._watch())
        else:
            self._seq = min(self._seq, mark)
        event = asyncio.Event()
        self._waiters.setdefault(job_id, []).append(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            waiting = self._waiters.get(job_id, [])
            if event in waiting:
                waiting.remove(event)
            if not waiting:
                self._waiters.pop(job_id, None)

    async def _watch(self) -> None:
        """Fold new finish events while anyone waits; stop when nobody does."""
        while self._waiters:
            events = await run_in_threadpool(self._registry.events_since, self._seq)
            for event in events:
                self._remember(event.job_id, event.seq)
                for waiter in self._waiters.get(event.job_id, ()):
                    waiter.set()
            if events:
                self._seq = max(self._seq, events[-1].seq)
            await asyncio.sleep(self._interval)

    def _remember(self, job_id: str, seq: int) -> None:
        self._recent[job_id] = seq
        self._recent.move_to_end(job_id)
        while len(self._recent) > RECENT:
            self._recent.popitem(last=False)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
