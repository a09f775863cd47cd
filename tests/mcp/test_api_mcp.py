"""The bridge end to end with MCP: REST jobs for MCP tools (inline backend), and `/mcp` driven by
the SDK's own client. Real app, real demo server, real HTTP."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_bridge.app import create_app
from mcp_bridge.config import load_settings
from mcp_bridge.security.tokens import mint
from mcp_bridge.tools.mcp_provider import mcp_tools
from mcp_bridge.tools.mcp_servers import ENV_VAR
from qualification.stack.process import free_port, wait_until

SECRET = "mcp-test-secret-at-least-32-bytes-long!!"


def bearer(subject: str = "alice", roles: tuple[str, ...] = ("operator",)) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(subject, list(roles), SECRET)}"}


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    servers = tmp_path / "servers.json"
    servers.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "demo": {
                        "command": "python",
                        "args": ["-m", "mcp_bridge.demo_server"],
                        "toolTimeouts": {"sleep": 1},
                    }
                }
            }
        )
    )
    monkeypatch.setenv(ENV_VAR, str(servers))
    settings = load_settings(
        job_registry_path=tmp_path / "registry.db",
        auth_dev_secret=SECRET,
        dispatch_interval_seconds=0.05,
        job_lease_seconds=3.0,
    )
    yield create_app(settings)
    provider = mcp_tools()
    if provider is not None:
        provider.pool.close()


def run_job(client: TestClient, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/v1/jobs", json={"tool": tool, "arguments": arguments}, headers=bearer()
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    return client.get(f"/v1/jobs/{job_id}", params={"wait": 20}, headers=bearer()).json()


def test_rest_jobs_run_mcp_tools_on_the_inline_backend(app):
    with TestClient(app) as client:
        names = {t["name"] for t in client.get("/v1/tools", headers=bearer()).json()["items"]}
        assert {"demo.echo", "demo.sleep", "demo.fail", "echo", "sleep"} <= names
        job = run_job(client, "demo.echo", {"message": "over MCP"})
        assert job["status"] == "succeeded", job
        assert job["result"] == {"message": "over MCP"}
        failed = run_job(client, "demo.fail", {"message": "no luck"})
        assert failed["status"] == "failed" and "no luck" in failed["error"]
        slow = run_job(client, "demo.sleep", {"ms": 5000})
        assert slow["status"] == "failed" and "timed out after 1 s" in slow["error"]
        bad = client.post(
            "/v1/jobs", json={"tool": "demo.sleep", "arguments": {"ms": "x"}}, headers=bearer()
        )
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "arguments.ms"


@pytest.fixture
def served(app) -> Iterator[str]:
    """The app on a real port (uvicorn in a thread), for the SDK's HTTP client."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: server.started, 30, what="uvicorn")
    yield url
    server.should_exit = True
    thread.join(30)


async def _through_mcp(url: str, headers: dict[str, str], mode: str = "auto") -> dict[str, Any]:
    async with httpx2.AsyncClient(headers=headers) as http:
        transport = streamable_http_client(f"{url}/mcp", http_client=http)
        async with Client(transport, mode=mode) as client:
            listed = await client.list_tools()
            echo = await client.call_tool("demo.echo", {"message": "hello"})
            sleep = await client.call_tool("sleep", {"ms": 20})
            pending = await client.call_tool(
                "sleep", {"ms": 3000}, meta={"mcp-bridge/waitSeconds": 0.2}
            )
            invalid = await client.call_tool("sleep", {"ms": -1})
            return {
                "tools": {tool.name for tool in listed.tools},
                "echo": echo,
                "sleep": sleep,
                "pending": pending,
                "invalid": invalid,
            }


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_the_mcp_endpoint_lists_and_calls_tools(served, mode):
    out = asyncio.run(_through_mcp(served, bearer(), mode))
    assert {"demo.echo", "sleep", "echo"} <= out["tools"]
    assert not out["echo"].is_error and out["echo"].structured_content == {"message": "hello"}
    assert out["sleep"].structured_content == {"sleptMs": 20}
    pending = out["pending"].structured_content
    assert pending["status"] in ("queued", "running") and pending["poll"].endswith(pending["jobId"])
    assert out["invalid"].is_error and "arguments.ms" in out["invalid"].content[0].text
    job = httpx.get(
        f"{served}/v1/jobs/{pending['jobId']}", params={"wait": 10}, headers=bearer()
    ).json()
    assert job["status"] == "succeeded" and job["owner"] == "alice"


def test_the_mcp_endpoint_wants_a_token_and_a_submit_role(served):
    response = httpx.post(f"{served}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    viewer = asyncio.run(_viewer_call(served))
    assert viewer.is_error and "operator or admin" in viewer.content[0].text


async def _viewer_call(url: str) -> Any:
    async with (
        httpx2.AsyncClient(headers=bearer("bob", ("viewer",))) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        assert "echo" in {tool.name for tool in (await client.list_tools()).tools}
        return await client.call_tool("echo", {"message": "x"})
