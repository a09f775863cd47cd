"""Built-in tools the suite and the benchmarks need: echo, sleep, cpu, fail, latch."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mcp_bridge.tools.catalog import Tool, ToolContext, ToolError

MAX_SLEEP_MS = 600_000
MAX_CPU_SIZE = 10_000_000
#: Where `latch` looks for its release file: `<tempdir>/mcp-bridge-latches/<name>`.
LATCH_DIR = "mcp-bridge-latches"
LATCH_POLL_SECONDS = 0.05


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


def latch_dir() -> Path:
    """The latch directory of this process (`TMPDIR` decides, as for any temporary file)."""
    return Path(tempfile.gettempdir()) / LATCH_DIR


def _latch(arguments: dict[str, Any], ctx: ToolContext) -> Any:
    """Hold until the file `<latch dir>/<name>` exists, at most `ms`; a cancel request ends it.

    Each hold appends `{"jobId", "pid"}` to `<name>.held` first, so a test can see the job is
    inside the tool (and in which process) before it releases the latch or injects a fault.
    """
    name, ms = arguments["name"], arguments["ms"]
    directory = latch_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f"{name}.held").open("a") as held:
        held.write(json.dumps({"jobId": ctx.job_id, "pid": os.getpid()}) + "\n")
    release = directory / name
    deadline = time.monotonic() + ms / 1000
    while not release.exists():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ToolError(f"latch {name!r} was not released within {ms} ms")
        if ctx.cancelled.wait(min(LATCH_POLL_SECONDS, remaining)):
            raise ToolError("cancelled")
    return {"latch": name}


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
        yield Tool(
            "latch",
            "Hold until the test releases latch `name` (a file in the temporary directory), at "
            "most `ms` milliseconds; for fault checks that need a job in flight.",
            _object(
                {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                    "ms": {"type": "integer", "minimum": 0, "maximum": MAX_SLEEP_MS},
                },
                ["name", "ms"],
            ),
            _latch,
        )
