"""MCP: jobs run by Celery workers through real MCP servers (stdio and streamable HTTP), faults
included, and the bridge's own `/mcp` endpoint driven by the SDK's client (`mcp.Client`)."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from qualification.stack.bridge import BridgeStack
from qualification.stack.managed import ManagedProcess
from qualification.stack.process import free_port

#: A session per job would pay the server's spawn and handshake (~0.4 s) on every job.
REUSE_THRESHOLD_SECONDS = 0.1
DEMO = {"command": sys.executable, "args": ["-m", "mcp_bridge.demo_server"]}


def servers_file(tmp_path: Path, servers: dict[str, dict[str, Any]]) -> Path:
    path = tmp_path / "mcp-servers.json"
    path.write_text(json.dumps({"mcpServers": servers}, indent=2))
    return path


def mcp_stack(stack, path: Path, evidence, **options: Any) -> BridgeStack:
    evidence.attach(path, "mcp-servers.json")
    return stack(env={"MCP_SERVERS_FILE": str(path)}, **options)


def runtimes(bridge: BridgeStack, ids: list[str]) -> list[float]:
    """Seconds each job ran (claim to finish), from the registry file."""
    rows = {row["id"]: row for row in bridge.registry_rows()}
    return [rows[i]["finished_at"] - rows[i]["started_at"] for i in ids]


class HttpDemoServer(ManagedProcess):
    """`python -m mcp_bridge.demo_server --transport http` on a free port; ready when it answers."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        argv = [
            sys.executable,
            "-m",
            "mcp_bridge.demo_server",
            "--transport",
            "http",
            "--port",
            str(self.port),
        ]
        super().__init__("mcp-demo-http", argv, dict(os.environ), log_dir, self._ready)

    def _ready(self) -> bool:
        httpx.get(self.url, timeout=1)  # any HTTP answer: the server is listening
        return True


@pytest.fixture
def http_demo(tmp_path: Path) -> Iterator[HttpDemoServer]:
    log_dir = tmp_path / "mcp-demo"
    log_dir.mkdir()
    server = HttpDemoServer(log_dir)
    server.start(timeout=30)
    try:
        yield server
    finally:
        server.close()


def _check_demo_jobs(bridge: BridgeStack, server: str, evidence) -> None:
    echo_ids = [bridge.submit_ok(f"{server}.echo", {"message": f"m{i}"}) for i in range(20)]
    other = {
        "sleep": bridge.submit_ok(f"{server}.sleep", {"ms": 50}),
        "cpu": bridge.submit_ok(f"{server}.cpu", {"size": 1000}),
        "fail": bridge.submit_ok(f"{server}.fail", {"message": "refused on purpose"}),
    }
    jobs = bridge.wait_terminal([*echo_ids, *other.values()], timeout=120)
    echoes = [jobs[i] for i in echo_ids]
    failed = jobs[other["fail"]]
    median_runtime = statistics.median(runtimes(bridge, echo_ids))
    evidence.measure(
        echoJobs=len(echoes),
        echoStatuses=sorted({job["status"] for job in echoes}),
        medianEchoRuntimeSeconds=round(median_runtime, 4),
        sleepResult=jobs[other["sleep"]]["result"],
        cpuStatus=jobs[other["cpu"]]["status"],
        failStatus=failed["status"],
        failError=failed["error"],
    )
    evidence.threshold(
        echoStatuses="all succeeded, results echo the message",
        medianEchoRuntimeSeconds=f"< {REUSE_THRESHOLD_SECONDS} (sessions reused, not spawned)",
        failStatus="failed with the server's message",
    )
    evidence.attach_json("jobs.json", jobs)
    assert [job["status"] for job in echoes] == ["succeeded"] * 20
    assert [job["result"] for job in echoes] == [{"message": f"m{i}"} for i in range(20)]
    assert jobs[other["sleep"]]["status"] == "succeeded"
    assert jobs[other["sleep"]]["result"] == {"sleptMs": 50}
    assert jobs[other["cpu"]]["status"] == "succeeded"
    assert failed["status"] == "failed" and "refused on purpose" in failed["error"]
    assert median_runtime < REUSE_THRESHOLD_SECONDS


@pytest.mark.check(
    "mcp.stdio",
    section="4",
    title="Jobs run end to end through a stdio MCP server (prefork worker, sessions reused)",
)
def test_jobs_through_a_stdio_mcp_server(stack, evidence, tmp_path):
    bridge = mcp_stack(stack, servers_file(tmp_path, {"demo": DEMO}), evidence, workers=0)
    bridge.add_worker(pool="prefork", concurrency=2)
    tools = bridge.http.get("/v1/tools", headers=bridge.headers()).json()["items"]
    sleep = next(tool for tool in tools if tool["name"] == "demo.sleep")
    assert sleep["inputSchema"]["required"] == ["ms"]
    invalid = bridge.submit("demo.sleep", {"ms": -1})
    assert invalid.status_code == 422, invalid.text
    assert invalid.json()["errors"][0]["field"] == "arguments.ms"
    _check_demo_jobs(bridge, "demo", evidence)


@pytest.mark.check(
    "mcp.http",
    section="4",
    title="Jobs run end to end through a streamable-HTTP MCP server",
)
def test_jobs_through_a_streamable_http_mcp_server(stack, evidence, tmp_path, http_demo):
    path = servers_file(tmp_path, {"remote": {"url": http_demo.url}})
    bridge = mcp_stack(stack, path, evidence, workers=1)
    _check_demo_jobs(bridge, "remote", evidence)


