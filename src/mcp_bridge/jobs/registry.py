"""The job registry: the single source of truth for job state, as one interface.

Two adapters implement it: SQLite (`JOB_REGISTRY_PATH`, one host; the embedded default) and
PostgreSQL (`JOB_REGISTRY_URL`, any number of hosts); `jobs.connect` opens the one configured.
Every state change is a compare-and-set on the job row, so the API, the dispatcher and any
number of workers agree on who runs what.

Schemas are versioned by a small `schema_migrations` table (one row per applied step) rather
than Alembic: the schema is a dozen statements in two dialects with no ORM, and a bridge must
refuse a schema newer than it knows — a table of integers says that in one query.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from mcp_bridge.jobs.models import Attempt, Claim, FinishedEvent, Job, Status

POSTGRES_SCHEMES = ("postgresql", "postgres")


class DuplicateKey(Exception):
    """The owner already used this idempotency key; `existing` is that job."""

    def __init__(self, existing: Job) -> None:
        super().__init__(existing.id)
        self.existing = existing


class RegistryUnavailable(Exception):
    """The registry cannot be read or written (file, database or connection)."""


class SchemaTooNew(RegistryUnavailable):
    """The registry was migrated by a newer bridge; this one must not touch it."""


class Registry(Protocol):
    """What the API, the dispatcher, the workers and the metrics ask of the registry."""

    #: Where the registry lives, fit for logs (no password).
    location: str

    def insert(self, job: Job) -> Job:
        """Commit a new queued job; raise DuplicateKey if its idempotency key is taken."""

    def get(self, job_id: str) -> Job | None: ...

    def find_by_key(self, owner: str, key: str) -> Job | None: ...

    def list(
        self, owner: str | None, status: Status | None, limit: int, after: tuple[float, str] | None
    ) -> list[Job]:
        """Jobs newest first; `after` is the (created_at, id) of the previous page's last job."""

    def attempts(self, job_id: str) -> list[Attempt]: ...

    def count_by_status(self) -> dict[Status, int]: ...

    def check_writable(self) -> None:
        """Prove the registry takes a write (readiness); raise RegistryUnavailable if not."""

    def mark_dispatched(self, job_id: str, at: float) -> None: ...

    def due_for_dispatch(
        self, now: float, redispatch_after: float, limit: int, grace: float = 0.0
    ) -> list[str]:
        """Queued jobs never published (older than `grace`), or published so long ago their
        message looks lost."""

    def forget_dispatch(self) -> int:
        """Mark every queued job undispatched (the inline backend's queue died with its process)."""

    def reap_expired(self, now: float) -> list[str]:
        """Running jobs whose lease ran out (their worker died): queue them again."""

    def claim(self, job_id: str, worker: str, lease_seconds: float) -> Claim | None:
        """Compare-and-set queued → running (or take over an expired lease); None if not ours."""

    def renew(self, claim: Claim, lease_seconds: float) -> bool | None:
        """Extend the lease; returns whether a cancel was requested, None if the job is lost."""

    def finish(
        self, claim: Claim, status: Status, result: Any = None, error: str | None = None
    ) -> bool:
        """Record the attempt's terminal outcome; False if another attempt superseded this one."""

    def request_cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once; flag a running one. Returns the job as it now stands."""

    def last_event_seq(self) -> int:
        """The newest finish event's sequence number: changes whenever a job turns terminal."""

    def events_since(self, seq: int, limit: int = 10_000) -> list[FinishedEvent]:
        """Finish events after `seq`, in commit order (a reader never skips a late commit)."""

    def schema_version(self) -> int: ...

    def close(self) -> None: ...


def is_database_url(value: str) -> bool:
    return urlsplit(value).scheme in POSTGRES_SCHEMES


def redact(url: str) -> str:
    """The URL without its password, for logs and error lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def check_version(found: int, known: int, where: str) -> None:
    """Refuse a schema a newer bridge migrated (its meaning may have changed under us)."""
    if found > known:
        raise SchemaTooNew(
            f"{where}: schema version {found} is newer than this bridge knows ({known}); "
            "upgrade the bridge"
        )
