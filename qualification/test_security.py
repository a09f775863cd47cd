"""§4 security: bearer tokens are verified (expiry, signature, algorithm), roles are enforced, a
caller sees only their own jobs, and production refuses the development secret."""

from __future__ import annotations

import base64
import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from .stack import launch
from .stack.bridge import BridgeStack

pytestmark = pytest.mark.security

PROBLEM_JSON = "application/problem+json"


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    request = response.request
    assert response.status_code == status, (
        f"{request.method} {request.url.path} answered {response.status_code}, "
        f"expected {status}: {response.text[:300]}"
    )
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == status, body
    return body


def _assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    body = _assert_problem(response, 401)
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.lower().startswith("bearer"), f"WWW-Authenticate: {challenge!r}"
    return body


def _statuses(calls: dict[str, httpx.Response]) -> dict[str, int]:
    return {call: response.status_code for call, response in calls.items()}


def _refused_everywhere(bridge: BridgeStack, token: str, job_id: str) -> dict[str, int]:
    """Read, list, submit and cancel with `token`: each must be 401 and nothing may be written."""
    rows = len(bridge.registry_rows())
    headers = bridge.headers(token)
    calls = {
        "GET /v1/jobs": bridge.http.get("/v1/jobs", headers=headers),
        "GET /v1/jobs/{id}": bridge.http.get(f"/v1/jobs/{job_id}", headers=headers),
        "POST /v1/jobs": bridge.submit("echo", {"message": "forged"}, token=token),
        "POST /v1/jobs/{id}/cancel": bridge.http.post(f"/v1/jobs/{job_id}/cancel", headers=headers),
    }
    for response in calls.values():
        _assert_unauthorized(response)
    assert len(bridge.registry_rows()) == rows, "a refused token created a job"
    return _statuses(calls)


def _each_refused_everywhere(
    bridge: BridgeStack, tokens: dict[str, str], job_id: str, evidence
) -> None:
    """`_refused_everywhere` for each named token, recorded as `statuses`."""
    statuses = {name: _refused_everywhere(bridge, token, job_id) for name, token in tokens.items()}
    evidence.measure(statuses=statuses)


@pytest.fixture(scope="module")
def bridge(shared_stack: BridgeStack) -> BridgeStack:
    """The module's shared stack (API + one worker)."""
    return shared_stack


@pytest.fixture(scope="module")
def finished_job(bridge: BridgeStack) -> str:
    """A job owned by the stack's default subject, already terminal."""
    job_id = bridge.submit_ok("echo", {"message": "mine"})
    bridge.wait_terminal([job_id])
    return job_id


@pytest.mark.check(
    "security.missing-token",
    section="4",
    title="No bearer token: 401 problem+json with a WWW-Authenticate challenge",
)
def test_missing_token(bridge, finished_job, evidence):
    rows = len(bridge.registry_rows())
    calls = {
        "GET /v1/jobs": bridge.http.get("/v1/jobs"),
        "GET /v1/jobs/{id}": bridge.http.get(f"/v1/jobs/{finished_job}"),
        "GET /v1/jobs/{id}/attempts": bridge.http.get(f"/v1/jobs/{finished_job}/attempts"),
        "GET /v1/tools": bridge.http.get("/v1/tools"),
        "POST /v1/jobs": bridge.http.post("/v1/jobs", json={"tool": "echo", "arguments": {}}),
        "POST /v1/jobs/{id}/cancel": bridge.http.post(f"/v1/jobs/{finished_job}/cancel"),
        "POST /v1/jobs (Basic auth)": bridge.http.post(
            "/v1/jobs",
            json={"tool": "echo", "arguments": {}},
            headers={"Authorization": "Basic cXVhbDpxdWFs"},
        ),
        "POST /v1/jobs (Bearer, no token)": bridge.http.post(
            "/v1/jobs", json={"tool": "echo", "arguments": {}}, headers={"Authorization": "Bearer"}
        ),
    }
    evidence.attach_json(
        "responses.json",
        {
            call: {"status": r.status_code, "headers": dict(r.headers), "body": r.text}
            for call, r in calls.items()
        },
    )
    evidence.measure(
        statuses=_statuses(calls),
        rowsAdded=len(bridge.registry_rows()) - rows,
    )
    for response in calls.values():
        _assert_unauthorized(response)
    assert len(bridge.registry_rows()) == rows
    # Control: the same job is readable with a token, so the 401s above are about the token.
    assert bridge.http.get(f"/v1/jobs/{finished_job}", headers=bridge.headers()).status_code == 200


@pytest.mark.check(
    "security.expired-token",
    section="4",
    title="An expired token is refused with 401 on every job route",
)
def test_expired_token(bridge, finished_job, evidence):
    expired = bridge.token(exp=int(time.time()) - 60, roles=("operator", "admin"))
    fresh = bridge.token(exp=int(time.time()) + 60, roles=("operator",))
    statuses = _refused_everywhere(bridge, expired, finished_job)
    control = bridge.http.get(f"/v1/jobs/{finished_job}", headers=bridge.headers(fresh))
    evidence.measure(expiredStatuses=statuses, freshTokenStatus=control.status_code)
    assert control.status_code == 200, control.text


