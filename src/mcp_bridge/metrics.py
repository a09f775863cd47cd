"""Prometheus metrics.

Job figures (finished counts, queue-wait and runtime histograms) are read from the registry's
event log at scrape time, so work done by any worker process on any host reaches the scrape
without a multiprocess directory or a worker exporter: the registry is what they share.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from mcp_bridge.jobs.models import Status
from mcp_bridge.jobs.registry import Registry

JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    def __init__(self, jobs: Registry) -> None:
        self._jobs = jobs
        self._seq = 0
        self._lock = threading.Lock()
        self.registry = CollectorRegistry()
        self.submitted = Counter(
            "mcp_bridge_jobs_submitted",
            "Jobs accepted by this API process.",
            ["tool"],
            registry=self.registry,
        )
        self.finished = Counter(
            "mcp_bridge_jobs_finished",
            "Jobs that reached a terminal state.",
            ["tool", "status"],
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "mcp_bridge_job_queue_wait_seconds",
            "Time from submission to first start.",
            ["tool"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.runtime = Histogram(
            "mcp_bridge_job_runtime_seconds",
            "Time from start to finish of the final attempt.",
            ["tool"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.jobs = Gauge(
            "mcp_bridge_jobs",
            "Jobs in the registry by status.",
            ["status"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "mcp_bridge_queue_depth", "Jobs queued and not yet started.", registry=self.registry
        )
        self.http = Histogram(
            "mcp_bridge_http_request_duration_seconds",
            "HTTP request durations.",
            ["method", "route", "status"],
            registry=self.registry,
        )

    def job_submitted(self, tool: str) -> None:
        self.submitted.labels(tool).inc()

    def refresh(self) -> None:
        """Fold the registry's new finish events into the job metrics."""
        with self._lock:
            while events := self._jobs.events_since(self._seq):
                for event in events:
                    self.finished.labels(event.tool, event.status.value).inc()
                    if event.queue_wait is not None:
                        self.queue_wait.labels(event.tool).observe(max(event.queue_wait, 0.0))
                    if event.runtime is not None:
                        self.runtime.labels(event.tool).observe(max(event.runtime, 0.0))
                self._seq = events[-1].seq
            counts = self._jobs.count_by_status()
            for status in Status:
                self.jobs.labels(status.value).set(counts[status])
            self.queue_depth.set(counts[Status.QUEUED])

    def render(self) -> bytes:
        self.refresh()
        return generate_latest(self.registry)
