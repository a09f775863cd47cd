"""The dispatcher: a job the broker did not take stays committed and is published later."""

from __future__ import annotations

import time

from mcp_bridge.jobs.dispatcher import Dispatcher
from mcp_bridge.jobs.models import Status
from mcp_bridge.jobs.registry import Registry
from mcp_bridge.jobs.service import JobService
from mcp_bridge.metrics import Metrics
from mcp_bridge.tools.default import default_catalog


class FlakyBackend:
    """A broker that is down until `up` is set (pure logic: records what it was handed)."""

    name = "flaky"

    def __init__(self) -> None:
        self.up = False
        self.attempts: list[str] = []
        self.published: list[str] = []

    def publish(self, job_id: str) -> None:
        self.attempts.append(job_id)
        if not self.up:
            raise ConnectionError("broker down")
        self.published.append(job_id)

    def check(self) -> tuple[bool, str]:
        return self.up, "up" if self.up else "down"

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def wire(registry: Registry, redispatch_after: float = 600.0):
    backend = FlakyBackend()
    service = JobService(registry, backend, default_catalog(), Metrics(registry).job_submitted)
    dispatcher = Dispatcher(registry, service, interval=0.05, redispatch_after=redispatch_after)
    return backend, service, dispatcher


def test_submit_commits_when_publish_fails_and_step_publishes_after_recovery(registry):
    backend, service, dispatcher = wire(registry)
    submitted = service.submit("alice", "echo", {"message": "hi"}, "k1")
    assert submitted.created
    job = registry.get(submitted.job.id)
    assert job.status == Status.QUEUED and job.dispatched_at is None
    assert backend.attempts == [job.id] and backend.published == []
    assert registry.due_for_dispatch(time.time(), 600, 10) == [job.id]

    assert dispatcher.step() == 0, "still down: nothing published"
    assert registry.get(job.id).dispatched_at is None

    backend.up = True
    assert dispatcher.step() == 1
    assert backend.published == [job.id]
    assert registry.get(job.id).dispatched_at is not None
    assert dispatcher.step() == 0, "a dispatched job is not published again"
    assert backend.published == [job.id]

    # An idempotent replay does not publish a second time either.
    assert service.submit("alice", "echo", {"message": "hi"}, "k1").created is False
    assert backend.published == [job.id]


def test_step_stops_at_the_first_failed_publish(registry):
    backend, service, dispatcher = wire(registry)
    ids = [service.submit("alice", "echo", {"message": str(i)}, None).job.id for i in range(3)]
    backend.attempts.clear()
    assert dispatcher.step() == 0
    assert backend.attempts == [ids[0]], "a down broker is tried once per tick, not per job"
    backend.up = True
    assert dispatcher.step() == 3
    assert backend.published == ids, "oldest first"


def test_step_reaps_expired_leases_and_republishes(registry):
    backend, service, dispatcher = wire(registry)
    backend.up = True
    job_id = service.submit("alice", "echo", {"message": "hi"}, None).job.id
    assert backend.published == [job_id]
    claim = registry.claim(job_id, "dead-worker", -1)  # its worker died: the lease is over
    assert claim is not None

    assert dispatcher.step() == 1
    job = registry.get(job_id)
    assert job.status == Status.QUEUED and job.attempts == 1 and job.worker is None
    assert [(a.worker, a.outcome) for a in registry.attempts(job_id)] == [("dead-worker", "lost")]
    assert backend.published == [job_id, job_id]
    assert registry.get(job_id).dispatched_at is not None


def test_step_leaves_live_leases_alone(registry):
    backend, service, dispatcher = wire(registry)
    backend.up = True
    job_id = service.submit("alice", "echo", {"message": "hi"}, None).job.id
    registry.claim(job_id, "live-worker", 30)
    assert dispatcher.step() == 0
    assert registry.get(job_id).status == Status.RUNNING


def test_step_republishes_a_message_that_looks_lost(registry, poll):
    backend, service, dispatcher = wire(registry, redispatch_after=0.05)
    backend.up = True
    job_id = service.submit("alice", "echo", {"message": "hi"}, None).job.id
    first = registry.get(job_id).dispatched_at
    poll(lambda: time.time() > first + 0.05, what="the redispatch age")
    assert dispatcher.step() == 1
    assert backend.published == [job_id, job_id]


def test_dispatcher_thread_publishes_once_the_backend_recovers(registry, poll):
    backend, service, dispatcher = wire(registry)
    job_id = service.submit("alice", "echo", {"message": "hi"}, None).job.id
    dispatcher.start()
    try:
        poll(lambda: len(backend.attempts) >= 3, what="retries while down")
        assert backend.published == []
        backend.up = True
        poll(lambda: registry.get(job_id).dispatched_at is not None, what="the publish")
        assert backend.published == [job_id]
    finally:
        dispatcher.stop()


def test_dispatcher_thread_can_be_joined_after_stop(registry):
    """`Dispatcher._stop` (an Event) shadows `threading.Thread._stop()`, which join() and
    is_alive() call once the thread has ended: they raise TypeError instead of returning."""
    _, _, dispatcher = wire(registry)
    dispatcher.start()
    dispatcher.stop()
    dispatcher.join(5)
    assert not dispatcher.is_alive()


def test_lease_keeper_thread_can_be_joined_after_stop(registry, new_job):
    """Same shadowing in `executor._LeaseKeeper`: it can never be joined."""
    import threading

    from mcp_bridge.jobs.executor import _LeaseKeeper

    job = registry.insert(new_job())
    claim = registry.claim(job.id, "w", 30)
    keeper = _LeaseKeeper(registry, claim, 30, threading.Event())
    keeper.start()
    keeper.stop()
    keeper.join(5)
    assert not keeper.is_alive()


# -- recovery when an inline-backend API starts on a registry a dead process left behind --------


def test_inline_app_runs_jobs_a_previous_process_queued_or_was_running(
    registry, new_job, make_client, auth
):
    """The previous API published a job into its in-memory pool, then died; another job was
    mid-run (its lease lapses). A new API on the same file must run both."""
    published = registry.insert(new_job(arguments={"message": "queued before"}))
    registry.mark_dispatched(published.id, time.time())
    orphan = registry.insert(new_job(arguments={"message": "running before"}))
    assert registry.claim(orphan.id, "inline@dead", -1) is not None  # lease already lapsed

    client = make_client()
    alice = auth("alice")
    for job_id, attempts in ((published.id, 1), (orphan.id, 2)):
        job = client.get(f"/v1/jobs/{job_id}", params={"wait": 5}, headers=alice).json()
        assert job["status"] == "succeeded" and job["attempts"] == attempts, job
    outcomes = [(a.worker, a.outcome) for a in registry.attempts(orphan.id)]
    assert outcomes[0] == ("inline@dead", "lost") and outcomes[1][1] == "succeeded"
