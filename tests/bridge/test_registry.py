"""The registry's state machine, on SQLite and on PostgreSQL: every transition is a
compare-and-set on a real file or database."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from mcp_bridge.app import create_app
from mcp_bridge.config import ConfigError
from mcp_bridge.jobs.models import Claim, Status
from mcp_bridge.jobs.registry import Registry, RegistryUnavailable, SchemaTooNew
from mcp_bridge.jobs.sqlite import MIGRATIONS as sqlite_migrations
from mcp_bridge.jobs.sqlite import SqliteRegistry
from qualification.stack.postgres import PostgresUnavailable, provision


def outcomes(registry: Registry, job_id: str) -> list[tuple[int, str, str | None]]:
    return [(a.attempt, a.worker, a.outcome) for a in registry.attempts(job_id)]


def test_insert_claim_renew_finish(registry, new_job):
    job = registry.insert(new_job(arguments={"message": "hello"}))
    stored = registry.get(job.id)
    assert stored is not None
    assert (stored.status, stored.attempts, stored.dispatched_at) == (Status.QUEUED, 0, None)
    assert stored.arguments == {"message": "hello"}

    claim = registry.claim(job.id, "w1", 30)
    assert claim == Claim(job.id, 1, "echo", {"message": "hello"})
    running = registry.get(job.id)
    assert running.status == Status.RUNNING
    assert running.worker == "w1" and running.attempts == 1 and running.started_at is not None
    assert registry.claim(job.id, "w2", 30) is None, "a second claim of a running job must lose"

    assert registry.renew(claim, 30) is False
    assert registry.finish(claim, Status.SUCCEEDED, {"ok": True}) is True
    done = registry.get(job.id)
    assert done.status == Status.SUCCEEDED and done.result == {"ok": True}
    assert done.finished_at is not None and done.finished_at >= done.started_at
    assert outcomes(registry, job.id) == [(1, "w1", "succeeded")]

    # Once terminal, the attempt can neither renew nor finish again.
    assert registry.renew(claim, 30) is None
    assert registry.finish(claim, Status.FAILED, error="late") is False
    assert registry.get(job.id).status == Status.SUCCEEDED
    assert outcomes(registry, job.id) == [(1, "w1", "succeeded")]
    assert registry.claim(job.id, "w3", 30) is None


def test_claim_of_unknown_job_is_none(registry):
    assert registry.claim("no-such-job", "w1", 30) is None
    assert registry.get("no-such-job") is None
    assert registry.request_cancel("no-such-job") is None


def claim_race(registry: Registry, job_id: str, threads: int) -> list[Claim]:
    """`threads` workers released together all try to claim the job; returns the winners."""
    barrier = threading.Barrier(threads)
    won: list[Claim] = []
    errors: list[BaseException] = []

    def contend(i: int) -> None:
        try:
            barrier.wait()
            claim = registry.claim(job_id, f"w{i}", 30)
            if claim is not None:
                won.append(claim)
        except BaseException as error:  # surfaced below
            errors.append(error)

    workers = [threading.Thread(target=contend, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert not errors
    return won


def test_concurrent_claims_exactly_one_wins(registry, new_job):
    for _ in range(3):
        job = registry.insert(new_job())
        won = claim_race(registry, job.id, 16)
        assert len(won) == 1
        assert won[0].attempt == 1
        assert registry.get(job.id).attempts == 1
        assert len(registry.attempts(job.id)) == 1


def test_concurrent_takeover_of_an_expired_lease_exactly_one_wins(registry, new_job):
    job = registry.insert(new_job())
    assert registry.claim(job.id, "dead", -1) is not None
    won = claim_race(registry, job.id, 16)
    assert len(won) == 1 and won[0].attempt == 2
    assert [a.outcome for a in registry.attempts(job.id)] == ["lost", None]


def test_finish_by_superseded_attempt_is_refused(registry, new_job):
    job = registry.insert(new_job())
    stale = registry.claim(job.id, "w1", -1)  # its lease is already over
    assert stale is not None
    fresh = registry.claim(job.id, "w2", 30)  # takes over the expired lease
    assert fresh is not None and fresh.attempt == 2
    assert outcomes(registry, job.id) == [(1, "w1", "lost"), (2, "w2", None)]

    assert registry.renew(stale, 30) is None
    assert registry.finish(stale, Status.SUCCEEDED, "stale") is False
    current = registry.get(job.id)
    assert current.status == Status.RUNNING and current.worker == "w2" and current.result is None
    assert outcomes(registry, job.id) == [(1, "w1", "lost"), (2, "w2", None)]
    assert registry.events_since(0) == []

    assert registry.finish(fresh, Status.SUCCEEDED, "fresh") is True
    assert registry.get(job.id).result == "fresh"
    assert outcomes(registry, job.id) == [(1, "w1", "lost"), (2, "w2", "succeeded")]


def test_reap_expired_requeues_and_next_claim_is_attempt_two(registry, new_job):
    job = registry.insert(new_job())
    registry.mark_dispatched(job.id, time.time())
    first = registry.claim(job.id, "w1", 30)
    assert registry.reap_expired(time.time()) == [], "a live lease must not be reaped"

    assert registry.reap_expired(time.time() + 60) == [job.id]
    requeued = registry.get(job.id)
    assert requeued.status == Status.QUEUED
    assert requeued.worker is None and requeued.attempts == 1 and requeued.dispatched_at is None
    assert outcomes(registry, job.id) == [(1, "w1", "lost")]
    assert job.id in registry.due_for_dispatch(time.time(), 600, 10)
    assert registry.events_since(0) == [], "re-queueing is not a terminal transition"
    assert registry.finish(first, Status.SUCCEEDED) is False

    second = registry.claim(job.id, "w2", 30)
    assert second is not None and second.attempt == 2
    assert registry.finish(second, Status.SUCCEEDED, {"n": 2}) is True
    done = registry.get(job.id)
    assert done.status == Status.SUCCEEDED and done.attempts == 2
    assert outcomes(registry, job.id) == [(1, "w1", "lost"), (2, "w2", "succeeded")]
    assert [e.status for e in registry.events_since(0)] == [Status.SUCCEEDED]


def test_reap_expired_cancels_a_cancel_requested_job(registry, new_job):
    job = registry.insert(new_job())
    registry.claim(job.id, "w1", 30)
    flagged = registry.request_cancel(job.id)
    assert flagged.status == Status.RUNNING and flagged.cancel_requested

    assert registry.reap_expired(time.time() + 60) == []
    gone = registry.get(job.id)
    assert gone.status == Status.CANCELLED and gone.error == "cancelled"
    assert outcomes(registry, job.id) == [(1, "w1", "lost")]
    assert [e.status for e in registry.events_since(0)] == [Status.CANCELLED]
    assert registry.claim(job.id, "w2", 30) is None


def test_request_cancel_of_queued_job_cancels_it_and_claim_fails(registry, new_job):
    job = registry.insert(new_job())
    cancelled = registry.request_cancel(job.id)
    assert cancelled.status == Status.CANCELLED
    assert cancelled.cancel_requested and cancelled.finished_at is not None
    assert registry.claim(job.id, "w1", 30) is None
    assert registry.attempts(job.id) == []
    (event,) = registry.events_since(0)
    assert (event.job_id, event.status, event.queue_wait, event.runtime) == (
        job.id,
        Status.CANCELLED,
        None,
        None,
    )
    assert job.id not in registry.due_for_dispatch(time.time(), 600, 10)


def test_request_cancel_of_running_job_flags_it_for_the_renewer(registry, new_job):
    job = registry.insert(new_job(tool="sleep", arguments={"ms": 10}))
    claim = registry.claim(job.id, "w1", 30)
    assert registry.renew(claim, 30) is False
    flagged = registry.request_cancel(job.id)
    assert flagged.status == Status.RUNNING and flagged.cancel_requested
    assert registry.renew(claim, 30) is True
    assert registry.finish(claim, Status.CANCELLED, error="cancelled") is True
    assert registry.get(job.id).status == Status.CANCELLED
    assert outcomes(registry, job.id) == [(1, "w1", "cancelled")]


def test_request_cancel_of_finished_job_leaves_it(registry, new_job):
    job = registry.insert(new_job())
    registry.finish(registry.claim(job.id, "w1", 30), Status.SUCCEEDED, 1)
    after = registry.request_cancel(job.id)
    assert after.status == Status.SUCCEEDED and not after.cancel_requested
    assert len(registry.events_since(0)) == 1


def test_events_since_one_per_terminal_transition(registry, new_job):
    ok, bad, dropped = (registry.insert(new_job()) for _ in range(3))
    registry.finish(registry.claim(ok.id, "w", 30), Status.SUCCEEDED, "r")
    registry.finish(registry.claim(bad.id, "w", 30), Status.FAILED, error="boom")
    registry.request_cancel(dropped.id)

    events = registry.events_since(0)
    assert [(e.job_id, e.status) for e in events] == [
        (ok.id, Status.SUCCEEDED),
        (bad.id, Status.FAILED),
        (dropped.id, Status.CANCELLED),
    ]
    assert [e.seq for e in events] == sorted({e.seq for e in events})
    assert all(e.tool == "echo" for e in events)
    for event in events[:2]:
        assert event.queue_wait is not None and event.queue_wait >= 0
        assert event.runtime is not None and event.runtime >= 0
        job = registry.get(event.job_id)
        assert event.queue_wait == pytest.approx(job.started_at - job.created_at)
    assert registry.events_since(events[0].seq) == events[1:]
    assert registry.events_since(events[-1].seq) == []
    assert registry.events_since(0, limit=1) == events[:1]


def test_dispatch_bookkeeping(registry, new_job):
    now = time.time()
    first = registry.insert(new_job(created_at=now - 2))
    second = registry.insert(new_job(created_at=now - 1))
    assert registry.due_for_dispatch(now, 600, 10) == [first.id, second.id]
    assert registry.due_for_dispatch(now, 600, 1) == [first.id]

    registry.mark_dispatched(first.id, now)
    assert registry.get(first.id).dispatched_at == now
    assert registry.due_for_dispatch(now, 600, 10) == [second.id]
    # Published so long ago that its message looks lost: due again.
    assert registry.due_for_dispatch(now + 601, 600, 10) == [first.id, second.id]

    assert registry.forget_dispatch() == 2
    assert registry.get(first.id).dispatched_at is None
    assert registry.due_for_dispatch(now, 600, 10) == [first.id, second.id]

    # Only queued jobs are (re)dispatched or marked.
    registry.claim(second.id, "w1", 30)
    registry.mark_dispatched(second.id, now)
    assert registry.get(second.id).dispatched_at is None
    assert registry.due_for_dispatch(now, 600, 10) == [first.id]
    assert registry.forget_dispatch() == 1


def test_list_is_newest_first_and_pages_with_after(registry, new_job):
    base = time.time()
    mine = [registry.insert(new_job(owner="alice", created_at=base + i)) for i in range(7)]
    # Two jobs created at the same instant: the id breaks the tie, none is skipped.
    mine += [registry.insert(new_job(owner="alice", created_at=base + 3.5)) for _ in range(2)]
    theirs = [registry.insert(new_job(owner="bob", created_at=base + i)) for i in range(2)]
    expected = sorted(mine, key=lambda j: (j.created_at, j.id), reverse=True)

    seen, after = [], None
    while True:
        page = registry.list("alice", None, 3, after)
        seen += page
        if len(page) < 3:
            break
        after = (page[-1].created_at, page[-1].id)
    assert [j.id for j in seen] == [j.id for j in expected]
    assert len(registry.list(None, None, 100, None)) == len(mine) + len(theirs)
    assert {j.owner for j in registry.list("bob", None, 100, None)} == {"bob"}

    registry.finish(registry.claim(mine[0].id, "w", 30), Status.SUCCEEDED)
    registry.request_cancel(mine[1].id)
    assert [j.id for j in registry.list("alice", Status.SUCCEEDED, 10, None)] == [mine[0].id]
    assert [j.id for j in registry.list("alice", Status.CANCELLED, 10, None)] == [mine[1].id]
    assert len(registry.list("alice", Status.QUEUED, 100, None)) == len(mine) - 2
    counts = registry.count_by_status()
    assert counts[Status.SUCCEEDED] == 1 and counts[Status.CANCELLED] == 1
    assert counts[Status.QUEUED] == len(mine) + len(theirs) - 2 and counts[Status.RUNNING] == 0


def test_two_registries_on_one_store_see_each_others_writes(registry, open_same_registry, new_job):
    other = open_same_registry()
    job = registry.insert(new_job())
    assert other.get(job.id) == registry.get(job.id)
    claim = other.claim(job.id, "other", 30)
    assert claim is not None
    assert registry.claim(job.id, "mine", 30) is None
    assert registry.get(job.id).worker == "other"
    registry.request_cancel(job.id)
    assert other.renew(claim, 30) is True
    assert other.finish(claim, Status.CANCELLED, error="cancelled")
    assert [e.job_id for e in registry.events_since(0)] == [job.id]


def test_a_second_process_claims_and_finishes_on_the_same_store(
    registry, registry_path, registry_url, new_job
):
    job = registry.insert(new_job())
    child = f"""