@pytest.mark.check(
    "security.tampered-token",
    section="4",
    title="A token altered after signing, or signed with another secret, is refused",
)
def test_tampered_token(bridge, finished_job, evidence):
    genuine = bridge.token(subject="qualification", roles=("viewer",))
    # control: the genuine token, which every case below is derived from, is accepted
    control = bridge.http.get("/v1/jobs", headers=bridge.headers(genuine))
    evidence.measure(genuineTokenStatus=control.status_code)
    assert control.status_code == 200, control.text
    header, payload, signature = genuine.split(".")
    claims = _unb64(payload)
    escalated = f"{header}.{_b64({**claims, 'roles': ['operator', 'admin']})}.{signature}"
    other_subject = f"{header}.{_b64({**claims, 'sub': 'someone-else'})}.{signature}"
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0xFF
    flipped = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    forged_signature = f"{header}.{payload}.{flipped}"
    other_secret = bridge.token(roles=("operator", "admin"), secret=secrets.token_urlsafe(32))
    cases = {
        "payload-roles-escalated": escalated,
        "payload-subject-changed": other_subject,
        "signature-altered": forged_signature,
        "signed-with-another-secret": other_secret,
    }
    _each_refused_everywhere(bridge, cases, finished_job, evidence)


@pytest.mark.check(
    "security.alg-none",
    section="4",
    title="An unsigned token (alg: none) claiming operator/admin is refused with 401",
)
def test_alg_none(bridge, finished_job, evidence):
    claims = {"sub": "mallory", "roles": ["operator", "admin"], "exp": int(time.time()) + 600}
    hs256_header = bridge.token().split(".")[0]
    cases = {
        "alg-none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "alg-None": f"{_b64({'alg': 'None', 'typ': 'JWT'})}.{_b64(claims)}.",
        "alg-NONE": f"{_b64({'alg': 'NONE'})}.{_b64(claims)}.",
        "pyjwt-none": jwt.encode(claims, None, algorithm="none"),
        "hs256-header-no-signature": f"{hs256_header}.{_b64(claims)}.",
    }
    evidence.attach_json("tokens.json", cases)
    _each_refused_everywhere(bridge, cases, finished_job, evidence)
    # mallory never became anyone: no job of hers exists
    assert not [row for row in bridge.registry_rows() if row["owner"] == "mallory"]


@pytest.mark.check(
    "security.wrong-role",
    section="4",
    title="A viewer, or a token with no known role, cannot submit or cancel (403)",
)
def test_wrong_role(bridge, finished_job, evidence):
    viewer = bridge.token(roles=("viewer",))
    unknown = bridge.token(roles=("superuser", "root"))
    no_roles = bridge.token(roles=())
    rows = len(bridge.registry_rows())
    calls = {
        "viewer POST /v1/jobs": bridge.submit("echo", {"message": "x"}, token=viewer),
        "viewer POST cancel": bridge.http.post(
            f"/v1/jobs/{finished_job}/cancel", headers=bridge.headers(viewer)
        ),
        "unknown-role POST /v1/jobs": bridge.submit("echo", {"message": "x"}, token=unknown),
        "unknown-role GET /v1/jobs": bridge.http.get("/v1/jobs", headers=bridge.headers(unknown)),
        "no-role POST /v1/jobs": bridge.submit("echo", {"message": "x"}, token=no_roles),
        "no-role GET /v1/jobs/{id}": bridge.http.get(
            f"/v1/jobs/{finished_job}", headers=bridge.headers(no_roles)
        ),
    }
    viewer_read = bridge.http.get(f"/v1/jobs/{finished_job}", headers=bridge.headers(viewer))
    evidence.measure(
        statuses=_statuses(calls),
        viewerReadOwnJob=viewer_read.status_code,
        rowsAdded=len(bridge.registry_rows()) - rows,
    )
    for response in calls.values():
        _assert_problem(response, 403)
    assert len(bridge.registry_rows()) == rows, "a refused role created a job"
    assert viewer_read.status_code == 200, "a viewer may read their own job"


