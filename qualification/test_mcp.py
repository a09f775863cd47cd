"""MCP: jobs run by Celery workers through real MCP servers (stdio and streamable HTTP), faults
included, and the bridge's own `/mcp` endpoint driven by the SDK's client (`mcp.Client`)."""

from __future__ import annotations

import asyncio
import contextlib
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
import psutil
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from .stack.bridge import BridgeStack
from .stack.deadlines import PROBE_SECONDS, SLACK_SECONDS, STARTUP_SECONDS
from .stack.latch import Latch
from .stack.managed import ManagedProcess
from .stack.process import free_port

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
        httpx.get(self.url, timeout=PROBE_SECONDS)  # any HTTP answer: the server is listening
        return True


@pytest.fixture
def http_demo(tmp_path: Path) -> Iterator[HttpDemoServer]:
    log_dir = tmp_path / "mcp-demo"
    log_dir.mkdir()
    server = HttpDemoServer(log_dir)
    server.start(timeout=STARTUP_SECONDS)
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
    ids = [*echo_ids, *other.values()]
    jobs = bridge.wait_terminal(ids, timeout=bridge.deadlines.jobs(len(ids), 0.05, spawn=True))
    echoes = [jobs[i] for i in echo_ids]
    failed = jobs[other["fail"]]
    echo_runtimes = runtimes(bridge, echo_ids)
    evidence.attach_json("jobs.json", jobs)
    evidence.measure(slowestEchoRuntimeSeconds=round(max(echo_runtimes), 4))
    evidence.expect("echoStatuses", sorted({job["status"] for job in echoes}), "==", ["succeeded"])
    evidence.expect(
        "echoResults",
        [job["result"] for job in echoes],
        "==",
        [{"message": f"m{i}"} for i in range(20)],
    )
    evidence.expect(
        "sleep",
        [jobs[other["sleep"]]["status"], jobs[other["sleep"]]["result"]],
        "==",
        ["succeeded", {"sleptMs": 50}],
    )
    evidence.expect("cpuStatus", jobs[other["cpu"]]["status"], "==", "succeeded")
    evidence.expect("failStatus", failed["status"], "==", "failed")
    evidence.expect("failErrorHasMessage", "refused on purpose" in failed["error"], "==", True)
    evidence.expect(
        "medianEchoRuntimeSeconds",
        round(statistics.median(echo_runtimes), 4),
        "<",
        REUSE_THRESHOLD_SECONDS,
        note="sessions reused, not spawned",
    )


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


def _warm(bridge: BridgeStack) -> None:
    """Run one `demo.echo` job: the worker's session to the demo server is up after it."""
    warm = bridge.submit_ok("demo.echo", {"message": "warm"})
    job = bridge.wait_terminal([warm], timeout=bridge.deadlines.jobs(spawn=True))[warm]
    assert job["status"] == "succeeded", f"the warm-up call failed: {job}"


@pytest.mark.check(
    "mcp.server-crash",
    section="4",
    title="A stdio MCP server crashing mid-call fails its job clearly; the next call restarts it",
)
def test_mcp_server_crash_mid_call(stack, evidence, tmp_path):
    bridge = mcp_stack(stack, servers_file(tmp_path, {"demo": DEMO}), evidence, workers=1)
    _warm(bridge)
    started = time.monotonic()
    crash = bridge.submit_ok("demo.crash", {"ms": 300})
    crashed = bridge.wait_terminal([crash], timeout=bridge.deadlines.jobs(work=0.3))[crash]
    crash_seconds = time.monotonic() - started
    after = [bridge.submit_ok("demo.echo", {"message": f"after-{i}"}) for i in range(3)]
    jobs = bridge.wait_terminal(after, timeout=bridge.deadlines.jobs(len(after), spawn=True))
    runs = bridge.executions(crash)
    evidence.measure(crashError=crashed["error"], secondsToTerminal=round(crash_seconds, 2))
    evidence.attach_json("executions.json", runs)
    evidence.expect("crashStatus", crashed["status"], "==", "failed")
    evidence.expect("crashErrorNamesServer", "'demo' went away" in crashed["error"], "==", True)
    evidence.expect("crashAttempts", [crashed["attempts"], len(runs)], "==", [1, 1])
    evidence.expect(
        "afterResults",
        [jobs[i].get("result") for i in after],
        "==",
        [{"message": f"after-{i}"} for i in range(3)],
        note="the next calls restart the server",
    )