import json, sys
from mcp_bridge.jobs.models import Status
from mcp_bridge.jobs.connect import open_registry
reg = open_registry({registry_url!r}, {str(registry_path)!r})
claim = reg.claim({job.id!r}, "child", 30)
print(json.dumps({{"attempt": claim.attempt,
                   "finished": reg.finish(claim, Status.SUCCEEDED, {{"by": "child"}})}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == {"attempt": 1, "finished": True}
    finished = registry.get(job.id)
    assert finished.status == Status.SUCCEEDED and finished.result == {"by": "child"}
    assert outcomes(registry, job.id) == [(1, "child", "succeeded")]


def test_registry_at_unwritable_path_raises_registry_unavailable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(RegistryUnavailable):
        SqliteRegistry(blocker / "registry.db")
    with pytest.raises(RegistryUnavailable):
        SqliteRegistry(tmp_path)  # a directory is not a database file


def test_app_on_unwritable_registry_path_is_a_config_error(tmp_path, make_settings):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError) as raised:
        create_app(make_settings(job_registry_path=blocker / "registry.db", job_registry_url=None))
    message = str(raised.value)
    assert "JOB_REGISTRY_PATH" in message and "\n" not in message


def test_check_writable(registry):
    registry.check_writable()


def test_last_event_seq_moves_on_every_terminal_transition(registry, new_job):
    assert registry.last_event_seq() == 0
    job = registry.insert(new_job())
    registry.claim(job.id, "w", 30)
    assert registry.last_event_seq() == 0
    registry.request_cancel(registry.insert(new_job()).id)
    first = registry.last_event_seq()
    assert first > 0
    registry.finish(registry.claim(job.id, "w", 30) or _claim_of(registry, job.id), Status.FAILED)
    assert registry.last_event_seq() > first


def _claim_of(registry: Registry, job_id: str) -> Claim:
    job = registry.get(job_id)
    return Claim(job.id, job.attempts, job.tool, job.arguments)


def _bump_schema(registry_url: str | None, registry_path, version: int) -> None:
    """What a newer bridge's migration would leave behind: a higher version row."""
    sql = f"INSERT INTO schema_migrations (version, applied_at) VALUES ({version:d}, 0)"
    if registry_url:
        import psycopg

        with psycopg.connect(registry_url, autocommit=True) as conn:
            conn.execute(sql)
    else:
        import sqlite3

        with sqlite3.connect(registry_path) as conn:
            conn.execute(sql)


def test_schema_is_versioned_and_a_newer_one_is_refused(
    registry, registry_url, registry_path, open_same_registry, make_settings
):
    assert registry.schema_version() == 1
    assert open_same_registry().schema_version() == 1, "reopening migrates nothing twice"
    _bump_schema(registry_url, registry_path, 99)
    with pytest.raises(SchemaTooNew, match="schema version 99 is newer than this bridge knows"):
        open_same_registry()
    with pytest.raises(ConfigError) as raised:
        create_app(make_settings())
    message = str(raised.value)
    assert message.startswith("configuration error: JOB_REGISTRY_")
    assert "schema version 99" in message and "\n" not in message


def test_a_file_from_before_versioning_adopts_version_1(tmp_path, new_job):
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the 0.1.0 schema, which had no version table
        conn.executescript(sqlite_migrations[0])
    SqliteRegistry(path).insert(new_job())
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE schema_migrations")
    reopened = SqliteRegistry(path)
    assert reopened.schema_version() == 1
    assert len(reopened.list(None, None, 10, None)) == 1


def test_unreachable_database_is_one_config_line(make_settings, port):
    url = f"postgresql://postgres:secret@127.0.0.1:{port()}/nowhere"
    with pytest.raises(ConfigError) as raised:
        create_app(make_settings(job_registry_url=url))
    message = str(raised.value)
    assert message.startswith("configuration error: JOB_REGISTRY_URL: postgresql://postgres:***@")
    assert "\n" not in message and "secret" not in message


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("mysql://u@h/db", "unsupported scheme 'mysql'"),
        ("postgresql://u@h:port/db", "not a valid PostgreSQL URL"),
        ("postgresql://u@h/db?nosuch=1", "not a valid PostgreSQL URL"),
    ],
)
def test_bad_registry_url_is_one_config_line(make_settings, url, why):
    with pytest.raises(ConfigError) as raised:
        make_settings(job_registry_url=url)
    message = str(raised.value)
    assert message.startswith("configuration error: JOB_REGISTRY_URL: ") and why in message
    assert "\n" not in message