@pytest.mark.check(
    "mcp.server-crash",
    section="4",
    title="A stdio MCP server crashing mid-call fails its job clearly; the next call restarts it",
)
def test_mcp_server_crash_mid_call(stack, evidence, tmp_path):
    bridge = mcp_stack(stack, servers_file(tmp_path, {"demo": DEMO}), evidence, workers=1)
    warm = bridge.submit_ok("demo.echo", {"message": "warm"})
    assert bridge.wait_terminal([warm], timeout=60)[warm]["status"] == "succeeded"
    started = time.monotonic()
    crash = bridge.submit_ok("demo.crash", {"ms": 300})
    crashed = bridge.wait_terminal([crash], timeout=60)[crash]
    crash_seconds = time.monotonic() - started
    after = [bridge.submit_ok("demo.echo", {"message": f"after-{i}"}) for i in range(3)]
    jobs = bridge.wait_terminal(after, timeout=60)
    runs = bridge.executions(crash)
    evidence.measure(
        crashStatus=crashed["status"],
        crashError=crashed["error"],
        crashAttempts=crashed["attempts"],
        secondsToTerminal=round(crash_seconds, 2),
        afterStatuses=[jobs[i]["status"] for i in after],
    )
    evidence.threshold(
        crashStatus="failed, naming the server",
        crashAttempts="== 1",
        afterStatuses="all succeeded (server restarted)",
    )
    evidence.attach_json("executions.json", runs)
    assert crashed["status"] == "failed"
    assert "'demo' went away" in crashed["error"]
    assert crashed["attempts"] == 1 and len(runs) == 1
    assert [jobs[i]["result"] for i in after] == [{"message": f"after-{i}"} for i in range(3)]


@pytest.mark.check(
    "mcp.tool-timeout",
    section="4",
    title="A per-tool timeout from the servers file ends the job failed and cancels the call",
)
def test_mcp_tool_timeout(stack, evidence, tmp_path):
    path = servers_file(tmp_path, {"demo": {**DEMO, "toolTimeouts": {"sleep": 1}}})
    bridge = mcp_stack(stack, path, evidence, workers=1)
    slow = bridge.submit_ok("demo.sleep", {"ms": 60_000})
    job = bridge.wait_terminal([slow], timeout=30)[slow]
    ran = runtimes(bridge, [slow])[0]
    fast = bridge.submit_ok("demo.sleep", {"ms": 10})
    after = bridge.wait_terminal([fast], timeout=30)[fast]
    evidence.measure(
        status=job["status"],
        error=job["error"],
        ranSeconds=round(ran, 2),
        nextCallStatus=after["status"],
    )
    evidence.threshold(
        status="failed",
        error="names the tool and the 1 s timeout",
        ranSeconds="< 5",
        nextCallStatus="succeeded",
    )
    assert job["status"] == "failed"
    assert "demo.sleep timed out after 1 s" in job["error"]
    assert ran < 5
    assert after["status"] == "succeeded"


async def _drive_endpoint(url: str, token: str) -> dict[str, Any]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        listed = await client.list_tools()
        echo = await client.call_tool("demo.echo", {"message": "through /mcp"})
        builtin = await client.call_tool("sleep", {"ms": 20})
        pending = await client.call_tool("sleep", {"ms": 2000}, meta={"mcp-bridge/waitSeconds": 0})
        return {
            "protocolVersion": client.protocol_version,
            "tools": sorted(tool.name for tool in listed.tools),
            "echo": echo.model_dump(mode="json", by_alias=True, exclude_none=True),
            "builtin": builtin.model_dump(mode="json", by_alias=True, exclude_none=True),
            "pending": pending.model_dump(mode="json", by_alias=True, exclude_none=True),
        }


@pytest.mark.check(
    "mcp.endpoint",
    section="4",
    title="The bridge's /mcp endpoint, driven by the SDK's mcp.Client, runs tools as jobs",
)
def test_bridge_mcp_endpoint(stack, evidence, tmp_path):
    bridge = mcp_stack(stack, servers_file(tmp_path, {"demo": DEMO}), evidence, workers=1)
    unauthenticated = bridge.http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    out = asyncio.run(_drive_endpoint(f"{bridge.api.url}/mcp", bridge.token()))
    pending = out["pending"]["structuredContent"]
    job = bridge.wait_terminal([pending["jobId"]], timeout=30)[pending["jobId"]]
    evidence.attach_json("mcp-client.json", out)
    evidence.measure(
        unauthenticatedStatus=unauthenticated.status_code,
        protocolVersion=out["protocolVersion"],
        echo=out["echo"].get("structuredContent"),
        pendingStatus=pending["status"],
        pendingJobFinally=job["status"],
    )
    evidence.threshold(
        unauthenticatedStatus="== 401",
        echo="{'message': 'through /mcp'}",
        pendingStatus="queued or running (job id returned)",
        pendingJobFinally="succeeded",
    )
    assert unauthenticated.status_code == 401
    assert {"demo.echo", "demo.sleep", "echo", "sleep"} <= set(out["tools"])
    assert out["echo"].get("isError") is not True
    assert out["echo"]["structuredContent"] == {"message": "through /mcp"}
    assert out["builtin"]["structuredContent"] == {"sleptMs": 20}
    assert pending["status"] in ("queued", "running")
    assert job["status"] == "succeeded" and job["result"] == {"sleptMs": 2000}