def _demo_servers(bridge: BridgeStack) -> list[psutil.Process]:
    """The demo MCP server processes the workers spawned (stdio: children of a worker)."""
    found = []
    for worker in bridge.workers:
        for child in psutil.Process(worker.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "mcp_bridge.demo_server" in " ".join(child.cmdline()):
                    found.append(child)
    return found


@pytest.mark.check(
    "mcp.server-gone-idle",
    section="4",
    title="An MCP server that went away between calls (stdio killed, HTTP restarted and its "
    "session forgotten): the next call runs on a fresh session, in the same attempt",
)
def test_mcp_server_gone_between_calls(stack, evidence, tmp_path, http_demo):
    servers = {"demo": DEMO, "remote": {"url": http_demo.url}}
    bridge = mcp_stack(stack, servers_file(tmp_path, servers), evidence, workers=1)
    warm = [bridge.submit_ok(f"{name}.echo", {"message": "warm"}) for name in servers]
    bridge.wait_terminal(warm, timeout=bridge.deadlines.jobs(len(warm), spawn=True))
    stdio = _demo_servers(bridge)
    evidence.expect("idleStdioServers", len(stdio), "==", 1)
    stdio[0].kill()  # nobody is calling it: the worker learns of it only when it next calls
    stdio[0].wait(timeout=PROBE_SECONDS)
    http_demo.restart()  # a new process: the worker's session id means nothing to it
    after = {name: bridge.submit_ok(f"{name}.echo", {"message": name}) for name in servers}
    jobs = bridge.wait_terminal(
        after.values(), timeout=bridge.deadlines.jobs(len(after), spawn=True)
    )
    seen = {name: jobs[job_id] for name, job_id in after.items()}
    evidence.expect(
        "statuses",
        {name: job["status"] for name, job in seen.items()},
        "==",
        {name: "succeeded" for name in servers},
        note=str({name: job.get("error") for name, job in seen.items()}),
    )
    evidence.expect("attempts", [job["attempts"] for job in seen.values()], "==", [1, 1])
    evidence.expect(
        "results",
        [job.get("result") for job in seen.values()],
        "==",
        [{"message": name} for name in servers],
    )


@pytest.mark.check(
    "mcp.tool-timeout",
    section="4",
    title="A per-tool timeout from the servers file ends the job failed and cancels the call",
)
def test_mcp_tool_timeout(stack, evidence, tmp_path):
    timeout, asked = 1, 60
    path = servers_file(tmp_path, {"demo": {**DEMO, "toolTimeouts": {"sleep": timeout}}})
    bridge = mcp_stack(stack, path, evidence, workers=1)
    _warm(bridge)  # the server's spawn is not the call's time
    slow = bridge.submit_ok("demo.sleep", {"ms": asked * 1000})
    job = bridge.wait_terminal([slow], timeout=bridge.deadlines.jobs(work=timeout))[slow]
    ran = runtimes(bridge, [slow])[0]
    fast = bridge.submit_ok("demo.sleep", {"ms": 10})
    after = bridge.wait_terminal([fast], timeout=bridge.deadlines.jobs(spawn=True))[fast]
    evidence.measure(error=job["error"], askedSeconds=asked)
    evidence.expect("status", job["status"], "==", "failed")
    evidence.expect(
        "errorNamesTimeout", f"demo.sleep timed out after {timeout} s" in job["error"], "==", True
    )
    evidence.expect(
        "ranSeconds",
        round(ran, 2),
        "<",
        timeout + SLACK_SECONDS,
        note=f"the {timeout} s timeout cut the {asked} s call short",
    )
    evidence.expect("nextCallStatus", after["status"], "==", "succeeded")


async def _drive_endpoint(bridge: BridgeStack, latch: Latch) -> dict[str, Any]:
    """List and call tools through `/mcp` with the SDK's client. Each call's read timeout is the
    time the server may hold it (MCP_CALL_WAIT_SECONDS, or the call's own waitSeconds) plus the
    margin; the pending call holds on `latch`, so it certainly comes back unfinished. A call that
    fails is recorded as `{"error": ...}`."""
    deadlines = bridge.deadlines
    longest = deadlines.client(deadlines.mcp_call())
    headers = {"Authorization": f"Bearer {bridge.token()}"}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(SLACK_SECONDS, read=longest))
    transport = streamable_http_client(f"{bridge.api.url}/mcp", http_client=http)
    async with http, Client(transport, read_timeout_seconds=longest) as client:

        async def call(name: str, arguments: dict, wait: float | None = None) -> dict[str, Any]:
            within = deadlines.client(deadlines.mcp_call(wait))
            meta = None if wait is None else {"mcp-bridge/waitSeconds": wait}
            try:
                result = await client.call_tool(name, arguments, within, meta=meta)
            except MCPError as error:
                return {"error": f"{error} (read timeout {within:g} s)"}
            return result.model_dump(mode="json", by_alias=True, exclude_none=True)

        listed = await client.list_tools()
        return {
            "protocolVersion": client.protocol_version,
            "tools": sorted(tool.name for tool in listed.tools),
            "echo": await call("demo.echo", {"message": "through /mcp"}),
            "builtin": await call("sleep", {"ms": 20}),
            "pending": await call("latch", latch.arguments(), wait=0),
        }


