"""§4 durable registry and idempotency: one key, one job, one execution — across concurrency,
API restarts and every backend."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import pytest

from .stack.bridge import BridgeStack

pytestmark = pytest.mark.idempotency

CONCURRENT_POSTS = 100
EAGER_ENV = {
    "CELERY_TASK_ALWAYS_EAGER": "true",
    "CELERY_BROKER_URL": "memory://",
    "CELERY_RESULT_BACKEND": "cache+memory://",
}


def _key() -> str:
    return f"qual-{secrets.token_hex(8)}"


def _concurrent_posts(bridge: BridgeStack, key: str, n: int) -> list[httpx.Response]:
    """n POSTs with one key, all in flight at once."""
    body = {"tool": "echo", "arguments": {"message": key}}
    headers = bridge.headers(**{"Idempotency-Key": key})

    # each POST may wait behind the other n - 1 submissions
    timeout = bridge.deadlines.client(bridge.deadlines.jobs(n))

    async def fire() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(
            base_url=bridge.api.url, limits=limits, timeout=timeout
        ) as client:
            return await asyncio.gather(
                *(client.post("/v1/jobs", json=body, headers=headers) for _ in range(n))
            )

    return asyncio.run(fire())


def _check_rules(bridge: BridgeStack, evidence) -> None:
    """Same key → same job (200); other body → 422; n concurrent → one job, one execution."""
    key = _key()
    first = bridge.submit("echo", {"message": "a"}, key=key)
    again = bridge.submit("echo", {"message": "a"}, key=key)
    other = bridge.submit("echo", {"message": "b"}, key=key)
    statuses = [first.status_code, again.status_code, other.status_code]
    evidence.expect("firstReplayOtherBody", statuses, "==", [202, 200, 422])
    evidence.expect("replaySameJob", again.json()["id"] == first.json()["id"], "==", True)

    race_key = _key()
    responses = _concurrent_posts(bridge, race_key, CONCURRENT_POSTS)
    codes = sorted(r.status_code for r in responses)
    ids = {r.json()["id"] for r in responses}
    rows = [r for r in bridge.registry_rows() if r["idempotency_key"] == race_key]
    job_id = ids.pop() if len(ids) == 1 else None
    executions = len(bridge.executions(job_id)) if job_id else None
    if job_id:
        bridge.wait_terminal([job_id])
        executions = len(bridge.executions(job_id))
    evidence.measure(concurrentPosts=CONCURRENT_POSTS)
    evidence.expect("created", codes.count(202), "==", 1)
    evidence.expect("replayed", codes.count(200), "==", CONCURRENT_POSTS - 1)
    evidence.expect("jobRows", len(rows), "==", 1)
    evidence.expect("executions", executions, "==", 1)


@pytest.mark.check(
    "idempotency.same-key",
    section="4",
    title="Same Idempotency-Key and body → 200 with the same job",
)
def test_same_key_same_job(shared_stack, evidence):
    key = _key()
    first = shared_stack.submit("echo", {"message": "x"}, key=key)
    again = shared_stack.submit("echo", {"message": "x"}, key=key)
    evidence.expect("first", first.status_code, "==", 202)
    evidence.expect("replay", again.status_code, "==", 200)
    evidence.expect("sameJob", first.json()["id"] == again.json().get("id"), "==", True)
    location = first.headers.get("Location")
    evidence.expect("location", location, "==", f"/v1/jobs/{first.json()['id']}")


@pytest.mark.check(
    "idempotency.conflict",
    section="4",
    title="Same Idempotency-Key with another body → 422, nothing created",
)
def test_same_key_other_body_conflicts(shared_stack, evidence):
    key = _key()
    shared_stack.submit("echo", {"message": "x"}, key=key)
    before = len(shared_stack.registry_rows())
    clash = shared_stack.submit("echo", {"message": "y"}, key=key)
    other_tool = shared_stack.submit("sleep", {"ms": 1}, key=key)
    evidence.expect("otherArguments", clash.status_code, "==", 422)
    evidence.expect("otherTool", other_tool.status_code, "==", 422)
    content_type = clash.headers.get("content-type", "").split(";")[0]
    evidence.expect("contentType", content_type, "==", "application/problem+json")
    evidence.expect("rowsAdded", len(shared_stack.registry_rows()) - before, "==", 0)


@pytest.mark.check(
    "idempotency.concurrent",
    section="4",
    title="100 concurrent POSTs with one key → exactly one job and one execution",
)
def test_concurrent_posts_one_job(shared_stack, evidence):
    key = _key()
    responses = _concurrent_posts(shared_stack, key, CONCURRENT_POSTS)
    codes = [r.status_code for r in responses]
    ids = {r.json().get("id") for r in responses}
    rows = [r for r in shared_stack.registry_rows() if r["idempotency_key"] == key]
    evidence.expect("distinctJobIds", len(ids), "==", 1, note=str(sorted(map(str, ids)))[:200])
    job_id = ids.pop()
    shared_stack.wait_terminal([job_id])
    runs = shared_stack.executions(job_id)
    evidence.measure(posts=len(codes))
    evidence.expect("created", codes.count(202), "==", 1)
    evidence.expect("replayed", codes.count(200), "==", CONCURRENT_POSTS - 1)
    evidence.expect("jobRows", len(rows), "==", 1)
    evidence.expect("executions", len(runs), "==", 1)


@pytest.mark.check(
    "idempotency.subject-scope",
    section="4",
    title="A key is scoped to its subject: two subjects with one key get two jobs",
)
def test_key_is_scoped_to_the_subject(shared_stack, evidence):
    key = _key()
    alice = shared_stack.token(subject=f"alice-{key}")
    bob = shared_stack.token(subject=f"bob-{key}")
    first = shared_stack.submit("echo", {"message": key}, key=key, token=alice)
    other = shared_stack.submit("echo", {"message": key}, key=key, token=bob)
    replay = shared_stack.submit("echo", {"message": key}, key=key, token=bob)
    evidence.expect(
        "statuses",
        [first.status_code, other.status_code, replay.status_code],
        "==",
        [202, 202, 200],
        note="alice, bob, bob again",
    )
    ids = [r.json().get("id") for r in (first, other, replay)]
    evidence.expect("twoJobs", ids[0] != ids[1] and ids[1] == ids[2], "==", True, note=str(ids))
    rows = [r for r in shared_stack.registry_rows() if r["idempotency_key"] == key]
    evidence.expect("jobRows", len(rows), "==", 2)


@pytest.mark.check(
    "idempotency.restart", section="4", title="An Idempotency-Key outlives an API restart (SIGKILL)"
)
def test_key_survives_api_restart(stack, evidence):
    bridge = stack(workers=0)
    key = "k" * 255  # the longest key allowed
    first = bridge.submit("echo", {"message": "before"}, key=key)
    evidence.expect("first", first.status_code, "==", 202)
    bridge.api.kill()
    bridge.api.start()
    again = bridge.submit("echo", {"message": "before"}, key=key)
    clash = bridge.submit("echo", {"message": "after"}, key=key)
    evidence.measure(keyLength=len(key))
    evidence.expect("replay", again.status_code, "==", 200)
    evidence.expect("sameJob", again.json().get("id") == first.json()["id"], "==", True)
    evidence.expect("conflict", clash.status_code, "==", 422)


@pytest.mark.check(
    "registry.durable",
    section="4",
    title="The registry (JOB_REGISTRY_PATH or _URL) keeps every job across an API crash",
)
def test_registry_survives_api_crash(stack, evidence):
    bridge = stack(workers=1)
    ids = [bridge.submit_ok("echo", {"message": str(i)}) for i in range(5)]
    before = bridge.wait_terminal(ids)
    bridge.api.kill()
    assert bridge.registry_present()
    bridge.api.start()
    after = {job_id: bridge.job(job_id) for job_id in ids}
    evidence.measure(
        jobs=len(ids),
        registry=bridge.registry_kind,
        registryPath=str(bridge.registry_path) if bridge.registry_url is None else None,
    )
    evidence.expect("unchanged", sum(after[i] == before[i] for i in ids), "==", len(ids))


@pytest.mark.check(
    "idempotency.eager", section="4", title="Celery eager mode obeys the same idempotency rules"
)
def test_eager_backend_rules(stack, evidence):
    _check_rules(stack(workers=0, env=EAGER_ENV, redis=False), evidence)


@pytest.mark.check(
    "idempotency.inline", section="4", title="The inline backend obeys the same idempotency rules"
)
def test_inline_backend_rules(stack, evidence):
    _check_rules(stack(workers=0, backend="inline"), evidence)
