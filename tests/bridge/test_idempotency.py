"""Idempotency keys: one row per (owner, key) under real thread races, and the API's answers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from mcp_bridge.jobs.models import Job, Status
from mcp_bridge.jobs.registry import DuplicateKey, Registry
from mcp_bridge.jobs.service import IdempotencyConflict, JobService, Submitted, fingerprint
from mcp_bridge.metrics import Metrics
from mcp_bridge.tools.default import default_catalog

THREADS = 50


class RecordingBackend:
    """Publishes nowhere; remembers what it was handed (pure bookkeeping)."""

    name = "recording"

    def __init__(self) -> None:
        self.published: list[str] = []
        self._lock = threading.Lock()

    def publish(self, job_id: str) -> None:
        with self._lock:
            self.published.append(job_id)

    def check(self) -> tuple[bool, str]:
        return True, "recording"

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def race(n: int, action: Callable[[int], Any]) -> list[Any]:
    """Run ``action(i)`` on n threads released together; returns results or raised exceptions."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait()
        try:
            return action(i)
        except Exception as error:
            return error

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_concurrent_inserts_with_one_key_make_one_row(registry: Registry, new_job):
    outcomes = race(THREADS, lambda i: registry.insert(new_job(key="same-key")))
    winners = [o for o in outcomes if isinstance(o, Job)]
    duplicates = [o for o in outcomes if isinstance(o, DuplicateKey)]
    assert len(winners) == 1, outcomes
    assert len(duplicates) == THREADS - 1, [o for o in outcomes if not isinstance(o, Job)]
    assert {d.existing.id for d in duplicates} == {winners[0].id}
    assert [j.id for j in registry.list("alice", None, 1000, None)] == [winners[0].id]


def service_for(registry: Registry) -> tuple[JobService, RecordingBackend, Metrics]:
    backend, metrics = RecordingBackend(), Metrics(registry)
    return JobService(registry, backend, default_catalog(), metrics.job_submitted), backend, metrics


def test_concurrent_submits_with_one_key_run_one_job(registry: Registry):
    service, backend, metrics = service_for(registry)
    outcomes = race(THREADS, lambda i: service.submit("alice", "echo", {"message": "x"}, "k"))
    assert all(isinstance(o, Submitted) for o in outcomes), outcomes
    assert sum(o.created for o in outcomes) == 1
    assert len({o.job.id for o in outcomes}) == 1
    assert backend.published == [outcomes[0].job.id]
    assert metrics.submitted.labels("echo")._value.get() == 1
    assert len(registry.list(None, None, 1000, None)) == 1


def test_concurrent_submits_with_one_key_and_two_bodies(registry: Registry):
    service, _, _ = service_for(registry)
    bodies = [{"message": "a"}, {"message": "b"}]
    outcomes = race(THREADS, lambda i: service.submit("alice", "echo", bodies[i % 2], "k"))
    (job,) = registry.list(None, None, 1000, None)
    for i, outcome in enumerate(outcomes):
        if bodies[i % 2] == job.arguments:
            assert isinstance(outcome, Submitted) and outcome.job.id == job.id
        else:
            assert isinstance(outcome, IdempotencyConflict) and outcome.existing.id == job.id
    assert sum(isinstance(o, Submitted) and o.created for o in outcomes) == 1


def test_different_owners_may_reuse_a_key(registry: Registry, new_job):
    mine = registry.insert(new_job(owner="alice", key="k"))
    theirs = registry.insert(new_job(owner="bob", key="k"))
    assert mine.id != theirs.id
    assert registry.find_by_key("alice", "k").id == mine.id
    assert registry.find_by_key("bob", "k").id == theirs.id
    with pytest.raises(DuplicateKey) as raised:
        registry.insert(new_job(owner="bob", key="k"))
    assert raised.value.existing.id == theirs.id


def test_jobs_without_a_key_never_collide(registry: Registry, new_job):
    for _ in range(3):
        registry.insert(new_job(key=None))
    assert len(registry.list("alice", None, 10, None)) == 3


