"""`python -m mcp_bridge.benchmarking.mcp_overhead`: the MCP hop's per-job cost, in one process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.benchmarking.test_bench_cli import _clean_env


def overhead(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_bridge.benchmarking.mcp_overhead", *flags],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # the default registry path, var/jobs/registry.db, lands here
        env={**_clean_env(), "AUTH_DEV_SECRET": "dev"},
        check=False,
    )


def test_reports_builtin_mcp_and_their_difference(tmp_path: Path) -> None:
    done = overhead(tmp_path, "--jobs", "8", "--rounds", "1", "--sleep-ms", "5")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # the figures only: no start-up chatter
    out = json.loads(done.stdout)
    assert (out["jobsPerRound"], out["rounds"], out["sleepMs"]) == (8, 1, 5)
    for key in ("runtimeMean", "wallPerJob"):
        figures = out[key]
        assert figures["builtinMs"] > 0 and figures["mcpMs"] > 0
        assert abs(figures["overheadMs"] - (figures["mcpMs"] - figures["builtinMs"])) < 0.01
    # The jobs really slept: a 5 ms sleep cannot take less than 5 ms, over MCP or not.
    assert out["runtimeMean"]["builtinMs"] >= 5 and out["runtimeMean"]["mcpMs"] >= 5


def test_bad_flag_is_one_line(tmp_path: Path) -> None:
    done = overhead(tmp_path, "--jobs", "0")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "benchmark: error: argument --jobs: must be at least 1, got 0 (see --help)"
    ]
