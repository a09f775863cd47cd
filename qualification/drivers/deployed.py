"""The deployed driver: a bridge of this kind that the suite did not start (`--target deployed
--base-url URL --token T [--admin-token T2]`).

A black box: no processes to signal, no settings to choose, no tokens to mint, no registry to
read. Only the checks that are safe on a live deployment can run (security, bad input,
idempotency, monitoring, the HTTP benchmark, a bounded load); every other check is skipped with
the capability it lacks and shows UNKNOWN. The client counts the jobs it creates, and the run
states that count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ..stack.deadlines import Deadlines
from .base import Driver, Target, Unsupported
from .reference import RestClient


class DeployedClient(RestClient):
    """Our wire with the tokens it was given: the operator's by default, the admin's on request."""

    def __init__(self, base_url: str, token: str, admin_token: str | None) -> None:
        super().__init__(base_url, Deadlines({}), default_token=token, name="deployed")
        self._admin = admin_token

    def token(
        self, subject: str | None = None, roles: Iterable[str] | None = None, **claims: Any
    ) -> str:
        if subject is None and not claims and roles is not None and "admin" in roles:
            if self._admin:
                return self._admin
            raise Unsupported("admin-token", self.target_name)
        return super().token(subject, roles, **claims)


def _epoch(stamp: str | None) -> float | None:
    """The API's ISO 8601 time as epoch seconds, as every observer reports executions."""
    return None if stamp is None else datetime.fromisoformat(stamp).timestamp()


class ApiObserver:
    """What an admin token can see: attempts and the job listing. The broker stays unseen."""

    def __init__(self, client: DeployedClient) -> None:
        self.client = client

    def _admin(self) -> str:
        return self.client.token(roles=("admin",))

    def executions(self, job_id: str) -> list[dict[str, Any]]:
        reply = self.client.attempts(job_id, token=self._admin())
        if reply.status != 200:
            raise AssertionError(f"attempts of {job_id}: {reply.describe()}")
        return [
            {
                **run,
                "startedAt": _epoch(run.get("startedAt")),
                "finishedAt": _epoch(run.get("finishedAt")),
            }
            for run in reply.body["items"]
        ]

    def jobs(self) -> list[dict[str, Any]]:
        return [dict(job) for job in self.client.list_all(token=self._admin())]

    def job_count(self) -> int:
        return len(self.jobs())

    def own_job_count(self) -> int:
        return len(self.client.list_all())

    def present(self) -> bool:
        raise Unsupported("registry", "target deployed")

    def queue_depth(self) -> int:
        raise Unsupported("broker", "target deployed")

    def broker_drained(self) -> bool:
        raise Unsupported("broker", "target deployed")


class DeployedTarget(Target):
    name = "deployed"

    def __init__(self, driver: DeployedDriver) -> None:
        self.capabilities = driver.capabilities
        self.client = DeployedClient(driver.base_url, driver.token, driver.admin_token)
        self.deadlines = self.client.deadlines
        self.observer = ApiObserver(self.client)
        self._driver = driver

    def close(self) -> None:
        self._driver.jobs_created += self.client.submitted
        super().close()


class DeployedDriver(Driver):
    name = "deployed"
    shared = True

    def __init__(self, base_url: str, token: str, admin_token: str | None = None) -> None:
        self.base_url, self.token, self.admin_token = base_url, token, admin_token
        admin = {"admin-token", "executions", "registry"} if admin_token else set()
        self.capabilities = frozenset({"list-jobs", "attempts-endpoint", "own-jobs", *admin})
        self.jobs_created = 0

    @classmethod
    def from_config(cls, config: pytest.Config) -> DeployedDriver:
        base_url, token = config.getoption("base_url"), config.getoption("token")
        if not base_url or not token:
            raise pytest.UsageError("--target deployed needs --base-url URL and --token TOKEN")
        return cls(base_url, token, config.getoption("admin_token"))

    def launch(
        self,
        workdir: Path,
        *,
        workers: int = 1,
        settings: Mapping[str, str | None] | None = None,
        backend: str = "celery",
        start_api: bool = True,
        broker: bool | None = None,
    ) -> DeployedTarget:
        if settings or backend != "celery":
            raise Unsupported("configure", "target deployed")
        if workers < 1 or not start_api or broker is False:
            raise Unsupported("boot", "target deployed")
        return DeployedTarget(self)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "baseUrl": self.base_url, "jobsCreated": self.jobs_created}
