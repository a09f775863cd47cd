"""Tools a job can run: the catalog and its providers (`tools.default.default_catalog`)."""

from mcp_bridge.tools.catalog import Catalog, Tool, ToolContext, ToolError

__all__ = ["Catalog", "Tool", "ToolContext", "ToolError"]
