"""The HTTP API with the inline backend: real app, real threads, real registry file."""

from __future__ import annotations

import json
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mcp_bridge.jobs.models import Status
from mcp_bridge.jobs.registry import Registry

TERMINAL = {"succeeded", "failed", "cancelled"}


def submit(client, headers, tool: str, **arguments) -> dict:
    response = client.post("/v1/jobs", json={"tool": tool, "arguments": arguments}, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


def settle(client, headers, job_id: str, wait: float = 5) -> dict:
    response = client.get(f"/v1/jobs/{job_id}", params={"wait": wait}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def status_of(client, headers, job_id: str) -> str:
    return client.get(f"/v1/jobs/{job_id}", headers=headers).json()["status"]


def test_submit_and_long_poll_to_success(client, auth):
    alice = auth("alice")
    response = client.post(
        "/v1/jobs", json={"tool": "echo", "arguments": {"message": "hi"}}, headers=alice
    )
    assert response.status_code == 202
    accepted = response.json()
    assert response.headers["location"] == f"/v1/jobs/{accepted['id']}"
    assert accepted["status"] in {"queued", "running", "succeeded"}
    assert accepted["owner"] == "alice" and accepted["tool"] == "echo"
    assert set(accepted) >= {
        "id",
        "tool",
        "arguments",
        "status",
        "attempts",
        "result",
        "error",
        "cancelRequested",
        "createdAt",
        "startedAt",
        "finishedAt",
        "owner",
    }

    started = time.monotonic()
    job = settle(client, alice, accepted["id"])
    assert time.monotonic() - started < 4, "the long-poll must answer once the job finishes"
    assert job["status"] == "succeeded"
    assert job["result"] == {"message": "hi"}
    assert job["attempts"] == 1 and job["error"] is None and job["cancelRequested"] is False
    assert job["createdAt"].endswith("Z") and job["startedAt"] and job["finishedAt"]
    assert job["createdAt"] <= job["startedAt"] <= job["finishedAt"]

    (attempt,) = client.get(f"/v1/jobs/{job['id']}/attempts", headers=alice).json()["items"]
    assert attempt["attempt"] == 1 and attempt["outcome"] == "succeeded"
    assert attempt["worker"].startswith("inline@") and attempt["finishedAt"]


def test_cpu_tool_runs(client, auth):
    alice = auth("alice")
    job = settle(client, alice, submit(client, alice, "cpu", size=10)["id"])
    assert job["status"] == "succeeded"
    assert job["result"]["size"] == 10 and len(job["result"]["digest"]) == 64


def test_fail_tool_fails_with_its_message(client, auth):
    alice = auth("alice")
    job = settle(client, alice, submit(client, alice, "fail", message="it broke")["id"])
    assert job["status"] == "failed" and job["error"] == "it broke" and job["result"] is None
    (attempt,) = client.get(f"/v1/jobs/{job['id']}/attempts", headers=alice).json()["items"]
    assert attempt["outcome"] == "failed"


def test_long_poll_times_out_on_an_unfinished_job(make_client, auth):
    client = make_client(job_lease_seconds=0.3)
    alice = auth("alice")
    blocker = submit(client, alice, "sleep", ms=60_000)
    still = settle(client, alice, blocker["id"], wait=0.2)
    assert still["status"] in {"queued", "running"}
    assert client.post(f"/v1/jobs/{blocker['id']}/cancel", headers=alice).status_code == 200
    assert settle(client, alice, blocker["id"])["status"] == "cancelled"


def test_cancel_queued_job_behind_a_long_one(make_client, auth, poll):
    client = make_client(inline_concurrency=1, job_lease_seconds=0.3)
    alice = auth("alice")
    blocker = submit(client, alice, "sleep", ms=60_000)
    poll(lambda: status_of(client, alice, blocker["id"]) == "running", what="blocker running")
    queued = submit(client, alice, "echo", message="never")
    assert status_of(client, alice, queued["id"]) == "queued"

    cancelled = client.post(f"/v1/jobs/{queued['id']}/cancel", headers=alice)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["cancelRequested"]

    client.post(f"/v1/jobs/{blocker['id']}/cancel", headers=alice)
    assert settle(client, alice, blocker["id"])["status"] == "cancelled"
    # The freed pool thread reaches the cancelled job's message: it must not run it.
    registry: Registry = client.app.state.registry
    poll(lambda: registry.count_by_status()[Status.QUEUED] == 0, what="queue drained")
    never = settle(client, alice, queued["id"])
    assert never["status"] == "cancelled" and never["attempts"] == 0 and never["result"] is None
    assert client.get(f"/v1/jobs/{queued['id']}/attempts", headers=alice).json()["items"] == []


def test_cancel_running_sleep_ends_cancelled(make_client, auth, poll):
    client = make_client(job_lease_seconds=0.3)
    alice = auth("alice")
    job = submit(client, alice, "sleep", ms=60_000)
    poll(lambda: status_of(client, alice, job["id"]) == "running", what="sleep running")

    flagged = client.post(f"/v1/jobs/{job['id']}/cancel", headers=alice)
    assert flagged.status_code == 200
    assert flagged.json()["cancelRequested"] is True
    assert flagged.json()["status"] in {"running", "cancelled"}

    done = settle(client, alice, job["id"])
    assert done["status"] == "cancelled" and done["error"] == "cancelled"
    assert done["attempts"] == 1
    (attempt,) = client.get(f"/v1/jobs/{job['id']}/attempts", headers=alice).json()["items"]
    assert attempt["outcome"] == "cancelled"


def test_cancel_of_finished_job_is_409(client, auth):
    alice = auth("alice")
    job = settle(client, alice, submit(client, alice, "echo", message="x")["id"])
    response = client.post(f"/v1/jobs/{job['id']}/cancel", headers=alice)
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["job"]["status"] == "succeeded"
    assert client.post("/v1/jobs/no-such-job/cancel", headers=alice).status_code == 404


def test_list_filters_by_status_and_pages(client, auth):
    alice, bob = auth("alice"), auth("bob")
    ok = [submit(client, alice, "echo", message=str(i))["id"] for i in range(5)]
    bad = [submit(client, alice, "fail", message=str(i))["id"] for i in range(2)]
    submit(client, bob, "echo", message="bob's")
    for job_id in ok + bad:
        assert settle(client, alice, job_id)["status"] in TERMINAL

    pages, token = [], None
    while True:
        params = {"status": "succeeded", "limit": 2, **({"pageToken": token} if token else {})}
        body = client.get("/v1/jobs", params=params, headers=alice).json()
        pages.append(body["items"])
        token = body["nextPageToken"]
        if token is None:
            break
    assert [len(page) for page in pages] == [2, 2, 1]
    items = [job for page in pages for job in page]
    assert sorted(job["id"] for job in items) == sorted(ok)
    assert all(job["status"] == "succeeded" and job["owner"] == "alice" for job in items)
    keys = [(job["createdAt"], job["id"]) for job in items]
    assert keys == sorted(keys, reverse=True), "newest first"

    failed = client.get("/v1/jobs", params={"status": "failed"}, headers=alice).json()
    assert sorted(job["id"] for job in failed["items"]) == sorted(bad)
    assert failed["nextPageToken"] is None
    everything = client.get("/v1/jobs", params={"limit": 500}, headers=alice).json()["items"]
    assert len(everything) == 7
    assert client.get("/v1/jobs", params={"status": "queued"}, headers=alice).json() == {
        "items": [],
        "nextPageToken": None,
    }


def test_tools_are_listed_with_schemas(client, auth):
    body = client.get("/v1/tools", headers=auth("alice", ["viewer"])).json()
    by_name = {tool["name"]: tool for tool in body["items"]}
    assert set(by_name) >= {"echo", "sleep", "cpu", "fail"}
    for name in ("echo", "sleep", "cpu", "fail"):
        assert by_name[name]["description"]
        assert by_name[name]["inputSchema"]["type"] == "object"
    assert by_name["sleep"]["inputSchema"]["required"] == ["ms"]
    assert by_name["cpu"]["inputSchema"]["required"] == ["size"]


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["jobBackend"] == "inline"
    assert body["checks"]["registry"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def test_metrics_count_every_finished_job(client, auth, open_same_registry, new_job):
    alice, n = auth("alice"), 6
    for i in range(n):
        assert settle(client, alice, submit(client, alice, "echo", message=str(i))["id"])[
            "status"
        ] == ("succeeded")
    assert settle(client, alice, submit(client, alice, "fail")["id"])["status"] == "failed"

    scrape = client.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    found = samples(scrape.text)
    echo = frozenset({("tool", "echo")})
    assert found[("mcp_bridge_job_runtime_seconds_count", echo)] == n
    assert found[("mcp_bridge_job_queue_wait_seconds_count", echo)] == n
    assert found[("mcp_bridge_jobs_submitted_total", echo)] == n
    succeeded = frozenset({("tool", "echo"), ("status", "succeeded")})
    assert found[("mcp_bridge_jobs_finished_total", succeeded)] == n
    failed = frozenset({("tool", "fail"), ("status", "failed")})
    assert found[("mcp_bridge_jobs_finished_total", failed)] == 1
    assert found[("mcp_bridge_queue_depth", frozenset())] == 0
    assert any(name == "mcp_bridge_http_request_duration_seconds_count" for name, _ in found)

    # A job finished by another process on the shared registry reaches the next scrape.
    other = open_same_registry()
    job = other.insert(new_job(tool="cpu", arguments={"size": 1}))
    other.finish(other.claim(job.id, "elsewhere", 30), Status.SUCCEEDED, {"size": 1})
    again = samples(client.get("/metrics").text)
    assert again[("mcp_bridge_job_runtime_seconds_count", frozenset({("tool", "cpu")}))] == 1
    assert again[("mcp_bridge_job_runtime_seconds_count", echo)] == n


def test_body_over_limit_is_413(make_client, auth):
    client = make_client(max_body_bytes=2048)
    alice = auth("alice")
    big = json.dumps({"tool": "echo", "arguments": {"message": "x" * 4096}}).encode()
    declared = client.post(
        "/v1/jobs", content=big, headers={**alice, "Content-Type": "application/json"}
    )
    assert declared.status_code == 413
    assert declared.headers["content-type"].startswith("application/problem+json")

    def chunks():
        for start in range(0, len(big), 512):
            yield big[start : start + 512]

    streamed = client.post(
        "/v1/jobs", content=chunks(), headers={**alice, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    small = json.dumps({"tool": "echo", "arguments": {"message": "x" * 1500}}).encode()
    fits = client.post(
        "/v1/jobs", content=small, headers={**alice, "Content-Type": "application/json"}
    )
    assert fits.status_code == 202
    assert client.get("/v1/jobs", headers=alice).json()["items"][0]["id"] == fits.json()["id"]


JSON = {"Content-Type": "application/json"}
MALFORMED = [
    ("post", "/v1/jobs", {"content": b"{not json", "headers": JSON}, 400),
    ("post", "/v1/jobs", {"content": b"", "headers": JSON}, 400),
    ("post", "/v1/jobs", {"content": b"\xff\xfe\x00", "headers": JSON}, 400),
    ("post", "/v1/jobs", {"json": ["echo"]}, 422),
    ("post", "/v1/jobs", {"json": "echo"}, 422),
    ("post", "/v1/jobs", {"content": b"null", "headers": JSON}, 422),
    ("post", "/v1/jobs", {"json": {}}, 422),
    ("post", "/v1/jobs", {"json": {"tool": "echo", "extra": 1}}, 422),
    ("post", "/v1/jobs", {"json": {"tool": 5}}, 422),
    ("post", "/v1/jobs", {"json": {"tool": ""}}, 422),
    ("post", "/v1/jobs", {"json": {"tool": "echo", "arguments": []}}, 422),
    ("post", "/v1/jobs", {"json": {"tool": "nope", "arguments": {}}}, 422),
    ("post", "/v1/jobs", {"json": {"tool": "sleep", "arguments": {}}}, 422),
    ("post", "/v1/jobs", {"json": {"tool": "sleep", "arguments": {"ms": -1}}}, 422),
    ("post", "/v1/jobs", {"json": {"tool": "sleep", "arguments": {"ms": "5"}}}, 422),
    ("post", "/v1/jobs", {"json": {"tool": "sleep", "arguments": {"ms": 10**9}}}, 422),
    ("post", "/v1/jobs", {"json": {"tool": "echo", "arguments": {"x": 1}}}, 422),
    (
        "post",
        "/v1/jobs",
        {"content": b'{"tool":"sleep","arguments":{"ms":NaN}}', "headers": JSON},
        400,
    ),
    (
        "post",
        "/v1/jobs",
        {"content": b'{"tool":"sleep","arguments":{"ms":1e999}}', "headers": JSON},
        400,
    ),
    ("post", "/v1/jobs", {"content": b"tool=echo", "headers": {"Content-Type": "text/plain"}}, 415),
    ("get", "/v1/jobs/x", {"params": {"wait": "-1"}}, 400),
    ("get", "/v1/jobs/x", {"params": {"wait": "soon"}}, 400),
    ("get", "/v1/jobs", {"params": {"limit": "0"}}, 400),
    ("get", "/v1/jobs", {"params": {"limit": "501"}}, 400),
    ("get", "/v1/jobs", {"params": {"limit": "1e3"}}, 400),
    ("get", "/v1/jobs", {"params": {"status": "bogus"}}, 400),
    ("get", "/v1/jobs", {"params": {"pageToken": "!!!"}}, 400),
    ("get", "/v1/jobs", {"params": {"pageToken": "bm90LWEtdG9rZW4="}}, 400),
    ("get", "/v1/jobs/does-not-exist", {}, 404),
    ("delete", "/v1/jobs", {}, 405),
    ("get", "/v1/nothing-here", {}, 404),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "expected"),
    MALFORMED,
    ids=[f"{i}-{m[0]}-{m[3]}" for i, m in enumerate(MALFORMED)],
)
def test_malformed_requests_get_a_problem_not_a_5xx(client, auth, method, path, kwargs, expected):
    kwargs = dict(kwargs)  # the table is shared by every parametrisation (one per registry)
    headers = {**auth("alice"), **kwargs.pop("headers", {})}
    response = client.request(method.upper(), path, headers=headers, **kwargs)
    assert response.status_code == expected, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == expected and problem["detail"]
    assert client.get("/v1/jobs", headers=auth("alice")).json()["items"] == []


def test_bad_idempotency_key_character_is_400(client, auth):
    headers = {**auth("alice"), "Idempotency-Key": "bell\x07"}
    response = client.post("/v1/jobs", json={"tool": "echo"}, headers=headers)
    assert response.status_code == 400


def test_lone_surrogate_escape_is_a_4xx_not_a_500(client, auth):
    """JSON allows the escape \\ud800, but it is no Unicode text: refuse it, don't crash."""
    body = b'{"tool": "echo", "arguments": {"message": "\\ud800"}}'
    response = client.post("/v1/jobs", content=body, headers={**auth("alice"), **JSON})
    assert 400 <= response.status_code < 500, response.text


def test_deeply_nested_json_is_a_4xx_not_a_500(client, auth):
    body = b"[" * 100_000 + b"]" * 100_000
    response = client.post("/v1/jobs", content=body, headers={**auth("alice"), **JSON})
    assert 400 <= response.status_code < 500, response.text


def test_integral_float_accepted_by_the_schema_runs(client, auth):
    """JSON Schema's "integer" accepts 2.0; once accepted (202), cpu must run it, not crash."""
    alice = auth("alice")
    response = client.post(
        "/v1/jobs", json={"tool": "cpu", "arguments": {"size": 2.0}}, headers=alice
    )
    if response.status_code == 422:
        return  # refusing it up front is fine too
    assert response.status_code == 202
    job = settle(client, alice, response.json()["id"])
    assert job["status"] == "succeeded", job["error"]
