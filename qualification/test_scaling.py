"""§3 throughput validation: 1 → 4 workers, measured in interleaved rounds, with a bootstrap
confidence interval — for the bridge end to end (a built-in tool, and the same sleep over a real
MCP server: what the MCP hop costs), plain Celery, and the inline in-memory path.

Serial: it needs the machine to itself. Quick mode (CI) runs fewer, smaller rounds and says so
in the evidence; `--qualification-mode release` runs the full workload.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qualification.plugin import RUN_DIR
from qualification.raw_celery import run_round
from qualification.stack.bridge import BridgeStack, WorkerPinger
from qualification.stack.managed import ManagedProcess
from qualification.statistics import Scaling, speedup_ci

pytestmark = [pytest.mark.scaling, pytest.mark.serial]

SLEEP_MS = 50
CONCURRENCY = 16
#: mode → (measured rounds per configuration, jobs per round); one warm-up round precedes them.
WORKLOADS = {"quick": (8, 100), "release": (10, 200)}
BRIDGE_TARGET = 3.8
RELEASE_THRESHOLD = 3.5  # the checklist's "≥3.5× throughput gains"
RAW_RATIO_TARGET = 0.97
INLINE_TARGET = 3.5
CHECKLIST_INLINE_FIGURE = 1.5  # the checklist's inline result, which the inline path must beat
MACHINE_SCALES = 2.0  # plain Celery below this: the machine cannot show scaling at all
#: The MCP hop's added job runtime must stay far below a server spawn + handshake (~380 ms), the
#: price of a session per job instead of sessions kept open per worker.
MCP_HOP_LIMIT_MS = 25.0
#: The scaling stacks use the bridge's packaged servers file (its demo MCP server), as installed.
PACKAGED_MCP_SERVERS = {"MCP_SERVERS_FILE": None}
MCP_TOOL = "demo.sleep"  # the benchmarking CLI's `mcp` scenario


@dataclass
class Series:
    """Round wall times of one configuration (warm-up excluded) and their artefacts."""

    walls: list[float] = field(default_factory=list)
    artefacts: list[Path] = field(default_factory=list)


def _per_worker_count() -> dict[int, Series]:
    return {1: Series(), 4: Series()}


@dataclass
class Measurements:
    mode: str
    rounds: int
    jobs: int
    out_dir: Path
    bridge: dict[int, Series] = field(default_factory=_per_worker_count)
    mcp: dict[int, Series] = field(default_factory=_per_worker_count)
    raw: dict[int, Series] = field(default_factory=_per_worker_count)
    inline: dict[int, Series] = field(default_factory=_per_worker_count)
    pair: dict[int, Path] = field(default_factory=dict)

    def workload(self, tool: str = "sleep") -> dict[str, Any]:
        return {
            "mode": self.mode,
            "rounds": self.rounds,
            "warmupRounds": 1,
            "jobsPerRound": self.jobs,
            "tool": tool,
            "sleepMs": SLEEP_MS,
            "kind": "I/O-bound",
            "interleaved": "1,4,1,4,…",
        }


def _benchmark(
    out_dir: Path, label: str, *args: str, scenario: str = "sleep"
) -> tuple[float, Path]:
    """One round through the benchmarking CLI; returns its wall time and artefact."""
    target = out_dir / label
    command = [
        sys.executable,
        "-m",
        "mcp_bridge.benchmarking",
        "--scenario",
        scenario,
        "--sleep-ms",
        str(SLEEP_MS),
        "--iterations",
        "1",
        "--concurrency",
        str(CONCURRENCY),
        "--output-dir",
        str(target),
        "--label",
        label,
        *args,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "CI": "true"}
    )
    assert done.returncode == 0, f"{label}: {done.stderr.strip()[-500:]}"
    artefact = max(target.glob("*.json"))
    return json.loads(artefact.read_text())["summary"]["mean"], artefact


def _raw_workers(bridge: BridgeStack, queue: str, count: int) -> list[ManagedProcess]:
    """Plain Celery workers (same flags as the bridge's) on the bridge stack's Redis."""
    broker = bridge.env["CELERY_BROKER_URL"]
    pinger = WorkerPinger(broker)
    workers = []
    for index in range(count):
        node = f"raw-{queue}-{index}@qualification"
        workers.append(
            ManagedProcess(
                f"raw-{queue}-{index}",
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "qualification.raw_celery",
                    "worker",
                    "--pool",
                    "solo",
                    "-Q",
                    queue,
                    "-n",
                    node,
                    "--without-mingle",
                    "--without-gossip",
                    "--loglevel",
                    "WARNING",
                ],
                {**dict(os.environ), "RAW_CELERY_BROKER_URL": broker},
                bridge.log_dir,
                lambda node=node: pinger.answers(node),
                cwd=Path.cwd(),
            )
        )
    for worker in workers:
        worker.spawn()
    for worker in workers:
        worker.wait_ready()
    return workers


@pytest.fixture(scope="module")
def measurements(module_stack, request, tmp_path_factory) -> Measurements:
    """All rounds, interleaved 1,4,1,4 within each system, in one run on one machine."""
    mode = request.config.getoption("qualification_mode")
    rounds, jobs = WORKLOADS[mode]
    run_dir = request.config.stash[RUN_DIR]
    out_dir = run_dir / "benchmarks" / "scaling"
    stacks = {n: module_stack(workers=n, env=PACKAGED_MCP_SERVERS) for n in (1, 4)}
    raw = {n: _raw_workers(stacks[4], f"raw{n}", n) for n in (1, 4)}
    result = Measurements(mode, rounds, jobs, out_dir)
    try:
        for round_no in range(rounds + 1):
            measured = round_no > 0
            for n in (1, 4):
                bridge = stacks[n]
                over_http = (
                    "--transport",
                    "http",
                    "--base-url",
                    bridge.api.url,
                    "--token",
                    bridge.token(),
                    "--job-backend",
                    "celery",
                    "--jobs-per-iteration",
                    str(jobs),
                )
                wall, artefact = _benchmark(out_dir, f"bridge-{n}w-r{round_no}", *over_http)
                mcp_wall, mcp_artefact = _benchmark(
                    out_dir, f"mcp-{n}w-r{round_no}", *over_http, scenario="mcp"
                )
                raw_wall = run_round(
                    stacks[4].env["CELERY_BROKER_URL"], f"raw{n}", jobs, SLEEP_MS, timeout=120
                )
                inline_wall, inline_artefact = _benchmark(
                    out_dir,
                    f"inline-{n}w-r{round_no}",
                    "--job-backend",
                    "celery",
                    "--celery-inline-worker",
                    "--celery-inline-worker-concurrency",
                    str(n),
                    "--jobs-per-iteration",
                    str(jobs),
                )
                if measured:
                    result.bridge[n].walls.append(wall)
                    result.bridge[n].artefacts.append(artefact)
                    result.mcp[n].walls.append(mcp_wall)
                    result.mcp[n].artefacts.append(mcp_artefact)
                    result.raw[n].walls.append(raw_wall)
                    result.inline[n].walls.append(inline_wall)
                    result.inline[n].artefacts.append(inline_artefact)
    finally:
        for workers in raw.values():
            for worker in workers:
                worker.close()
    result.pair = write_pair(result, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    return result


def _threshold(config: pytest.Config) -> float:
    """The checklist's 3.5× in release mode. Quick mode's 8 × 100-job rounds on a shared 2-core
    machine gave lower bounds of 3.24–3.52 around point estimates of 3.50–3.77 (runs of
    2026-11-24), so quick mode gates at 3.0: it still catches a bridge that stops scaling."""
    given = config.getoption("scaling_threshold")
    if given is not None:
        return given
    return RELEASE_THRESHOLD if config.getoption("qualification_mode") == "release" else 3.0


def _summary(walls: list[float], jobs: int) -> dict[str, float | int]:
    """The artefact summary of a series of round wall times (as the CLI writes it)."""
    values = np.asarray(walls, dtype=float)
    return {
        "count": len(values),
        "mean": float(values.mean()),
        "min": float(values.min()),
        "max": float(values.max()),
        "p50": float(np.percentile(values, 50)),
        "p90": float(np.percentile(values, 90)),
        "p95": float(np.percentile(values, 95)),
        "stdev": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "throughput": float(jobs * len(values) / values.sum()),
    }


def write_pair(m: Measurements, stamp: str) -> dict[int, Path]:
    """The release's artefact pair: every measured bridge round of each configuration merged
    into one artefact (`<stamp>-scaling-1w.json`, `<stamp>-scaling-4w.json`)."""
    pair = {}
    for n, series in m.bridge.items():
        rounds = [json.loads(path.read_text()) for path in series.artefacts]
        merged = {
            **rounds[0],
            "label": f"scaling-{n}w",
            "workers": n,
            "iterations": len(rounds),
            "workload": m.workload(),
            "runs": [
                {**run, "iteration": index + 1}
                for index, artefact in enumerate(rounds)
                for run in artefact["runs"]
            ],
            "summary": _summary(series.walls, m.jobs),
            "startedAt": rounds[0].get("startedAt"),
            "finishedAt": rounds[-1].get("finishedAt"),
        }
        path = m.out_dir.parent / f"{stamp}-scaling-{n}w.json"
        path.write_text(json.dumps(merged, indent=2) + "\n")
        pair[n] = path
    return pair


def _record(
    evidence,
    m: Measurements,
    series: dict[int, Series],
    scaling: Scaling,
    threshold: float,
    tool: str = "sleep",
    **extra: Any,
) -> None:
    evidence.measure(
        **scaling.as_dict(),
        workload=m.workload(tool),
        cores=len(os.sched_getaffinity(0)),
        roundsW1=series[1].walls,
        roundsW4=series[4].walls,
        **extra,
    )
    evidence.threshold(ciLow=f">= {threshold}")
    for n in (1, 4):
        for artefact in series[n].artefacts:
            evidence.attach(artefact, f"{n}w-{artefact.parent.name}.json")
    evidence.attach_json("rounds.json", {"w1": series[1].walls, "w4": series[4].walls})


@pytest.mark.check(
    "scaling.bridge",
    section="3",
    title="Bridge end to end: 1 → 4 workers speedup (95% CI lower bound)",
)
def test_bridge_scaling(measurements, evidence, request):
    threshold = _threshold(request.config)
    bridge = speedup_ci(measurements.bridge[1].walls, measurements.bridge[4].walls)
    raw = speedup_ci(measurements.raw[1].walls, measurements.raw[4].walls)
    _record(
        evidence,
        measurements,
        measurements.bridge,
        bridge,
        threshold,
        rawCeleryRatio=round(bridge.speedup / raw.speedup, 3),
        targetSpeedup=BRIDGE_TARGET,
        targetRawRatio=RAW_RATIO_TARGET,
    )
    for n, path in measurements.pair.items():
        evidence.attach(path, f"scaling-{n}w.json")
    _assert_speedup("speedup", bridge, threshold)


def _assert_speedup(what: str, scaling: Scaling, threshold: float) -> None:
    assert scaling.ci_low >= threshold, (
        f"{what} {scaling.speedup:.2f}× (95% CI {scaling.ci_low:.2f}–{scaling.ci_high:.2f}) "
        f"below {threshold}×"
    )


@pytest.mark.check(
    "scaling.raw-celery",
    section="3",
    title="Plain Celery on the same machine: 1 → 4 workers (the reference)",
)
def test_raw_celery_scaling(measurements, evidence):
    raw = speedup_ci(measurements.raw[1].walls, measurements.raw[4].walls)
    _record(evidence, measurements, measurements.raw, raw, MACHINE_SCALES)
    assert raw.ci_low >= MACHINE_SCALES, (
        f"plain Celery reached only {raw.speedup:.2f}× here: this machine cannot show scaling"
    )


@pytest.mark.check(
    "scaling.inline",
    section="3",
    title="Inline worker, memory transport: 1 → 4 threads beats the checklist's 1.5×",
)
def test_inline_scaling(measurements, evidence):
    inline = speedup_ci(measurements.inline[1].walls, measurements.inline[4].walls)
    _record(
        evidence,
        measurements,
        measurements.inline,
        inline,
        CHECKLIST_INLINE_FIGURE,
        targetSpeedup=INLINE_TARGET,
        checklistFigure=CHECKLIST_INLINE_FIGURE,
    )
    assert inline.ci_low > CHECKLIST_INLINE_FIGURE, (
        f"inline path reached only {inline.speedup:.2f}× (checklist: {CHECKLIST_INLINE_FIGURE}×)"
    )


def _mean_runtime_ms(series: Series) -> float:
    """Mean job runtime (claim to finish, in the worker) over a series' artefacts, in ms."""
    means = [json.loads(path.read_text())["jobs"]["runtime"]["mean"] for path in series.artefacts]
    return 1000 * float(np.mean(means))


def mcp_hop(m: Measurements, n: int) -> dict[str, float]:
    """What the MCP hop costs per job with `n` workers: job runtime and round wall time of
    `demo.sleep` over MCP against the built-in `sleep`, from the same rounds."""
    builtin, mcp = _mean_runtime_ms(m.bridge[n]), _mean_runtime_ms(m.mcp[n])
    builtin_wall, mcp_wall = np.median(m.bridge[n].walls), np.median(m.mcp[n].walls)
    return {
        "builtinRuntimeMs": round(builtin, 3),
        "mcpRuntimeMs": round(mcp, 3),
        "runtimeOverheadMs": round(mcp - builtin, 3),
        "wallPerJobOverheadMs": round(1000 * float(mcp_wall - builtin_wall) / m.jobs, 3),
        "wallRatio": round(float(mcp_wall / builtin_wall), 3),
    }


@pytest.mark.check(
    "scaling.mcp",
    section="3",
    title="MCP tool (demo.sleep over stdio) beside the built-in: 1 → 4 workers and the hop's cost",
)
def test_mcp_scaling(measurements, evidence, request):
    threshold = _threshold(request.config)
    mcp = speedup_ci(measurements.mcp[1].walls, measurements.mcp[4].walls)
    builtin = speedup_ci(measurements.bridge[1].walls, measurements.bridge[4].walls)
    hop = {f"w{n}": mcp_hop(measurements, n) for n in (1, 4)}
    _record(
        evidence,
        measurements,
        measurements.mcp,
        mcp,
        threshold,
        tool=f"{MCP_TOOL} (stdio MCP)",
        builtinSpeedup=round(builtin.speedup, 3),
        speedupVsBuiltin=round(mcp.speedup / builtin.speedup, 3),
        mcpHop=hop,
    )
    evidence.threshold(runtimeOverheadMs=f"< {MCP_HOP_LIMIT_MS} (a session per job: ~380)")
    for series in measurements.mcp.values():
        for path in series.artefacts:
            tools = json.loads(path.read_text())["jobs"]["tools"]
            assert tools == {MCP_TOOL: measurements.jobs}, f"{path.name}: ran {tools}"
    worst = max(figures["runtimeOverheadMs"] for figures in hop.values())
    assert worst < MCP_HOP_LIMIT_MS, (
        f"the MCP hop adds {worst:.1f} ms per job (limit {MCP_HOP_LIMIT_MS}): sessions not reused?"
    )
    _assert_speedup("MCP speedup", mcp, threshold)
