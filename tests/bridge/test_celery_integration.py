"""The Celery backend end to end: a real redis-server, a real worker process, the API in-process.

The last two tests need no Redis: they run two Celery-backed apps one after another in one
process (as the benchmarks and the qualification suite do) and expect each to work on its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from mcp_bridge.app import create_app

REDIS_SERVER = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="no redis-server binary on PATH")


def _stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def redis_server(port: int, log: Path, poll) -> Iterator[str]:
    """A throw-away redis-server on `port` (never 6379), without persistence."""
    assert port != 6379
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
        )
    try:

        def answers() -> bool:
            if process.poll() is not None:
                pytest.fail(f"redis-server exited {process.returncode}:\n{_tail(log)}")
            try:
                return redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5).ping()
            except redis.RedisError:
                return False

        poll(answers, timeout=10, what=f"redis-server on port {port}")
        yield f"redis://127.0.0.1:{port}"
    finally:
        _stop(process)


@contextmanager
def celery_worker(
    env: dict[str, str], log: Path, name: str = "it@%h"
) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mcp_bridge.worker", "--pool", "solo", "-n", name],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
        )
    try:
        yield process
    finally:
        _stop(process)


def celery_env(
    url: str, registry_path: Path, secret: str, queue: str, registry_url: str | None = None
) -> dict[str, str]:
    return {
        **os.environ,
        "JOB_BACKEND": "celery",
        "CELERY_BROKER_URL": f"{url}/0",
        "CELERY_RESULT_BACKEND": f"{url}/1",
        "CELERY_QUEUE": queue,
        "JOB_REGISTRY_PATH": str(registry_path),
        "AUTH_DEV_SECRET": secret,
        "JOB_LEASE_SECONDS": "10",
        **({"JOB_REGISTRY_URL": registry_url} if registry_url else {}),
    }


def celery_settings(url: str, queue: str) -> dict[str, object]:
    return {
        "job_backend": "celery",
        "celery_broker_url": f"{url}/0",
        "celery_result_backend": f"{url}/1",
        "celery_queue": queue,
        "job_lease_seconds": 10.0,
        "dispatch_interval_seconds": 0.1,
    }


def wait_terminal(client, headers, job_id: str, worker: subprocess.Popen, log: Path, poll):
    def finished() -> dict | None:
        if worker.poll() is not None:
            pytest.fail(f"worker exited {worker.returncode}:\n{_tail(log)}")
        job = client.get(f"/v1/jobs/{job_id}", params={"wait": 2}, headers=headers).json()
        return job if job["status"] in {"succeeded", "failed", "cancelled"} else None

    return poll(finished, timeout=30, interval=0, what=f"job {job_id} on the worker")


@needs_redis
def test_jobs_run_on_a_real_worker_including_one_submitted_while_the_broker_was_down(
    tmp_path, registry_path, registry_url, make_client, auth, port, poll
):
    broker_port = port()
    url = f"redis://127.0.0.1:{broker_port}"
    client = make_client(**celery_settings(url, "bridge-it"))
    registry = client.app.state.registry
    alice = auth("alice")
    echo = {"tool": "echo", "arguments": {"message": "hi"}}

    # Broker down: not ready, yet a submission is committed (undispatched), not refused.
    unready = client.get("/readyz")
    assert unready.status_code == 503 and unready.json()["checks"]["broker"]["ok"] is False
    early = client.post("/v1/jobs", json=echo, headers=alice)
    assert early.status_code == 202, early.text
    early_id = early.json()["id"]
    assert registry.get(early_id).dispatched_at is None

    with redis_server(broker_port, tmp_path / "redis.log", poll):
        ready = client.get("/readyz").json()
        assert ready["jobBackend"] == "celery" and ready["checks"]["broker"]["ok"], ready
        poll(
            lambda: registry.get(early_id).dispatched_at is not None,
            timeout=15,
            what="the dispatcher's publish once the broker is up",
        )

        secret = client.app.state.settings.signing_secret
        env = celery_env(url, registry_path, secret, "bridge-it", registry_url)
        log = tmp_path / "worker.log"
        with celery_worker(env, log) as worker:
            accepted = client.post("/v1/jobs", json=echo, headers=alice)
            assert accepted.status_code == 202, accepted.text
            assert registry.get(accepted.json()["id"]).dispatched_at is not None

            for job_id in (accepted.json()["id"], early_id):
                job = wait_terminal(client, alice, job_id, worker, log, poll)
                assert job["status"] == "succeeded", (job, _tail(log))
                assert job["result"] == {"message": "hi"} and job["attempts"] == 1
                items = client.get(f"/v1/jobs/{job_id}/attempts", headers=alice).json()["items"]
                (attempt,) = items
                assert attempt["worker"].startswith("it@"), attempt
                assert attempt["outcome"] == "succeeded"


# -- several Celery-backed apps in one process (no broker needed) ------------------------------


def test_eager_apps_in_one_process_each_run_their_own_jobs(tmp_path, make_settings, auth):
    """`make_celery` registers its task with Celery's default `shared=True`: every later app also
    gets the earlier apps' task constructors (closing over *their* registries), and whichever
    Celery finalises first keeps the name, so a later app's jobs may run against an earlier
    app's registry file (there they are not found: they stay queued for ever)."""
    alice = auth("alice")
    for run in range(4):
        settings = make_settings(
            job_registry_path=tmp_path / f"run-{run}" / "registry.db",
            job_backend="celery",
            celery_task_always_eager=True,
            celery_broker_url=f"memory://localhost/{run}",
            celery_result_backend="cache+memory://",
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            app = create_app(settings)
        clashes = [str(w.message) for w in caught if "already registered" in str(w.message)]
        assert not clashes, f"app #{run + 1}: {clashes[0]}"
        with TestClient(app, raise_server_exceptions=False) as client:
            accepted = client.post(
                "/v1/jobs", json={"tool": "echo", "arguments": {"message": "x"}}, headers=alice
            )
            assert accepted.status_code == 202
            job = client.get(
                f"/v1/jobs/{accepted.json()['id']}", params={"wait": 1}, headers=alice
            ).json()
            assert job["status"] == "succeeded", f"app #{run + 1}: {job}"


def test_second_app_on_the_same_broker_url_can_publish(tmp_path, make_settings, auth):
    """`CeleryBackend.stop()` force-closes kombu's process-wide pool for the broker URL; a later
    app on that URL then fails every publish with "Acquire on closed pool"."""
    alice = auth("alice")
    for run in range(2):
        settings = make_settings(
            job_registry_path=tmp_path / f"run-{run}" / "registry.db",
            job_backend="celery",
            celery_broker_url="memory://localhost/",
            celery_result_backend="cache+memory://",
            dispatch_interval_seconds=60,  # only the submit's own publish counts
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            accepted = client.post(
                "/v1/jobs", json={"tool": "echo", "arguments": {"message": "x"}}, headers=alice
            )
            assert accepted.status_code == 202
            job = client.app.state.registry.get(accepted.json()["id"])
            assert job.dispatched_at is not None, f"app #{run + 1} could not publish"


def test_a_sweep_lock_left_by_a_dead_worker_expires_within_two_sweep_periods(make_settings):
    """kombu's redelivery sweep takes a lock (`unacked_mutex`) that a worker SIGKILLed mid-sweep,
    or a broker killed meanwhile, leaves behind until it expires; no worker sweeps until then.
    Seen in the chaos check: unacknowledged messages stayed for minutes past the visibility
    timeout with kombu's default expiry (300 s). The bridge bounds it by its sweep period."""
    from mcp_bridge.backends.celery_app import make_celery

    for visibility in (5, 60, 3600):
        options = make_celery(
            make_settings(celery_visibility_timeout=visibility)
        ).conf.broker_transport_options
        sweep = options["unacked_restore_interval"]
        assert 1 <= options.get("unacked_mutex_expire", 300) <= 2 * sweep, (visibility, options)
