"""Broker, API and worker processes share one node protocol (drivers.base.Node)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from qualification.drivers.base import Node
from qualification.stack.managed import ManagedProcess
from qualification.stack.redis import BinaryRedis, ContainerRedis, UrlRedis, find_redis_binary

METHODS = [name for name in dir(Node) if not name.startswith("_")]


@pytest.mark.parametrize("kind", [ManagedProcess, BinaryRedis, ContainerRedis, UrlRedis])
def test_every_node_kind_has_the_whole_protocol(kind: type) -> None:
    missing = [
        name for name in METHODS if name != "name" and not callable(getattr(kind, name, None))
    ]
    assert not missing, f"{kind.__name__} lacks {missing}"


def test_a_paused_broker_answers_nothing_until_resumed(tmp_path: Path) -> None:
    binary = find_redis_binary()
    if binary is None:
        pytest.skip("no redis-server binary")
    with BinaryRedis(binary=binary, data_dir=tmp_path / "redis") as redis:
        assert redis.ready()
        redis.pause()
        try:
            assert not redis.ready()
        finally:
            redis.resume()
        assert redis.ready()


def test_a_process_node_reports_ready_and_logs(tmp_path: Path) -> None:
    marker = tmp_path / "up"
    argv = [sys.executable, "-c", f"open({str(marker)!r}, 'w'); print('hello', flush=True); "
            "import time; time.sleep(60)"]  # fmt: skip
    node = ManagedProcess("demo", argv, {}, tmp_path, marker.exists)
    try:
        node.start()
        assert node.ready() and "hello" in node.logs()
        node.pause()
        node.resume()
        assert node.kill() is not None and not node.ready()
    finally:
        node.close()
