"""§4 durable registry and idempotency: one key, one job, one execution — across concurrency,
API restarts and every backend.

Submits go through the target's client (the key travels however the target's contract carries
it); what the registry holds and how often a tool really ran, through its observer.
"""

from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from .crosscheck import observer_agrees
from .drivers import DEFAULT, Reply, Target

pytestmark = pytest.mark.idempotency

CONCURRENT_POSTS = 100
EAGER_ENV = {
    "CELERY_TASK_ALWAYS_EAGER": "true",
    "CELERY_BROKER_URL": "memory://",
    "CELERY_RESULT_BACKEND": "cache+memory://",
}


def _key() -> str:
    return f"qual-{secrets.token_hex(8)}"


def _submit(t: Target, tool: str, arguments: dict, key: str, token: str | None = DEFAULT) -> Reply:
    """A submit under the idempotency key `key`."""
    return t.client.submit(tool, arguments, key, token=token)


def _concurrent_posts(t: Target, key: str, n: int) -> list[Reply]:
    """n submits with one key, all in flight at once (each thread waits for the others first)."""
    start = threading.Barrier(n, timeout=t.deadlines.client())

    def submit(_: int) -> Reply:
        start.wait()
        return _submit(t, "echo", {"message": key}, key)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(submit, range(n)))


def _rows_with_key(t: Target, key: str) -> list[dict]:
    """The registry's jobs created under `key` (any subject)."""
    return [row for row in t.observer.jobs() if row["idempotencyKey"] == key]


def _check_rules(t: Target, evidence) -> None:
    """Same key → same job (200); other body → 422; n concurrent → one job, one execution."""
    key = _key()
    first = _submit(t, "echo", {"message": "a"}, key)
    again = _submit(t, "echo", {"message": "a"}, key)
    other = _submit(t, "echo", {"message": "b"}, key)
    statuses = [first.status, again.status, other.status]
    evidence.expect("firstReplayOtherBody", statuses, "==", [202, 200, 422])
    evidence.expect("replaySameJob", again.job_id == first.job_id, "==", True)

    race_key = _key()
    replies = _concurrent_posts(t, race_key, CONCURRENT_POSTS)
    codes = sorted(r.status for r in replies if r.status is not None)
    ids = {r.job_id for r in replies}
    rows = _rows_with_key(t, race_key)
    job_id = ids.pop() if len(ids) == 1 else None
    executions, jobs = None, {}
    if job_id:
        jobs = t.client.wait_terminal([job_id])
        executions = len(t.observer.executions(job_id))
    evidence.measure(concurrentPosts=CONCURRENT_POSTS)
    evidence.expect("created", codes.count(202), "==", 1)
    evidence.expect("replayed", codes.count(200), "==", CONCURRENT_POSTS - 1)
    evidence.expect("jobRows", len(rows), "==", 1)
    evidence.expect("executions", executions, "==", 1)
    observer_agrees(t, jobs)


@pytest.mark.check(
    "idempotency.same-key",
    section="4",
    title="Same Idempotency-Key and body → 200 with the same job",
)
def test_same_key_same_job(shared_target, evidence):
    t = shared_target
    key = _key()
    first = _submit(t, "echo", {"message": "x"}, key)
    again = _submit(t, "echo", {"message": "x"}, key)
    evidence.expect("first", first.status, "==", 202)
    evidence.expect("replay", again.status, "==", 200)
    evidence.expect("sameJob", first.job_id == again.job_id, "==", True)
    location = first.headers.get("location")
    evidence.expect("location", location, "==", t.client.job_location(first.job_id))


@pytest.mark.needs("registry")
@pytest.mark.check(
    "idempotency.conflict",
    section="4",
    title="Same Idempotency-Key with another body → 422, nothing created",
)
def test_same_key_other_body_conflicts(shared_target, evidence):
    t = shared_target
    key = _key()
    _submit(t, "echo", {"message": "x"}, key)
    before = t.observer.job_count()
    clash = _submit(t, "echo", {"message": "y"}, key)
    other_tool = _submit(t, "sleep", {"ms": 1}, key)
    evidence.expect("otherArguments", clash.status, "==", 422)
    evidence.expect("otherTool", other_tool.status, "==", 422)
    evidence.expect(
        "contentType",
        clash.problem is not None and clash.problem.well_formed,
        "==",
        True,
        note="the target's documented error envelope (ours: application/problem+json)",
    )
    evidence.expect("rowsAdded", t.observer.job_count() - before, "==", 0)


