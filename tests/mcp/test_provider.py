"""The MCP tool provider against the real demo server (stdio and streamable HTTP), no mocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from mcp_bridge.tools.catalog import Catalog, ToolContext, ToolError
from mcp_bridge.tools.mcp_provider import McpTools
from mcp_bridge.tools.mcp_servers import ServerConfig
from qualification.stack.process import free_port, wait_until

DEMO = {"command": "python", "args": ["-m", "mcp_bridge.demo_server"]}
TOOLS = {"echo", "sleep", "cpu", "fail", "crash"}


@pytest.fixture
def provider() -> Iterator[Callable[..., McpTools]]:
    made: list[McpTools] = []

    def make(**servers: dict) -> McpTools:
        tools = McpTools(None, {n: ServerConfig.model_validate(c) for n, c in servers.items()})
        made.append(tools)
        return tools

    yield make
    for tools in made:
        tools.pool.close()


def ctx() -> ToolContext:
    return ToolContext("job-1")


def test_lists_tools_as_server_dot_tool_with_the_servers_schemas(provider):
    tools = {tool.name: tool for tool in provider(demo=DEMO).tools()}
    assert set(tools) == {f"demo.{name}" for name in TOOLS}
    schema = tools["demo.sleep"].input_schema
    assert schema["required"] == ["ms"]
    assert schema["properties"]["ms"]["minimum"] == 0
    assert tools["demo.echo"].description == "Return the message unchanged."


def test_arguments_are_validated_against_the_servers_schema(provider):
    catalog = Catalog([provider(demo=DEMO)])
    catalog.validate("demo.sleep", {"ms": 5})
    with pytest.raises(ValueError, match="arguments.ms"):
        catalog.validate("demo.sleep", {"ms": -1})
    with pytest.raises(ValueError, match="'ms' is a required property"):
        catalog.validate("demo.sleep", {})


def test_calls_reuse_one_session(provider):
    tools = provider(demo=DEMO)
    catalog = Catalog([tools])
    echo = catalog.get("demo.echo")
    assert echo.run({"message": "hi"}, ctx()) == {"message": "hi"}
    started = time.perf_counter()
    for index in range(50):
        assert echo.run({"message": str(index)}, ctx()) == {"message": str(index)}
    per_call = (time.perf_counter() - started) / 50
    assert tools.pool.opened == 1
    assert per_call < 0.05, f"{per_call * 1000:.1f} ms per call: is the session reused?"


def test_concurrent_calls_share_the_session(provider):
    tools = provider(demo=DEMO)
    sleep = Catalog([tools]).get("demo.sleep")
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(sleep.run({"ms": 200}, ctx())))
        for _ in range(8)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [{"sleptMs": 200}] * 8
    assert time.perf_counter() - started < 1.5
    assert tools.pool.opened == 1


def test_is_error_becomes_a_tool_error_with_the_servers_message(provider):
    fail = Catalog([provider(demo=DEMO)]).get("demo.fail")
    with pytest.raises(ToolError, match="boom"):
        fail.run({"message": "boom"}, ctx())


def test_a_tool_timeout_cancels_the_call_with_a_clear_reason(provider):
    demo = {**DEMO, "toolTimeouts": {"sleep": 0.3}}
    catalog = Catalog([provider(demo=demo)])
    started = time.perf_counter()
    with pytest.raises(ToolError, match=r"demo\.sleep timed out after 0\.3 s") as caught:
        catalog.get("demo.sleep").run({"ms": 10_000}, ctx())
    assert "cancelled" in str(caught.value)
    assert time.perf_counter() - started < 2
    # The session survives a timeout.
    assert catalog.get("demo.echo").run({"message": "still"}, ctx()) == {"message": "still"}


def test_a_cancel_request_stops_the_call(provider):
    sleep = Catalog([provider(demo=DEMO)]).get("demo.sleep")
    context = ctx()
    threading.Timer(0.2, context.cancelled.set).start()
    started = time.perf_counter()
    with pytest.raises(ToolError, match="cancelled"):
        sleep.run({"ms": 10_000}, context)
    assert time.perf_counter() - started < 2


def test_a_crashed_server_fails_the_call_and_is_restarted_on_the_next(provider):
    tools = provider(demo=DEMO)
    catalog = Catalog([tools])
    assert catalog.get("demo.echo").run({"message": "before"}, ctx()) == {"message": "before"}
    # The call is sent once more on a fresh server (at-least-once), which crashes again.
    with pytest.raises(ToolError, match="'demo' went away during crash"):
        catalog.get("demo.crash").run({"ms": 100}, ctx())
    assert catalog.get("demo.echo").run({"message": "after"}, ctx()) == {"message": "after"}
    assert tools.pool.opened == 3


def _demo_children() -> list[int]:
    """Pids of demo servers this process spawned (Linux /proc)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and b"mcp_bridge.demo_server" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_server_killed_between_calls_is_restarted_by_the_next_call(provider):
    others = set(_demo_children())  # servers of earlier tests' pools may still run
    tools = provider(demo=DEMO)
    echo = Catalog([tools]).get("demo.echo")
    assert echo.run({"message": "one"}, ctx()) == {"message": "one"}
    (pid,) = set(_demo_children()) - others
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: pid not in _demo_children(), 10, what="the demo server to die")
    assert echo.run({"message": "two"}, ctx()) == {"message": "two"}
    assert tools.pool.opened == 2


