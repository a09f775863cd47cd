"""§4 faults, layer by layer: every worker runs with the delivery guarantees the bridge relies on;
each recovery layer (broker redelivery, lease reaper + dispatcher) rescues a SIGKILLed job alone;
a worker paused past its lease cannot change the outcome of the job another worker took over.

Jobs go through the target's client, executions through its observer, kills and pauses through
its worker nodes. The workers' Celery settings are asked through the chaos adapter
(qualification/chaos/target.py), the one place that speaks Celery's remote control.
"""

from __future__ import annotations

from typing import Any

import pytest

from .chaos.target import Target as ChaosTarget
from .drivers import TERMINAL, Job, Target
from .stack.latch import Latch
from .stack.process import wait_until

pytestmark = pytest.mark.faults

VISIBILITY = 123  # seconds: a value no default has, so the check sees the configured one


# Celery's remote control over the broker, to the workers the driver started.
@pytest.mark.needs("boot", "configure", "kill-worker", "broker")
@pytest.mark.check(
    "faults.worker-conformance",
    section="4",
    title="Every worker runs with late acks, reject on worker lost, prefetch 1, JSON only and "
    "the configured visibility timeout",
)
def test_worker_conformance(target, evidence, worker_count):
    t = target(workers=worker_count, settings={"CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY)})
    settings = ChaosTarget(t).worker_settings()
    evidence.attach_json("workers.json", settings)
    seen = {
        node: {
            "answered": bool(found["conf"]) and bool(found["stats"]),
            "task_acks_late": (found["conf"] or {}).get("task_acks_late"),
            "task_reject_on_worker_lost": (found["conf"] or {}).get("task_reject_on_worker_lost"),
            "worker_prefetch_multiplier": (found["conf"] or {}).get("worker_prefetch_multiplier"),
            "prefetch_count": (found["stats"] or {}).get("prefetch_count"),
            "accept_content": (found["conf"] or {}).get("accept_content"),
            "task_serializer": (found["conf"] or {}).get("task_serializer"),
            "result_serializer": (found["conf"] or {}).get("result_serializer"),
            "visibility_timeout": ((found["conf"] or {}).get("broker_transport_options") or {}).get(
                "visibility_timeout"
            ),
        }
        for node, found in settings.items()
    }
    evidence.measure(workers=seen)
    want = {
        "answered": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "prefetch_count": 1,
        "accept_content": ["json"],
        "task_serializer": "json",
        "result_serializer": "json",
        "visibility_timeout": VISIBILITY,
    }
    evidence.expect("workersAsked", len(seen), "==", worker_count)
    for name, value in want.items():
        evidence.expect(name, sorted({repr(w[name]) for w in seen.values()}), "==", [repr(value)])


def _held(t: Target) -> tuple[str, Latch, Any]:
    """A `latch` job held inside a worker: its id, the latch and the holder (a worker node)."""
    latch = t.latch()
    job_id = t.client.submit_ok("latch", latch.arguments())
    hold = latch.wait_held(job_id, t.deadlines.jobs())
    worker = next((w for w in t.nodes.workers if w.pid == hold["pid"]), None)
    assert worker is not None, f"no worker has pid {hold['pid']} (the latch's holder)"
    return job_id, latch, worker


def _read(t: Target, job_id: str) -> Job:
    """The job as the client reads it now ({} when the read failed)."""
    return t.client.get(job_id).job or Job()


def _terminal(t: Target, job_id: str, timeout: float) -> Job:
    """The job once terminal; TimeoutError after `timeout` (the layer did not rescue it)."""

    def ended() -> Job | None:
        job = _read(t, job_id)
        return job if job.get("status") in TERMINAL else None

    return wait_until(ended, timeout, interval=0.2, what=f"job {job_id} to end")


def _rescued_alone(t: Target, evidence, deadline: float) -> None:
    """SIGKILL the worker inside a job; the job must run again elsewhere and succeed in time."""
    job_id, latch, victim = _held(t)
    victim.kill()
    latch.release()
    evidence.measure(deadlineSeconds=round(deadline, 1))
    try:
        job = _terminal(t, job_id, deadline)
    except TimeoutError:
        job = _read(t, job_id)
    runs = t.observer.executions(job_id)
    evidence.attach_json("executions.json", runs)
    evidence.expect("status", job.get("status"), "==", "succeeded")
    evidence.expect("attempts", job.get("attempts"), "==", 2)
    evidence.expect("outcomes", [run["outcome"] for run in runs], "==", ["lost", "succeeded"])
    evidence.expect("killedAttemptWorker", runs[0]["worker"], "==", victim.node)


@pytest.mark.needs("boot", "configure", "latch", "kill-worker", "executions")
@pytest.mark.check(
    "faults.lease-only",
    section="4",
    title="Lease reaper + dispatcher alone rescue a SIGKILLed job (no broker redelivery in time)",
)
def test_lease_layer_alone(target, evidence, worker_count):
    # The visibility timeout keeps its default (an hour): the killed worker's message cannot
    # come back within the check, so only the reaper and the dispatcher can rescue the job.
    t = target(workers=worker_count, settings={"CELERY_VISIBILITY_TIMEOUT": None})
    deadline = t.deadlines.lost_attempt()
    evidence.measure(visibilityTimeoutSeconds=t.deadlines.setting("CELERY_VISIBILITY_TIMEOUT"))
    evidence.expect("deadlineBelowRedelivery", deadline, "<", t.deadlines.redelivery)
    _rescued_alone(t, evidence, deadline)


@pytest.mark.needs("boot", "configure", "latch", "kill-worker", "executions")
@pytest.mark.check(
    "faults.redelivery-only",
    section="4",
    title="Broker redelivery alone rescues a SIGKILLed job (the dispatcher never ticks in time)",
)
def test_redelivery_layer_alone(target, evidence, worker_count):
    # The dispatcher ticks once at start, then not for an hour: no reaping, no re-publish. Only
    # the killed worker's unacknowledged message, back after the visibility timeout, can rescue
    # the job: its claim takes over the expired lease. The visibility timeout is five leases,
    # so the message never comes back while the dead worker's lease still holds.
    settings = {"CELERY_VISIBILITY_TIMEOUT": "10", "DISPATCH_INTERVAL_SECONDS": "3600"}
    t = target(workers=worker_count, settings=settings)
    deadline = t.deadlines.redelivered_attempt()
    evidence.measure(dispatchIntervalSeconds=t.deadlines.dispatch)
    evidence.expect("deadlineBelowDispatchTick", deadline, "<", t.deadlines.dispatch)
    _rescued_alone(t, evidence, deadline)


@pytest.mark.needs("boot", "latch", "kill-worker", "executions")
@pytest.mark.check(
    "faults.fencing",
    section="4",
    title="A worker paused past its lease cannot change the outcome of the job taken over "
    "by another (the attempt is the fencing token)",
)
def test_zombie_worker_is_fenced(target, evidence, worker_count):
    t = target(workers=worker_count)
    job_id, latch, zombie = _held(t)
    zombie.pause()
    try:
        # The lease runs out, the job is taken over: attempt 2 is inside the tool elsewhere.
        takeover = latch.wait_held(job_id, t.deadlines.lost_attempt(), holds=2)
        during = _read(t, job_id)
    finally:
        zombie.resume()
    # The zombie wakes while attempt 2 still holds: its lease renewal is refused, its tool is
    # told to stop, and it tries to record its attempt's end. Wait until its task returned.
    marker = f"'jobId': '{job_id}'"
    wait_until(
        lambda: marker in zombie.logs(),
        t.deadlines.cancel_noticed(),
        what="the paused worker's attempt to end",
    )
    line = next(x for x in zombie.logs().splitlines() if marker in x)
    after_zombie = _read(t, job_id)
    latch.release()
    job = _terminal(t, job_id, t.deadlines.jobs())
    runs = t.observer.executions(job_id)
    evidence.attach_json("executions.json", runs)
    evidence.attach_json("latch-holds.json", latch.holders())
    evidence.attach_text("zombie-task.txt", line + "\n")
    evidence.expect("takeoverPid", takeover["pid"], "!=", zombie.pid)
    evidence.expect(
        "statusDuringTakeover", [during.get("status"), during.get("attempts")], "==", ["running", 2]
    )
    evidence.expect("zombieSawItsJobStop", "'status': 'cancelled'" in line, "==", True)
    evidence.expect(
        "statusAfterZombie",
        [after_zombie.get("status"), after_zombie.get("attempts")],
        "==",
        ["running", 2],
    )
    evidence.expect("status", job.get("status"), "==", "succeeded")
    evidence.expect("attempts", job.get("attempts"), "==", 2)
    evidence.expect("outcomes", [run["outcome"] for run in runs], "==", ["lost", "succeeded"])
