"""§4 security: bearer tokens are verified (expiry, signature, algorithm), roles are enforced, a
caller sees only their own jobs, and production refuses the development secret."""

from __future__ import annotations

import base64
import json
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

import mcp_bridge_client as wire

from .crosscheck import observer_agrees
from .drivers import ANONYMOUS, Reply, Target
from .stack import launch
from .stack.deadlines import PROBE_SECONDS

pytestmark = pytest.mark.security

#: The operations that act on jobs or tools: each must refuse a caller without valid credentials
#: (readiness, health, metrics, the OpenAPI description and MCP are not among them).
AUTHENTICATED = ("submit", "get", "list", "cancel", "attempts", "tools")
#: What a refused token tries: read, list, submit and cancel.
REFUSED_EVERYWHERE = ("list", "get", "submit", "cancel")
#: The operations that act on one job (given its id).
ON_A_JOB = frozenset({"get", "cancel", "attempts"})


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _jwt_parts(t: Target, token: str) -> tuple[str, str, str]:
    """header, payload, signature of the target's own token (skip when its tokens are opaque)."""
    parts = token.split(".")
    if len(parts) != 3:
        pytest.skip(f"target {t.name} cannot be sent a tampered token: its token is not a JWT")
    return parts[0], parts[1], parts[2]


def _served(t: Target, operations: tuple[str, ...]) -> list[str]:
    """`operations` as far as the target serves them; the checklist's submit and get at least."""
    served = [op for op in operations if op in t.client.operations]
    assert {"submit", "get"} & set(operations) <= set(served), (
        f"the target must serve submit and get; it serves {sorted(t.client.operations)}"
    )
    return served


def _assert_problem(reply: Reply, status: int) -> Reply:
    assert reply.status == status, f"{reply.describe()} (expected {status})"
    assert reply.problem is not None and reply.problem.well_formed, (
        f"not the target's error envelope: {reply.describe()}"
    )
    return reply


def _assert_unauthorized(reply: Reply) -> Reply:
    _assert_problem(reply, 401)
    challenge = reply.challenge()
    assert challenge.lower().startswith("bearer"), f"WWW-Authenticate: {challenge!r}"
    return reply


def _statuses(calls: dict[str, Reply]) -> dict[str, int | None]:
    return {call: reply.status for call, reply in calls.items()}


def _attempt(t: Target, operation: str, job_id: str, token: str) -> Reply:
    """`operation` with `token`: a new echo job for submit, on `job_id` where it takes a job."""
    if operation == "submit":
        return t.client.submit("echo", {"message": "forged"}, token=token)
    return t.client.request(
        operation, job_id=job_id if operation in ON_A_JOB else None, token=token
    )


def _refused_everywhere(t: Target, token: str, job_id: str) -> dict[str, int | None]:
    """Read, list, submit and cancel with `token`: each must be 401 and nothing may be written."""
    jobs = t.observer.job_count()
    calls = {op: _attempt(t, op, job_id, token) for op in _served(t, REFUSED_EVERYWHERE)}
    for reply in calls.values():
        _assert_unauthorized(reply)
    assert t.observer.job_count() == jobs, "a refused token created a job"
    return _statuses(calls)


def _each_refused_everywhere(t: Target, tokens: dict[str, str], job_id: str, evidence) -> None:
    """`_refused_everywhere` for each named token, recorded as `statuses`."""
    statuses = {name: _refused_everywhere(t, token, job_id) for name, token in tokens.items()}
    evidence.measure(statuses=statuses)


@pytest.fixture(scope="module")
def t(shared_target: Target) -> Target:
    """The module's shared target (API + one worker)."""
    return shared_target


@pytest.fixture(scope="module")
def finished_job(t: Target) -> str:
    """A job owned by the target's default subject, already terminal."""
    job_id = t.client.submit_ok("echo", {"message": "mine"})
    t.client.wait_terminal([job_id])
    return job_id


