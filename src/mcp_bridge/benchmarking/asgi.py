"""Run an ASGI app's lifespan by hand (the protocol `asgi-lifespan` implements), so the bridge
can be driven in-process through `httpx.ASGITransport` with its startup/shutdown done."""

from __future__ import annotations

import asyncio
from typing import Any

from mcp_bridge.benchmarking.errors import BenchmarkError


class Lifespan:
    def __init__(self, app: Any, timeout: float = 30.0) -> None:
        self._app, self._timeout = app, timeout
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _receive(self) -> dict[str, Any]:
        return await self._to_app.get()

    async def _send(self, message: dict[str, Any]) -> None:
        await self._from_app.put(message)

    def _raise_if_crashed(self) -> None:
        task = self._task
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                raise error

    async def _exchange(self, message: str, expected: str) -> None:
        assert self._task is not None
        await self._to_app.put({"type": message})
        reply = asyncio.ensure_future(self._from_app.get())
        done, _ = await asyncio.wait(
            {reply, self._task}, timeout=self._timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if reply not in done:
            reply.cancel()
            self._raise_if_crashed()
            raise BenchmarkError(f"the app did not answer {message} within {self._timeout:g} s")
        answer = reply.result()
        if answer["type"] != expected:
            await asyncio.wait({self._task}, timeout=1.0)  # Starlette re-raises right after
            self._raise_if_crashed()
            lines = (answer.get("message") or answer["type"]).strip().splitlines()
            raise BenchmarkError(f"{message} failed: {lines[-1] if lines else answer['type']}")

    async def __aenter__(self) -> Lifespan:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self._task = asyncio.create_task(self._app(scope, self._receive, self._send))
        await self._exchange("lifespan.startup", "lifespan.startup.complete")
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._exchange("lifespan.shutdown", "lifespan.shutdown.complete")
        finally:
            if self._task is not None and not self._task.done():
                self._task.cancel()
