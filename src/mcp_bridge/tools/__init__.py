"""Tools a job can run: the catalog and its providers."""

from mcp_bridge.tools.catalog import Catalog, Tool, ToolContext, ToolError, default_catalog

__all__ = ["Catalog", "Tool", "ToolContext", "ToolError", "default_catalog"]
