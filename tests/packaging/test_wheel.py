"""The wheel as a user gets it: built from the repo, installed into a fresh venv with its deps.

From that venv only (never this checkout): the API serves its contract and offline docs, a Celery
worker runs a job the API submitted over a real redis-server, the benchmarking CLI runs, and the
report generator builds a draft from sample evidence. No generic top-level package is installed,
and the qualification plugin stays out of an unrelated project's pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qualification.stack.process import free_port
from qualification.stack.redis import provision
from reports.sample_evidence import write_sample_evidence, write_sample_repo, write_sample_sbom

REPO = Path(__file__).resolve().parents[2]
SECRET = "wheel-smoke-secret-at-least-32-bytes-long"
PIP_SECONDS = 600  # building and installing with dependencies from the registry or its cache
START_SECONDS = 120  # a first start (imports compiled) of the API or a worker, loaded machine


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(out)],
        check=True,
        timeout=PIP_SECONDS,
    )
    (built,) = out.glob("mcp_bridge-*.whl")
    return built


@pytest.fixture(scope="module")
def python(wheel: Path, tmp_path_factory) -> Path:
    """A fresh venv with the wheel, its and the report's dependencies, and pytest."""
    root = tmp_path_factory.mktemp("venv")
    venv.create(root, with_pip=True)
    exe = root / "bin" / "python"
    subprocess.run(
        [str(exe), "-m", "pip", "install", "-q", f"{wheel}[report]", "pytest"],
        check=True,
        timeout=PIP_SECONDS,
    )
    return exe


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment minus anything pointing at the checkout or configuring it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env = {k: v for k, v in env.items() if not k.startswith(("PYTEST_", "MCP_", "JOB_", "AUTH_"))}
    return {**env, "AUTH_DEV_SECRET": SECRET, "MCP_SERVERS_FILE": "", **extra}


def _run(python: Path, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout=120):
    return subprocess.run(
        [str(python), *args],
        cwd=cwd,
        env=env or _clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_wheel_carries_its_data_and_no_generic_packages(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {
        "mcp_bridge",
        "mcp_bridge_client",
        "mcp_bridge_qualification",
        "mcp_bridge_reports",
    }
    for needed in (
        "mcp_bridge/mcp_servers.default.json",
        "mcp_bridge_reports/license_policy.toml",
        *(f"mcp_bridge_reports/templates/{t.name}" for t in (REPO / "templates").glob("*.j2")),
    ):
        assert needed in names, needed
    packages = {
        "/".join(p.relative_to(REPO / "src").parent.parts)
        for p in (REPO / "src").rglob("__init__.py")
    }
    packages |= {
        "/".join(("mcp_bridge_qualification", *p.relative_to(REPO / "qualification").parent.parts))
        for p in (REPO / "qualification").rglob("__init__.py")
    }
    assert {p for p in packages if f"{p}/__init__.py" not in names} == set(), "missing packages"
    entry_points = next((n for n in names if n.endswith("entry_points.txt")), None)
    if entry_points:
        assert "pytest11" not in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = provision("binary")
    server.start()
    try:
        yield server.url
    finally:
        server.close()


def _wait(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {seconds:g}s waiting for {what}")


def test_api_and_worker_run_a_job_from_the_installed_wheel(python, redis_url, tmp_path) -> None:
    port = free_port()
    env = _clean_env(
        JOB_BACKEND="celery",
        CELERY_BROKER_URL=redis_url,
        JOB_REGISTRY_PATH=str(tmp_path / "registry.db"),
    )
    api_argv = ["-m", "uvicorn", "mcp_bridge.app:create_app", "--factory", "--port", str(port)]
    worker_argv = ["-m", "mcp_bridge.worker", "-n", "wheel@%h", "--concurrency", "1"]
    logs = [(tmp_path / "api.log").open("w"), (tmp_path / "worker.log").open("w")]
    processes = [
        subprocess.Popen([str(python), *argv], cwd=tmp_path, env=env, stdout=log, stderr=log)
        for argv, log in zip((api_argv, worker_argv), logs, strict=True)
    ]
    try:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert processes[0].poll() is None, f"the API exited {processes[0].returncode}"
            return httpx.get(f"{url}/readyz", timeout=5).status_code == 200

        _wait(ready, START_SECONDS, "the API")
        docs = httpx.get(f"{url}/docs", timeout=5).text
        assert "//cdn" not in docs and httpx.get(f"{url}/openapi.json").status_code == 200
        mint = "from mcp_bridge.security.tokens import mint; "
        mint += f"print(mint('w', ['operator'], {SECRET!r}))"
        token = _run(python, "-c", mint, cwd=tmp_path).stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        job = {"tool": "echo", "arguments": {"message": "wheel"}}
        submitted = httpx.post(f"{url}/v1/jobs", json=job, headers=headers)
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]

        def finished() -> dict | None:
            job = httpx.get(f"{url}/v1/jobs/{job_id}", params={"wait": 5}, headers=headers).json()
            return job if job["status"] in ("succeeded", "failed", "cancelled") else None

        job = _wait(finished, START_SECONDS, "the worker to run the job")
        assert job["status"] == "succeeded", job
    except BaseException:
        for log in logs:
            log.flush()
            print(f"--- {log.name}:\n{Path(log.name).read_text()[-3000:]}")
        raise
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()


def test_benchmarking_cli_runs_from_the_installed_wheel(python, tmp_path) -> None:
    done = _run(
        python,
        "-m",
        "mcp_bridge.benchmarking",
        "--scenario",
        "smoke",
        "--iterations",
        "1",
        "--concurrency",
        "2",
        "--job-backend",
        "inline",
        "--output-dir",
        str(tmp_path / "bench"),
        cwd=tmp_path,
        env=_clean_env(JOB_REGISTRY_PATH=str(tmp_path / "bench.db")),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    artefacts = list((tmp_path / "bench").rglob("*.json"))
    assert artefacts and json.loads(artefacts[0].read_text())


def test_report_builds_a_draft_from_sample_evidence(python, tmp_path) -> None:
    run = write_sample_evidence(tmp_path / "run")
    root = write_sample_repo(tmp_path / "repo")
    sbom = write_sample_sbom(tmp_path / "sbom.json")
    args = ["--evidence-dir", str(run), "--repo-root", str(root), "--sbom", str(sbom)]
    done = _run(python, "-m", "mcp_bridge_reports", *args, "--draft", cwd=tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    assert list(root.rglob("ga-checklist.html")) or list(tmp_path.rglob("ga-checklist.html"))


def test_plugin_is_inert_in_an_unrelated_pytest_and_opt_in(python, tmp_path) -> None:
    (tmp_path / "test_other.py").write_text("def test_nothing():\n    pass\n")
    plain = _run(python, "-m", "pytest", "--help", "-p", "no:cacheprovider", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert "--qualification-mode" not in plain.stdout and "--evidence-dir" not in plain.stdout
    opted = _run(
        python,
        "-m",
        "pytest",
        "-p",
        "mcp_bridge_qualification.plugin",
        "--help",
        "-p",
        "no:cacheprovider",
        cwd=tmp_path,
    )
    assert "--qualification-mode" in opted.stdout, (opted.stdout + opted.stderr)[-2000:]
