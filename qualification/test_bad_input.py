"""§4 bad input: every malformed request is answered with a 4xx problem+json naming what is
wrong, never a 5xx, and never leaves a job behind in the registry."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from .drivers import Problem, Reply, Target
from .drivers.base import OMIT

# Every case asserts that no job was left behind: the caller's job count before and after (each
# bad request is sent as the client's default caller, so a job it created would be theirs).
pytestmark = [pytest.mark.input, pytest.mark.needs("own-jobs")]

DEFAULT_MAX_BODY = 1_048_576  # MAX_BODY_BYTES's default (the shared target does not set it)
REQUEST_SECONDS = 30
#: Any client error except those that would mean the request never reached validation
#: (an auth or routing mistake in the check itself).
CLIENT_ERROR = frozenset(range(400, 500)) - {401, 403, 404, 405}
NOT_FOUND = frozenset({404})
TOO_LARGE = frozenset({413})


def _json(data: Any) -> bytes:
    return json.dumps(data).encode()


@dataclass(frozen=True)
class Case:
    """One bad request of `operation`; `job` "existing" is a job of the caller, "unknown" is not."""

    id: str
    body: bytes | None = None  # raw bytes, or:
    submission: dict[str, Any] | None = None  # Client.submission's arguments (OMIT: left out)
    operation: str = "submit"
    job: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/json"  # sent with a body
    chunked: bool = False
    fault: str | None = None  # the field the problem must name (in its fields or detail)
    statuses: frozenset[int] = CLIENT_ERROR


OVERSIZED_MESSAGE = "a" * DEFAULT_MAX_BODY
ECHO = {"tool": "echo", "arguments": {"message": "hi"}}

CASES = [
    # bytes that are no JSON object at all: wrong whatever the target's body schema
    Case("malformed-json", b'{"tool": "echo", "arguments": {', fault="body"),
    Case("empty-body", b"", fault="body"),
    Case("non-object-body", _json([{"tool": "echo", "arguments": {}}]), fault="body"),
    Case("nan-literal", b'{"tool": "sleep", "arguments": {"ms": NaN}}', fault="body"),
    Case("non-utf8-body", b'{"tool": "echo", "arguments": {"message": "\xff\xfe"}}', fault="body"),
    Case("lone-surrogate", b'{"tool": "echo", "arguments": {"message": "\\ud800"}}'),
    Case("deeply-nested-json", b"[" * 100_000 + b"]" * 100_000, fault="body"),
    # submissions in the target's own wire (Client.submission), wrong in what they say
    Case("missing-tool", submission={"tool": OMIT, "arguments": {"message": "hi"}}, fault="tool"),
    Case("tool-not-string", submission={"tool": 42, "arguments": {}}, fault="tool"),
    Case("tool-empty", submission={"tool": "", "arguments": {}}, fault="tool"),
    Case("unknown-tool", submission={"tool": "rm -rf /", "arguments": {}}, fault="tool"),
    Case(
        "arguments-not-object", submission={"tool": "echo", "arguments": ["hi"]}, fault="arguments"
    ),
    Case("sleep-ms-negative", submission={"tool": "sleep", "arguments": {"ms": -1}}, fault="ms"),
    Case("sleep-ms-string", submission={"tool": "sleep", "arguments": {"ms": "x"}}, fault="ms"),
    Case("sleep-ms-missing", submission={"tool": "sleep", "arguments": {}}, fault="ms"),
    Case("sleep-ms-over-max", submission={"tool": "sleep", "arguments": {"ms": 10**9}}, fault="ms"),
    Case(
        "unknown-argument",
        submission={"tool": "echo", "arguments": {"message": "hi", "shell": "id"}},
        fault="shell",
    ),
    Case(
        "unknown-top-level-field",
        submission={"tool": "echo", "arguments": {}, "priority": 9},
        fault="priority",
    ),
    Case("huge-integer", b'{"tool": "sleep", "arguments": {"ms": ' + b"9" * 5000 + b"}}"),
    Case(
        "body-over-limit",
        submission={"tool": "echo", "arguments": {"message": OVERSIZED_MESSAGE}},
        statuses=TOO_LARGE,
    ),
    Case(
        "body-over-limit-chunked",
        submission={"tool": "echo", "arguments": {"message": OVERSIZED_MESSAGE}},
        chunked=True,
        statuses=TOO_LARGE,
    ),
    Case("wrong-content-type", submission=ECHO, content_type="text/plain"),
    Case("form-content-type", b"tool=echo", content_type="application/x-www-form-urlencoded"),
    Case(
        "idempotency-key-too-long",
        submission={**ECHO, "idempotency_key": "k" * 256},
        fault="idempotencyKey",
    ),
    Case(
        "bad-page-token",
        operation="list",
        params={"pageToken": "bm90LWEtdG9rZW4"},
        fault="pageToken",
    ),
    Case("bad-status-filter", operation="list", params={"status": "done"}, fault="status"),
    Case("bad-limit", operation="list", params={"limit": 0}, fault="limit"),
    Case("wait-negative", operation="get", job="existing", params={"wait": -1}, fault="wait"),
    Case(
        "wait-not-a-number",
        operation="get",
        job="existing",
        params={"wait": "soon"},
        fault="wait",
    ),
    Case("unknown-job-id", operation="get", job="unknown", statuses=NOT_FOUND),
    Case("unknown-job-attempts", operation="attempts", job="unknown", statuses=NOT_FOUND),
    Case("cancel-unknown-job", operation="cancel", job="unknown", statuses=NOT_FOUND),
]
#: What a case's operation asks of the target beyond submit, get and cancel.
NEEDS = {"list": "list-jobs", "attempts": "attempts-endpoint"}
PARAMS = [
    pytest.param(
        case,
        id=case.id,
        marks=[pytest.mark.needs(NEEDS[case.operation])] if case.operation in NEEDS else [],
    )
    for case in CASES
]


@pytest.fixture(scope="module")
def existing_job(shared_target: Target) -> str:
    job_id = shared_target.client.submit_ok("echo", {"message": "existing"})
    shared_target.client.wait_terminal([job_id], timeout=30)
    return job_id


def _send(t: Target, case: Case, job_id: str) -> tuple[dict[str, Any], Reply]:
    job = {"existing": job_id, "unknown": str(uuid.uuid4()), None: None}[case.job]
    headers = dict(case.headers)
    body = case.body
    if case.submission is not None:
        parts = t.client.submission(**case.submission)
        headers.update(parts.get("headers") or {})
        body = json.dumps(parts["json"]).encode()  # sent as bytes: the case's content type
    if case.content_type is not None and body is not None:
        headers["Content-Type"] = case.content_type
    content: bytes | Iterator[bytes] | None = body
    if case.chunked and body is not None:
        content = iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
    reply = t.client.request(
        case.operation,
        job_id=job,
        headers=headers,
        content=content,
        params=case.params,
        timeout=REQUEST_SECONDS,
    )
    sent = {
        "operation": case.operation,
        "jobId": job,
        "params": case.params,
        "headers": headers,
        "bodyBytes": None if body is None else len(body),
        "bodyHead": None if body is None else repr(body[:200]),
        "chunked": case.chunked,
    }
    return sent, reply


def _names(problem: Problem, name: str) -> bool:
    """Does the problem name `name` as a word of one of its fields or of its detail?"""
    word = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])", re.IGNORECASE)
    return any(word.search(text) for text in [*problem.fields, problem.detail])


@pytest.mark.parametrize("case", PARAMS)
@pytest.mark.check(
    "input.malformed",
    section="4",
    title="Malformed requests get a 4xx problem+json naming the fault and create no job",
)
def test_malformed_request(shared_target, existing_job, case, evidence):
    t = shared_target
    jobs_before = t.observer.own_job_count()
    sent, reply = _send(t, case, existing_job)
    jobs_after = t.observer.own_job_count()
    problem = reply.problem
    evidence.attach_json(
        "exchange.json",
        {
            "request": sent,
            "response": {
                "status": reply.status,
                "headers": dict(reply.headers),
                "body": reply.body if reply.body is not None else reply.text[:2000],
                "transportError": reply.transport_error,
            },
        },
    )
    named = problem is not None and case.fault is not None and _names(problem, case.fault)
    evidence.measure(problemType=problem.kind if problem else None)
    evidence.expect("status", reply.status, "in", sorted(case.statuses), note="never 5xx")
    # the target's documented error envelope (ours: problem+json with its members)
    envelope = problem is not None and problem.well_formed
    evidence.expect("problemMembers", envelope, "==", True, note=reply.text[:300])
    well_formed = (
        envelope
        and problem.status == reply.status
        and all((problem.kind, problem.title, problem.detail))
    )
    evidence.expect("problemWellFormed", well_formed, "==", True, note=str(problem)[:300])
    if case.fault:
        evidence.expect("faultNamed", named, "==", True, note=f"the problem names {case.fault!r}")
    evidence.expect("rowsAdded", jobs_after - jobs_before, "==", 0)
