"""The Celery application and its one task, shared by the API (publisher) and the workers."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from functools import lru_cache

from celery import Celery

from mcp_bridge.config import Settings
from mcp_bridge.jobs.connect import registry_of
from mcp_bridge.jobs.executor import execute
from mcp_bridge.jobs.ports import Tools
from mcp_bridge.jobs.registry import Registry, RegistryUnavailable
from mcp_bridge.tools.default import default_catalog

TASK_NAME = "mcp_bridge.run_job"


Runtime = Callable[[], tuple[Registry, Tools]]


def make_celery(
    settings: Settings, runtime: Runtime | None = None, publisher: bool = False
) -> Celery:
    """A Celery app with the guarantees the bridge relies on, and the job task registered.

    A `publisher` (the API) fails fast when the broker is down: the job is already committed and
    the dispatcher publishes it later, so a request never waits on broker reconnection.
    """
    app = Celery("mcp_bridge", broker=settings.celery_broker_url)
    sweep = max(1, min(10, settings.celery_visibility_timeout // 10))
    transport_options = {
        "visibility_timeout": settings.celery_visibility_timeout,
        "socket_connect_timeout": settings.publish_timeout_seconds,
        # Sweep for messages past their visibility timeout every tenth of it (1–10 s), instead of
        # kombu's default of roughly every 100 s.
        "unacked_restore_interval": sweep,
        "unacked_restore_throttle": 1,
        # The sweep's lock outlives a worker killed mid-sweep (or a broker crash) until it
        # expires, and no worker sweeps meanwhile: kombu's 300 s would stall every redelivery.
        # Two sweep periods; overlapping sweeps are safe (each restore is a WATCH transaction).
        "unacked_mutex_expire": 2 * sweep,
    }
    if publisher:
        transport_options["max_retries"] = 0
    app.conf.update(
        result_backend=settings.celery_result_backend,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options=transport_options,
        result_backend_transport_options=transport_options,
        task_always_eager=settings.celery_task_always_eager,
        task_eager_propagates=settings.celery_task_eager_propagates,
        task_default_queue=settings.celery_queue,
        result_expires=86_400,
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
    )
    _register_task(app, settings, runtime or lazy_runtime(settings))
    return app


def _register_task(app: Celery, settings: Settings, runtime: Runtime) -> None:
    @app.task(name=TASK_NAME, bind=True, shared=False, acks_late=True, reject_on_worker_lost=True)
    def run_job(self, job_id: str) -> dict[str, str]:
        """Run a job from the registry; a message for a job not ours to run is acked and dropped."""
        registry, catalog = runtime()
        worker = self.request.hostname or f"eager@{socket.gethostname()}:{os.getpid()}"
        try:
            status = execute(
                job_id,
                registry=registry,
                catalog=catalog,
                worker=worker,
                lease_seconds=settings.job_lease_seconds,
            )
        except RegistryUnavailable as error:
            # Never drop a message we could not record: deliver it again shortly.
            raise self.retry(exc=error, countdown=2, max_retries=None) from None
        return {"jobId": job_id, "status": status.value if status else "skipped"}


def lazy_runtime(settings: Settings) -> Runtime:
    """The registry and catalog of a worker process, built on first use."""

    @lru_cache(maxsize=1)
    def runtime() -> tuple[Registry, Tools]:
        return registry_of(settings), default_catalog()

    return runtime
