"""The catalog a bridge process serves: built-in tools plus the MCP servers file's tools."""

from __future__ import annotations

from mcp_bridge.tools.builtin import BuiltinTools
from mcp_bridge.tools.catalog import Catalog
from mcp_bridge.tools.mcp_provider import mcp_tools


def default_catalog() -> Catalog:
    """Built-in tools, plus the MCP servers file's tools (`MCP_SERVERS_FILE`) as `server.tool`."""
    mcp = mcp_tools()
    return Catalog([BuiltinTools()] if mcp is None else [BuiltinTools(), mcp])
