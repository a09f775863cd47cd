"""Submit, read, list and cancel jobs: the rules the API exposes."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp_bridge.jobs.models import Job, Status
from mcp_bridge.jobs.ports import Backend, Tools
from mcp_bridge.jobs.registry import DuplicateKey, Registry

log = logging.getLogger(__name__)
MAX_KEY_LENGTH = 255


class IdempotencyConflict(Exception):
    """The key was used before with another tool or other arguments."""

    def __init__(self, existing: Job) -> None:
        super().__init__(existing.id)
        self.existing = existing


class NotCancellable(Exception):
    """The job already reached a terminal state."""

    def __init__(self, job: Job) -> None:
        super().__init__(job.id)
        self.job = job


def fingerprint(tool: str, arguments: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of tool + arguments."""
    canonical = json.dumps(
        {"tool": tool, "arguments": arguments},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_job(
    owner: str,
    tool: str,
    arguments: dict[str, Any],
    key: str | None,
    created_at: float | None = None,
) -> Job:
    """A queued job, not yet committed."""
    return Job(
        id=str(uuid.uuid4()),
        owner=owner,
        tool=tool,
        arguments=arguments,
        status=Status.QUEUED,
        attempts=0,
        result=None,
        error=None,
        idempotency_key=key,
        fingerprint=fingerprint(tool, arguments),
        cancel_requested=False,
        worker=None,
        created_at=time.time() if created_at is None else created_at,
        started_at=None,
        finished_at=None,
        dispatched_at=None,
    )


@dataclass(frozen=True)
class Submitted:
    job: Job
    created: bool


def _ignore(tool: str) -> None:
    pass


class JobService:
    def __init__(
        self,
        registry: Registry,
        backend: Backend,
        catalog: Tools,
        on_submitted: Callable[[str], None] = _ignore,
    ) -> None:
        """`on_submitted(tool)` is told of every job accepted (the metrics count them)."""
        self.registry, self.backend, self.catalog = registry, backend, catalog
        self._on_submitted = on_submitted

    def submit(
        self, owner: str, tool: str, arguments: dict[str, Any], key: str | None
    ) -> Submitted:
        """Validate, commit the job, then publish it (the dispatcher retries a failed publish)."""
        self.catalog.validate(tool, arguments)
        job = new_job(owner, tool, arguments, key)
        try:
            self.registry.insert(job)
        except DuplicateKey as duplicate:
            if duplicate.existing.fingerprint != job.fingerprint:
                raise IdempotencyConflict(duplicate.existing) from None
            return Submitted(duplicate.existing, created=False)
        self._on_submitted(tool)
        self.dispatch(job.id)
        return Submitted(self.registry.get(job.id) or job, created=True)

    def dispatch(self, job_id: str) -> bool:
        """One publish attempt; a job the broker did not take stays undispatched, not lost."""
        try:
            self.backend.publish(job_id)
        except Exception as error:
            log.warning("publish of job %s failed, dispatcher will retry: %s", job_id, error)
            return False
        self.registry.mark_dispatched(job_id, time.time())
        return True

    def get(self, job_id: str) -> Job | None:
        return self.registry.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        job = self.registry.get(job_id)
        if job is None:
            return None
        if job.status.terminal:
            raise NotCancellable(job)
        after = self.registry.request_cancel(job_id)
        if after is not None and after.status.terminal and after.status != Status.CANCELLED:
            raise NotCancellable(after)
        return after
