"""Bearer tokens and roles, through the real HTTP API."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time

import pytest

from mcp_bridge.security.simple_jwt import jwt

ECHO = {"tool": "echo", "arguments": {"message": "hi"}}
# RFC 6750 §3: a Bearer challenge is auth-params whose values (error, error_description…) are
# quoted-strings of %x20-21 / %x23-5B / %x5D-7E only: no raw quote, no backslash.
CHALLENGE = re.compile(r'Bearer realm="mcp-bridge"(, \w+="[\x20\x21\x23-\x5b\x5d-\x7e]*")*')


def b64url(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def bearer_token(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def secret_of(client) -> str:
    return client.app.state.settings.signing_secret


def assert_unauthorized(response, error: str | None = "invalid_token") -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="mcp-bridge"')
    if error is not None:
        assert f'error="{error}"' in challenge
    assert CHALLENGE.fullmatch(challenge), f"malformed WWW-Authenticate: {challenge!r}"


def test_missing_header_is_401_with_challenge(client):
    response = client.post("/v1/jobs", json=ECHO)
    assert_unauthorized(response, error=None)
    assert response.headers["www-authenticate"] == 'Bearer realm="mcp-bridge"'
    for path in ("/v1/jobs", "/v1/tools", "/v1/jobs/some-id", "/v1/jobs/some-id/attempts"):
        assert client.get(path).status_code == 401


@pytest.mark.parametrize(
    "header",
    ["Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer    ", "Token abc", "bearer-without-space"],
)
def test_malformed_header_is_401(client, header):
    response = client.get("/v1/jobs", headers={"Authorization": header})
    assert_unauthorized(response, error="invalid_request")


@pytest.mark.parametrize("garbage", ["abc", "a.b.c", "a.b", "....", "ey.ey.ey"])
def test_garbage_token_is_401(client, garbage):
    assert_unauthorized(client.get("/v1/jobs", headers=bearer_token(garbage)))


def test_expired_token_is_401(client, auth):
    response = client.post("/v1/jobs", json=ECHO, headers=auth("alice", ttl=-30))
    assert_unauthorized(response)
    assert "expired" in response.json()["detail"]


def test_wrong_signature_is_401(client, auth):
    response = client.post("/v1/jobs", json=ECHO, headers=auth("alice", secret="another-" * 5))
    assert_unauthorized(response)
    assert "signature" in response.json()["detail"]


def test_tampered_payload_is_401(client, auth):
    header, _, signature = auth("alice", ["viewer"])["Authorization"].split(" ")[1].split(".")
    forged = b64url({"sub": "alice", "roles": ["admin"], "exp": int(time.time()) + 600})
    response = client.get("/v1/jobs", headers=bearer_token(f"{header}.{forged}.{signature}"))
    assert_unauthorized(response)


def test_alg_none_token_is_401(client):
    header = b64url({"alg": "none", "typ": "JWT"})
    payload = b64url({"sub": "mallory", "roles": ["admin"], "exp": int(time.time()) + 600})
    response = client.get("/v1/jobs", headers=bearer_token(f"{header}.{payload}."))
    assert_unauthorized(response)
    post = client.post("/v1/jobs", json=ECHO, headers=bearer_token(f"{header}.{payload}."))
    assert_unauthorized(post)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_other_hmac_algorithm_is_401(client):
    token = jwt.encode({"sub": "alice", "roles": ["admin"]}, secret_of(client), algorithm="HS512")
    assert_unauthorized(client.get("/v1/jobs", headers=bearer_token(token)))


@pytest.mark.parametrize(
    "claims",
    [
        {"roles": ["operator"]},  # no sub
        {"sub": "", "roles": ["operator"]},
        {"sub": "alice", "roles": "operator"},
        {"sub": "alice", "roles": [1, 2]},
    ],
    ids=["no-sub", "empty-sub", "roles-not-list", "roles-not-strings"],
)
def test_invalid_claims_are_401_with_a_well_formed_challenge(client, claims):
    token = jwt.encode(claims, secret_of(client), algorithm="HS256")
    assert_unauthorized(client.get("/v1/jobs", headers=bearer_token(token)))


def test_viewer_may_read_but_not_submit_or_cancel(client, auth):
    job = client.post("/v1/jobs", json=ECHO, headers=auth("alice")).json()
    viewer = auth("alice", ["viewer"])
    refused = client.post("/v1/jobs", json=ECHO, headers=viewer)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert client.post(f"/v1/jobs/{job['id']}/cancel", headers=viewer).status_code == 403
    assert client.get(f"/v1/jobs/{job['id']}", headers=viewer).status_code == 200
    assert client.get("/v1/jobs", headers=viewer).status_code == 200
    assert client.get("/v1/tools", headers=viewer).status_code == 200


@pytest.mark.parametrize("roles", [[], ["root"], ["Operator"]])
def test_no_role_of_this_service_is_403(client, auth, roles):
    headers = auth("alice", roles)
    assert client.post("/v1/jobs", json=ECHO, headers=headers).status_code == 403
    assert client.get("/v1/jobs", headers=headers).status_code == 403


def test_owner_isolation_and_admin_sees_all(client, auth):
    alice, bob, admin = auth("alice"), auth("bob"), auth("root", ["admin"])
    job_id = client.post("/v1/jobs", json=ECHO, headers=alice).json()["id"]
    client.get(f"/v1/jobs/{job_id}?wait=5", headers=alice)

    for method, path in (
        ("GET", f"/v1/jobs/{job_id}"),
        ("GET", f"/v1/jobs/{job_id}/attempts"),
        ("POST", f"/v1/jobs/{job_id}/cancel"),
    ):
        response = client.request(method, path, headers=bob)
        assert response.status_code == 404, (method, path, response.text)
        missing = client.request(method, path.replace(job_id, "no-such-job"), headers=bob)
        assert response.json()["detail"] == missing.json()["detail"].replace(
            "no-such-job", job_id
        ), "another owner's job must look exactly like a missing one"
    assert client.get("/v1/jobs", headers=bob).json()["items"] == []

    seen = client.get(f"/v1/jobs/{job_id}", headers=admin)
    assert seen.status_code == 200 and seen.json()["owner"] == "alice"
    assert client.get(f"/v1/jobs/{job_id}/attempts", headers=admin).json()["items"]
    assert [j["id"] for j in client.get("/v1/jobs", headers=admin).json()["items"]] == [job_id]
    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=admin).status_code == 409


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_checklist_token_command_works(make_client):
    command = (
        "from mcp_bridge.security.simple_jwt import jwt; "
        'print(jwt.encode({"sub": "bench", "roles": ["operator"]}, "dev-secret", '
        'algorithm="HS256"))'
    )
    minted = subprocess.run(
        [sys.executable, "-c", command], capture_output=True, text=True, timeout=60, check=True
    )
    token = minted.stdout.strip()
    client = make_client(auth_dev_secret="dev-secret")
    submitted = client.post("/v1/jobs", json=ECHO, headers=bearer_token(token))
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["owner"] == "bench"
    in_process = jwt.encode(
        {"sub": "bench", "roles": ["operator"]}, "dev-secret", algorithm="HS256"
    )
    assert client.get("/v1/jobs", headers=bearer_token(in_process)).status_code == 200


def test_metrics_token_when_set(make_client):
    client = make_client(metrics_token="scrape-me")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics").headers["www-authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert ok.status_code == 200 and "mcp_bridge_queue_depth" in ok.text


def test_metrics_open_without_token(client):
    assert client.get("/metrics").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
