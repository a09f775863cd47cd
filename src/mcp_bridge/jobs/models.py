"""Job records as the registry stores them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})


@dataclass(frozen=True)
class Job:
    id: str
    owner: str
    tool: str
    arguments: dict[str, Any]
    status: Status
    attempts: int
    result: Any
    error: str | None
    idempotency_key: str | None
    fingerprint: str
    cancel_requested: bool
    worker: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    dispatched_at: float | None


@dataclass(frozen=True)
class Attempt:
    job_id: str
    attempt: int
    worker: str
    started_at: float
    finished_at: float | None
    outcome: str | None


@dataclass(frozen=True)
class Claim:
    """A worker's hold on one execution attempt of a job."""

    job_id: str
    attempt: int
    tool: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class FinishedEvent:
    """A job reaching a terminal state, in commit order (feeds the metrics)."""

    seq: int
    job_id: str
    tool: str
    status: Status
    queue_wait: float | None
    runtime: float | None