@pytest.mark.needs("registry")
@pytest.mark.check(
    "security.missing-token",
    section="4",
    title="No bearer token: 401 problem+json with a WWW-Authenticate challenge",
)
def test_missing_token(t, finished_job, evidence):
    jobs = t.observer.job_count()
    calls = {op: _attempt(t, op, finished_job, ANONYMOUS) for op in _served(t, AUTHENTICATED)}
    echo = {"tool": "echo", "arguments": {}}
    for name, authorization in (
        ("Basic auth", "Basic cXVhbDpxdWFs"),
        ("Bearer, no token", "Bearer"),
    ):
        calls[f"submit ({name})"] = t.client.request(
            "submit", token=ANONYMOUS, headers={"Authorization": authorization}, json=echo
        )
    evidence.attach_json(
        "responses.json",
        {
            call: {"status": r.status, "headers": dict(r.headers), "body": r.text}
            for call, r in calls.items()
        },
    )
    evidence.measure(statuses=_statuses(calls), rowsAdded=t.observer.job_count() - jobs)
    for reply in calls.values():
        _assert_unauthorized(reply)
    assert t.observer.job_count() == jobs
    # Control: the same job is readable with a token, so the 401s above are about the token.
    control = t.client.get(finished_job)
    assert control.status == 200, control.describe()


@pytest.mark.needs("mint-tokens", "registry")
@pytest.mark.check(
    "security.expired-token",
    section="4",
    title="An expired token is refused with 401 on every job route",
)
def test_expired_token(t, finished_job, evidence):
    expired = t.client.token(exp=int(time.time()) - 60, roles=("operator", "admin"))
    fresh = t.client.token(exp=int(time.time()) + 60, roles=("operator",))
    statuses = _refused_everywhere(t, expired, finished_job)
    control = t.client.get(finished_job, token=fresh)
    evidence.measure(expiredStatuses=statuses, freshTokenStatus=control.status)
    assert control.status == 200, control.describe()


@pytest.mark.needs("registry")
@pytest.mark.check(
    "security.tampered-token",
    section="4",
    title="A token altered after signing, or signed with another secret, is refused",
)
def test_tampered_token(t, finished_job, evidence):
    genuine = t.client.token()
    # control: the genuine token, which every case below is derived from, is accepted
    control = t.client.get(finished_job, token=genuine)
    evidence.measure(genuineTokenStatus=control.status)
    assert control.status == 200, control.describe()
    header, payload, signature = _jwt_parts(t, genuine)
    claims = _unb64(payload)
    escalated = f"{header}.{_b64({**claims, 'roles': ['operator', 'admin']})}.{signature}"
    other_subject = f"{header}.{_b64({**claims, 'sub': 'someone-else'})}.{signature}"
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0xFF
    flipped = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    # the genuine claims, escalated, signed with a key the target never saw
    foreign = jwt.encode(
        {**claims, "roles": ["operator", "admin"]},
        secrets.token_urlsafe(32),
        algorithm="HS256",
    )
    cases = {
        "payload-roles-escalated": escalated,
        "payload-subject-changed": other_subject,
        "signature-altered": f"{header}.{payload}.{flipped}",
        "signed-with-another-secret": foreign,
    }
    evidence.measure(casesRun=sorted(cases))
    _each_refused_everywhere(t, cases, finished_job, evidence)


@pytest.mark.needs("registry")
@pytest.mark.check(
    "security.alg-none",
    section="4",
    title="An unsigned token (alg: none) claiming operator/admin is refused with 401",
)
def test_alg_none(t, finished_job, evidence):
    claims = {"sub": "mallory", "roles": ["operator", "admin"], "exp": int(time.time()) + 600}
    hs256_header = _jwt_parts(t, t.client.token())[0]
    cases = {
        "alg-none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "alg-None": f"{_b64({'alg': 'None', 'typ': 'JWT'})}.{_b64(claims)}.",
        "alg-NONE": f"{_b64({'alg': 'NONE'})}.{_b64(claims)}.",
        "pyjwt-none": jwt.encode(claims, None, algorithm="none"),
        "hs256-header-no-signature": f"{hs256_header}.{_b64(claims)}.",
    }
    evidence.attach_json("tokens.json", cases)
    _each_refused_everywhere(t, cases, finished_job, evidence)
    # mallory never became anyone: no job of hers exists
    assert not [job for job in t.observer.jobs() if job["owner"] == "mallory"]


