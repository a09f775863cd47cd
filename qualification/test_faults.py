"""§4 restarts and faults: every accepted job reaches a terminal state, none runs twice after
success, none is lost — with real signals against real processes."""

from __future__ import annotations

import pytest

from qualification.plugin import require_restartable
from qualification.stack.bridge import BridgeStack, broker_drained, queue_length
from qualification.stack.process import wait_until

pytestmark = pytest.mark.faults


def _running_on(stack: BridgeStack, job_id: str) -> str:
    """The node name of the worker running the job's current attempt (from the registry file)."""
    job = stack.wait_status(job_id, "running", timeout=30)
    return stack.executions(job_id)[job["attempts"] - 1]["worker"]


def _wait_drained(stack: BridgeStack, timeout: float) -> None:
    """Wait until the broker has nothing left to deliver: no execution can happen after that."""
    wait_until(lambda: broker_drained(stack), timeout, what="the broker to drain")


def _final_state(stack: BridgeStack, job_id: str, drain_timeout: float) -> tuple[dict, list[dict]]:
    """The job once terminal and the broker drained (so no execution can follow), and its
    executions."""
    job = stack.wait_terminal([job_id], timeout=60)[job_id]
    _wait_drained(stack, drain_timeout)
    return job, stack.executions(job_id)


def _assert_each_ran_once(
    stack: BridgeStack, job_ids: list[str], evidence, timeout: float = 60
) -> None:
    """Wait for the jobs to finish; record and assert each succeeded, executed exactly once."""
    jobs = stack.wait_terminal(job_ids, timeout=timeout)
    statuses = {job["status"] for job in jobs.values()}
    executions = {job_id: len(stack.executions(job_id)) for job_id in jobs}
    evidence.measure(
        jobs=len(jobs), statuses=sorted(statuses), maxExecutions=max(executions.values())
    )
    evidence.threshold(statuses="all succeeded", maxExecutions="== 1")
    assert statuses == {"succeeded"}
    assert set(executions.values()) == {1}, executions


@pytest.mark.check(
    "faults.worker-sigkill",
    section="4",
    title="A worker SIGKILLed mid-job: the job re-runs elsewhere and succeeds",
)
def test_worker_sigkill_mid_job(stack, evidence, worker_count):
    bridge = stack(workers=worker_count, env={"CELERY_VISIBILITY_TIMEOUT": "5"})
    job_id = bridge.submit_ok("sleep", {"ms": 2500})
    victim_node = _running_on(bridge, job_id)
    victim = next(w for w in bridge.workers if w.node == victim_node)
    victim.kill()

    # The killed attempt's message comes back after the visibility timeout: wait until the
    # broker has nothing left to deliver, then no further execution may have happened.
    job, runs = _final_state(bridge, job_id, drain_timeout=60)
    evidence.measure(
        status=job["status"], attempts=job["attempts"], outcomes=[run["outcome"] for run in runs]
    )
    evidence.threshold(status="succeeded", attempts="== 2", outcomes="[lost, succeeded]")
    evidence.attach_json("executions.json", runs)
    assert job["status"] == "succeeded"
    assert job["attempts"] == 2
    assert [run["outcome"] for run in runs] == ["lost", "succeeded"]
    assert runs[1]["worker"] != victim_node


@pytest.mark.check(
    "faults.worker-sigterm",
    section="4",
    title="A worker sent SIGTERM finishes its in-flight job before it exits",
)
def test_worker_sigterm_finishes_in_flight(stack, evidence):
    bridge = stack(workers=1)
    job_id = bridge.submit_ok("sleep", {"ms": 1500})
    _running_on(bridge, job_id)
    worker = bridge.workers[0]
    exit_code = worker.stop(timeout=30)
    job = bridge.job(job_id)
    evidence.measure(exitCode=exit_code, status=job["status"], attempts=job["attempts"])
    evidence.threshold(exitCode="== 0", status="succeeded", attempts="== 1")
    assert exit_code == 0
    assert job["status"] == "succeeded" and job["attempts"] == 1


