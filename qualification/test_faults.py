"""§4 restarts and faults: every accepted job reaches a terminal state, none runs twice after
success, none is lost — with real signals against real processes."""

from __future__ import annotations

import secrets
import signal

import pytest

from .plugin import require_restartable, restartable_registry
from .stack.bridge import BridgeStack, WorkerProcess, broker_drained, queue_length
from .stack.latch import Latch
from .stack.process import wait_until

pytestmark = pytest.mark.faults


def _worker_holding(bridge: BridgeStack, hold: dict) -> WorkerProcess:
    """The worker process the latch tool reported holding from (solo pool: the worker's pid)."""
    worker = next((w for w in bridge.workers if w.pid == hold["pid"]), None)
    assert worker is not None, f"no worker process has pid {hold['pid']} (the latch's holder)"
    return worker


def _hold(bridge: BridgeStack) -> tuple[str, Latch, WorkerProcess]:
    """Submit a `latch` job and wait until a worker is inside the tool: the job is in flight,
    and stays so until the check releases the latch."""
    latch = bridge.latch()
    job_id = bridge.submit_ok("latch", latch.arguments())
    hold = latch.wait_held(job_id, bridge.deadlines.jobs())
    return job_id, latch, _worker_holding(bridge, hold)


def _wait_drained(bridge: BridgeStack) -> None:
    """Wait until the broker has nothing left to deliver (a dead worker's message included): no
    execution can happen after that."""
    wait_until(lambda: broker_drained(bridge), bridge.deadlines.drain(), what="the broker to drain")


def _final_state(bridge: BridgeStack, job_id: str, timeout: float) -> tuple[dict, list[dict]]:
    """The job once terminal and the broker drained (so no execution can follow), and its
    executions."""
    job = bridge.wait_terminal([job_id], timeout=timeout)[job_id]
    _wait_drained(bridge)
    return job, bridge.executions(job_id)


def _assert_each_ran_once(
    bridge: BridgeStack, job_ids: list[str], evidence, timeout: float | None = None
) -> None:
    """Wait for the jobs to finish; record and assert each succeeded, executed exactly once."""
    jobs = bridge.wait_terminal(job_ids, timeout=timeout)
    statuses = sorted({job["status"] for job in jobs.values()})
    executions = sorted({len(bridge.executions(job_id)) for job_id in jobs})
    evidence.measure(jobs=len(jobs))
    evidence.expect("statuses", statuses, "==", ["succeeded"])
    evidence.expect("executionsPerJob", executions, "==", [1])


@pytest.mark.check(
    "faults.worker-sigkill",
    section="4",
    title="A worker SIGKILLed mid-job: the job re-runs elsewhere and succeeds",
)
def test_worker_sigkill_mid_job(stack, evidence, worker_count):
    bridge = stack(workers=worker_count, env={"CELERY_VISIBILITY_TIMEOUT": "5"})
    job_id, latch, victim = _hold(bridge)
    victim.kill()  # inside the tool: the latch is released only after the kill
    latch.release()

    # The killed attempt's message comes back after the visibility timeout: wait until the
    # broker has nothing left to deliver, then no further execution may have happened.
    job, runs = _final_state(bridge, job_id, bridge.deadlines.lost_attempt())
    evidence.attach_json("executions.json", runs)
    evidence.attach_json("latch-holds.json", latch.holders())
    evidence.expect("killedAttemptWorker", runs[0]["worker"], "==", victim.node)
    evidence.expect("status", job["status"], "==", "succeeded")
    evidence.expect("attempts", job["attempts"], "==", 2)
    evidence.expect("outcomes", [run["outcome"] for run in runs], "==", ["lost", "succeeded"])
    evidence.expect("rerunWorker", runs[1]["worker"], "!=", victim.node)


