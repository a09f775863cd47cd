"""Configuration: defaults, environment variables, and one-line refusals of bad settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_bridge.config import ConfigError, load_settings

DEV = {"auth_dev_secret": "dev"}


def test_defaults():
    settings = load_settings(**DEV)
    assert settings.job_backend == "inline"
    assert settings.job_registry_path == Path("var/jobs/registry.db")
    assert settings.environment == "development"
    assert settings.celery_broker_url.startswith("redis://")
    assert settings.metrics_token is None
    assert settings.inline_concurrency == 4
    assert settings.job_lease_seconds == 30.0
    assert settings.lease_renew_seconds == pytest.approx(10.0)
    assert settings.max_body_bytes == 1_048_576
    assert settings.signing_secret == "dev"


def test_environment_variables_are_read(monkeypatch, tmp_path):
    env = {
        "JOB_BACKEND": "celery",
        "JOB_REGISTRY_PATH": str(tmp_path / "r.db"),
        "CELERY_BROKER_URL": "redis://127.0.0.1:6390/3",
        "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6390/4",
        "CELERY_VISIBILITY_TIMEOUT": "45",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "CELERY_QUEUE": "q-test",
        "AUTH_SECRET": "s" * 32,
        "METRICS_TOKEN": "scrape",
        "INLINE_CONCURRENCY": "7",
        "JOB_LEASE_SECONDS": "1.5",
        "MAX_BODY_BYTES": "4096",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.job_backend == "celery"
    assert settings.job_registry_path == tmp_path / "r.db"
    assert settings.celery_broker_url == "redis://127.0.0.1:6390/3"
    assert settings.celery_result_backend == "redis://127.0.0.1:6390/4"
    assert settings.celery_visibility_timeout == 45
    assert settings.celery_task_always_eager is True
    assert settings.celery_queue == "q-test"
    assert settings.signing_secret == "s" * 32
    assert settings.metrics_token == "scrape"
    assert settings.inline_concurrency == 7
    assert settings.lease_renew_seconds == pytest.approx(0.5)
    assert settings.max_body_bytes == 4096


def test_auth_secret_wins_over_dev_secret():
    assert load_settings(auth_secret="a" * 32, auth_dev_secret="dev").signing_secret == "a" * 32


def refusal(variable: str, **values: object) -> str:
    with pytest.raises(ConfigError) as raised:
        load_settings(**values)
    error = raised.value
    assert isinstance(error, SystemExit)
    message = str(error)
    assert error.code == message, "SystemExit prints its code: it must be the message"
    assert "\n" not in message and message.startswith("configuration error: ")
    assert variable in message, message
    return message


@pytest.mark.parametrize(
    ("variable", "values"),
    [
        ("JOB_BACKEND", {"job_backend": "bogus", **DEV}),
        ("CELERY_BROKER_URL", {"celery_broker_url": "http://localhost:6379/0", **DEV}),
        ("CELERY_BROKER_URL", {"celery_broker_url": "localhost:6379", **DEV}),
        ("CELERY_RESULT_BACKEND", {"celery_result_backend": "ftp://x", **DEV}),
        ("INLINE_CONCURRENCY", {"inline_concurrency": 0, **DEV}),
        ("JOB_LEASE_SECONDS", {"job_lease_seconds": 0, **DEV}),
        ("AUTH_SECRET", {}),
        ("AUTH_DEV_SECRET", {"environment": "production", "auth_dev_secret": "dev"}),
        (
            "AUTH_DEV_SECRET",
            {"environment": "production", "auth_dev_secret": "dev", "auth_secret": "s" * 32},
        ),
        ("AUTH_SECRET", {"environment": "production"}),
        ("AUTH_SECRET", {"environment": "production", "auth_secret": "s" * 31}),
        ("ENVIRONMENT", {"environment": "staging", **DEV}),
    ],
    ids=[
        "bad-backend",
        "http-broker",
        "schemeless-broker",
        "bad-result-backend",
        "zero-concurrency",
        "zero-lease",
        "no-secret",
        "prod-dev-secret",
        "prod-dev-secret-with-secret",
        "prod-no-secret",
        "prod-31-byte-secret",
        "bad-environment",
    ],
)
def test_bad_configuration_is_one_line_naming_the_variable(variable, values):
    refusal(variable, **values)


def test_bad_environment_variable_is_named(monkeypatch):
    monkeypatch.setenv("AUTH_DEV_SECRET", "dev")
    monkeypatch.setenv("JOB_BACKEND", "rabbit")
    refusal("JOB_BACKEND")
    monkeypatch.setenv("JOB_BACKEND", "inline")
    monkeypatch.setenv("CELERY_BROKER_URL", "https://broker.example")
    refusal("CELERY_BROKER_URL")


def test_production_accepts_a_32_byte_secret():
    settings = load_settings(environment="production", auth_secret="s" * 32)
    assert settings.signing_secret == "s" * 32
    # Bytes are counted, not characters: 16 two-byte characters are 32 bytes.
    assert load_settings(environment="production", auth_secret="é" * 16).environment == "production"
    refusal("AUTH_SECRET", environment="production", auth_secret="é" * 15 + "a")


@pytest.mark.parametrize(
    ("variable", "env"),
    [
        ("JOB_BACKEND", {"JOB_BACKEND": "bogus", "AUTH_DEV_SECRET": "dev"}),
        ("AUTH_DEV_SECRET", {"ENVIRONMENT": "production", "AUTH_DEV_SECRET": "dev"}),
    ],
    ids=["bad-backend", "production-dev-secret"],
)
def test_api_start_with_bad_config_exits_with_one_line(tmp_path, port, variable, env):
    environ = {**os.environ, "JOB_REGISTRY_PATH": str(tmp_path / "registry.db"), **env}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "mcp_bridge.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port()),
    ]
    try:
        done = subprocess.run(
            command, env=environ, cwd=tmp_path, capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the API started despite a bad configuration")
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines, "no error line on stderr"
    assert variable in lines[-1], done.stderr
    assert "Traceback" not in done.stderr
