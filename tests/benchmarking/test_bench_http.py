"""The programmatic API against an API that is already running (uvicorn on a loopback port)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from mcp_bridge.app import create_app
from mcp_bridge.benchmarking import BenchmarkError, BenchmarkOptions, run_benchmark
from mcp_bridge.benchmarking.artefact import write_artefact
from mcp_bridge.config import load_settings
from mcp_bridge.security.tokens import mint

SECRET = "benchmark-test-secret-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    registry = tmp_path_factory.mktemp("registry") / "registry.db"
    settings = load_settings(
        job_backend="inline", job_registry_path=registry, auth_dev_secret=SECRET
    )
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_run_benchmark_over_http(api: str, tmp_path: Path) -> None:
    token = mint("bench", ["operator"], SECRET)
    artefact = run_benchmark(
        BenchmarkOptions(
            scenario="smoke",
            iterations=2,
            concurrency=3,
            transport="http",
            base_url=api,
            token=token,
            label="http-check",
        )
    )
    assert artefact["transport"] == "http" and artefact["baseUrl"] == api
    assert artefact["config"]["jobBackend"] == "inline"  # as the API's /readyz names it
    assert artefact["config"]["celery"]["inlineWorker"] == {"enabled": False, "concurrency": None}
    assert artefact["jobs"]["statuses"] == {"succeeded": 24}
    assert artefact["summary"]["count"] == 2
    path = write_artefact(artefact, tmp_path, filename="20261124T000000Z-scaling-1w.json")
    assert path.read_text().startswith("{")


def test_wrong_token_is_one_line(api: str) -> None:
    with pytest.raises(BenchmarkError, match="refused the token: 401"):
        run_benchmark(
            BenchmarkOptions(
                transport="http",
                base_url=api,
                token=mint("x", ["operator"], "a-different-secret-of-at-least-32-bytes"),
            )
        )


def test_backend_mismatch_is_refused(api: str) -> None:
    token = mint("bench", ["operator"], SECRET)
    with pytest.raises(BenchmarkError, match="runs the inline backend"):
        run_benchmark(
            BenchmarkOptions(transport="http", base_url=api, token=token, job_backend="celery")
        )


def test_viewer_token_cannot_submit_one_line(api: str) -> None:
    token = mint("bench", ["viewer"], SECRET)
    with pytest.raises(BenchmarkError, match=r"POST /v1/jobs \(echo\) answered 403"):
        run_benchmark(
            BenchmarkOptions(scenario="echo", transport="http", base_url=api, token=token)
        )


def test_two_in_process_celery_runs_in_one_process() -> None:
    """A 1-thread then a 4-thread inline-worker run in the same process (the scaling pair)."""
    for threads in (1, 4):
        artefact = run_benchmark(
            BenchmarkOptions(
                scenario="echo",
                iterations=1,
                jobs_per_iteration=8,
                job_backend="celery",
                celery_inline_worker=True,
                celery_inline_worker_concurrency=threads,
                job_timeout=20,
            )
        )
        assert artefact["config"]["celery"]["inlineWorker"]["concurrency"] == threads
        assert artefact["jobs"]["statuses"] == {"succeeded": 8}
