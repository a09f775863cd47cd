"""Fixtures for the bridge's own tests: real SQLite files, a real PostgreSQL, real apps, threads.

Helpers are fixtures (not an importable module) so each test module stays self-contained.

Every test that asks for a registry (`registry`, `registry_location`, `make_settings`,
`make_client`, `client`) runs once per registry: SQLite, then PostgreSQL (a throwaway cluster
from the machine's binaries, one fresh database per test; skipped, saying why, where there are
no binaries). Modules in SQLITE_ONLY test what does not touch the registry's kind.
"""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient

from mcp_bridge.app import create_app
from mcp_bridge.config import Settings, load_settings
from mcp_bridge.jobs.connect import open_registry
from mcp_bridge.jobs.models import Job, Status
from mcp_bridge.jobs.registry import Registry
from mcp_bridge.jobs.service import new_job as queued_job
from mcp_bridge.security.tokens import mint
from qualification.stack.postgres import PostgresServer, PostgresUnavailable, provision

SQLITE_ONLY = {"test_auth", "test_config", "test_latch"}
REGISTRY_KINDS = ("sqlite", "postgres")
_databases = itertools.count(1)

SECRET = "bridge-test-secret-at-least-32-bytes-long"
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's shell must not configure the bridge under test.

    MCP server tools are off (`MCP_SERVERS_FILE=""`): these tests cover the job core and the
    built-in tools, and each app would otherwise spawn the packaged demo MCP server.
    """
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("MCP_SERVERS_FILE", "")


def wait_for(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = "it"
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what} (last: {value!r})")
        time.sleep(interval)


@pytest.fixture
def poll() -> Callable[..., Any]:
    return wait_for


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port != 6379:
            return port


@pytest.fixture
def port() -> Callable[[], int]:
    return free_port


def bearer(
    subject: str = "alice",
    roles: list[str] | tuple[str, ...] = ("operator",),
    secret: str = SECRET,
    ttl: float | None = 3600,
) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(subject, list(roles), secret, ttl)}"}


@pytest.fixture
def auth() -> Callable[..., dict[str, str]]:
    """``auth("bob", ["viewer"])`` → an Authorization header for the test secret."""
    return bearer


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "registry_kind" in metafunc.fixturenames:
        module = metafunc.module.__name__.rsplit(".", 1)[-1]
        kinds = ("sqlite",) if module in SQLITE_ONLY else REGISTRY_KINDS
        metafunc.parametrize("registry_kind", kinds)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway cluster for the session (fsync off: these tests do not crash it)."""
    try:
        server = provision("postgres", fsync=False)
    except PostgresUnavailable as why:
        pytest.skip(str(why))
    with server:
        yield server


@pytest.fixture
def registry_path(tmp_path):
    return tmp_path / "registry.db"


@pytest.fixture
def registry_url(registry_kind: str, request: pytest.FixtureRequest) -> str | None:
    """A fresh PostgreSQL database for this test, or None on SQLite."""
    if registry_kind == "sqlite":
        return None
    server = request.getfixturevalue("postgres_server")
    return server.create_database(f"bridge_test_{next(_databases)}")


@pytest.fixture
def open_same_registry(registry_url, registry_path) -> Iterator[Callable[[], Registry]]:
    """Open another registry on this test's file or database (another process would)."""
    opened: list[Registry] = []

    def open_() -> Registry:
        opened.append(open_registry(registry_url, registry_path))
        return opened[-1]

    yield open_
    for each in opened:
        each.close()


@pytest.fixture
def make_settings(registry_path, registry_url) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "job_registry_path": registry_path,
            "job_registry_url": registry_url,
            "auth_dev_secret": SECRET,
            "job_lease_seconds": 3.0,
            "dispatch_interval_seconds": 0.05,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def make_client(make_settings) -> Iterator[Callable[..., TestClient]]:
    """Start an app (lifespan included) per call; every app is stopped at teardown.

    Before an app stops, jobs still running are cancelled so the inline pool can drain.
    """
    with ExitStack() as stack:

        def start(**overrides: Any) -> TestClient:
            client = TestClient(
                create_app(make_settings(**overrides)), raise_server_exceptions=False
            )
            stack.enter_context(client)
            stack.callback(_cancel_unfinished, client.app.state.registry)
            return client

        yield start


def _cancel_unfinished(registry: Registry) -> None:
    for status in (Status.QUEUED, Status.RUNNING):
        for job in registry.list(None, status, 1000, None):
            registry.request_cancel(job.id)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()


@pytest.fixture
def registry(registry_path, registry_url) -> Iterator[Registry]:
    reg = open_registry(registry_url, registry_path)
    yield reg
    reg.close()


def build_job(
    owner: str = "alice",
    tool: str = "echo",
    arguments: dict[str, Any] | None = None,
    key: str | None = None,
    created_at: float | None = None,
) -> Job:
    arguments = {"message": "hi"} if arguments is None else arguments
    return queued_job(owner, tool, arguments, key, created_at)


@pytest.fixture
def new_job() -> Callable[..., Job]:
    return build_job