@pytest.mark.check(
    "mcp.endpoint",
    section="4",
    title="The bridge's /mcp endpoint, driven by the SDK's mcp.Client, runs tools as jobs",
)
def test_bridge_mcp_endpoint(stack, evidence, tmp_path):
    # The first call also spawns the demo server: the server may wait for it that long.
    call_wait = {"MCP_CALL_WAIT_SECONDS": str(STARTUP_SECONDS)}
    path = servers_file(tmp_path, {"demo": DEMO})
    evidence.attach(path, "mcp-servers.json")
    bridge = stack(env={"MCP_SERVERS_FILE": str(path), **call_wait}, workers=1)
    unauthenticated = bridge.http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    latch = bridge.latch()
    out = asyncio.run(_drive_endpoint(bridge, latch))
    pending = out["pending"].get("structuredContent") or out["pending"]
    evidence.attach_json("mcp-client.json", out)
    evidence.measure(protocolVersion=out["protocolVersion"])
    evidence.expect("unauthenticatedStatus", unauthenticated.status_code, "==", 401)
    wanted = {"demo.echo", "demo.sleep", "echo", "sleep", "latch"}
    evidence.expect("missingTools", sorted(wanted - set(out["tools"])), "==", [])
    echo, builtin = (out[call].get("structuredContent", out[call]) for call in ("echo", "builtin"))
    evidence.expect("echo", echo, "==", {"message": "through /mcp"})
    evidence.expect("echoIsError", out["echo"].get("isError", False), "==", False)
    evidence.expect("builtin", builtin, "==", {"sleptMs": 20})
    evidence.expect("pendingStatus", pending.get("status") or pending, "in", ["queued", "running"])
    latch.release()
    job_id = pending["jobId"]
    job = bridge.wait_terminal([job_id])[job_id]
    evidence.expect(
        "pendingJobFinally",
        [job["status"], job["result"]],
        "==",
        ["succeeded", {"latch": latch.name}],
    )
