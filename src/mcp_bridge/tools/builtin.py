"""Built-in tools the suite and the benchmarks need: echo, sleep, cpu, fail."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from mcp_bridge.tools.catalog import Tool, ToolContext, ToolError

MAX_SLEEP_MS = 600_000
MAX_CPU_SIZE = 10_000_000


def _echo(arguments: dict[str, Any], ctx: ToolContext) -> Any:
    return {"message": arguments.get("message")}


def _sleep(arguments: dict[str, Any], ctx: ToolContext) -> Any:
    """Wait like a remote call would; a cancel request interrupts the wait."""
    ms = arguments["ms"]
    if ctx.cancelled.wait(ms / 1000):
        raise ToolError("cancelled")
    return {"sleptMs": ms}


def _cpu(arguments: dict[str, Any], ctx: ToolContext) -> Any:
    """Deterministic CPU work: a chain of `size` SHA-256 rounds."""
    digest = hashlib.sha256(b"mcp-bridge").digest()
    size = int(arguments["size"])  # JSON Schema counts 2.0 as an integer
    for _ in range(size):
        digest = hashlib.sha256(digest).digest()
    return {"size": size, "digest": digest.hex()}


def _fail(arguments: dict[str, Any], ctx: ToolContext) -> Any:
    raise ToolError(arguments.get("message") or "failed on purpose")


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


class BuiltinTools:
    """Provider of the built-in tools."""

    def tools(self) -> Iterable[Tool]:
        yield Tool(
            "echo",
            "Return the message unchanged.",
            _object({"message": {"type": "string", "maxLength": 65536}}, []),
            _echo,
        )
        yield Tool(
            "sleep",
            "Wait `ms` milliseconds (an I/O-bound call's latency).",
            _object({"ms": {"type": "integer", "minimum": 0, "maximum": MAX_SLEEP_MS}}, ["ms"]),
            _sleep,
        )
        yield Tool(
            "cpu",
            "Deterministic CPU-bound work: `size` SHA-256 rounds.",
            _object({"size": {"type": "integer", "minimum": 1, "maximum": MAX_CPU_SIZE}}, ["size"]),
            _cpu,
        )
        yield Tool(
            "fail",
            "Fail with the given message.",
            _object({"message": {"type": "string", "maxLength": 4096}}, []),
            _fail,
        )
