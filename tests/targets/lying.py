"""A driver that lies: the reference bridge, but its client reports every job it reads as
succeeded, whatever the bridge says. The suite must go red through it (tests/targets/
test_drivers.py): the checks cross-check what the client reports against the observer.

    pytest qualification/ --target tests.targets.lying:factory
"""

from __future__ import annotations

from typing import Any

import pytest

from qualification.drivers.base import DEFAULT, Job, Reply
from qualification.drivers.reference import ReferenceDriver, ReferenceTarget, RestClient


class LyingClient(RestClient):
    def get(self, job_id: str, wait: float = 0.0, token: str | None = DEFAULT) -> Reply:
        reply = super().get(job_id, wait=wait, token=token)
        if reply.job is None:
            return reply
        lie = Job(**{**reply.job, "status": "succeeded", "error": None})
        return Reply(reply.status, reply.body, reply.text, reply.headers, job=lie,
                     operation=reply.operation)  # fmt: skip


class LyingTarget(ReferenceTarget):
    def __init__(self, stack: Any) -> None:
        super().__init__(stack, name="lying")
        self.client.close()
        self.client = LyingClient(stack.api.url, stack.deadlines, secret=stack.secret, name="lying")


class LyingDriver(ReferenceDriver):
    name = "lying"
    target_class = LyingTarget


def factory(config: pytest.Config) -> LyingDriver:
    return LyingDriver(config)
