"""The benchmark artefact: its schema (validated before writing), file name and URL redaction."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveInt

SCHEMA_VERSION = 1
REDACTED = "***"
_SECRET_QUERY_KEYS = {"password", "passwd", "pass", "token", "secret"}


class _Model(BaseModel):
    """Field names are the JSON keys (camelCase); unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)


class InlineWorker(_Model):
    enabled: bool
    concurrency: PositiveInt | None = Field(description="threads of the inline worker")


class CeleryConfig(_Model):
    brokerUrl: str
    resultBackend: str
    taskAlwaysEager: bool
    taskEagerPropagates: bool
    inlineWorker: InlineWorker


class RunConfig(_Model):
    """Exactly the block the GA checklist (section 2) documents."""

    jobBackend: Literal["inline", "celery"]
    celery: CeleryConfig


class Summary(_Model):
    """Per-iteration wall seconds; throughput is all jobs over all wall time (jobs/s)."""

    count: PositiveInt
    mean: NonNegativeFloat
    min: NonNegativeFloat
    max: NonNegativeFloat
    p50: NonNegativeFloat
    p90: NonNegativeFloat
    p95: NonNegativeFloat
    stdev: NonNegativeFloat
    throughput: NonNegativeFloat


class Figures(_Model):
    count: NonNegativeInt
    mean: float | None
    p50: float | None
    p95: float | None


class JobFigures(_Model):
    """Seconds, from each job's createdAt/startedAt/finishedAt as the API returned them."""

    queueWait: Figures
    runtime: Figures
    statuses: dict[str, NonNegativeInt]
    tools: dict[str, NonNegativeInt]


class Run(_Model):
    iteration: PositiveInt
    wallSeconds: NonNegativeFloat
    jobs: NonNegativeInt
    succeeded: NonNegativeInt
    failed: NonNegativeInt


class Environment(_Model):
    cpuCount: PositiveInt | None
    cpuAffinity: PositiveInt | None
    cpuModel: str | None
    python: str
    platform: str
    versions: dict[str, str | None]
    gitCommit: str | None
    gitDirty: bool | None


class ProfileFiles(_Model):
    stats: str
    top: str
    topN: PositiveInt


class Artefact(_Model):
    schemaVersion: Literal[1] = SCHEMA_VERSION
    label: str | None
    scenario: str
    scenarioDescription: str
    transport: Literal["asgi", "http"]
    baseUrl: str | None
    iterations: PositiveInt
    warmup: NonNegativeInt
    concurrency: PositiveInt
    jobsPerIteration: PositiveInt
    parameters: dict[str, Any]
    config: RunConfig
    summary: Summary
    jobs: JobFigures
    runs: list[Run]
    environment: Environment
    profile: ProfileFiles | None = None
    startedAt: str
    finishedAt: str


ARTEFACT_JSON_SCHEMA: dict[str, Any] = Artefact.model_json_schema()


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """The artefact as it will be written; raises pydantic.ValidationError when malformed."""
    return Artefact.model_validate(data).model_dump(mode="json")


def redact_url(url: str | None) -> str | None:
    """Replace a password in ``scheme://user:password@host`` (and secret query values) by ***;
    any other URL is returned unchanged."""
    if not url or "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        return url
    netloc, query, changed = parts.netloc, parts.query, False
    if has_password:
        userinfo, _, hostport = netloc.rpartition("@")
        user, _, _ = userinfo.partition(":")
        netloc, changed = f"{user}:{REDACTED}@{hostport}", True
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key.lower() in _SECRET_QUERY_KEYS for key, _ in pairs):
            query = urlencode(
                [(k, REDACTED if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs],
                safe="*",
            )
            changed = True
    if not changed:
        return url
    tail = (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    return f"{parts.scheme}://{netloc}{parts.path}{tail}"


def utc_stamp(moment: datetime) -> str:
    """``20261124T013000Z``."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def artefact_path(output_dir: Path, started: datetime, scenario: str) -> Path:
    """``<output-dir>/<UTC timestamp>-<scenario>.json``; a later run in the same second gets
    ``-2``, ``-3``… appended so nothing is overwritten."""
    stem = f"{utc_stamp(started)}-{scenario}"
    path = output_dir / f"{stem}.json"
    counter = 2
    while path.exists():
        path = output_dir / f"{stem}-{counter}.json"
        counter += 1
    return path


def write_artefact(
    artefact: dict[str, Any], output_dir: Path | str, filename: str | None = None
) -> Path:
    """Validate, then write atomically; returns the path. `filename` overrides the default name."""
    data = validate(artefact)
    directory = Path(output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    if filename is not None:
        path = directory / filename
    else:
        started = datetime.fromisoformat(data["startedAt"])
        path = artefact_path(directory, started, data["scenario"])
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_artefact(path: Path | str) -> dict[str, Any]:
    """Read and validate an artefact file."""
    return validate(json.loads(Path(path).read_text(encoding="utf-8")))