@pytest.mark.check(
    "faults.api-restart",
    section="4",
    title="API restart with jobs queued and running: all finish, each once",
)
def test_api_restart_with_jobs_in_flight(stack, evidence):
    bridge = stack(workers=1)
    first = bridge.submit_ok("sleep", {"ms": 1500})
    queued = [bridge.submit_ok("sleep", {"ms": 50}) for _ in range(5)]
    _running_on(bridge, first)
    bridge.api.restart()
    _assert_each_ran_once(bridge, [first, *queued], evidence)


@pytest.mark.check(
    "faults.redis-restart",
    section="4",
    title="Redis SIGKILLed and restarted with jobs still queued: none lost",
)
def test_redis_restart_with_queued_jobs(stack, evidence):
    bridge = stack(workers=0)
    redis = require_restartable(bridge.redis)
    ids = [bridge.submit_ok("echo", {"message": str(i)}) for i in range(10)]
    wait_until(lambda: queue_length(bridge) == 10, 10, what="10 messages on the queue")
    redis.restart(kill=True)
    evidence.measure(queuedAfterRestart=queue_length(bridge))
    bridge.add_worker()
    _assert_each_ran_once(bridge, ids, evidence)


@pytest.mark.check(
    "faults.broker-down",
    section="4",
    title="Broker down while jobs are submitted: accepted, then run once it is back",
)
def test_broker_down_accepts_then_runs(stack, evidence):
    bridge = stack(workers=1)
    redis = require_restartable(bridge.redis)
    redis.stop()
    responses = [bridge.submit("echo", {"message": str(i)}) for i in range(5)]
    ready = bridge.http.get("/readyz")
    undispatched = [r for r in bridge.registry_rows() if r["dispatched_at"] is None]
    evidence.measure(
        acceptedWhileDown=[r.status_code for r in responses],
        readyzWhileDown=ready.status_code,
        undispatched=len(undispatched),
    )
    evidence.threshold(acceptedWhileDown="all 202", readyzWhileDown="== 503")
    assert [r.status_code for r in responses] == [202] * 5
    assert ready.status_code == 503 and ready.json()["checks"]["broker"]["ok"] is False
    redis.start()
    _assert_each_ran_once(bridge, [r.json()["id"] for r in responses], evidence, timeout=90)


@pytest.mark.check(
    "faults.visibility-timeout",
    section="4",
    title="A job outliving the visibility timeout is not run twice",
)
def test_job_outliving_visibility_timeout_runs_once(stack, evidence, worker_count):
    visibility, seconds = 2, 6
    bridge = stack(workers=worker_count, env={"CELERY_VISIBILITY_TIMEOUT": str(visibility)})
    job_id = bridge.submit_ok("sleep", {"ms": seconds * 1000})
    job, runs = _final_state(bridge, job_id, drain_timeout=30)
    evidence.measure(
        visibilityTimeoutSeconds=visibility,
        jobSeconds=seconds,
        executions=len(runs),
        status=job["status"],
    )
    evidence.threshold(executions="== 1", status="succeeded")
    assert job["status"] == "succeeded"
    assert len(runs) == 1


@pytest.mark.check(
    "faults.cancel-durable",
    section="4",
    title="A cancel recorded while no worker is up holds once workers return",
)
def test_cancel_without_workers_holds(stack, evidence):
    bridge = stack(workers=0)
    doomed = bridge.submit_ok("sleep", {"ms": 100})
    cancel = bridge.http.post(f"/v1/jobs/{doomed}/cancel", headers=bridge.headers())
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    sentinel = bridge.submit_ok("echo", {"message": "after"})
    bridge.add_worker()
    bridge.wait_terminal([sentinel], timeout=60)  # FIFO: the doomed message was taken first
    _wait_drained(bridge, 30)
    job = bridge.job(doomed)
    runs = bridge.executions(doomed)
    evidence.measure(status=job["status"], executions=len(runs))
    evidence.threshold(status="cancelled", executions="== 0")
    assert job["status"] == "cancelled" and runs == []