@pytest.mark.check(
    "faults.worker-sigterm",
    section="4",
    title="A worker sent SIGTERM finishes its in-flight job before it exits",
)
def test_worker_sigterm_finishes_in_flight(stack, evidence):
    bridge = stack(workers=1)
    job_id, latch, worker = _hold(bridge)
    before = bridge.job(job_id)
    worker.signal(signal.SIGTERM)
    # Celery says so once its handler ran; the job still holds: the signal landed mid-job.
    wait_until(
        lambda: "shutdown (MainProcess)" in worker.tail() or not worker.running,
        bridge.deadlines.shutdown(),
        what="the worker to handle SIGTERM",
    )
    during = bridge.job(job_id)
    alive = worker.running
    latch.release()
    exit_code = worker.wait_exit(bridge.deadlines.shutdown(bridge.deadlines.jobs()))
    job = bridge.job(job_id)
    evidence.attach_json("job.json", {"before": before, "during": during, "after": job})
    evidence.expect("statusWhenSignalled", before["status"], "==", "running")
    evidence.expect("workerWaitsForItsJob", alive, "==", True)
    evidence.expect("statusAfterSignal", during["status"], "==", "running")
    evidence.expect("exitCode", exit_code, "==", 0)
    evidence.expect("status", job["status"], "==", "succeeded")
    evidence.expect("attempts", job["attempts"], "==", 1)


@pytest.mark.check(
    "faults.api-restart",
    section="4",
    title="API restart with jobs queued and running: all finish, each once",
)
def test_api_restart_with_jobs_in_flight(stack, evidence):
    bridge = stack(workers=1)
    first, latch, _ = _hold(bridge)
    queued = [bridge.submit_ok("sleep", {"ms": 50}) for _ in range(5)]
    statuses = [bridge.job(job_id)["status"] for job_id in (first, *queued)]
    evidence.expect("statusesAtRestart", statuses, "==", ["running"] + ["queued"] * 5)
    bridge.api.restart()
    latch.release()
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
    wait_until(
        lambda: queue_length(bridge) == 10,
        bridge.deadlines.jobs(len(ids)),
        what="10 messages on the queue",
    )
    redis.restart(kill=True)
    evidence.expect("queuedAfterRestart", queue_length(bridge), "==", len(ids))
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
    evidence.measure(undispatched=len(undispatched))
    evidence.expect("acceptedWhileDown", [r.status_code for r in responses], "==", [202] * 5)
    evidence.expect("readyzWhileDown", ready.status_code, "==", 503)
    evidence.expect("readyzBrokerOk", ready.json()["checks"]["broker"]["ok"], "==", False)
    redis.start()
    ids = [r.json()["id"] for r in responses]
    _assert_each_ran_once(bridge, ids, evidence, timeout=bridge.deadlines.broker_return(len(ids)))


def _deliveries(bridge: BridgeStack) -> int:
    """Job messages the workers have received so far (Celery logs each delivery at INFO)."""
    return sum(
        line.count("] received")
        for worker in bridge.workers
        for line in worker.tail(lines=10_000).splitlines()
        if "mcp_bridge.run_job[" in line
    )


@pytest.mark.check(
    "faults.visibility-timeout",
    section="4",
    title="A job outliving the visibility timeout is not run twice",
)
def test_job_outliving_visibility_timeout_runs_once(stack, evidence, worker_count):
    visibility = 2
    bridge = stack(workers=worker_count, env={"CELERY_VISIBILITY_TIMEOUT": str(visibility)})
    job_id, latch, _ = _hold(bridge)
    # The job holds until its message came back past the visibility timeout and was delivered
    # again: the redelivery certainly met the running job.
    wait_until(
        lambda: _deliveries(bridge) >= 2,
        bridge.deadlines.drain(),
        what=f"the job's message to be redelivered after {visibility} s",
    )
    latch.release()
    job, runs = _final_state(bridge, job_id, bridge.deadlines.jobs())
    evidence.measure(visibilityTimeoutSeconds=visibility, deliveries=_deliveries(bridge))
    evidence.expect("executions", len(runs), "==", 1)
    evidence.expect("status", job["status"], "==", "succeeded")