def test_a_server_that_cannot_start_is_skipped_not_fatal(provider):
    broken = {"command": sys.executable, "args": ["-c", "raise SystemExit(1)"], "listTimeout": 5}
    tools = provider(broken=broken, demo=DEMO)
    names = {tool.name for tool in tools.tools()}
    assert names == {f"demo.{name}" for name in TOOLS}


def test_a_server_listed_late_is_found_on_first_use(provider, tmp_path: Path):
    port = free_port()
    remote = {"url": f"http://127.0.0.1:{port}/mcp", "listTimeout": 2}
    tools = provider(remote=remote)
    catalog = Catalog([tools])
    assert [tool.name for tool in catalog] == []
    with http_demo(port, tmp_path):
        tools._listed_at.clear()  # skip the re-listing rate limit
        echo = catalog.get("remote.echo")
        assert echo.run({"message": "late"}, ctx()) == {"message": "late"}


def test_streamable_http_server_call_crash_and_restart(provider, tmp_path: Path):
    port = free_port()
    with http_demo(port, tmp_path):
        tools = provider(remote={"url": f"http://127.0.0.1:{port}/mcp"})
        catalog = Catalog([tools])
        assert catalog.get("remote.echo").run({"message": "x"}, ctx()) == {"message": "x"}
        # The crash takes the whole server down: the one retry finds nobody listening.
        with pytest.raises(ToolError, match="'remote' (went away|is unavailable)"):
            catalog.get("remote.crash").run({"ms": 50}, ctx())
    with pytest.raises(ToolError, match="'remote' is unavailable"):
        catalog.get("remote.echo").run({"message": "down"}, ctx())
    with http_demo(port, tmp_path):
        assert catalog.get("remote.echo").run({"message": "back"}, ctx()) == {"message": "back"}


def test_the_pool_is_fork_safe(provider):
    tools = provider(demo=DEMO)
    echo = Catalog([tools]).get("demo.echo")
    assert echo.run({"message": "parent"}, ctx()) == {"message": "parent"}
    pid = os.fork()
    if pid == 0:  # the child: a fresh loop and session, the parent's left alone
        code = 1
        try:
            code = 0 if echo.run({"message": "child"}, ctx()) == {"message": "child"} else 2
            tools.pool.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert echo.run({"message": "parent again"}, ctx()) == {"message": "parent again"}
    assert tools.pool.opened == 1


class http_demo:  # noqa: N801 - a context manager used like a function
    """`python -m mcp_bridge.demo_server --transport http` on `port`, ready when /mcp answers."""

    def __init__(self, port: int, log_dir: Path) -> None:
        self.port, self.log = port, (log_dir / f"demo-http-{port}.log").open("ab")

    def __enter__(self) -> subprocess.Popen[bytes]:
        argv = [
            sys.executable,
            "-m",
            "mcp_bridge.demo_server",
            "--transport",
            "http",
            "--port",
            str(self.port),
        ]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self._ready, 30, what="the HTTP demo server")
        return self.proc

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"demo server exited with {self.proc.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{self.port}/mcp", timeout=1)
        except httpx.HTTPError:
            return False
        return True

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(10)
        self.log.close()