OUTAGE_SECONDS = 15.0  # the fault: long enough for an uncapped reconnect backoff to reach 8 s


def test_postgres_registry_is_back_within_seconds_of_its_database(new_job):
    """The pool's reconnect backoff must not outlast the outage by more than one short chain."""
    from mcp_bridge.jobs.postgres import RECONNECT_SECONDS, PostgresRegistry

    try:
        server = provision("postgres", fsync=False)
    except PostgresUnavailable as why:
        pytest.skip(str(why))
    with server:
        # One connection: no new one is grown on demand, so only the retry chain can bring it back.
        registry = PostgresRegistry(server.create_database("outage"), pool_size=1, wait=1.0)
        try:
            job = registry.insert(new_job())
            server.stop()
            down_until = time.monotonic() + OUTAGE_SECONDS
            failures = 0
            while time.monotonic() < down_until:  # callers keep asking while it is down
                with pytest.raises(RegistryUnavailable):
                    registry.get(job.id)
                failures += 1
            server.start()
            back = time.monotonic()
            deadline = back + 2 * RECONNECT_SECONDS
            while True:
                try:
                    assert registry.get(job.id) == job
                    break
                except RegistryUnavailable:
                    assert time.monotonic() < deadline, "registry still unavailable"
            assert failures > 0
        finally:
            registry.close()