@pytest.mark.needs("mint-tokens", "registry")
@pytest.mark.check(
    "security.wrong-role",
    section="4",
    title="A viewer, or a token with no known role, cannot submit or cancel (403)",
)
def test_wrong_role(t, finished_job, evidence):
    viewer = t.client.token(roles=("viewer",))
    unknown = t.client.token(roles=("superuser", "root"))
    no_roles = t.client.token(roles=())
    jobs = t.observer.job_count()
    attempts = [
        ("viewer", viewer, "submit"),
        ("viewer", viewer, "cancel"),
        ("unknown-role", unknown, "submit"),
        ("unknown-role", unknown, "list"),
        ("no-role", no_roles, "submit"),
        ("no-role", no_roles, "get"),
    ]
    calls = {
        f"{who} {op}": _attempt(t, op, finished_job, token)
        for who, token, op in attempts
        if op in t.client.operations
    }
    viewer_read = t.client.get(finished_job, token=viewer)
    evidence.measure(
        statuses=_statuses(calls),
        viewerReadOwnJob=viewer_read.status,
        rowsAdded=t.observer.job_count() - jobs,
    )
    for reply in calls.values():
        _assert_problem(reply, 403)
    assert t.observer.job_count() == jobs, "a refused role created a job"
    assert viewer_read.status == 200, "a viewer may read their own job"


@pytest.mark.needs("latch", "mint-tokens", "admin-token")
@pytest.mark.check(
    "security.isolation",
    section="4",
    title="Subject B cannot read, list or cancel subject A's job; an admin can",
)
def test_isolation(t, evidence):
    # owner: the default subject ("A"); it holds until B's calls are done, so B's cancel meets
    # a running job with certainty
    latch = t.latch()
    job_id = t.client.submit_ok("latch", latch.arguments())
    latch.wait_held(job_id, t.deadlines.jobs())
    bob = t.client.token(subject="bob", roles=("operator",))
    admin = t.client.token(subject="root", roles=("admin",))
    missing = t.client.get(secrets.token_hex(8), token=bob)
    bob_calls = {
        op: t.client.request(op, job_id=job_id, token=bob)
        for op in _served(t, ("get", "attempts", "cancel"))
    }
    lists = "list" in t.client.operations
    queries = ({"limit": 500}, {"status": "queued"}, {"status": "running"})
    bob_lists = [t.client.list(token=bob, **query) for query in queries] if lists else []
    admin_read = t.client.get(job_id, token=admin)
    admin_list = t.client.list(token=admin, limit=500) if lists else None
    latch.release()
    job = t.client.wait_terminal([job_id])[job_id]
    for page in [*bob_lists, *([admin_list] if admin_list else [])]:
        assert page.status == 200 and page.jobs is not None, page.describe()
    bob_sees = sorted({item["id"] for page in bob_lists for item in page.jobs or []})
    admin_sees = {item["id"] for item in admin_list.jobs or []} if admin_list else None
    evidence.attach_json(
        "bob-responses.json",
        {call: r.body for call, r in bob_calls.items()} | {"lists": [r.body for r in bob_lists]},
    )
    evidence.measure(
        bobStatuses=_statuses(bob_calls),
        jobInBobsLists=job_id in bob_sees,
        adminReadStatus=admin_read.status,
        jobInAdminList=None if admin_sees is None else job_id in admin_sees,
        finalStatus=job["status"],
        cancelRequested=job["cancelRequested"],
    )
    assert missing.status == 404 and missing.problem is not None, missing.describe()
    for reply in bob_calls.values():
        _assert_problem(reply, 404)
        assert reply.problem.kind == missing.problem.kind, "404 differs from an unknown id's"
    assert job_id not in bob_sees
    assert admin_read.status == 200 and admin_read.job is not None, admin_read.describe()
    assert admin_read.job["owner"] == job["owner"]
    assert admin_sees is None or job_id in admin_sees
    assert job["status"] == "succeeded" and job["cancelRequested"] is False
    observer_agrees(t, {job_id: job})


# -- production secrets: the API process alone, no Redis, no stack -----------------------------


def _production_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """ENVIRONMENT=production, inline jobs and a registry under `tmp_path`, plus `settings`."""
    registry = str(tmp_path / "var" / "jobs" / "registry.db")
    defaults = {"PYTHONUNBUFFERED": "1", "JOB_BACKEND": "inline", "JOB_REGISTRY_PATH": registry}
    return launch.shell_env(defaults, {"ENVIRONMENT": "production"}, settings)


def _status_with_token(url: str, secret: str) -> int:
    """The tools operation with a viewer token signed with `secret`."""
    claims = {"sub": "ops", "roles": ["viewer"], "exp": int(time.time()) + 60}
    token = jwt.encode(claims, secret, algorithm="HS256")
    client = wire.BridgeClient(url, PROBE_SECONDS)
    try:
        return client.send(wire.request("tools", token=token)).status_code
    finally:
        client.close()


@pytest.mark.needs("commands", "configure")
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
