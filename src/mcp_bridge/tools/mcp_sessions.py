"""A per-process pool of open MCP client sessions, one per server, on one background event loop.

Opening a session costs a process spawn and a handshake (~0.4 s on stdio); a call on an open one
costs about a millisecond, so sessions are opened lazily and kept. A session whose server died is
replaced on the next call. The loop thread belongs to the process that created it: after a fork
(Celery's prefork pool) the child starts its own loop and sessions on first use.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

import anyio
import httpx2
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CONNECTION_CLOSED, INVALID_REQUEST, CallToolResult
from mcp_types import Tool as McpTool

from mcp_bridge.tools.mcp_servers import ServerConfig

log = logging.getLogger(__name__)
T = TypeVar("T")
CLOSE_TIMEOUT = 5.0
HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)  # the SDK's defaults; calls have their own
MAX_LIST_PAGES = 100
_POOLS: weakref.WeakSet[SessionPool] = weakref.WeakSet()
_ABANDONED: list[object] = []  # a forked child's copies of its parent's loop state, never touched
_TRANSPORT_ERRORS = (
    OSError,
    httpx2.TransportError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
)


class CallTimeout(Exception):
    """The call outlived its timeout and was cancelled."""


class CallCancelled(Exception):
    """The job was cancelled while the call ran; the call was cancelled."""


class SessionUnavailable(Exception):
    """The server could not be started or reached, or did not finish its handshake in time."""


def connection_closed(error: BaseException) -> bool:
    """Did the server go away (exit, crash, dropped connection)?"""
    if isinstance(error, BaseExceptionGroup):
        return any(connection_closed(inner) for inner in error.exceptions)
    if isinstance(error, MCPError):
        return error.code == CONNECTION_CLOSED
    return isinstance(error, _TRANSPORT_ERRORS)


def session_expired(error: BaseException) -> bool:
    """Did a streamable-HTTP server refuse the request because it no longer knows the session?"""
    return (
        isinstance(error, MCPError)
        and error.code == INVALID_REQUEST
        and error.error.message in ("Session terminated", "Session not found")
    )


def describe(error: BaseException) -> str:
    """One line for an error, ExceptionGroups unwrapped."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in error.exceptions)
    if isinstance(error, MCPError):
        return f"{error.error.message} (MCP error {error.code})"
    return str(error) or type(error).__name__


