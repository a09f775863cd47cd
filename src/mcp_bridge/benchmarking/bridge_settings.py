"""The bridge Settings a run uses, the artefact's `config` block, and quiet library logs."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_bridge.benchmarking.artefact import redact_url
from mcp_bridge.benchmarking.errors import BenchmarkError

if TYPE_CHECKING:
    from mcp_bridge.benchmarking.options import BenchmarkOptions
    from mcp_bridge.config import Settings

QUIET_LOGGERS = ("httpx", "httpcore", "celery", "kombu", "amqp")


def env_has(name: str) -> bool:
    return any(key.upper() == name for key in os.environ)


def load_settings_or_fail(**overrides: Any) -> Settings:
    from mcp_bridge.config import ConfigError, load_settings

    try:
        return load_settings(**overrides)
    except ConfigError as error:
        raise BenchmarkError(str(error)) from None


def in_process_settings(options: BenchmarkOptions, registry_dir: Path | None) -> Settings:
    """The Settings the in-process bridge runs with (environment + what the options imply)."""
    overrides: dict[str, Any] = dict(options.environment_overrides)
    if options.celery_inline_worker:
        overrides.update(
            job_backend="celery",
            celery_broker_url="memory://",
            celery_result_backend="cache+memory://",
        )
    elif options.job_backend is not None:
        overrides["job_backend"] = options.job_backend
    if registry_dir is not None:
        overrides["job_registry_path"] = registry_dir / "registry.db"
    if not (env_has("AUTH_SECRET") or env_has("AUTH_DEV_SECRET")):
        # A throw-away secret for this process's tokens (AUTH_SECRET: valid in production too).
        overrides.setdefault("auth_secret", secrets.token_urlsafe(48))
    return load_settings_or_fail(**overrides)


def local_settings() -> Settings:
    """Settings as this environment resolves them (for an external API's config block)."""
    overrides: dict[str, Any] = {}
    if not (env_has("AUTH_SECRET") or env_has("AUTH_DEV_SECRET")):
        overrides["auth_secret"] = secrets.token_urlsafe(48)  # not used: only Celery fields are
    return load_settings_or_fail(**overrides)


def config_block(
    job_backend: str, settings: Settings, inline_worker: bool, inline_concurrency: int
) -> dict[str, Any]:
    """The checklist's `config` block, broker and result URLs redacted."""
    return {
        "jobBackend": job_backend,
        "celery": {
            "brokerUrl": redact_url(settings.celery_broker_url),
            "resultBackend": redact_url(settings.celery_result_backend),
            "taskAlwaysEager": bool(settings.celery_task_always_eager),
            "taskEagerPropagates": bool(settings.celery_task_eager_propagates),
            "inlineWorker": {
                "enabled": inline_worker,
                "concurrency": inline_concurrency if inline_worker else None,
            },
        },
    }


@contextmanager
def quiet_logs(verbose: bool) -> Iterator[None]:
    """Library INFO chatter (a line per request/task) off for the run; levels restored after."""
    if verbose:
        yield
        return
    levels = {name: logging.WARNING for name in QUIET_LOGGERS}
    # memory:// has no host: kombu warns "No hostname was supplied" on every connection.
    levels["kombu.connection"] = logging.ERROR
    saved = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
