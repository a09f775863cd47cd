"""§4 faults, Jepsen-style: a seeded nemesis over a live workload, and a checker that counts every
acknowledged job (qualification/chaos/). Quick by default; `--chaos-duration 600` is the soak."""

from __future__ import annotations

import secrets
import shlex
import statistics
import time
from collections import Counter

import pytest

from .chaos.checker import KINDS, Checker, epoch
from .chaos.generator import Generator, Workload
from .chaos.history import History
from .chaos.nemesis import Nemesis, plan_dump, schedule
from .chaos.target import Target
from .chaos.timeline import svg
from .plugin import progress

pytestmark = pytest.mark.faults
#: What the chaos run asks of a target (qualification/chaos/target.py is its one door): its own
#: bridge of three workers with short recovery settings; tokens for the workload's subjects and an
#: administrator's reads; worker kills and pauses, broker kills and outages, API restarts; each
#: job's executions, the jobs the registry holds and the broker's backlog; latched jobs.
NEEDS = (
    "boot", "configure", "mint-tokens", "admin-token", "kill-worker", "restart-broker",
    "restart-api", "executions", "registry", "broker", "latch",
)  # fmt: skip

#: The quick run: about 300 jobs and 10 faults, within 90 s on a 2-core machine.
QUICK_SECONDS = 32.0
QUICK_INTERVAL = 2.6
QUICK_RATE = 11.5  # client operations per second
WORKERS = 3
#: Short redelivery and re-publish periods, so a job stranded by a fault is rescued within the run.
CHAOS_ENV = {"CELERY_VISIBILITY_TIMEOUT": "10", "JOB_REDISPATCH_SECONDS": "10"}


def _percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _reproduce(request: pytest.FixtureRequest, seed: int, duration: float, interval: float) -> str:
    config = request.config
    args = ["pytest", request.node.nodeid, f"--chaos-seed={seed}"]
    if config.getoption("chaos_duration") is not None:
        args.append(f"--chaos-duration={duration:g}")
    if config.getoption("chaos_interval") is not None:
        args.append(f"--chaos-interval={interval:g}")
    if config.getoption("redis") != "auto":
        args.append(f"--redis={config.getoption('redis')}")
    return shlex.join(args)


@pytest.mark.check(
    "faults.chaos",
    section="4",
    title="Chaos: seeded faults over a live workload; every acknowledged job ends, once",
)
@pytest.mark.needs(*NEEDS)
def test_chaos(target, evidence, request):
    config = request.config
    seed = config.getoption("chaos_seed")
    seed = secrets.randbelow(1_000_000) if seed is None else seed
    duration = config.getoption("chaos_duration") or QUICK_SECONDS
    interval = config.getoption("chaos_interval") or QUICK_INTERVAL
    reproduce = _reproduce(request, seed, duration, interval)
    evidence.measure(seed=seed, workloadSeconds=duration, faultIntervalSeconds=interval)
    evidence.measure(workers=WORKERS, reproduce=reproduce)

    booting = time.time()
    chaos = Target(target(workers=WORKERS, settings=CHAOS_ENV))
    evidence.measure(stackStartSeconds=round(time.time() - booting, 1))
    history = History()
    plan = schedule(seed, duration, interval, WORKERS, chaos.deadlines.lease)
    evidence.attach_json("schedule.json", {"seed": seed, "faults": plan_dump(plan)})
    workload = Workload(seed=seed, rate=QUICK_RATE)
    generator = Generator(chaos, history, workload)
    nemesis = Nemesis(chaos, history, plan)
    progress(config, f"chaos: seed {seed}, {duration:g} s, {len(plan)} faults planned")

    started = time.time()
    try:
        generator.start()
        nemesis.start()
        # The workload runs its duration and until every planned fault has struck and healed
        # (a slow machine stretches the run, never thins the schedule).
        generator.stop.wait(max(0.0, started + duration - time.time()))
        nemesis.wait()
    finally:
        nemesis.finish()  # heals
        generator.finish()  # releases every latch
    ended = time.time()
    checker = Checker(chaos, history, generator.pairs)
    drained = checker.drain()
    checking = time.time()
    verdict = checker.check()
    evidence.measure(checkSeconds=round(time.time() - checking, 1))

    faults = history.faults
    by_kind = Counter(fault.kind for fault in faults)
    recovery: dict[str, dict[str, float]] = {}
    for kind in sorted(by_kind):
        times = [f.recovery for f in faults if f.kind == kind and f.recovery is not None]
        if times:
            recovery[kind] = {
                "p50": round(_percentile(times, 50), 3),
                "p99": round(_percentile(times, 99), 3),
                "max": round(max(times), 3),
            }
    finished = [
        t for job in verdict.final.values() if (t := epoch(job.get("finishedAt"))) is not None
    ]
    evidence.attach_text("history.jsonl", history.jsonl())
    evidence.attach_json("verdict.json", {"counts": verdict.counts, "anomalies": verdict.anomalies})
    evidence.attach_json("executions.json", verdict.executions)
    evidence.attach_text("timeline.svg", svg(started, ended + drained, finished, faults))
    evidence.measure(
        runSeconds=round(ended - started, 1),
        drainSeconds=round(drained, 1),
        jobs=verdict.counts["acknowledgedJobs"],
        operations=verdict.counts["operations"],
        responses=verdict.counts["responses"],
        finalStatuses=verdict.counts["finalStatuses"],
        faultsByKind=dict(sorted(by_kind.items())),
        faultsNotReached=len(nemesis.not_reached),
        skippedFaults=history.skipped,
        recoverySeconds=recovery,
        anomalies=verdict.by_kind(),
        brokerBacklogAfterDrain=verdict.counts["brokerBacklogAfterDrain"],
    )
    progress(
        config,
        f"chaos: {verdict.counts['acknowledgedJobs']} jobs, {len(faults)} faults "
        f"{dict(by_kind)}, anomalies {verdict.by_kind()}",
    )
    note = f"reproduce: {reproduce}"
    if verdict.anomalies:
        evidence.attach_text("anomalies.txt", f"{reproduce}\n{verdict.summary(limit=50)}\n")
        progress(config, f"chaos: FAILED — {verdict.summary()}\n  {note}")
    for kind in KINDS:
        evidence.expect(kind, verdict.by_kind()[kind], "==", 0, note=note)
    unrecovered = [f"{f.kind}@{f.target}: {f.note}" for f in faults if f.recovered is None]
    evidence.expect("faultsNotRecovered", unrecovered, "==", [], note=note)
    runnable = [p for p in plan if p.kind not in history.skipped]
    evidence.expect("faultsInjected", len(faults), "==", len(runnable), note=note)
