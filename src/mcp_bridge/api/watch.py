"""Wake long-polling requests when any job turns terminal.

One loop per API process reads the registry's newest finish-event number every `interval`
seconds (one indexed read, whatever the number of waiters) while anyone waits, and wakes the
waiters when it moves; each then re-reads only its own job. Workers in other processes write
those events, so this sees their work too.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi.concurrency import run_in_threadpool

from mcp_bridge.jobs.registry import Registry


class FinishWatcher:
    def __init__(self, registry: Registry, interval: float = 0.01) -> None:
        self._registry, self._interval = registry, interval
        self._changed = asyncio.Condition()
        self._waiters = 0
        self._task: asyncio.Task[None] | None = None
        self.seq = -1  # newest finish event seen; -1 until the first read

    async def wait(self, mark: int, timeout: float) -> None:
        """Return once `seq` has moved past `mark` (read before the caller read its job), or
        after `timeout` seconds. Taking the mark first means no finish can slip between."""
        if timeout <= 0:
            return
        self._waiters += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch())
        try:
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait_for(lambda: self.seq != mark),
                                           timeout)
        finally:
            self._waiters -= 1

    async def _watch(self) -> None:
        """Poll while anyone waits; stop when nobody does."""
        while self._waiters > 0:
            current = await run_in_threadpool(self._registry.last_event_seq)
            if current != self.seq:
                async with self._changed:
                    self.seq = current
                    self._changed.notify_all()
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
