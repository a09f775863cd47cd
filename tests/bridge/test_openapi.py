"""The OpenAPI document is the contract: security, problem+json errors, docs, problem pages."""

from __future__ import annotations

import re
from pathlib import Path

import mcp_bridge

SRC = Path(mcp_bridge.__file__).parent
PROBLEM = "#/components/schemas/Problem"


def test_operations_are_named_secured_and_error_typed(client):
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in str(doc)
    operations = {op["operationId"]: op for path in doc["paths"].values() for op in path.values()}
    assert {"submitJob", "getJob", "listJobs", "cancelJob", "listJobAttempts", "listTools"} <= set(
        operations
    )
    for name in ("submitJob", "getJob", "listJobs", "cancelJob", "listJobAttempts", "listTools"):
        assert operations[name]["security"] == [{"bearerAuth": []}], name
        for status, response in operations[name]["responses"].items():
            if int(status) >= 400:
                assert list(response["content"]) == ["application/problem+json"], (name, status)
    submit = operations["submitJob"]
    assert {"200", "202", "400", "401", "403", "413", "422"} <= set(submit["responses"])
    key = next(p for p in submit["parameters"] if p["name"] == "Idempotency-Key")
    assert key["in"] == "header" and key["schema"]["maxLength"] == 255
    body = submit["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/JobSubmission")
    assert set(submit["responses"]["202"]["links"]) == {"GetJob", "CancelJob", "ListJobAttempts"}
    assert "409" in operations["cancelJob"]["responses"]
    assert list(operations["getMetrics"]["responses"]["200"]["content"]) == ["text/plain"]


def test_every_problem_type_the_code_raises_has_a_page(client):
    raised = set()
    for source in SRC.rglob("*.py"):
        raised |= set(re.findall(r'Problem\(\s*\d{3},\s*"([a-z-]+)"', source.read_text()))
        raised |= set(re.findall(r'\d{3}: "([a-z-]+)"', source.read_text()))
    assert {"job-finished", "unauthorized", "malformed-json"} <= raised
    for slug in sorted(raised):
        page = client.get(f"/problems/{slug}")
        assert page.status_code == 200, slug
        assert page.headers["content-type"].startswith("text/html")
    missing = client.get("/problems/no-such-type")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_a_problem_type_uri_resolves_to_its_page(client, auth):
    problem = client.get("/v1/jobs/nope", headers=auth()).json()
    assert problem["type"] == "/problems/job-not-found"
    assert client.get(problem["type"]).status_code == 200


def test_api_docs_load_no_remote_assets(client):
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), page
        for asset in re.findall(r"""(?:src|href)=["']?(/[^"' >]+)""", html):
            assert client.get(asset).status_code == 200, asset
