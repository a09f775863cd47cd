"""MCP: jobs run by Celery workers through real MCP servers (stdio and streamable HTTP), faults
included, and the bridge's own MCP endpoint driven by the SDK's client (`mcp.Client`).

Every check names the MCP servers the bridge calls (its servers file): `mcp` and `configure`."""

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

from .chaos.checker import epoch
from .drivers import ANONYMOUS, Job, Target
from .stack.deadlines import PROBE_SECONDS, SLACK_SECONDS, STARTUP_SECONDS
from .stack.latch import Latch
from .stack.managed import ManagedProcess
from .stack.process import free_port

pytestmark = pytest.mark.needs("mcp", "configure")

#: A session per job would pay the server's spawn and handshake (~0.4 s) on every job.
REUSE_THRESHOLD_SECONDS = 0.1
DEMO = {"command": sys.executable, "args": ["-m", "mcp_bridge.demo_server"]}


def mcp_url(t: Target) -> str:
    return t.endpoint("mcp")


def servers_file(tmp_path: Path, servers: dict[str, dict[str, Any]]) -> Path:
    path = tmp_path / "mcp-servers.json"
    path.write_text(json.dumps({"mcpServers": servers}, indent=2))
    return path


def mcp_target(target, path: Path, evidence, **options: Any) -> Target:
    evidence.attach(path, "mcp-servers.json")
    return target(settings={"MCP_SERVERS_FILE": str(path)}, **options)


def last_runs(t: Target, jobs: dict[str, Job]) -> list[dict[str, Any]]:
    """Each job's last execution, as the observer saw it; it must have ended as the client says
    the job did (a client that misreports a job fails the check)."""
    runs = []
    for job_id, job in jobs.items():
        seen = t.observer.executions(job_id)
        assert seen and seen[-1]["outcome"] == job["status"], f"job {job_id} {job}: ran {seen}"
        runs.append(seen[-1])
    return runs


def cross_check(t: Target, jobs: dict[str, Job]) -> None:
    """`last_runs` where the target lets the suite observe executions."""
    if "executions" in t.capabilities:
        last_runs(t, jobs)


def runtimes(t: Target, jobs: dict[str, Job]) -> list[float]:
    """Seconds each job ran (its last execution: claim to finish), as the observer saw it."""
    return [epoch(r["finishedAt"]) - epoch(r["startedAt"]) for r in last_runs(t, jobs)]


def listed_tools(reply) -> list[dict[str, Any]]:
    """The tools a `tools` reply lists (transitional: the protocol has no `Reply.tools` yet)."""
    assert reply.status == 200, reply.describe()
    return reply.body["items"]


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


def _check_demo_jobs(t: Target, server: str, evidence) -> None:
    client = t.client
    echo_ids = [client.submit_ok(f"{server}.echo", {"message": f"m{i}"}) for i in range(20)]
    other = {
        "sleep": client.submit_ok(f"{server}.sleep", {"ms": 50}),
        "cpu": client.submit_ok(f"{server}.cpu", {"size": 1000}),
        "fail": client.submit_ok(f"{server}.fail", {"message": "refused on purpose"}),
    }
    ids = [*echo_ids, *other.values()]
    jobs = client.wait_terminal(ids, timeout=t.deadlines.jobs(len(ids), 0.05, spawn=True))
    echoes = [jobs[i] for i in echo_ids]
    failed = jobs[other["fail"]]
    echo_runtimes = runtimes(t, {i: jobs[i] for i in echo_ids})
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
    last_runs(t, {i: jobs[i] for i in other.values()})


@pytest.mark.check(
    "mcp.stdio",
    section="4",
    title="Jobs run end to end through a stdio MCP server (prefork worker, sessions reused)",
)
@pytest.mark.needs("boot", "kill-worker", "executions")
def test_jobs_through_a_stdio_mcp_server(target, evidence, tmp_path):
    t = mcp_target(target, servers_file(tmp_path, {"demo": DEMO}), evidence, workers=0)
    t.nodes.add_worker(pool="prefork", concurrency=2)
    tools = listed_tools(t.client.tools())
    sleep = next(tool for tool in tools if tool["name"] == "demo.sleep")
    assert sleep["inputSchema"]["required"] == ["ms"]
    invalid = t.client.submit("demo.sleep", {"ms": -1})
    assert invalid.status == 422, invalid.describe()
    assert invalid.problem is not None and invalid.problem.fields[0] == "arguments.ms"
    _check_demo_jobs(t, "demo", evidence)


@pytest.mark.check(
    "mcp.http",
    section="4",
    title="Jobs run end to end through a streamable-HTTP MCP server",
)
@pytest.mark.needs("executions")
def test_jobs_through_a_streamable_http_mcp_server(target, evidence, tmp_path, http_demo):
    path = servers_file(tmp_path, {"remote": {"url": http_demo.url}})
    t = mcp_target(target, path, evidence, workers=1)
    _check_demo_jobs(t, "remote", evidence)


def _warm(t: Target) -> None:
    """Run one `demo.echo` job: the worker's session to the demo server is up after it."""
    warm = t.client.submit_ok("demo.echo", {"message": "warm"})
    job = t.client.wait_terminal([warm], timeout=t.deadlines.jobs(spawn=True))[warm]
    assert job["status"] == "succeeded", f"the warm-up call failed: {job}"


