"""The Celery backend as the API sees it: publish job ids to the broker."""

from __future__ import annotations

import contextlib

import kombu.pools

from mcp_bridge.backends.celery_app import TASK_NAME, make_celery
from mcp_bridge.config import Settings
from mcp_bridge.jobs.ports import Tools
from mcp_bridge.jobs.registry import Registry


class CeleryBackend:
    name = "celery"

    def __init__(self, settings: Settings, registry: Registry, catalog: Tools) -> None:
        self._settings = settings
        self.app = make_celery(settings, lambda: (registry, catalog), publisher=True)
        self._task = self.app.tasks[TASK_NAME]

    def start(self) -> None:
        pass

    def stop(self) -> None:
        """Close this app's broker connections and forget its entries in kombu's process-wide
        pools, so a later app on the same broker URL gets fresh ones instead of closed ones."""
        self.app.pool.force_close_all()
        conn = self.app.connection_for_write()
        try:
            for group in (kombu.pools.producers, kombu.pools.connections):
                with contextlib.suppress(KeyError):
                    del group[conn]
        finally:
            conn.release()

    def publish(self, job_id: str) -> None:
        """One publish attempt, no retries: the dispatcher retries an undispatched job.

        `ignore_result`: the registry holds the outcome; subscribing to a result per job would
        only cost a Redis round trip and a subscription the API never reads.
        """
        self._task.apply_async(args=[job_id], retry=False, ignore_result=True)

    def check(self) -> tuple[bool, str]:
        if self._settings.celery_task_always_eager:
            return True, "eager (tasks run in the API process)"
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(
                    max_retries=1,
                    interval_start=0,
                    interval_step=0,
                    timeout=self._settings.publish_timeout_seconds,
                )
        except Exception as error:
            return False, f"broker unreachable: {type(error).__name__}: {error}"
        return True, "broker reachable"
