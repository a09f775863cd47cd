"""§4 faults, layer by layer: every worker runs with the delivery guarantees the bridge relies on;
each recovery layer (broker redelivery, lease reaper + dispatcher) rescues a SIGKILLed job alone;
a worker paused past its lease cannot change the outcome of the job another worker took over.

Checks speak through the chaos target adapter (qualification/chaos/target.py) only.
"""

from __future__ import annotations

import pytest

from .chaos.target import TERMINAL, Target
from .stack.latch import Latch
from .stack.process import wait_until

pytestmark = pytest.mark.faults

VISIBILITY = 123  # seconds: a value no default has, so the check sees the configured one


@pytest.mark.check(
    "faults.worker-conformance",
    section="4",
    title="Every worker runs with late acks, reject on worker lost, prefetch 1, JSON only and "
    "the configured visibility timeout",
)
def test_worker_conformance(stack, evidence, worker_count):
    target = Target(stack(workers=worker_count, env={"CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY)}))
    settings = target.worker_settings()
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


def _held(target: Target) -> tuple[str, Latch, int]:
    """A `latch` job held inside a worker: its id, the latch and the holder's slot."""
    latch = target.latch()
    client = target.client()
    try:
        reply = client.submit("latch", latch.arguments(), None, "recovery")
    finally:
        client.close()
    assert reply.code == 202, f"submit answered {reply.code}: {reply.body}"
    assert reply.job_id is not None
    hold = latch.wait_held(reply.job_id, target.deadlines.jobs())
    slot = target.worker_slot(hold["pid"])
    assert slot is not None, f"no worker has pid {hold['pid']} (the latch's holder)"
    return reply.job_id, latch, slot


def _terminal(target: Target, job_id: str, timeout: float) -> dict:
    """The job once terminal; TimeoutError after `timeout` (the layer did not rescue it)."""

    def ended() -> dict | None:
        reply = target.job(job_id)
        return reply.body if reply.job_status in TERMINAL else None

    return wait_until(ended, timeout, interval=0.2, what=f"job {job_id} to end")


def _rescued_alone(target: Target, evidence, deadline: float) -> None:
    """SIGKILL the worker inside a job; the job must run again elsewhere and succeed in time."""
    job_id, latch, slot = _held(target)
    victim = target.workers[slot]
    target.kill_worker(slot)
    latch.release()
    evidence.measure(deadlineSeconds=round(deadline, 1))
    try:
        job = _terminal(target, job_id, deadline)
    except TimeoutError:
        job = target.job(job_id).body or {}
    runs = target.executions(job_id)
    evidence.attach_json("executions.json", runs)
    evidence.expect("status", job.get("status"), "==", "succeeded")
    evidence.expect("attempts", job.get("attempts"), "==", 2)
    evidence.expect("outcomes", [run["outcome"] for run in runs], "==", ["lost", "succeeded"])
    evidence.expect("killedAttemptWorker", runs[0]["worker"], "==", victim)


@pytest.mark.check(
    "faults.lease-only",
    section="4",
    title="Lease reaper + dispatcher alone rescue a SIGKILLed job (no broker redelivery in time)",
)
def test_lease_layer_alone(stack, evidence, worker_count):
    # The visibility timeout keeps its default (an hour): the killed worker's message cannot
    # come back within the check, so only the reaper and the dispatcher can rescue the job.
    target = Target(stack(workers=worker_count, env={"CELERY_VISIBILITY_TIMEOUT": None}))
    deadline = target.deadlines.lost_attempt()
    evidence.measure(visibilityTimeoutSeconds=target.deadlines.setting("CELERY_VISIBILITY_TIMEOUT"))
    evidence.expect("deadlineBelowRedelivery", deadline, "<", target.deadlines.redelivery)
    _rescued_alone(target, evidence, deadline)


@pytest.mark.check(
    "faults.redelivery-only",
    section="4",
    title="Broker redelivery alone rescues a SIGKILLed job (the dispatcher never ticks in time)",
)
def test_redelivery_layer_alone(stack, evidence, worker_count):
    # The dispatcher ticks once at start, then not for an hour: no reaping, no re-publish. Only
    # the killed worker's unacknowledged message, back after the visibility timeout, can rescue
    # the job: its claim takes over the expired lease. The visibility timeout is five leases,
    # so the message never comes back while the dead worker's lease still holds.
    env = {"CELERY_VISIBILITY_TIMEOUT": "10", "DISPATCH_INTERVAL_SECONDS": "3600"}
    target = Target(stack(workers=worker_count, env=env))
    deadline = target.deadlines.redelivered_attempt()
    evidence.measure(dispatchIntervalSeconds=target.deadlines.dispatch)
    evidence.expect("deadlineBelowDispatchTick", deadline, "<", target.deadlines.dispatch)
    _rescued_alone(target, evidence, deadline)


@pytest.mark.check(
    "faults.fencing",
    section="4",
    title="A worker paused past its lease cannot change the outcome of the job taken over "
    "by another (the attempt is the fencing token)",
)
def test_zombie_worker_is_fenced(stack, evidence, worker_count):
    target = Target(stack(workers=worker_count))
    job_id, latch, zombie = _held(target)
    target.pause_worker(zombie)
    try:
        # The lease runs out, the job is taken over: attempt 2 is inside the tool elsewhere.
        takeover = latch.wait_held(job_id, target.deadlines.lost_attempt(), holds=2)
        during = target.job(job_id).body or {}
    finally:
        target.resume_worker(zombie)
    # The zombie wakes while attempt 2 still holds: its lease renewal is refused, its tool is
    # told to stop, and it tries to record its attempt's end. Wait until its task returned.
    marker = f"'jobId': '{job_id}'"
    wait_until(
        lambda: marker in target.worker_log(zombie),
        target.deadlines.cancel_noticed(),
        what="the paused worker's attempt to end",
    )
    line = next(x for x in target.worker_log(zombie).splitlines() if marker in x)
    after_zombie = target.job(job_id).body or {}
    latch.release()
    job = _terminal(target, job_id, target.deadlines.jobs())
    runs = target.executions(job_id)
    evidence.attach_json("executions.json", runs)
    evidence.attach_json("latch-holds.json", latch.holders())
    evidence.attach_text("zombie-task.txt", line + "\n")
    evidence.expect("takeoverPid", takeover["pid"], "!=", target.worker_pid(zombie))
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
