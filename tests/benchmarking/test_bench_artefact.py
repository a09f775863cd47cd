"""The artefact schema, its file name and URL redaction."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from mcp_bridge.benchmarking.artefact import artefact_path, redact_url, validate, write_artefact
from mcp_bridge.benchmarking.bridge_settings import config_block
from mcp_bridge.benchmarking.figures import failure_line, job_figures


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:s3cret@redis:6379/1", "redis://:***@redis:6379/1"),
        ("redis://user:s3cret@redis:6379/1", "redis://user:***@redis:6379/1"),
        ("amqp://guest:guest@[::1]:5672//", "amqp://guest:***@[::1]:5672//"),
        (
            "rediss://h:6380/0?password=x&ssl_cert_reqs=none",
            "rediss://h:6380/0?password=***&ssl_cert_reqs=none",
        ),
        ("memory://", "memory://"),
        ("cache+memory://", "cache+memory://"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def _minimal() -> dict:
    class S:
        celery_broker_url = "redis://:pw@localhost:6379/0"
        celery_result_backend = "redis://localhost:6379/1"
        celery_task_always_eager = False
        celery_task_eager_propagates = True

    jobs = [
        {
            "id": "a",
            "tool": "echo",
            "status": "succeeded",
            "createdAt": "2026-11-24T01:00:00.000Z",
            "startedAt": "2026-11-24T01:00:00.250Z",
            "finishedAt": "2026-11-24T01:00:01.000Z",
        },
    ]
    return {
        "label": None,
        "scenario": "echo",
        "scenarioDescription": "no-op",
        "transport": "asgi",
        "baseUrl": None,
        "iterations": 1,
        "warmup": 0,
        "concurrency": 1,
        "jobsPerIteration": 1,
        "parameters": {},
        "config": config_block("celery", S(), True, 4),  # type: ignore[arg-type]
        "summary": {
            "count": 1,
            "mean": 1.0,
            "min": 1.0,
            "max": 1.0,
            "p50": 1.0,
            "p90": 1.0,
            "p95": 1.0,
            "stdev": 0.0,
            "throughput": 1.0,
        },
        "jobs": job_figures(jobs),
        "runs": [{"iteration": 1, "wallSeconds": 1.0, "jobs": 1, "succeeded": 1, "failed": 0}],
        "environment": {
            "cpuCount": 2,
            "cpuAffinity": 2,
            "cpuModel": "x",
            "python": "3.11",
            "platform": "Linux",
            "versions": {"celery": "5"},
            "gitCommit": None,
            "gitDirty": None,
        },
        "startedAt": "2026-11-24T01:30:00.000Z",
        "finishedAt": "2026-11-24T01:30:01.000Z",
    }


def test_config_block_is_the_checklists_and_redacted() -> None:
    data = validate(_minimal())
    assert data["config"] == {
        "jobBackend": "celery",
        "celery": {
            "brokerUrl": "redis://:***@localhost:6379/0",
            "resultBackend": "redis://localhost:6379/1",
            "taskAlwaysEager": False,
            "taskEagerPropagates": True,
            "inlineWorker": {"enabled": True, "concurrency": 4},
        },
    }


def test_job_figures_from_api_timestamps() -> None:
    figures = validate(_minimal())["jobs"]
    assert figures["queueWait"]["mean"] == pytest.approx(0.25)
    assert figures["runtime"]["mean"] == pytest.approx(0.75)
    assert figures["statuses"] == {"succeeded": 1}


def test_schema_refuses_extra_or_missing_config_keys() -> None:
    extra = _minimal()
    extra["config"]["celery"]["password"] = "x"
    with pytest.raises(ValidationError):
        validate(extra)
    missing = copy.deepcopy(_minimal())
    del missing["config"]["celery"]["inlineWorker"]
    with pytest.raises(ValidationError):
        validate(missing)


def test_write_names_file_by_utc_stamp_and_scenario(tmp_path: Path) -> None:
    first = write_artefact(_minimal(), tmp_path)
    second = write_artefact(_minimal(), tmp_path)
    assert first.name == "20261124T013000Z-echo.json"
    assert second.name == "20261124T013000Z-echo-2.json"  # same second: never overwritten
    assert artefact_path(tmp_path, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "cpu").name == (
        "20260102T030405Z-cpu.json"
    )


def test_failure_line_names_the_first_bad_job() -> None:
    jobs = [
        {"id": "1", "tool": "echo", "status": "succeeded"},
        {"id": "2", "tool": "sleep", "status": "failed", "error": "boom"},
        {"id": "3", "tool": "cpu", "status": "cancelled"},
    ]
    assert failure_line(jobs) == "job 2 (sleep) failed: boom (1 more did not succeed)"
    assert failure_line(jobs[:1]) is None


def test_artefacts_name_the_registry_an_api_serves() -> None:
    from mcp_bridge.benchmarking.targets import registry_kind, served_registry

    served = {"checks": {"registry": {"ok": True, "detail": "writable: postgresql://u:pw@h/db"}}}
    assert served_registry(served)["registryKind"] == "postgresql"
    assert "pw" not in served_registry(served)["registry"]
    file = {"checks": {"registry": {"ok": True, "detail": "writable: var/jobs/registry.db"}}}
    assert served_registry(file) == {"registry": "var/jobs/registry.db", "registryKind": "sqlite"}
    assert served_registry({}) == {"registryKind": "unknown"}
    assert registry_kind("postgres://h/db") == "postgresql"
