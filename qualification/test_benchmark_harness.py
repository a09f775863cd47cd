"""§2 benchmark harness: the checklist's two benchmark commands run verbatim and write the
artefact the checklist describes. The commands are our bridge's own (its benchmarking CLI, over
its own wire): reference-target checks (`commands`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .stack.deadlines import STARTUP_SECONDS
from .stack.launch import shell_env

pytestmark = pytest.mark.bench

#: Smoke's mix over the packaged servers file's demo MCP server (a fresh install's default).
MCP_SMOKE_TOOLS = {"demo.echo", "demo.sleep", "demo.cpu"}
TOKEN_SNIPPET = """from mcp_bridge.security.simple_jwt import jwt
print(jwt.encode({"sub": "bench", "roles": ["operator"]}, "dev-secret", algorithm="HS256"))
"""


def _bench(args: list[str], out_dir: Path, env: dict[str, str]) -> dict:
    """Run `python -m mcp_bridge.benchmarking ARGS --output-dir OUT`; return its one artefact."""
    command = [sys.executable, "-m", "mcp_bridge.benchmarking", *args, "--output-dir", str(out_dir)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    artefacts = sorted(out_dir.glob("*-smoke.json"))
    assert len(artefacts) == 1, f"expected one <timestamp>-smoke.json in {out_dir}"
    return json.loads(artefacts[0].read_text()) | {"_path": str(artefacts[0])}


def _summary_ok(artefact: dict, iterations: int) -> None:
    summary = artefact["summary"]
    assert summary["count"] == iterations
    assert 0 < summary["min"] <= summary["mean"] <= summary["max"]
    assert summary["throughput"] > 0


def _ran_over_mcp(artefact: dict) -> None:
    """Every job succeeded, and smoke's MCP half ran: the default servers file was used."""
    tools = artefact["jobs"]["tools"]
    assert set(artefact["jobs"]["statuses"]) == {"succeeded"}, artefact["jobs"]["statuses"]
    assert set(tools) >= MCP_SMOKE_TOOLS, f"no real MCP calls in smoke: {tools}"


@pytest.mark.needs("commands")
@pytest.mark.check(
    "bench.inline-worker",
    section="2",
    title="Checklist command: in-process benchmark with a Celery inline worker",
)
def test_celery_inline_worker_benchmark(evidence, tmp_path):
    out_dir = tmp_path / "artefacts"
    artefact = _bench(
        [
            "--scenario",
            "smoke",
            "--iterations",
            "5",
            "--concurrency",
            "4",
            "--job-backend",
            "celery",
            "--celery-inline-worker",
            "--celery-inline-worker-concurrency",
            "4",
            "--label",
            "celery-inline",
        ],
        out_dir,
        shell_env({"CI": "true"}),  # a fresh install: the bridge's defaults
    )
    config = artefact["config"]
    evidence.attach(Path(artefact["_path"]), "celery-inline-smoke.json")
    evidence.measure(
        summaryMean=artefact["summary"]["mean"], config=config, tools=artefact["jobs"]["tools"]
    )
    assert config["jobBackend"] == "celery"
    assert config["celery"]["inlineWorker"] == {"enabled": True, "concurrency": 4}
    assert config["celery"]["taskAlwaysEager"] is False
    assert config["celery"]["taskEagerPropagates"] is True
    assert {"brokerUrl", "resultBackend"} <= set(config["celery"])
    assert artefact["label"] == "celery-inline"
    _summary_ok(artefact, 5)
    _ran_over_mcp(artefact)


@pytest.mark.needs("boot", "configure", "commands")
@pytest.mark.check(
    "bench.http",
    section="2",
    title="Checklist command: benchmark against an external API with workers",
)
def test_http_benchmark_against_workers(target, evidence, tmp_path):
    # The packaged servers file (the default): smoke's MCP half runs in the Celery workers.
    t = target(workers=2, settings={"AUTH_DEV_SECRET": "dev-secret", "MCP_SERVERS_FILE": None})
    token = subprocess.run(
        [sys.executable, "-"],
        input=TOKEN_SNIPPET,
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        check=True,
    ).stdout.strip()
    env = shell_env(
        {
            "CI": "true",
            "CELERY_BROKER_URL": t.settings["CELERY_BROKER_URL"],
            "CELERY_RESULT_BACKEND": t.settings["CELERY_RESULT_BACKEND"],
        }
    )
    artefact = _bench(
        [
            "--scenario",
            "smoke",
            "--iterations",
            "10",
            "--concurrency",
            "4",
            "--transport",
            "http",
            "--base-url",
            t.nodes.api.url,  # the bridge's own API process: the CLI speaks its wire
            "--token",
            token,
            "--job-backend",
            "celery",
            "--label",
            "celery-http",
        ],
        tmp_path / "artefacts",
        env,
    )
    evidence.attach(Path(artefact["_path"]), "celery-http-smoke.json")
    evidence.measure(
        summaryMean=artefact["summary"]["mean"],
        jobs=artefact["jobs"]["statuses"],
        tools=artefact["jobs"]["tools"],
    )
    assert artefact["config"]["jobBackend"] == "celery"
    assert artefact["config"]["celery"]["inlineWorker"]["enabled"] is False
    _ran_over_mcp(artefact)
    _summary_ok(artefact, 10)
