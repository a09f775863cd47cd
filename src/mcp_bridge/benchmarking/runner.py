"""Drive a benchmark: submit each iteration's jobs through the API, wait for them, measure.

Programmatic use (e.g. a qualification check against an API that is already running)::

    from mcp_bridge.benchmarking import BenchmarkOptions, run_benchmark, write_artefact

    artefact = run_benchmark(
        BenchmarkOptions(scenario="smoke", transport="http", base_url=url, token=token)
    )
    write_artefact(artefact, "var/benchmarks")

The parts: `options` (what to run), `targets` (where requests go, through `mcp_bridge_client`),
`loop` (iterations: submit, then await), `figures` (the numbers); this module puts them together
into the artefact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mcp_bridge.benchmarking.artefact import iso, validate
from mcp_bridge.benchmarking.bridge_settings import config_block
from mcp_bridge.benchmarking.environment import environment
from mcp_bridge.benchmarking.errors import BenchmarkError
from mcp_bridge.benchmarking.figures import (
    failure_line,
    job_figures,
    run_figures,
    scenario_parameters,
    summary_figures,
    summary_line,
)
from mcp_bridge.benchmarking.loop import Iteration, batch, run_iteration
from mcp_bridge.benchmarking.options import BenchmarkOptions, get_scenario_or_fail
from mcp_bridge.benchmarking.targets import Target, open_target, preflight

Progress = Callable[[int, int], None]
"""Called with (jobs finished so far, jobs in the whole run) as jobs reach a terminal state."""


async def run_benchmark_async(
    options: BenchmarkOptions,
    progress: Progress | None = None,
    profiler: Any | None = None,
) -> dict[str, Any]:
    """Run the benchmark and return the validated artefact (not written; see write_artefact).

    `profiler` (e.g. profiling.ThreadProfiler) is started before the in-process bridge is built
    and stopped after it shut down. Raises BenchmarkError with a one-line reason on failure.
    """
    options.check()
    scenario = get_scenario_or_fail(options.scenario)
    jobs_per_iteration = options.jobs_per_iteration or scenario.default_jobs
    total = (options.warmup + options.iterations) * jobs_per_iteration
    done = 0

    def on_done() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    started_at = datetime.now(UTC)
    runs: list[dict[str, Any]] = []
    measured_jobs: list[dict[str, Any]] = []
    if profiler is not None:
        profiler.start()
    try:
        async with open_target(options) as target:
            specs = batch(scenario, jobs_per_iteration, options, await preflight(target))
            for round_ in range(options.warmup + options.iterations):
                result = await run_iteration(target, specs, options, on_done)
                failure = failure_line(result.jobs)
                if failure and scenario.expects_success:
                    raise BenchmarkError(failure)
                if round_ < options.warmup:
                    continue
                runs.append(run_figures(len(runs) + 1, result.wall, result.jobs))
                measured_jobs.extend(result.jobs)
            config, base_url, parameters = target.config, target.base_url, target.parameters
    finally:
        if profiler is not None:
            profiler.stop()
    finished_at = datetime.now(UTC)
    artefact = {
        "label": options.label,
        "scenario": scenario.name,
        "scenarioDescription": scenario.description,
        "transport": options.transport,
        "baseUrl": base_url if options.transport == "http" else None,
        "iterations": options.iterations,
        "warmup": options.warmup,
        "concurrency": options.concurrency,
        "jobsPerIteration": len(specs),
        "parameters": {
            **scenario_parameters(scenario, options),
            "waitSeconds": options.wait_seconds,
            "jobTimeout": options.job_timeout,
            **parameters,
        },
        "config": config,
        "summary": summary_figures(runs),
        "jobs": job_figures(measured_jobs),
        "runs": runs,
        "environment": environment(),
        "startedAt": iso(started_at),
        "finishedAt": iso(finished_at),
    }
    return validate(artefact)


def run_benchmark(
    options: BenchmarkOptions,
    progress: Progress | None = None,
    profiler: Any | None = None,
) -> dict[str, Any]:
    """Synchronous `run_benchmark_async` (runs its own event loop)."""
    return asyncio.run(run_benchmark_async(options, progress, profiler))


__all__ = [
    "BenchmarkOptions",
    "Iteration",
    "Progress",
    "Target",
    "config_block",
    "job_figures",
    "run_benchmark",
    "run_benchmark_async",
    "run_iteration",
    "summary_line",
]