@pytest.mark.needs("registry", "executions")
@pytest.mark.check(
    "idempotency.concurrent",
    section="4",
    title="100 concurrent POSTs with one key → exactly one job and one execution",
)
def test_concurrent_posts_one_job(shared_target, evidence):
    t = shared_target
    key = _key()
    replies = _concurrent_posts(t, key, CONCURRENT_POSTS)
    codes = [r.status for r in replies]
    ids = {r.job_id for r in replies}
    rows = _rows_with_key(t, key)
    evidence.expect("distinctJobIds", len(ids), "==", 1, note=str(sorted(map(str, ids)))[:200])
    job_id = ids.pop()
    jobs = t.client.wait_terminal([job_id])
    runs = t.observer.executions(job_id)
    evidence.measure(posts=len(codes))
    evidence.expect("created", codes.count(202), "==", 1)
    evidence.expect("replayed", codes.count(200), "==", CONCURRENT_POSTS - 1)
    evidence.expect("jobRows", len(rows), "==", 1)
    evidence.expect("executions", len(runs), "==", 1)
    observer_agrees(t, jobs)


@pytest.mark.needs("mint-tokens", "registry")
@pytest.mark.check(
    "idempotency.subject-scope",
    section="4",
    title="A key is scoped to its subject: two subjects with one key get two jobs",
)
def test_key_is_scoped_to_the_subject(shared_target, evidence):
    t = shared_target
    key = _key()
    alice = t.client.token(subject=f"alice-{key}")
    bob = t.client.token(subject=f"bob-{key}")
    first = _submit(t, "echo", {"message": key}, key, token=alice)
    other = _submit(t, "echo", {"message": key}, key, token=bob)
    replay = _submit(t, "echo", {"message": key}, key, token=bob)
    evidence.expect(
        "statuses",
        [first.status, other.status, replay.status],
        "==",
        [202, 202, 200],
        note="alice, bob, bob again",
    )
    ids = [r.job_id for r in (first, other, replay)]
    evidence.expect("twoJobs", ids[0] != ids[1] and ids[1] == ids[2], "==", True, note=str(ids))
    evidence.expect("jobRows", len(_rows_with_key(t, key)), "==", 2)


@pytest.mark.needs("boot", "restart-api")
@pytest.mark.check(
    "idempotency.restart", section="4", title="An Idempotency-Key outlives an API restart (SIGKILL)"
)
def test_key_survives_api_restart(target, evidence):
    t = target(workers=0)
    key = "k" * 255  # the longest key allowed
    first = _submit(t, "echo", {"message": "before"}, key)
    evidence.expect("first", first.status, "==", 202)
    t.nodes.api.kill()
    t.nodes.api.start()
    again = _submit(t, "echo", {"message": "before"}, key)
    clash = _submit(t, "echo", {"message": "after"}, key)
    evidence.measure(keyLength=len(key))
    evidence.expect("replay", again.status, "==", 200)
    evidence.expect("sameJob", again.job_id == first.job_id, "==", True)
    evidence.expect("conflict", clash.status, "==", 422)


@pytest.mark.needs("restart-api", "registry")
@pytest.mark.check(
    "registry.durable",
    section="4",
    title="The registry (JOB_REGISTRY_PATH or _URL) keeps every job across an API crash",
)
def test_registry_survives_api_crash(target, evidence):
    t = target(workers=1)
    ids = [t.client.submit_ok("echo", {"message": str(i)}) for i in range(5)]
    before = t.client.wait_terminal(ids)
    t.nodes.api.kill()
    assert t.observer.present()
    t.nodes.api.start()
    after = {job_id: t.client.job(job_id) for job_id in ids}
    registry_url = t.settings.get("JOB_REGISTRY_URL") or None
    evidence.measure(
        jobs=len(ids),
        registry="postgres" if registry_url else "sqlite",
        registryPath=t.settings.get("JOB_REGISTRY_PATH") if registry_url is None else None,
    )
    evidence.expect("unchanged", sum(after[i] == before[i] for i in ids), "==", len(ids))
    observer_agrees(t, after)


@pytest.mark.needs("boot", "configure", "registry", "executions")
@pytest.mark.check(
    "idempotency.eager", section="4", title="Celery eager mode obeys the same idempotency rules"
)
def test_eager_backend_rules(target, evidence):
    _check_rules(target(workers=0, settings=EAGER_ENV, broker=False), evidence)


@pytest.mark.needs("boot", "registry", "executions")
@pytest.mark.check(
    "idempotency.inline", section="4", title="The inline backend obeys the same idempotency rules"
)
def test_inline_backend_rules(target, evidence):
    _check_rules(target(workers=0, backend="inline"), evidence)