@pytest.mark.check(
    "mcp.server-crash",
    section="4",
    title="A stdio MCP server crashing mid-call fails its job clearly; the next call restarts it",
)
@pytest.mark.needs("executions")
def test_mcp_server_crash_mid_call(target, evidence, tmp_path):
    t = mcp_target(target, servers_file(tmp_path, {"demo": DEMO}), evidence, workers=1)
    client = t.client
    _warm(t)
    started = time.monotonic()
    crash = client.submit_ok("demo.crash", {"ms": 300})
    crashed = client.wait_terminal([crash], timeout=t.deadlines.jobs(work=0.3))[crash]
    crash_seconds = time.monotonic() - started
    after = [client.submit_ok("demo.echo", {"message": f"after-{i}"}) for i in range(3)]
    jobs = client.wait_terminal(after, timeout=t.deadlines.jobs(len(after), spawn=True))
    runs = t.observer.executions(crash)
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
    last_runs(t, {crash: crashed, **jobs})


def _demo_servers(t: Target) -> list[psutil.Process]:
    """The demo MCP server processes the workers spawned (stdio: children of a worker)."""
    found = []
    for worker in t.nodes.workers:
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
@pytest.mark.needs("kill-worker")
def test_mcp_server_gone_between_calls(target, evidence, tmp_path, http_demo):
    servers = {"demo": DEMO, "remote": {"url": http_demo.url}}
    t = mcp_target(target, servers_file(tmp_path, servers), evidence, workers=1)
    client = t.client
    warm = [client.submit_ok(f"{name}.echo", {"message": "warm"}) for name in servers]
    client.wait_terminal(warm, timeout=t.deadlines.jobs(len(warm), spawn=True))
    stdio = _demo_servers(t)
    evidence.expect("idleStdioServers", len(stdio), "==", 1)
    stdio[0].kill()  # nobody is calling it: the worker learns of it only when it next calls
    stdio[0].wait(timeout=PROBE_SECONDS)
    http_demo.restart()  # a new process: the worker's session id means nothing to it
    after = {name: client.submit_ok(f"{name}.echo", {"message": name}) for name in servers}
    jobs = client.wait_terminal(after.values(), timeout=t.deadlines.jobs(len(after), spawn=True))
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
    cross_check(t, jobs)


@pytest.mark.check(
    "mcp.tool-timeout",
    section="4",
    title="A per-tool timeout from the servers file ends the job failed and cancels the call",
)
@pytest.mark.needs("executions")
def test_mcp_tool_timeout(target, evidence, tmp_path):
    timeout, asked = 1, 60
    path = servers_file(tmp_path, {"demo": {**DEMO, "toolTimeouts": {"sleep": timeout}}})
    t = mcp_target(target, path, evidence, workers=1)
    client = t.client
    _warm(t)  # the server's spawn is not the call's time
    slow = client.submit_ok("demo.sleep", {"ms": asked * 1000})
    job = client.wait_terminal([slow], timeout=t.deadlines.jobs(work=timeout))[slow]
    ran = runtimes(t, {slow: job})[0]
    fast = client.submit_ok("demo.sleep", {"ms": 10})
    after = client.wait_terminal([fast], timeout=t.deadlines.jobs(spawn=True))[fast]
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
    last_runs(t, {fast: after})


async def _drive_endpoint(t: Target, latch: Latch) -> dict[str, Any]:
    """List and call tools through the MCP endpoint with the SDK's client. Each call's read
    timeout is the time the server may hold it (MCP_CALL_WAIT_SECONDS, or the call's own
    waitSeconds) plus the margin; the pending call holds on `latch`, so it certainly comes back
    unfinished. A call that fails is recorded as `{"error": ...}`."""
    deadlines = t.deadlines
    longest = deadlines.client(deadlines.mcp_call())
    headers = {"Authorization": f"Bearer {t.client.token()}"}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(SLACK_SECONDS, read=longest))
    transport = streamable_http_client(mcp_url(t), http_client=http)
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
@pytest.mark.needs("latch")
def test_bridge_mcp_endpoint(target, evidence, tmp_path):
    # The first call also spawns the demo server: the server may wait for it that long.
    call_wait = {"MCP_CALL_WAIT_SECONDS": str(STARTUP_SECONDS)}
    path = servers_file(tmp_path, {"demo": DEMO})
    evidence.attach(path, "mcp-servers.json")
    t = target(settings={"MCP_SERVERS_FILE": str(path), **call_wait}, workers=1)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    unauthenticated = t.client.request("mcp", json=ping, token=ANONYMOUS)
    latch = t.latch()
    out = asyncio.run(_drive_endpoint(t, latch))
    pending = out["pending"].get("structuredContent") or out["pending"]
    evidence.attach_json("mcp-client.json", out)
    evidence.measure(protocolVersion=out["protocolVersion"])
    evidence.expect("unauthenticatedStatus", unauthenticated.status, "==", 401)
    wanted = {"demo.echo", "demo.sleep", "echo", "sleep", "latch"}
    evidence.expect("missingTools", sorted(wanted - set(out["tools"])), "==", [])
    echo, builtin = (out[call].get("structuredContent", out[call]) for call in ("echo", "builtin"))
    evidence.expect("echo", echo, "==", {"message": "through /mcp"})
    evidence.expect("echoIsError", out["echo"].get("isError", False), "==", False)
    evidence.expect("builtin", builtin, "==", {"sleptMs": 20})
    evidence.expect("pendingStatus", pending.get("status") or pending, "in", ["queued", "running"])
    latch.release()
    job_id = pending["jobId"]
    job = t.client.wait_terminal([job_id])[job_id]
    evidence.expect(
        "pendingJobFinally",
        [job["status"], job["result"]],
        "==",
        ["succeeded", {"latch": latch.name}],
    )
    cross_check(t, {job_id: job})
