"""Per-job overhead of the MCP hop: the built-in `sleep` against `demo.sleep` over MCP, one process.

    AUTH_DEV_SECRET=dev python -m mcp_bridge.benchmarking.mcp_overhead --jobs 100 --rounds 3

Runs the `sleep` and `mcp` scenarios alternately (inline backend, in-process bridge, the
packaged servers file unless MCP_SERVERS_FILE says otherwise), after one warm-up round each, and
prints each one's job runtime (claim to finish) and wall time per job, and their differences.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
from collections.abc import Sequence
from typing import Any

from mcp_bridge.benchmarking.cli import Parser, non_negative, positive, run_guarded
from mcp_bridge.benchmarking.runner import BenchmarkOptions, run_benchmark


def _one(scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    options = BenchmarkOptions(
        scenario=scenario,
        iterations=1,
        warmup=0,
        concurrency=args.concurrency,
        jobs_per_iteration=args.jobs,
        job_backend="inline",
        sleep_ms=args.sleep_ms,
    )
    artefact = run_benchmark(options)
    return {
        "runtimeMean": artefact["jobs"]["runtime"]["mean"],
        "wallPerJob": artefact["runs"][0]["wallSeconds"] / artefact["runs"][0]["jobs"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="python -m mcp_bridge.benchmarking.mcp_overhead")
    parser.add_argument("--jobs", type=positive, default=100, help="jobs per round (default 100)")
    parser.add_argument(
        "--rounds", type=positive, default=3, help="measured rounds of each (default 3)"
    )
    parser.add_argument("--sleep-ms", type=non_negative, default=0, help="sleep per job (0)")
    parser.add_argument("--concurrency", type=positive, default=4, help="jobs in flight (4)")
    args = parser.parse_args(argv)
    return run_guarded(lambda: _measure(args))


def _measure(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)  # before the bridge's INFO start-up chatter
    samples: dict[str, list[dict[str, Any]]] = {"sleep": [], "mcp": []}
    for scenario in samples:  # warm-up: build the catalog, open the MCP session
        _one(scenario, args)
    for _ in range(args.rounds):
        for scenario, runs in samples.items():
            runs.append(_one(scenario, args))
    out: dict[str, Any] = {
        "jobsPerRound": args.jobs,
        "rounds": args.rounds,
        "sleepMs": args.sleep_ms,
        "concurrency": args.concurrency,
    }
    for key in ("runtimeMean", "wallPerJob"):
        builtin = statistics.mean(run[key] for run in samples["sleep"])
        mcp = statistics.mean(run[key] for run in samples["mcp"])
        out[key] = {
            "builtinMs": round(builtin * 1000, 3),
            "mcpMs": round(mcp * 1000, 3),
            "overheadMs": round((mcp - builtin) * 1000, 3),
        }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
