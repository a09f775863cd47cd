"""A Celery worker (threads pool) running inside the benchmark's process.

It must consume with the very Celery app the API publishes through: `memory://` queues only
exist inside one process.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

from celery import Celery
from celery import _state as celery_state
from celery.worker import WorkController
from celery.worker import state as worker_state

from mcp_bridge.benchmarking.errors import BenchmarkError

# kombu's virtual transports (memory:// among them) sleep this long whenever a poll finds
# nothing they may take: an empty queue, or a full prefetch window (acks_late + prefetch
# multiplier 1 means: all threads busy). Its default, 1 s, dominates sub-second jobs.
INLINE_POLLING_INTERVAL = 0.001
WAKE_TASK = "celery.accumulate"  # a Celery built-in no-op, registered on every app


class _Controller(WorkController):
    """A WorkController that signals when its consumer is ready (it installs no signal handlers)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ready = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer: Any) -> None:
        self.ready.set()


class InlineWorker:
    """Start with `start()`, stop with `stop()` (warm: running tasks finish first)."""

    def __init__(
        self,
        app: Celery,
        concurrency: int,
        polling_interval: float | None = INLINE_POLLING_INTERVAL,
        loglevel: str = "WARNING",
    ) -> None:
        self.app, self.concurrency, self.polling_interval = app, concurrency, polling_interval
        self._loglevel = loglevel
        self._controller: _Controller | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._previous_apps: tuple[Any, Any] = (None, None)

    def start(self, timeout: float = 30.0) -> None:
        if self.polling_interval is not None:
            options = dict(self.app.conf.broker_transport_options or {})
            options["polling_interval"] = self.polling_interval
            self.app.conf.broker_transport_options = options
        self.app.finalize()
        # The threads pool runs tasks through `current_app`, which in a fresh thread is the
        # process's default app: make it this one (as celery.contrib.testing does).
        self._previous_apps = (
            celery_state.default_app,
            getattr(celery_state._tls, "current_app", None),
        )
        self.app.set_current()
        self.app.set_default()
        controller = _Controller(
            app=self.app,
            hostname=f"bench-inline@{socket.gethostname()}",
            pool_cls="threads",
            concurrency=self.concurrency,
            loglevel=self._loglevel,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            task_events=False,
        )
        self._controller = controller

        def run() -> None:
            try:
                controller.start()
            except BaseException as error:  # reported by start() / stop()
                self._failure = error
                controller.ready.set()

        self._thread = threading.Thread(target=run, name="inline-celery-worker", daemon=True)
        self._thread.start()
        if not controller.ready.wait(timeout):
            raise BenchmarkError(f"the inline Celery worker did not start within {timeout:g} s")
        if self._failure is not None:
            raise BenchmarkError(f"the inline Celery worker failed to start: {self._failure}")

    def stop(self, timeout: float = 30.0) -> None:
        thread = self._thread
        if thread is None:
            return
        # The consumer loop checks this flag between polls, but each poll blocks up to 2 s
        # (twice: the loop polls once more in a `finally`), so wake it with no-op messages.
        worker_state.should_stop = 0
        deadline = time.monotonic() + timeout
        try:
            while thread.is_alive() and time.monotonic() < deadline:
                self._wake()
                thread.join(0.05)
        finally:
            worker_state.should_stop = None
            self._thread = None
            self._purge()
            default, current = self._previous_apps
            celery_state.set_default_app(default)
            celery_state._set_current_app(current)
        if thread.is_alive():
            raise BenchmarkError(f"the inline Celery worker did not stop within {timeout:g} s")

    def _wake(self) -> None:
        with contextlib.suppress(Exception):  # the worker still stops, only later
            self.app.tasks[WAKE_TASK].apply_async(args=[None], ignore_result=True, retry=False)

    def _purge(self) -> None:
        """Drop unconsumed wake-ups: memory:// queues outlive the worker in this process."""
        with contextlib.suppress(Exception), self.app.connection_for_write() as conn:
            conn.default_channel.queue_purge(self.app.conf.task_default_queue)

    def __enter__(self) -> InlineWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