@pytest.mark.check(
    "security.isolation",
    section="4",
    title="Subject B cannot read, list or cancel subject A's job; an admin can",
)
def test_isolation(bridge, evidence):
    # owner: the default subject ("A"); it holds until B's calls are done, so B's cancel meets
    # a running job with certainty
    latch = bridge.latch()
    job_id = bridge.submit_ok("latch", latch.arguments())
    latch.wait_held(job_id, bridge.deadlines.jobs())
    bob = bridge.token(subject="bob", roles=("operator",))
    admin = bridge.token(subject="root", roles=("admin",))
    bob_h, admin_h = bridge.headers(bob), bridge.headers(admin)
    missing = bridge.http.get(f"/v1/jobs/{secrets.token_hex(8)}", headers=bob_h)
    bob_calls = {
        "GET /v1/jobs/{id}": bridge.http.get(f"/v1/jobs/{job_id}", headers=bob_h),
        "GET /v1/jobs/{id}/attempts": bridge.http.get(f"/v1/jobs/{job_id}/attempts", headers=bob_h),
        "POST /v1/jobs/{id}/cancel": bridge.http.post(f"/v1/jobs/{job_id}/cancel", headers=bob_h),
    }
    bob_lists = [
        bridge.http.get("/v1/jobs", params=params, headers=bob_h).json()
        for params in ({"limit": 500}, {"status": "queued"}, {"status": "running"})
    ]
    admin_read = bridge.http.get(f"/v1/jobs/{job_id}", headers=admin_h)
    admin_list = bridge.http.get("/v1/jobs", params={"limit": 500}, headers=admin_h).json()
    latch.release()
    job = bridge.wait_terminal([job_id])[job_id]
    bob_sees = sorted({item["id"] for page in bob_lists for item in page["items"]})
    evidence.attach_json(
        "bob-responses.json",
        {call: r.json() for call, r in bob_calls.items()} | {"lists": bob_lists},
    )
    evidence.measure(
        bobStatuses=_statuses(bob_calls),
        jobInBobsLists=job_id in bob_sees,
        adminReadStatus=admin_read.status_code,
        jobInAdminList=job_id in {item["id"] for item in admin_list["items"]},
        finalStatus=job["status"],
        cancelRequested=job["cancelRequested"],
    )
    for response in bob_calls.values():
        body = _assert_problem(response, 404)
        assert body["type"] == missing.json()["type"], "404 differs from an unknown id's"
    assert job_id not in bob_sees
    assert admin_read.status_code == 200 and admin_read.json()["owner"] == job["owner"]
    assert job_id in {item["id"] for item in admin_list["items"]}
    assert job["status"] == "succeeded" and job["cancelRequested"] is False


# -- production secrets: the API process alone, no Redis, no stack -----------------------------


def _production_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """ENVIRONMENT=production, inline jobs and a registry under `tmp_path`, plus `settings`."""
    registry = str(tmp_path / "var" / "jobs" / "registry.db")
    defaults = {"PYTHONUNBUFFERED": "1", "JOB_BACKEND": "inline", "JOB_REGISTRY_PATH": registry}
    return launch.shell_env(defaults, {"ENVIRONMENT": "production"}, settings)


def _status_with_token(url: str, secret: str) -> int:
    """`GET /v1/tools` with a viewer token signed with `secret`."""
    claims = {"sub": "ops", "roles": ["viewer"], "exp": int(time.time()) + 60}
    token = jwt.encode(claims, secret, algorithm="HS256")
    return httpx.get(f"{url}/v1/tools", headers={"Authorization": f"Bearer {token}"}).status_code


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.check(
    "security.production-dev-secret",
    section="4",
    title="ENVIRONMENT=production refuses AUTH_DEV_SECRET and a short AUTH_SECRET; 32 bytes starts",
)
def test_production_refuses_dev_secret(tmp_path, evidence):
    good_secret = secrets.token_hex(16)  # 32 bytes
    assert len(good_secret.encode()) == 32
    refused_cases = {
        "dev-secret-set": (
            "AUTH_DEV_SECRET",
            {"AUTH_DEV_SECRET": "dev-secret", "AUTH_SECRET": secrets.token_hex(32)},
        ),
        "auth-secret-31-bytes": ("AUTH_SECRET", {"AUTH_SECRET": good_secret[:31]}),
    }
    refused = {
        name: launch.api(name, _production_env(tmp_path, **env), tmp_path / name)
        for name, (_, env) in refused_cases.items()
    }
    accepted = launch.api(
        "auth-secret-32-bytes",
        _production_env(tmp_path, AUTH_SECRET=good_secret),
        tmp_path / "accepted",
    )
    everyone = [*refused.values(), accepted]
    try:
        launch.settle(everyone)
        probes: dict[str, int] = {}
        if accepted.started:
            probes["tokenSignedWithAuthSecret"] = _status_with_token(accepted.url, good_secret)
            probes["devToken"] = _status_with_token(accepted.url, "dev-secret")
    finally:
        exits = {proc.name: proc.stop() for proc in everyone}
    results = {name: proc.refusal() for name, proc in refused.items()}
    for proc in everyone:
        evidence.attach(proc.log_path)
    evidence.measure(
        refused={
            name: {k: r[k] for k in ("started", "exitCode", "traceback")} | {"message": r["lines"]}
            for name, r in results.items()
        },
        thirtyTwoByteSecretStarted=accepted.started,
        thirtyTwoByteProbes=probes,
        thirtyTwoByteExitOnSigterm=exits[accepted.name],
    )
    for name, (variable, _) in refused_cases.items():
        launch.assert_refused(name, results[name], variable)
    assert accepted.started, f"32-byte AUTH_SECRET refused: {accepted.output()}"
    assert probes == {"tokenSignedWithAuthSecret": 200, "devToken": 401}
