"""The run loop: one iteration submits its batch, then long-polls every job to a final status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx

from mcp_bridge.benchmarking.errors import BenchmarkError
from mcp_bridge.benchmarking.options import BenchmarkOptions, scenario_params
from mcp_bridge.benchmarking.scenarios import JobSpec, Scenario, offers_demo
from mcp_bridge.benchmarking.targets import Target, describe, problem
from mcp_bridge_client import TERMINAL, get_request, submit_request


def batch(
    scenario: Scenario, jobs: int, options: BenchmarkOptions, offered: set[str]
) -> list[JobSpec]:
    """The jobs of one iteration, for the tools the API offers; fails naming any it lacks."""
    params = scenario_params(options, mcp=offers_demo(offered))
    specs = scenario.batch(jobs, params)
    missing = sorted({spec.tool for spec in specs} - offered)
    if missing:
        raise BenchmarkError(f"the API has no tool(s) {', '.join(missing)}")
    return specs


async def submit(target: Target, spec: JobSpec) -> dict[str, Any]:
    req = submit_request(spec.tool, spec.arguments, token=target.token)
    try:
        response = await target.client.send(req)
    except httpx.HTTPError as error:
        raise BenchmarkError(
            f"{describe(req)} failed: {str(error) or type(error).__name__}"
        ) from None
    if response.status_code not in (200, 202):
        raise BenchmarkError(f"{describe(req)} ({spec.tool}) answered {problem(response)}")
    return response.json()


async def await_terminal(
    target: Target, job: dict[str, Any], deadline: float, options: BenchmarkOptions
) -> dict[str, Any]:
    """Long-poll the job (`wait=`) until its status is final or the deadline passes."""
    while job.get("status") not in TERMINAL:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BenchmarkError(
                f"job {job['id']} ({job['tool']}) still {job['status']} after "
                f"{options.job_timeout:g} s: is a worker consuming its queue?"
            )
        wait = min(options.wait_seconds, remaining)
        req = get_request(
            job["id"],
            token=target.token,
            wait=round(wait, 3),
            timeout=wait + options.request_timeout,
        )
        try:
            response = await target.client.send(req)
        except httpx.HTTPError as error:
            raise BenchmarkError(
                f"{describe(req)} failed: {str(error) or type(error).__name__}"
            ) from None
        if response.status_code != 200:
            raise BenchmarkError(f"{describe(req)} answered {problem(response)}")
        job = response.json()
    return job


async def _all(coroutines: list[Coroutine[Any, Any, None]]) -> None:
    """Run together; the first failure cancels the rest and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            for coroutine in coroutines:
                group.create_task(coroutine)
    except BaseExceptionGroup as group_error:
        first: BaseException = group_error
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None


@dataclass
class Iteration:
    wall: float
    jobs: list[dict[str, Any]]


async def run_iteration(
    target: Target,
    specs: list[JobSpec],
    options: BenchmarkOptions,
    on_done: Callable[[], None] | None = None,
) -> Iteration:
    """Submit the batch (`concurrency` POSTs in flight), then long-poll every job to a terminal
    state (`concurrency` GETs in flight); the wall time covers both."""
    submitted: list[dict[str, Any] | None] = [None] * len(specs)
    finished: list[dict[str, Any] | None] = [None] * len(specs)
    lanes = min(options.concurrency, len(specs))
    started = time.perf_counter()
    deadline = time.monotonic() + options.job_timeout
    to_submit = iter(enumerate(specs))

    async def submitter() -> None:
        for index, spec in to_submit:
            submitted[index] = await submit(target, spec)

    await _all([submitter() for _ in range(lanes)])
    to_wait = iter(enumerate(submitted))

    async def waiter() -> None:
        for index, job in to_wait:
            assert job is not None
            finished[index] = await await_terminal(target, job, deadline, options)
            if on_done is not None:
                on_done()

    await _all([waiter() for _ in range(lanes)])
    wall = time.perf_counter() - started
    return Iteration(wall, [job for job in finished if job is not None])
