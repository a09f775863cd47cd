"""§4 restarts and faults: every accepted job reaches a terminal state, none runs twice after
success, none is lost — with real signals against real processes.

Jobs go through the target's client; executions, the registry and the broker's queue through its
observer; signals and restarts through its nodes (the processes the driver started).
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from .crosscheck import observer_agrees
from .drivers import Job, Reply, Target
from .plugin import require_restartable, restartable_registry
from .stack.latch import Latch
from .stack.process import wait_until

pytestmark = pytest.mark.faults


def _hold(t: Target) -> tuple[str, Latch, dict[str, Any]]:
    """Submit a `latch` job and wait until a worker is inside the tool: the job is in flight,
    and stays so until the check releases the latch. Its id, the latch and the hold."""
    latch = t.latch()
    job_id = t.client.submit_ok("latch", latch.arguments())
    return job_id, latch, latch.wait_held(job_id, t.deadlines.jobs())


def _worker_holding(t: Target, hold: dict[str, Any]) -> Any:
    """The worker node the latch tool reported holding from (solo pool: the worker's pid)."""
    worker = next((w for w in t.nodes.workers if w.pid == hold["pid"]), None)
    assert worker is not None, f"no worker process has pid {hold['pid']} (the latch's holder)"
    return worker


def _wait_drained(t: Target) -> None:
    """Wait until the broker has nothing left to deliver (a dead worker's message included): no
    execution can happen after that."""
    wait_until(t.observer.broker_drained, t.deadlines.drain(), what="the broker to drain")


def _final_state(t: Target, job_id: str, timeout: float) -> tuple[Job, list[dict]]:
    """The job once terminal and the broker drained (so no execution can follow), and its
    executions."""
    job = t.client.wait_terminal([job_id], timeout=timeout)[job_id]
    _wait_drained(t)
    return job, t.observer.executions(job_id)


def _assert_each_ran_once(
    t: Target, job_ids: list[str], evidence, timeout: float | None = None
) -> None:
    """Wait for the jobs to finish; record and assert each succeeded, executed exactly once."""
    jobs = t.client.wait_terminal(job_ids, timeout=timeout)
    statuses = sorted({job["status"] for job in jobs.values()})
    executions = sorted({len(t.observer.executions(job_id)) for job_id in jobs})
    evidence.measure(jobs=len(jobs))
    evidence.expect("statuses", statuses, "==", ["succeeded"])
    evidence.expect("executionsPerJob", executions, "==", [1])


def _component_up(reply: Reply, component: str) -> bool | None:
    """What a readiness answer says of one component (`broker`, `registry`)."""
    return reply.components.get(component)


@pytest.mark.needs("boot", "configure", "latch", "kill-worker", "executions", "broker")
@pytest.mark.check(
    "faults.worker-sigkill",
    section="4",
    title="A worker SIGKILLed mid-job: the job re-runs elsewhere and succeeds",
)
def test_worker_sigkill_mid_job(target, evidence, worker_count):
    t = target(workers=worker_count, settings={"CELERY_VISIBILITY_TIMEOUT": "5"})
    job_id, latch, hold = _hold(t)
    victim = _worker_holding(t, hold)
    victim.kill()  # inside the tool: the latch is released only after the kill
    latch.release()

    # The killed attempt's message comes back after the visibility timeout: wait until the
    # broker has nothing left to deliver, then no further execution may have happened.
    job, runs = _final_state(t, job_id, t.deadlines.lost_attempt())
    evidence.attach_json("executions.json", runs)
    evidence.attach_json("latch-holds.json", latch.holders())
    evidence.expect("killedAttemptWorker", runs[0]["worker"], "==", victim.node)
    evidence.expect("status", job["status"], "==", "succeeded")
    evidence.expect("attempts", job["attempts"], "==", 2)
    evidence.expect("outcomes", [run["outcome"] for run in runs], "==", ["lost", "succeeded"])
    evidence.expect("rerunWorker", runs[1]["worker"], "!=", victim.node)


@pytest.mark.needs("latch", "kill-worker")
@pytest.mark.check(
    "faults.worker-sigterm",
    section="4",
    title="A worker sent SIGTERM finishes its in-flight job before it exits",
)
def test_worker_sigterm_finishes_in_flight(target, evidence):
    t = target(workers=1)
    job_id, latch, hold = _hold(t)
    worker = _worker_holding(t, hold)
    before = t.client.job(job_id)
    with ThreadPoolExecutor(1) as pool:
        # SIGTERM, then wait for a clean exit: the worker must first finish the held job.
        exit_code = pool.submit(worker.stop, t.deadlines.shutdown(t.deadlines.jobs()))
        try:
            # Celery says so once its handler ran; the job still holds: the signal landed mid-job.
            wait_until(
                lambda: "shutdown (MainProcess)" in worker.logs() or not worker.running,
                t.deadlines.shutdown(),
                what="the worker to handle SIGTERM",
            )
            during = t.client.job(job_id)
            alive = worker.running
        finally:
            latch.release()  # a failed wait too: the worker can then exit, and the pool close
    job = t.client.job(job_id)
    evidence.attach_json("job.json", {"before": before, "during": during, "after": job})
    evidence.expect("statusWhenSignalled", before["status"], "==", "running")
    evidence.expect("workerWaitsForItsJob", alive, "==", True)
    evidence.expect("statusAfterSignal", during["status"], "==", "running")
    evidence.expect("exitCode", exit_code.result(), "==", 0)
    evidence.expect("status", job["status"], "==", "succeeded")
    evidence.expect("attempts", job["attempts"], "==", 1)
    observer_agrees(t, {job_id: job})


@pytest.mark.needs("latch", "restart-api", "executions")
@pytest.mark.check(
    "faults.api-restart",
    section="4",
    title="API restart with jobs queued and running: all finish, each once",
)
def test_api_restart_with_jobs_in_flight(target, evidence):
    t = target(workers=1)
    first, latch, _ = _hold(t)
    queued = [t.client.submit_ok("sleep", {"ms": 50}) for _ in range(5)]
    statuses = [t.client.job(job_id)["status"] for job_id in (first, *queued)]
    evidence.expect("statusesAtRestart", statuses, "==", ["running"] + ["queued"] * 5)
    t.nodes.api.restart()
    latch.release()
    _assert_each_ran_once(t, [first, *queued], evidence)


@pytest.mark.needs("boot", "restart-broker", "broker", "kill-worker", "executions")
@pytest.mark.check(
    "faults.redis-restart",
    section="4",
    title="Redis SIGKILLed and restarted with jobs still queued: none lost",
)
def test_redis_restart_with_queued_jobs(target, evidence):
    t = target(workers=0)
    broker = require_restartable(t.nodes.broker)
    ids = [t.client.submit_ok("echo", {"message": str(i)}) for i in range(10)]
    wait_until(
        lambda: t.observer.queue_depth() == 10,
        t.deadlines.jobs(len(ids)),
        what="10 messages on the queue",
    )
    broker.restart(kill=True)
    evidence.expect("queuedAfterRestart", t.observer.queue_depth(), "==", len(ids))
    t.nodes.add_worker()
    _assert_each_ran_once(t, ids, evidence)


@pytest.mark.needs("restart-broker", "registry", "executions")
@pytest.mark.check(
    "faults.broker-down",
    section="4",
    title="Broker down while jobs are submitted: accepted, then run once it is back",
)
def test_broker_down_accepts_then_runs(target, evidence):
    t = target(workers=1)
    broker = require_restartable(t.nodes.broker)
    broker.stop()
    replies = [t.client.submit("echo", {"message": str(i)}) for i in range(5)]
    ready = t.client.ready()
    undispatched = [job for job in t.observer.jobs() if job["dispatchedAt"] is None]
    evidence.measure(undispatched=len(undispatched))
    evidence.expect("acceptedWhileDown", [r.status for r in replies], "==", [202] * 5)
    evidence.expect("readyzWhileDown", ready.status, "==", 503)
    evidence.expect("readyzBrokerOk", _component_up(ready, "broker"), "==", False)
    broker.start()
    ids = [r.job_id for r in replies]
    _assert_each_ran_once(t, ids, evidence, timeout=t.deadlines.broker_return(len(ids)))


def _deliveries(t: Target) -> int:
    """Job messages the workers have received so far (Celery logs each delivery at INFO)."""
    return sum(
        line.count("] received")
        for worker in t.nodes.workers
        for line in worker.logs().splitlines()
        if "mcp_bridge.run_job[" in line
    )


# Reading the workers' logs needs their processes: `kill-worker` is the capability that has them.
@pytest.mark.needs("boot", "configure", "latch", "kill-worker", "executions", "broker")
@pytest.mark.check(
    "faults.visibility-timeout",
    section="4",
    title="A job outliving the visibility timeout is not run twice",
)
def test_job_outliving_visibility_timeout_runs_once(target, evidence, worker_count):
    visibility = 2
    t = target(workers=worker_count, settings={"CELERY_VISIBILITY_TIMEOUT": str(visibility)})
    job_id, latch, _ = _hold(t)
    # The job holds until its message came back past the visibility timeout and was delivered
    # again: the redelivery certainly met the running job.
    wait_until(
        lambda: _deliveries(t) >= 2,
        t.deadlines.drain(),
        what=f"the job's message to be redelivered after {visibility} s",
    )
    latch.release()
    job, runs = _final_state(t, job_id, t.deadlines.jobs())
    evidence.measure(visibilityTimeoutSeconds=visibility, deliveries=_deliveries(t))
    evidence.expect("executions", len(runs), "==", 1)
    evidence.expect("status", job["status"], "==", "succeeded")


@pytest.mark.needs("boot", "kill-worker", "broker", "executions")
@pytest.mark.check(
    "faults.cancel-durable",
    section="4",
    title="A cancel recorded while no worker is up holds once workers return",
)
def test_cancel_without_workers_holds(target, evidence):
    t = target(workers=0)
    doomed = t.client.submit_ok("sleep", {"ms": 100})
    cancel = t.client.cancel(doomed)
    evidence.expect(
        "cancelResponse",
        [cancel.status, (cancel.job or {}).get("status")],
        "==",
        [200, "cancelled"],
    )
    sentinel = t.client.submit_ok("echo", {"message": "after"})
    t.nodes.add_worker()
    t.client.wait_terminal([sentinel])  # FIFO: the doomed message was taken first
    _wait_drained(t)
    job = t.client.job(doomed)
    runs = t.observer.executions(doomed)
    evidence.expect("status", job["status"], "==", "cancelled")
    evidence.expect("executions", len(runs), "==", 0)


@pytest.mark.needs("latch", "broker", "executions")
@pytest.mark.check(
    "faults.cancel-running",
    section="4",
    title="A cancel of a running job stops its tool: the job ends cancelled, once, unreleased",
)
def test_cancel_running_job_stops_it(target, evidence):
    t = target(workers=1)
    job_id, latch, _ = _hold(t)  # in the tool, held until released or cancelled
    cancel = t.client.cancel(job_id)
    shown = cancel.job or {}
    evidence.expect(
        "cancelResponse",
        [cancel.status, shown.get("status"), shown.get("cancelRequested")],
        "in",
        [[200, "running", True], [200, "cancelled", True]],
    )
    # The latch is never released: only the cancel can end the tool before its bound.
    job, runs = _final_state(t, job_id, t.deadlines.cancel_noticed())
    evidence.attach_json("executions.json", runs)
    evidence.expect("status", job["status"], "==", "cancelled")
    evidence.expect("outcomes", [run["outcome"] for run in runs], "==", ["cancelled"])
    evidence.expect("latchReleased", latch.released, "==", False)


@pytest.mark.needs("configure", "restart-registry", "latch", "executions")
@pytest.mark.check(
    "faults.registry-restart",
    section="4",
    title="The PostgreSQL registry crashed and restarted with jobs running and queued: none lost",
)
def test_registry_restart_with_jobs_in_flight(target, evidence, request):
    # Under --registry sqlite too: a database of this check's own on a server the suite runs.
    server = restartable_registry(request.config)
    url = server.create_database(f"restart_{secrets.token_hex(4)}")
    # A lease longer than the outage: this check is about the registry coming back, not about
    # a lease lost meanwhile (faults.fencing covers that).
    t = target(workers=1, settings={"JOB_LEASE_SECONDS": "30", "JOB_REGISTRY_URL": url})
    first, latch, _ = _hold(t)
    queued = [t.client.submit_ok("sleep", {"ms": 50}) for _ in range(5)]
    statuses = [t.client.job(job_id)["status"] for job_id in (first, *queued)]
    evidence.expect("statusesAtCrash", statuses, "==", ["running"] + ["queued"] * 5)
    server.kill()  # pg_ctl stop -m immediate: a crash (WAL recovery on start)
    down = t.client.ready()  # answers once the API gave up waiting for a connection
    evidence.expect("readyzWhileDown", down.status, "==", 503)
    evidence.expect("readyzRegistryOkWhileDown", _component_up(down, "registry"), "==", False)
    server.start()
    latch.release()
    _assert_each_ran_once(t, [first, *queued], evidence)
    ready = t.client.ready()
    evidence.expect("readyzAfterRestart", ready.status, "==", 200)
