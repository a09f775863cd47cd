"""MCP bridge: Model Context Protocol tool calls as durable asynchronous jobs."""

__version__ = "0.1.0"
