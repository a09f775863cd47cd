"""Tools of MCP servers as catalog tools named `server.tool`, run through the session pool."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from mcp_types import CallToolResult, TextContent
from mcp_types import Tool as McpTool

from mcp_bridge.tools.catalog import Tool, ToolContext, ToolError
from mcp_bridge.tools.mcp_servers import ServerConfig, configured_servers
from mcp_bridge.tools.mcp_sessions import (
    CallCancelled,
    CallTimeout,
    SessionPool,
    SessionUnavailable,
    connection_closed,
    describe,
)

log = logging.getLogger(__name__)
RELIST_INTERVAL = 10.0  # least seconds between re-listings of one server for an unknown tool


class McpTools:
    """A ToolProvider for the servers of one servers file."""

    def __init__(self, path: Path | None, servers: dict[str, ServerConfig]) -> None:
        self.path, self.servers = path, servers
        self.pool = SessionPool(servers)
        self._listed: dict[str, dict[str, Tool]] = {}
        self._listed_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def tools(self) -> Iterable[Tool]:
        """Every server's tools; a server that cannot be listed is logged and skipped."""
        pending = [name for name in self.servers if name not in self._listed]
        if pending:
            with ThreadPoolExecutor(len(pending), "mcp-list") as executor:
                list(executor.map(self._list, pending))
        for name in self.servers:
            yield from self._listed.get(name, {}).values()

    def resolve(self, name: str) -> Tool | None:
        """A `server.tool` the catalog did not have: list its server again (rate-limited)."""
        server, dot, tool = name.partition(".")
        if not dot or server not in self.servers:
            return None
        if time.monotonic() - self._listed_at.get(server, float("-inf")) >= RELIST_INTERVAL:
            self._list(server)
        return self._listed.get(server, {}).get(name)

    def _list(self, server: str) -> None:
        started = time.perf_counter()
        self._listed_at[server] = time.monotonic()
        try:
            listed = self.pool.list_sync(server)
        except Exception as error:
            reason = describe(error)
            if isinstance(error, CallTimeout):
                reason = f"no answer within {self.servers[server].list_timeout:g} s (listTimeout)"
            log.warning(
                "MCP server %r (%s) skipped: cannot list its tools: %s", server, self.path, reason
            )
            return
        tools = {}
        for mcp_tool in listed:
            tool = self._tool(server, mcp_tool)
            if tool is not None:
                tools[tool.name] = tool
        with self._lock:
            self._listed[server] = tools
        log.info(
            "MCP server %r: %d tools listed in %.2f s",
            server,
            len(tools),
            time.perf_counter() - started,
        )

    def _tool(self, server: str, mcp_tool: McpTool) -> Tool | None:
        schema = dict(mcp_tool.input_schema)
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as error:
            log.warning(
                "MCP tool %s.%s skipped: bad input schema: %s", server, mcp_tool.name, error.message
            )
            return None
        return Tool(
            f"{server}.{mcp_tool.name}",
            mcp_tool.description or mcp_tool.title or "",
            schema,
            partial(self._run, server, mcp_tool.name),
        )

    def _run(self, server: str, tool: str, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        """Run on the executor's thread: one `tools/call` on the server's pooled session."""
        config = self.servers[server]
        timeout = config.timeout_for(tool)
        try:
            result = self.pool.call_sync(server, tool, arguments, timeout, ctx.cancelled)
        except CallTimeout:
            raise ToolError(
                f"MCP tool {server}.{tool} timed out after {timeout:g} s (timeout from the servers "
                f"file); the call was cancelled"
            ) from None
        except CallCancelled:
            raise ToolError("cancelled") from None
        except SessionUnavailable as error:
            raise ToolError(f"MCP server {server!r} is unavailable: {error}") from None
        except Exception as error:
            if connection_closed(error):
                raise ToolError(
                    f"MCP server {server!r} went away during {tool} (crashed, exited or dropped "
                    f"the connection); it is restarted on the next call"
                ) from None
            raise ToolError(f"MCP server {server!r}: {tool}: {describe(error)}") from None
        if result.is_error:
            raise ToolError(_text(result) or f"MCP tool {server}.{tool} reported an error")
        return result_value(result)


def result_value(result: CallToolResult) -> Any:
    """The job result: the structured content, else the content blocks."""
    if result.structured_content is not None:
        return result.structured_content
    return {
        "content": [
            block.model_dump(mode="json", by_alias=True, exclude_none=True)
            for block in result.content
        ]
    }


def _text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


_PROVIDERS: dict[tuple[int, Path | None], McpTools] = {}
_PROVIDERS_LOCK = threading.Lock()


def mcp_tools() -> McpTools | None:
    """This process's provider for the configured servers file (None when there is none).

    Cached per process and file, so sessions and listings are shared by every catalog built here.
    """
    path, servers = configured_servers()
    if not servers:
        return None
    key = (os.getpid(), path)
    with _PROVIDERS_LOCK:
        provider = _PROVIDERS.get(key)
        if provider is None or provider.servers != servers:
            if provider is not None:  # the file changed: its old sessions go
                provider.pool.close()
            provider = _PROVIDERS[key] = McpTools(path, servers)
        return provider


__all__ = ["McpTools", "mcp_tools", "result_value"]
