"""A small MCP server for demos, tests and benchmarks (official `mcp` SDK, 2.x).

    python -m mcp_bridge.demo_server                                  # stdio
    python -m mcp_bridge.demo_server --transport http --port 8765     # streamable HTTP at /mcp

Tools mirror the bridge's built-ins: `echo`, `sleep`, `cpu`, `fail`; plus `crash`, which ends the
server process mid-call (for fault checks).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

MAX_SLEEP_MS = 600_000
MAX_CPU_SIZE = 10_000_000


def build_server() -> MCPServer:
    """The demo server with its tools registered."""
    server = MCPServer("mcp-bridge-demo", version="1", log_level="WARNING")

    @server.tool(description="Return the message unchanged.")
    def echo(message: Annotated[str, Field(max_length=65536)] = "") -> dict[str, Any]:
        return {"message": message}

    @server.tool(description="Wait `ms` milliseconds (an I/O-bound call's latency).")
    async def sleep(ms: Annotated[int, Field(ge=0, le=MAX_SLEEP_MS)]) -> dict[str, Any]:
        await anyio.sleep(ms / 1000)
        return {"sleptMs": ms}

    @server.tool(description="Deterministic CPU-bound work: `size` SHA-256 rounds.")
    def cpu(size: Annotated[int, Field(ge=1, le=MAX_CPU_SIZE)]) -> dict[str, Any]:
        digest = hashlib.sha256(b"mcp-bridge").digest()
        for _ in range(size):
            digest = hashlib.sha256(digest).digest()
        return {"size": size, "digest": digest.hex()}

    @server.tool(description="Fail with the given message (an `isError` result).")
    def fail(message: Annotated[str, Field(max_length=4096)] = "") -> dict[str, Any]:
        raise ToolError(message or "failed on purpose")

    @server.tool(description="Exit the server process after `ms` milliseconds, mid-call.")
    async def crash(ms: Annotated[int, Field(ge=0, le=MAX_SLEEP_MS)] = 0) -> dict[str, Any]:
        await anyio.sleep(ms / 1000)
        print(f"demo server {os.getpid()}: crashing on purpose", file=sys.stderr, flush=True)
        os._exit(3)

    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mcp_bridge.demo_server", description=__doc__)
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    server = build_server()
    if args.transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