def test_fingerprint_is_canonical():
    nested_a = {"a": 1, "b": {"x": [1, 2], "y": "é"}}
    nested_b = {"b": {"y": "é", "x": [1, 2]}, "a": 1}
    assert fingerprint("echo", nested_a) == fingerprint("echo", nested_b)
    assert fingerprint("echo", {"message": "x"}) != fingerprint("echo", {"message": "y"})
    assert fingerprint("echo", {"message": "x"}) != fingerprint("fail", {"message": "x"})
    assert fingerprint("echo", {}) != fingerprint("echo", {"message": ""})
    assert fingerprint("sleep", {"ms": [1, 2]}) != fingerprint("sleep", {"ms": [2, 1]})
    assert len(fingerprint("echo", {})) == 64


# -- through the API ---------------------------------------------------------------------------


def post(client, headers, body, key: str | None = None):
    extra = {} if key is None else {"Idempotency-Key": key}
    return client.post("/v1/jobs", json=body, headers={**headers, **extra})


def test_same_key_replays_then_other_body_conflicts(client, auth):
    alice = auth("alice")
    body = {"tool": "echo", "arguments": {"message": "once"}}
    first = post(client, alice, body, "order-1")
    assert first.status_code == 202
    assert first.headers["location"] == f"/v1/jobs/{first.json()['id']}"

    replay = post(client, alice, {"arguments": {"message": "once"}, "tool": "echo"}, "order-1")
    assert replay.status_code == 200
    assert replay.json()["id"] == first.json()["id"]
    assert replay.headers["location"] == first.headers["location"]

    conflict = post(client, alice, {"tool": "echo", "arguments": {"message": "twice"}}, "order-1")
    assert conflict.status_code == 422
    assert conflict.headers["content-type"].startswith("application/problem+json")
    problem = conflict.json()
    assert problem["status"] == 422 and problem["existingJobId"] == first.json()["id"]
    assert problem["errors"][0]["field"] == "Idempotency-Key"

    other_tool = post(client, alice, {"tool": "fail", "arguments": {"message": "once"}}, "order-1")
    assert other_tool.status_code == 422

    # Another owner has their own key space.
    bob = post(client, auth("bob"), body, "order-1")
    assert bob.status_code == 202 and bob.json()["id"] != first.json()["id"]
    listed = client.get("/v1/jobs", headers=alice).json()["items"]
    assert [j["id"] for j in listed] == [first.json()["id"]]


def test_concurrent_api_submits_with_one_key(client, auth):
    alice = auth("alice")
    body = {"tool": "echo", "arguments": {"message": "race"}}
    responses = race(10, lambda i: post(client, alice, body, "race-key"))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 9 + [202]
    assert len({r.json()["id"] for r in responses}) == 1


def test_key_length_limits(client, auth):
    alice = auth("alice")
    body = {"tool": "echo", "arguments": {}}
    assert post(client, alice, body, "k" * 255).status_code == 202
    too_long = post(client, alice, body, "k" * 256)
    assert too_long.status_code == 400
    assert too_long.headers["content-type"].startswith("application/problem+json")
    assert too_long.json()["errors"][0]["field"] == "Idempotency-Key"
    assert post(client, alice, body, "").status_code == 400
    assert post(client, alice, body, "tab\there").status_code == 400
    assert len(client.get("/v1/jobs", headers=alice).json()["items"]) == 1


def test_replay_returns_the_current_state(client, auth):
    alice = auth("alice")
    body = {"tool": "echo", "arguments": {"message": "done"}}
    first = post(client, alice, body, "k")
    job_id = first.json()["id"]
    assert client.get(f"/v1/jobs/{job_id}?wait=5", headers=alice).json()["status"] == "succeeded"
    replay = post(client, alice, body, "k")
    assert replay.status_code == 200
    assert replay.json()["status"] == Status.SUCCEEDED.value
    assert replay.json()["result"] == {"message": "done"}
    assert replay.json()["attempts"] == 1
