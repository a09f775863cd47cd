"""The client's word against the observer's: a driver is trusted for the wire, not the verdict.

Where a target lets the suite observe executions, a job's final status as the client reads it
must be how its last execution ended. A driver that misreports (a lying or broken client) turns
the check red; a target without `executions` is not cross-checked (and says so in its skips)."""

from __future__ import annotations

from collections.abc import Mapping

from .drivers import Job, Target


def observer_agrees(t: Target, jobs: Mapping[str, Job]) -> None:
    if "executions" not in t.capabilities:
        return
    for job_id, job in jobs.items():
        outcomes = [run["outcome"] for run in t.observer.executions(job_id)]
        assert outcomes and outcomes[-1] == job["status"], (
            f"job {job_id} read {job['status']}; executions: {outcomes}"
        )
