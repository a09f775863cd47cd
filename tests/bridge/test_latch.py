"""The built-in `latch` tool: holds until released, bounded, cancellable."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from mcp_bridge.tools.builtin import BuiltinTools
from mcp_bridge.tools.catalog import ArgumentError, Catalog, ToolContext, ToolError


@pytest.fixture
def latches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    return tmp_path / "mcp-bridge-latches"


def _run(arguments: dict, ctx: ToolContext | None = None):
    return Catalog([BuiltinTools()]).get("latch").run(arguments, ctx or ToolContext("job-1"))


def _held(latches: Path, name: str) -> list[dict]:
    path = latches / f"{name}.held"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_holds_until_released(latches: Path) -> None:
    out: list = []
    runner = threading.Thread(target=lambda: out.append(_run({"name": "a", "ms": 30_000})))
    runner.start()
    deadline = time.monotonic() + 10
    while not _held(latches, "a") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _held(latches, "a")[0]["jobId"] == "job-1"
    runner.join(0.2)
    assert runner.is_alive(), "returned before its release"
    (latches / "a").touch()
    runner.join(5)
    assert out == [{"latch": "a"}]


def test_bounded_by_ms(latches: Path) -> None:
    with pytest.raises(ToolError, match="not released within 50 ms"):
        _run({"name": "b", "ms": 50})


def test_cancel_ends_the_hold(latches: Path) -> None:
    ctx = ToolContext("job-2")
    ctx.cancelled.set()
    with pytest.raises(ToolError, match="cancelled"):
        _run({"name": "c", "ms": 30_000}, ctx)


@pytest.mark.parametrize("name", ["../x", "", "a" * 65, "a/b"])
def test_names_cannot_leave_the_latch_directory(name: str) -> None:
    with pytest.raises(ArgumentError):
        Catalog([BuiltinTools()]).validate("latch", {"name": name, "ms": 1})