def stdio_parameters(config: ServerConfig) -> StdioServerParameters:
    """`python`/`python3` means this interpreter; its import path is passed on."""
    assert config.command is not None
    command, env = config.command, dict(config.env)
    if command in ("python", "python3"):
        command = sys.executable
        package_root = str(Path(__file__).resolve().parents[2])
        paths = [package_root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        env.setdefault("PYTHONPATH", os.pathsep.join(dict.fromkeys(paths)))
    return StdioServerParameters(command=command, args=config.args, env=env, cwd=config.cwd)


@dataclass
class _Session:
    client: Client
    stop: asyncio.Event
    owner: asyncio.Task[None]
    opened_at: float = field(default_factory=time.monotonic)

    @property
    def alive(self) -> bool:
        if self.owner.done() or self.stop.is_set():
            return False
        dispatcher = getattr(self.client.session, "_dispatcher", None)
        return not getattr(dispatcher, "_closed", False)


class SessionPool:
    """`call_sync` and `list_sync` are safe from any thread of the owning process."""

    def __init__(self, servers: dict[str, ServerConfig]) -> None:
        self.servers = servers
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sessions: dict[str, _Session] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self.opened = 0  # sessions opened in this process (restarts included)
        _POOLS.add(self)

    # -- the loop thread ---------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._pid != os.getpid() or self._loop is None:
                if self._loop is not None:  # inherited through fork: its thread is gone
                    _ABANDONED.append((self._loop, self._sessions, self._opening))
                self._sessions, self._opening, self.opened = {}, {}, 0
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="mcp-sessions", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._ensure_loop())

    def wait(
        self,
        future: concurrent.futures.Future[T],
        timeout: float,
        cancelled: threading.Event | None = None,
    ) -> T:
        """Block until done; cancel the coroutine on `cancelled` or after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                return future.result(timeout=max(0.0, min(remaining, 0.1)))
            except TimeoutError:  # also what concurrent.futures raises while still waiting
                if future.done():  # the coroutine's own timeout
                    raise CallTimeout() from None
                if cancelled is not None and cancelled.is_set():
                    future.cancel()
                    raise CallCancelled() from None
                if remaining <= 0:
                    future.cancel()
                    raise CallTimeout() from None

    # -- blocking entry points ---------------------------------------------------------------

    def call_sync(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        timeout: float,
        cancelled: threading.Event | None = None,
    ) -> CallToolResult:
        """One `tools/call`; raises CallTimeout, CallCancelled, MCPError or a transport error."""
        config = self.servers[server]
        future = self.submit(self.call(server, tool, arguments, timeout))
        # The coroutine enforces `timeout` itself (and cancels the call); this is a backstop.
        return self.wait(future, config.list_timeout + timeout + 5, cancelled)

    def list_sync(self, server: str) -> list[McpTool]:
        config = self.servers[server]
        return self.wait(self.submit(self.list_tools(server)), config.list_timeout + 1)

    def close(self) -> None:
        """Close every session of this process (bounded)."""
        if self._loop is None or self._pid != os.getpid() or not self._loop.is_running():
            return
        try:
            self.wait(self.submit(self._close_all()), CLOSE_TIMEOUT + 1)
        except Exception as error:  # shutting down: report, never raise
            log.warning("closing MCP sessions: %s", error)

    # -- coroutines on the loop --------------------------------------------------------------

    async def call(
        self, server: str, tool: str, arguments: dict[str, Any], timeout: float
    ) -> CallToolResult:
        for attempt in (1, 2):
            session = await self._session(server)
            try:
                async with asyncio.timeout(timeout):
                    return await session.client.call_tool(tool, arguments)
            except TimeoutError:
                raise CallTimeout() from None
            except Exception as error:
                expired, closed = session_expired(error), connection_closed(error)
                if expired or closed:
                    self._discard(server, session)
                if not ((expired or closed) and attempt == 1):
                    raise
                # An HTTP server forgot the session (restart, idle timeout) and refused the call
                # unseen, or the server went away — between calls (a dead stdio server is only
                # noticed when written to) or during this one. Either way the call is sent once
                # more on a new session: jobs are at-least-once, and a server that crashes on
                # this call again fails it clearly.
                log.warning(
                    "MCP server %r went away (%s); calling on a new session",
                    server,
                    describe(error),
                )
        raise AssertionError("unreachable")

    async def list_tools(self, server: str) -> list[McpTool]:
        config = self.servers[server]
        async with asyncio.timeout(config.list_timeout):
            session = await self._session(server)
            tools: list[McpTool] = []
            cursor: str | None = None
            for _ in range(MAX_LIST_PAGES):
                page = await session.client.list_tools(cursor=cursor)
                tools.extend(page.tools)
                cursor = page.next_cursor
                if cursor is None:
                    break
            return tools

    async def _session(self, server: str) -> _Session:
        session = self._sessions.get(server)
        if session is not None and session.alive:
            return session
        lock = self._opening.setdefault(server, asyncio.Lock())
        async with lock:
            session = self._sessions.get(server)
            if session is not None and session.alive:
                return session
            if session is not None:
                log.warning("MCP server %r went away; starting a new session", server)
                self._discard(server, session)
            session = await self._open(server)
            self._sessions[server] = session
            self.opened += 1
            return session

    async def _open(self, server: str) -> _Session:
        config = self.servers[server]
        ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        ready.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved
        stop = asyncio.Event()
        owner = asyncio.create_task(self._own(config, ready, stop), name=f"mcp-session-{server}")
        try:
            async with asyncio.timeout(config.list_timeout):
                client = await asyncio.shield(ready)
        except BaseException as error:
            stop.set()
            owner.cancel()
            if isinstance(error, TimeoutError):
                raise SessionUnavailable(
                    f"no session within {config.list_timeout:g} s (listTimeout)"
                ) from None
            if isinstance(error, Exception):
                raise SessionUnavailable(describe(error)) from None
            raise
        return _Session(client, stop, owner)

    @staticmethod
    async def _own(
        config: ServerConfig, ready: asyncio.Future[Client], stop: asyncio.Event
    ) -> None:
        """Enter and exit the client in one task (anyio's rule), holding it open until `stop`."""
        try:
            async with contextlib.AsyncExitStack() as stack:
                if config.transport == "stdio":
                    target: Any = stdio_client(stdio_parameters(config), errlog=_errlog())
                else:
                    assert config.url is not None
                    http = httpx2.AsyncClient(headers=config.headers, timeout=HTTP_TIMEOUT)
                    await stack.enter_async_context(http)
                    target = streamable_http_client(config.url, http_client=http)
                client = await stack.enter_async_context(Client(target, cache=None))
                ready.set_result(client)
                await stop.wait()
        except BaseException as error:
            if not ready.done():
                failure = (
                    error
                    if isinstance(error, Exception)
                    else ConnectionError(f"session start interrupted: {type(error).__name__}")
                )
                ready.set_exception(failure)
            if not isinstance(error, Exception):
                raise
            log.debug("MCP session ended: %s", error)

    def _discard(self, server: str, session: _Session) -> None:
        """Forget a dead session and wind it down in the background."""
        if self._sessions.get(server) is session:
            del self._sessions[server]
        session.stop.set()

    async def _close_all(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.stop.set()
        owners = [session.owner for session in sessions]
        if owners:
            await asyncio.wait(owners, timeout=CLOSE_TIMEOUT)


def _errlog() -> TextIO:
    """Where a stdio server's stderr goes: this process's own fd 2 (Celery replaces sys.stderr
    with a logging proxy that has no file descriptor), else nowhere."""
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None and stream.fileno() >= 0:
                return stream
        except (AttributeError, OSError, ValueError):
            continue
    return open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


def _reset_after_fork() -> None:
    for pool in list(_POOLS):
        pool._after_fork()


def _close_all_pools() -> None:
    for pool in list(_POOLS):
        pool.close()


os.register_at_fork(after_in_child=_reset_after_fork)
atexit.register(_close_all_pools)
