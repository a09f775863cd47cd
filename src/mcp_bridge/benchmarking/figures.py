"""The numbers of a run: per-iteration and per-job figures, the summary, and its one line."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from mcp_bridge.benchmarking import stats
from mcp_bridge.benchmarking.options import BenchmarkOptions, scenario_params
from mcp_bridge.benchmarking.scenarios import Scenario


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value).timestamp()


def job_figures(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Queue wait (startedAt - createdAt) and runtime (finishedAt - startedAt), in seconds."""
    waits: list[float] = []
    runtimes: list[float] = []
    for job in jobs:
        created, started, ended = (
            _seconds(job.get(key)) for key in ("createdAt", "startedAt", "finishedAt")
        )
        if created is not None and started is not None:
            waits.append(max(started - created, 0.0))
        if started is not None and ended is not None:
            runtimes.append(max(ended - started, 0.0))
    return {
        "queueWait": stats.brief(waits),
        "runtime": stats.brief(runtimes),
        "statuses": dict(Counter(str(job.get("status")) for job in jobs)),
        "tools": dict(Counter(str(job.get("tool")) for job in jobs)),
    }


def failure_line(jobs: list[dict[str, Any]]) -> str | None:
    """The first job that did not succeed, in one line (None: all succeeded)."""
    bad = [job for job in jobs if job.get("status") != "succeeded"]
    if not bad:
        return None
    first = bad[0]
    more = f" ({len(bad) - 1} more did not succeed)" if len(bad) > 1 else ""
    error = f": {first.get('error')}" if first.get("error") else ""
    return f"job {first.get('id')} ({first.get('tool')}) {first.get('status')}{error}{more}"


def run_figures(iteration: int, wall: float, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """One measured iteration's entry of the artefact's `runs`."""
    succeeded = sum(job.get("status") == "succeeded" for job in jobs)
    return {
        "iteration": iteration,
        "wallSeconds": wall,
        "jobs": len(jobs),
        "succeeded": succeeded,
        "failed": len(jobs) - succeeded,
    }


def summary_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The artefact's `summary`: wall-time statistics and throughput over the measured runs."""
    return stats.summarize_runs([run["wallSeconds"] for run in runs], [run["jobs"] for run in runs])


def scenario_parameters(scenario: Scenario, options: BenchmarkOptions) -> dict[str, Any]:
    """The knobs the scenario actually reads (probed: smoke's job mix, for one, is fixed)."""
    base = scenario_params(options)
    probes = {
        "sleepMs": (options.sleep_ms, scenario_params(options, sleep_ms=options.sleep_ms + 1)),
        "cpuSize": (options.cpu_size, scenario_params(options, cpu_size=options.cpu_size + 1)),
    }
    reads = {}
    for key, (value, changed) in probes.items():
        if any(scenario.make(i, base) != scenario.make(i, changed) for i in range(3)):
            reads[key] = value
    return reads


def summary_line(artefact: dict[str, Any]) -> str:
    """One human line: what ran and the headline numbers."""
    summary, config = artefact["summary"], artefact["config"]
    backend = config["jobBackend"]
    worker = config["celery"]["inlineWorker"]
    if backend == "celery" and worker["enabled"]:
        backend += f" (inline worker x{worker['concurrency']})"
    label = f" [{artefact['label']}]" if artefact.get("label") else ""
    return (
        f"{artefact['scenario']}{label}: {artefact['iterations']} iterations x "
        f"{artefact['jobsPerIteration']} jobs, concurrency {artefact['concurrency']}, "
        f"{artefact['transport']}, {backend}: mean {summary['mean']:.3f} s "
        f"(p50 {summary['p50']:.3f}, p95 {summary['p95']:.3f}, min {summary['min']:.3f}, "
        f"max {summary['max']:.3f}, stdev {summary['stdev']:.3f}), "
        f"throughput {summary['throughput']:.1f} jobs/s"
    )