@pytest.mark.check(
    "faults.cancel-durable",
    section="4",
    title="A cancel recorded while no worker is up holds once workers return",
)
def test_cancel_without_workers_holds(stack, evidence):
    bridge = stack(workers=0)
    doomed = bridge.submit_ok("sleep", {"ms": 100})
    cancel = bridge.http.post(f"/v1/jobs/{doomed}/cancel", headers=bridge.headers())
    evidence.expect(
        "cancelResponse",
        [cancel.status_code, cancel.json().get("status")],
        "==",
        [200, "cancelled"],
    )
    sentinel = bridge.submit_ok("echo", {"message": "after"})
    bridge.add_worker()
    bridge.wait_terminal([sentinel])  # FIFO: the doomed message was taken first
    _wait_drained(bridge)
    job = bridge.job(doomed)
    runs = bridge.executions(doomed)
    evidence.expect("status", job["status"], "==", "cancelled")
    evidence.expect("executions", len(runs), "==", 0)


@pytest.mark.check(
    "faults.cancel-running",
    section="4",
    title="A cancel of a running job stops its tool: the job ends cancelled, once, unreleased",
)
def test_cancel_running_job_stops_it(stack, evidence):
    bridge = stack(workers=1)
    job_id, latch, _ = _hold(bridge)  # in the tool, held until released or cancelled
    cancel = bridge.http.post(f"/v1/jobs/{job_id}/cancel", headers=bridge.headers())
    body = cancel.json()
    evidence.expect(
        "cancelResponse",
        [cancel.status_code, body.get("status"), body.get("cancelRequested")],
        "in",
        [[200, "running", True], [200, "cancelled", True]],
    )
    # The latch is never released: only the cancel can end the tool before its bound.
    job, runs = _final_state(bridge, job_id, bridge.deadlines.cancel_noticed())
    evidence.attach_json("executions.json", runs)
    evidence.expect("status", job["status"], "==", "cancelled")
    evidence.expect("outcomes", [run["outcome"] for run in runs], "==", ["cancelled"])
    evidence.expect("latchReleased", latch.released, "==", False)


@pytest.mark.check(
    "faults.registry-restart",
    section="4",
    title="The PostgreSQL registry crashed and restarted with jobs running and queued: none lost",
)
def test_registry_restart_with_jobs_in_flight(stack, evidence, request):
    # Under --registry sqlite too: a database of this check's own on a server the suite runs.
    server = restartable_registry(request.config)
    url = server.create_database(f"restart_{secrets.token_hex(4)}")
    # A lease longer than the outage: this check is about the registry coming back, not about
    # a lease lost meanwhile (faults.fencing covers that).
    bridge = stack(workers=1, env={"JOB_LEASE_SECONDS": "30", "JOB_REGISTRY_URL": url})
    first, latch, _ = _hold(bridge)
    queued = [bridge.submit_ok("sleep", {"ms": 50}) for _ in range(5)]
    statuses = [bridge.job(job_id)["status"] for job_id in (first, *queued)]
    evidence.expect("statusesAtCrash", statuses, "==", ["running"] + ["queued"] * 5)
    server.kill()  # pg_ctl stop -m immediate: a crash (WAL recovery on start)
    down = bridge.http.get("/readyz")  # answers once the API gave up waiting for a connection
    evidence.expect("readyzWhileDown", down.status_code, "==", 503)
    evidence.expect(
        "readyzRegistryOkWhileDown", down.json()["checks"]["registry"]["ok"], "==", False
    )
    server.start()
    latch.release()
    _assert_each_ran_once(bridge, [first, *queued], evidence)
    ready = bridge.http.get("/readyz")
    evidence.expect("readyzAfterRestart", ready.status_code, "==", 200)
