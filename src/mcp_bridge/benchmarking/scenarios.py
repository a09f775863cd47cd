"""Benchmark scenarios: which jobs one iteration submits.

Built from the bridge's built-in tools and, where a scenario says so, the demo MCP server's tools
(`demo.*`, offered by the packaged servers file). Every scenario is told whether the API offers
them (`ScenarioParams.mcp`); `smoke` then runs its mix both ways, so a fresh install's smoke
benchmark makes real MCP calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_SLEEP_MS = 50
DEFAULT_CPU_SIZE = 20_000
SMOKE_SLEEP_MS = 5
SMOKE_CPU_SIZE = 2_000
MCP_SERVER = "demo"  # the demo MCP server of the packaged servers file (MCP_SERVERS_FILE)


@dataclass(frozen=True)
class JobSpec:
    """One job to submit: a tool and its arguments."""

    tool: str
    arguments: dict[str, Any]

    def body(self) -> dict[str, Any]:
        return {"tool": self.tool, "arguments": self.arguments}


@dataclass(frozen=True)
class ScenarioParams:
    """Knobs a scenario may read (the CLI's --sleep-ms and --cpu-size)."""

    sleep_ms: int = DEFAULT_SLEEP_MS
    cpu_size: int = DEFAULT_CPU_SIZE
    mcp: bool = False  # the API offers the demo MCP server's tools (see `offers_demo`)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    default_jobs: int
    make: Callable[[int, ScenarioParams], JobSpec]
    expects_success: bool = True

    def batch(self, jobs: int, params: ScenarioParams) -> list[JobSpec]:
        """The jobs of one iteration, in submission order."""
        return [self.make(index, params) for index in range(jobs)]


SMOKE_TOOLS = ("echo", "sleep", "cpu")


def offers_demo(tools: set[str]) -> bool:
    """Does a catalog (tool names) offer the demo MCP server's smoke tools?"""
    return all(f"{MCP_SERVER}.{tool}" in tools for tool in SMOKE_TOOLS)


def _builtin_smoke(index: int) -> JobSpec:
    kind = index % 3
    if kind == 0:
        return JobSpec("echo", {"message": f"smoke-{index}"})
    if kind == 1:
        return JobSpec("sleep", {"ms": SMOKE_SLEEP_MS})
    return JobSpec("cpu", {"size": SMOKE_CPU_SIZE})


def _over_mcp(spec: JobSpec) -> JobSpec:
    return JobSpec(f"{MCP_SERVER}.{spec.tool}", spec.arguments)


def _smoke(index: int, params: ScenarioParams) -> JobSpec:
    """echo, sleep, cpu; then, when the demo server is offered, the same three over MCP."""
    spec = _builtin_smoke(index)
    return _over_mcp(spec) if params.mcp and index % 6 >= 3 else spec


def _mcp_smoke(index: int, params: ScenarioParams) -> JobSpec:
    return _over_mcp(_builtin_smoke(index))


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            "smoke",
            f"a mix of echo, sleep {SMOKE_SLEEP_MS} ms and cpu {SMOKE_CPU_SIZE} rounds, half of "
            f"them over MCP ({MCP_SERVER}.*) when the API offers the demo server",
            12,
            _smoke,
        ),
        Scenario(
            "sleep",
            "I/O-bound: sleep --sleep-ms per job",
            20,
            lambda index, params: JobSpec("sleep", {"ms": params.sleep_ms}),
        ),
        Scenario(
            "cpu",
            "CPU-bound: --cpu-size SHA-256 rounds per job",
            8,
            lambda index, params: JobSpec("cpu", {"size": params.cpu_size}),
        ),
        Scenario(
            "echo",
            "no-op: echo a short message",
            40,
            lambda index, params: JobSpec("echo", {"message": f"echo-{index}"}),
        ),
        Scenario(
            "mcp",
            f"sleep over MCP: {MCP_SERVER}.sleep --sleep-ms per job (a real MCP server)",
            20,
            lambda index, params: JobSpec(f"{MCP_SERVER}.sleep", {"ms": params.sleep_ms}),
        ),
        Scenario(
            "mcp-smoke",
            f"smoke's mix over MCP ({MCP_SERVER}.echo, {MCP_SERVER}.sleep, {MCP_SERVER}.cpu)",
            12,
            _mcp_smoke,
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(
            f"unknown scenario {name!r} (choose from {', '.join(SCENARIOS)})"
        ) from None
