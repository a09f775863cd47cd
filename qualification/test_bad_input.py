"""§4 bad input: every malformed request is answered with a 4xx problem+json naming what is
wrong, never a 5xx, and never leaves a job behind in the registry."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from .stack.bridge import BridgeStack

pytestmark = pytest.mark.input

PROBLEM_JSON = "application/problem+json"
PROBLEM_MEMBERS = {"type", "title", "status", "detail"}
DEFAULT_MAX_BODY = 1_048_576  # MAX_BODY_BYTES's default (the shared stack does not set it)
#: Any client error except those that would mean the request never reached validation
#: (an auth or routing mistake in the check itself).
CLIENT_ERROR = frozenset(range(400, 500)) - {401, 403, 404, 405}
NOT_FOUND = frozenset({404})
TOO_LARGE = frozenset({413})


def _json(data: Any) -> bytes:
    return json.dumps(data).encode()


@dataclass(frozen=True)
class Case:
    """One bad request. `{job}` in the path is an existing job of the caller, `{unknown}` is not."""

    id: str
    body: bytes | None = None
    method: str = "POST"
    path: str = "/v1/jobs"
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/json"
    chunked: bool = False
    fault: str | None = None  # the field the problem must name (in errors[].field or detail)
    statuses: frozenset[int] = CLIENT_ERROR


OVERSIZED = b'{"tool":"echo","arguments":{"message":"' + b"a" * DEFAULT_MAX_BODY + b'"}}'
ECHO = _json({"tool": "echo", "arguments": {"message": "hi"}})

CASES = [
    Case("malformed-json", b'{"tool": "echo", "arguments": {', fault="body"),
    Case("empty-body", b"", fault="body"),
    Case("non-object-body", _json([{"tool": "echo", "arguments": {}}]), fault="body"),
    Case("missing-tool", _json({"arguments": {"message": "hi"}}), fault="tool"),
    Case("tool-not-string", _json({"tool": 42, "arguments": {}}), fault="tool"),
    Case("tool-empty", _json({"tool": "", "arguments": {}}), fault="tool"),
    Case("unknown-tool", _json({"tool": "rm -rf /", "arguments": {}}), fault="tool"),
    Case("arguments-not-object", _json({"tool": "echo", "arguments": ["hi"]}), fault="arguments"),
    Case("sleep-ms-negative", _json({"tool": "sleep", "arguments": {"ms": -1}}), fault="ms"),
    Case("sleep-ms-string", _json({"tool": "sleep", "arguments": {"ms": "x"}}), fault="ms"),
    Case("sleep-ms-missing", _json({"tool": "sleep", "arguments": {}}), fault="ms"),
    Case("sleep-ms-over-max", _json({"tool": "sleep", "arguments": {"ms": 10**9}}), fault="ms"),
    Case(
        "unknown-argument",
        _json({"tool": "echo", "arguments": {"message": "hi", "shell": "id"}}),
        fault="shell",
    ),
    Case(
        "unknown-top-level-field",
        _json({"tool": "echo", "arguments": {}, "priority": 9}),
        fault="priority",
    ),
    Case("nan-literal", b'{"tool": "sleep", "arguments": {"ms": NaN}}', fault="body"),
    Case("non-utf8-body", b'{"tool": "echo", "arguments": {"message": "\xff\xfe"}}', fault="body"),
    Case("lone-surrogate", b'{"tool": "echo", "arguments": {"message": "\\ud800"}}'),
    Case("deeply-nested-json", b"[" * 100_000 + b"]" * 100_000, fault="body"),
    Case("huge-integer", b'{"tool": "sleep", "arguments": {"ms": ' + b"9" * 5000 + b"}}"),
    Case("body-over-limit", OVERSIZED, statuses=TOO_LARGE),
    Case("body-over-limit-chunked", OVERSIZED, chunked=True, statuses=TOO_LARGE),
    Case("wrong-content-type", ECHO, content_type="text/plain"),
    Case("form-content-type", b"tool=echo", content_type="application/x-www-form-urlencoded"),
    Case(
        "idempotency-key-too-long",
        ECHO,
        headers={"Idempotency-Key": "k" * 256},
        fault="Idempotency-Key",
    ),
    Case(
        "bad-page-token", method="GET", params={"pageToken": "bm90LWEtdG9rZW4"}, fault="pageToken"
    ),
    Case("bad-status-filter", method="GET", params={"status": "done"}, fault="status"),
    Case("bad-limit", method="GET", params={"limit": 0}, fault="limit"),
    Case("wait-negative", method="GET", path="/v1/jobs/{job}", params={"wait": -1}, fault="wait"),
    Case(
        "wait-not-a-number",
        method="GET",
        path="/v1/jobs/{job}",
        params={"wait": "soon"},
        fault="wait",
    ),
    Case("unknown-job-id", method="GET", path="/v1/jobs/{unknown}", statuses=NOT_FOUND),
    Case(
        "unknown-job-attempts", method="GET", path="/v1/jobs/{unknown}/attempts", statuses=NOT_FOUND
    ),
    Case("cancel-unknown-job", path="/v1/jobs/{unknown}/cancel", statuses=NOT_FOUND),
]


@pytest.fixture(scope="module")
def existing_job(shared_stack: BridgeStack) -> str:
    job_id = shared_stack.submit_ok("echo", {"message": "existing"})
    shared_stack.wait_terminal([job_id], timeout=30)
    return job_id


def _send(bridge: BridgeStack, case: Case, job_id: str) -> tuple[dict[str, Any], httpx.Response]:
    path = case.path.format(job=job_id, unknown=uuid.uuid4())
    headers = {**bridge.headers(), **case.headers}
    if case.content_type is not None and case.method == "POST":
        headers["Content-Type"] = case.content_type
    content: bytes | Iterator[bytes] | None = case.body
    if case.chunked and case.body is not None:
        body = case.body
        content = iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
    # A fresh connection per case: a server that drops one must not fail the next case.
    with httpx.Client(base_url=bridge.api.url, timeout=30) as client:
        response = client.request(
            case.method, path, params=case.params, headers=headers, content=content
        )
    sent = {
        "method": case.method,
        "path": path,
        "params": case.params,
        "headers": {k: v for k, v in headers.items() if k.lower() != "authorization"},
        "bodyBytes": None if case.body is None else len(case.body),
        "bodyHead": None if case.body is None else repr(case.body[:200]),
        "chunked": case.chunked,
    }
    return sent, response


def _names(body: dict[str, Any], name: str) -> bool:
    """Does the problem name `name` as a word of an `errors[].field` or of the detail?"""
    word = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])", re.IGNORECASE)
    fields = [str(e.get("field", "")) for e in body.get("errors") or [] if isinstance(e, dict)]
    return any(word.search(text) for text in [*fields, str(body.get("detail", ""))])


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
@pytest.mark.check(
    "input.malformed",
    section="4",
    title="Malformed requests get a 4xx problem+json naming the fault and create no job",
)
def test_malformed_request(shared_stack, existing_job, case, evidence):
    bridge = shared_stack
    rows_before = len(bridge.registry_rows())
    sent, response = _send(bridge, case, existing_job)
    rows_after = len(bridge.registry_rows())
    content_type = response.headers.get("content-type", "")
    try:
        body = response.json()
    except ValueError:
        body = None
    evidence.attach_json(
        "exchange.json",
        {
            "request": sent,
            "response": {
                "status": response.status_code,
                "headers": dict(response.headers),
                "body": body if body is not None else response.text[:2000],
            },
        },
    )
    named = isinstance(body, dict) and case.fault is not None and _names(body, case.fault)
    evidence.measure(problemType=body.get("type") if isinstance(body, dict) else None)
    evidence.expect("status", response.status_code, "in", sorted(case.statuses), note="never 5xx")
    evidence.expect("contentType", content_type.split(";")[0].strip(), "==", PROBLEM_JSON)
    members = sorted(body.keys()) if isinstance(body, dict) else []
    evidence.expect(
        "problemMembers", set(members) >= PROBLEM_MEMBERS, "==", True, note=str(members)
    )
    well_formed = (
        isinstance(body, dict)
        and body.get("status") == response.status_code
        and all(isinstance(body.get(k), str) and body[k] for k in ("type", "title", "detail"))
    )
    evidence.expect("problemWellFormed", well_formed, "==", True, note=str(body)[:300])
    if case.fault:
        evidence.expect("faultNamed", named, "==", True, note=f"the problem names {case.fault!r}")
    evidence.expect("rowsAdded", rows_after - rows_before, "==", 0)
