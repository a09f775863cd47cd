"""JSON views of jobs (camelCase, ISO 8601 UTC timestamps)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from mcp_bridge.jobs.models import Attempt, Job


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_view(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "tool": job.tool,
        "arguments": job.arguments,
        "status": job.status.value,
        "attempts": job.attempts,
        "result": job.result,
        "error": job.error,
        "cancelRequested": job.cancel_requested,
        "owner": job.owner,
        "idempotencyKey": job.idempotency_key,
        "createdAt": iso(job.created_at),
        "startedAt": iso(job.started_at),
        "finishedAt": iso(job.finished_at),
    }


def attempt_view(attempt: Attempt) -> dict[str, Any]:
    return {
        "attempt": attempt.attempt,
        "worker": attempt.worker,
        "startedAt": iso(attempt.started_at),
        "finishedAt": iso(attempt.finished_at),
        "outcome": attempt.outcome,
    }


def page_token(job: Job) -> str:
    return base64.urlsafe_b64encode(f"{job.created_at!r}|{job.id}".encode()).decode()


def parse_page_token(token: str) -> tuple[float, str]:
    """Raise ValueError for a token this API did not issue."""
    try:
        created, _, job_id = base64.urlsafe_b64decode(token.encode()).decode().partition("|")
        return float(created), job_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("pageToken is not one this API issued") from None
