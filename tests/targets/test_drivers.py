"""The driver layer holds: a bridge started by hand is qualified as a deployed black box (the safe
subset passes, the rest is skipped with the capability it lacks and the report says UNKNOWN), and
a driver that lies turns the suite red."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from qualification.stack.managed import ManagedProcess
from qualification.stack.process import free_port
from qualification.stack.redis import BinaryRedis, find_redis_binary

ROOT = Path(__file__).resolve().parents[2]
#: Checks a deployed black box must run, not skip: they need nothing but the API and tokens.
SAFE = (
    "security.missing-token",
    "security.alg-none",
    "input.malformed[malformed-json]",
    "input.malformed[missing-tool]",
    "idempotency.same-key",
)


def _pytest(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pytest", "qualification", "-p", "no:cacheprovider", "-q", *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _records(evidence: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (evidence / "checks").glob("*.json")}


@pytest.fixture
def bridge_by_hand(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The README's commands: Redis, `python -m mcp_bridge.worker`, `uvicorn … --factory`."""
    binary = find_redis_binary()
    if binary is None:
        pytest.skip("no redis-server binary")
    redis = BinaryRedis(binary=binary, data_dir=tmp_path / "redis")
    redis.start()
    port = free_port()
    env = {
        **os.environ,
        "JOB_BACKEND": "celery",
        "CELERY_BROKER_URL": redis.url_for(0),
        "CELERY_RESULT_BACKEND": redis.url_for(1),
        "JOB_REGISTRY_PATH": "var/jobs/registry.db",
        "AUTH_DEV_SECRET": "dev-secret",
    }
    url = f"http://127.0.0.1:{port}"
    api = ManagedProcess(
        "api",
        [sys.executable, "-m", "uvicorn", "mcp_bridge.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port)],
        env, tmp_path, lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 200,
        cwd=tmp_path,
    )  # fmt: skip
    worker = ManagedProcess(
        "worker", [sys.executable, "-m", "mcp_bridge.worker", "--pool", "solo"], env, tmp_path,
        lambda: "ready." in (tmp_path / "worker.log").read_text(), cwd=tmp_path,
    )  # fmt: skip
    try:
        for process in (api, worker):
            process.spawn()
        for process in (api, worker):
            process.wait_ready()

        def token(*roles: str) -> str:
            claims = {"sub": "bench", "roles": list(roles), "exp": int(time.time()) + 3600}
            return jwt.encode(claims, "dev-secret", algorithm="HS256")

        yield {"url": url, "token": token("operator"), "admin": token("admin")}
    finally:
        for process in (worker, api):
            process.close()
        redis.close()


# the README's dev-secret is short: PyJWT warns, as it should
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_a_bridge_started_by_hand_is_qualified_as_a_deployed_black_box(bridge_by_hand, tmp_path):
    evidence = tmp_path / "evidence"
    result = _pytest(
        "--target=deployed",
        f"--base-url={bridge_by_hand['url']}",
        f"--token={bridge_by_hand['token']}",
        f"--admin-token={bridge_by_hand['admin']}",
        f"--evidence-dir={evidence}",
        "-m", "not scaling and not power",
        timeout=900,
    )  # fmt: skip
    output = result.stdout[-3000:] + result.stderr[-2000:]
    assert result.returncode == 0, output
    records = _records(evidence)
    outcomes = {cid: r["outcome"] for cid, r in records.items()}
    assert not [cid for cid, outcome in outcomes.items() if outcome not in ("passed", "skipped")]
    for check_id in SAFE:
        assert outcomes.get(check_id) == "passed", (check_id, records.get(check_id))
    skipped = {cid: r["reason"] for cid, r in records.items() if r["outcome"] == "skipped"}
    assert skipped, "a black box cannot run the destructive checks, yet none was skipped"
    assert all(reason.startswith("target deployed cannot") for reason in skipped.values()), skipped
    for destructive in ("faults.worker-sigkill", "faults.redis-restart", "faults.api-restart"):
        assert destructive in skipped, destructive
    run = json.loads((evidence / "run.json").read_text())
    target = run["passes"][-1]["target"]
    assert target["name"] == "deployed" and target["jobsCreated"] > 0, target
    assert f"{target['jobsCreated']} job(s) created there" in result.stdout

    report = subprocess.run(
        [sys.executable, "-m", "reports", "--evidence-dir", str(evidence), "--draft",
         "--out", str(tmp_path / "report")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-2000:]
    bundle = json.loads((tmp_path / "report" / "report.json").read_text())
    assert bundle["gate"] == "FAIL", "a black-box run can never pass the GA gate"
    unknown = [i for i in bundle["items"] if i["status"] == "UNKNOWN"]
    assert any("target deployed cannot" in r for i in unknown for r in i["reasons"]), unknown
    assert not [i["id"] for i in bundle["items"] if i["status"] == "FAIL"]


def test_a_driver_that_reports_every_job_succeeded_turns_the_suite_red(tmp_path):
    evidence = tmp_path / "evidence"
    checks = ["faults.cancel-running", "monitoring.histograms", "idempotency.same-key"]
    result = _pytest(
        "--target=tests.targets.lying:factory",
        f"--evidence-dir={evidence}",
        *[f"--check-id={check}" for check in checks],
        timeout=600,
    )
    assert result.returncode == 1, result.stdout[-3000:]
    records = _records(evidence)
    # the lie is caught where a job must not succeed; a check it cannot touch still passes
    assert records["faults.cancel-running"]["outcome"] == "failed"
    assert records["monitoring.histograms"]["outcome"] == "failed"
    assert "saw ['succeeded'" in records["monitoring.histograms"]["reason"]
    assert records["idempotency.same-key"]["outcome"] == "passed"
