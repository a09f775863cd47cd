"""The checker: after heal and drain, read the history against the system's final state.

Anomalies, each by job id with the faults around it:
- lost: an acknowledged job that is not terminal (or unknown) once drained;
- duplicated: a job that succeeded more or less than once, or ran more often than its attempts;
- resurrected: a job observed terminal and later in another state;
- late-run: an execution that started after a cancel was acknowledged as `cancelled`;
- idempotency: two jobs for one (subject, key), two creations of one, or one job for two subjects;
- metrics: the metrics' finished counters or histogram counts that differ from the registry's;
- server-error: a 5xx answer outside a declared outage window (or a 5xx other than 503).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from ..drivers import TERMINAL
from .history import History, Op
from .target import Target, status_of

KINDS = ("lost", "duplicated", "resurrected", "late-run", "idempotency", "metrics", "server-error")


def epoch(when: str | float | None) -> float | None:
    """Seconds since the epoch of a timestamp: ISO 8601 (the API's) or already seconds."""
    if when is None or isinstance(when, int | float):
        return None if when is None else float(when)
    return datetime.fromisoformat(when).timestamp()


@dataclass
class Verdict:
    counts: dict[str, Any] = field(default_factory=dict)
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, dict[str, Any]] = field(default_factory=dict)
    executions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def by_kind(self) -> dict[str, int]:
        found = Counter(a["kind"] for a in self.anomalies)
        return {kind: found.get(kind, 0) for kind in KINDS}

    def summary(self, limit: int = 3) -> str:
        shown = "; ".join(
            f"{a['kind']} {a.get('job', '')}: {a['detail']} (faults around: "
            f"{', '.join(f['kind'] + '@' + f['target'] for f in a.get('faults', [])) or 'none'})"
            for a in self.anomalies[:limit]
        )
        more = f" … and {len(self.anomalies) - limit} more" if len(self.anomalies) > limit else ""
        return shown + more


class Checker:
    def __init__(self, target: Target, history: History, pairs: list[tuple[str, str]]) -> None:
        self.target, self.history, self.pairs = target, history, pairs
        self.verdict = Verdict()

    def _anomaly(self, kind: str, detail: str, job: str | None = None, span=None) -> None:
        entry: dict[str, Any] = {"kind": kind, "detail": detail}
        if job is not None:
            entry["job"] = job
        if span is not None:
            entry["faults"] = self.history.around(*span)
        self.verdict.anomalies.append(entry)

    def _span(self, job_id: str) -> tuple[float, float]:
        """When the faults that matter for this job struck: between its executions' starts when
        it ran more than once (what made it run again), else from its first submit to its end."""
        starts = [epoch(run["startedAt"]) or 0.0 for run in self.verdict.executions.get(job_id, [])]
        if len(starts) > 1:
            return min(starts), max(starts)
        first = min(op.invoke for op in self._ops_of[job_id])
        end = epoch((self.verdict.final.get(job_id) or {}).get("finishedAt")) or time.time()
        return first, end

    # -- the run -----------------------------------------------------------------------------

    def drain(self) -> float:
        """Wait until every acknowledged job is terminal and the broker holds nothing; seconds."""
        started = time.monotonic()
        deadline = started + self.target.deadlines.stranded(len(self.acked()))
        listed = self.target.statuses()
        pending = [j for j in self.acked() if listed.get(j) not in TERMINAL]
        for job_id in pending:
            while True:
                remaining = deadline - time.monotonic()
                reply = self.target.job(job_id, wait=max(min(remaining, 10.0), 0.1))
                if status_of(reply) in TERMINAL or reply.status == 404 or remaining <= 0:
                    break
        self.phases = {"jobsTerminal": round(time.monotonic() - started, 2)}
        idle_by = time.monotonic() + self.target.deadlines.drain()
        self.samples: list[tuple[float, dict[str, int]]] = []
        while not self.target.broker_idle() and time.monotonic() < idle_by:
            self.samples.append(
                (round(time.monotonic() - started, 1), self.target.broker_backlog())
            )
            time.sleep(0.5)  # polling an observable condition until its deadline
        self.phases["brokerIdle"] = round(time.monotonic() - started, 2)
        self.backlog = self.target.broker_backlog()
        return time.monotonic() - started

    def acked(self) -> list[str]:
        ids = [op.job_id for op in self.history.ops if op.kind == "submit" and op.outcome == "ok"]
        return list(dict.fromkeys(i for i in ids if i))

    def check(self) -> Verdict:
        ops = self.history.ops
        self._ops_of: dict[str, list[Op]] = defaultdict(list)
        for op in ops:
            job_id = op.job_id or op.request.get("jobId")
            if job_id:
                self._ops_of[job_id].append(op)
        acked = self.acked()
        self._registry = {job["id"]: job for job in self.target.jobs()}
        for job_id in acked:
            job = self._registry.get(job_id)
            self.verdict.final[job_id] = job or {"missing": "not in the registry's listing"}
            self.verdict.executions[job_id] = self.target.executions(job_id) if job else []
        self._lost_and_duplicated(acked)
        self._status_histories()
        self._cancels()
        self._idempotency()
        self._metrics()
        self._server_errors()
        final = Counter(job.get("status") for job in self.verdict.final.values())
        self.verdict.counts |= {
            "operations": len(ops),
            "acknowledgedJobs": len(acked),
            "finalStatuses": dict(sorted(final.items(), key=str)),
            "executions": sum(len(runs) for runs in self.verdict.executions.values()),
            "responses": self._classes(),
            "anomalies": self.verdict.by_kind(),
            "brokerBacklogAfterDrain": getattr(self, "backlog", None),
            "drainPhases": getattr(self, "phases", None),
            "drainBacklogSamples": getattr(self, "samples", None),
        }
        return self.verdict

    # -- the properties ----------------------------------------------------------------------

    def _lost_and_duplicated(self, acked: list[str]) -> None:
        for job_id in acked:
            job = self.verdict.final[job_id]
            runs = self.verdict.executions[job_id]
            status = job.get("status")
            if status not in TERMINAL:
                self._anomaly(
                    "lost", f"{status or job} after the drain", job_id, self._span(job_id)
                )
                continue
            succeeded = sum(run["outcome"] == "succeeded" for run in runs)
            ended = [run["outcome"] for run in runs if run["outcome"] in TERMINAL]
            if status == "succeeded" and succeeded != 1:
                detail = f"succeeded with {succeeded} successful executions: {ended}"
                self._anomaly("duplicated", detail, job_id, self._span(job_id))
            elif len(ended) > 1:
                self._anomaly(
                    "duplicated", f"{status}, executions {ended}", job_id, self._span(job_id)
                )
            if len(runs) > job.get("attempts", 0):
                detail = f"{len(runs)} executions for {job.get('attempts')} attempts"
                self._anomaly("duplicated", detail, job_id, self._span(job_id))

    def _observations(self, job_id: str) -> list[tuple[float, float, str]]:
        seen = [
            (op.invoke, op.complete, op.status)
            for op in self._ops_of[job_id]
            if op.job_id == job_id and op.status and op.code is not None and op.code < 500
        ]
        final = self.verdict.final.get(job_id, {}).get("status")
        if final:
            seen.append((time.time(), time.time(), final))
        return sorted(seen)

    def _status_histories(self) -> None:
        """Once a job was seen terminal, nothing invoked after that sees it otherwise."""
        for job_id in self._ops_of:
            first_terminal: tuple[float, str] | None = None
            for invoke, complete, status in self._observations(job_id):
                if first_terminal and invoke > first_terminal[0] and status != first_terminal[1]:
                    detail = f"seen {first_terminal[1]}, later {status}"
                    self._anomaly("resurrected", detail, job_id, self._span(job_id))
                    break
                if status in TERMINAL and first_terminal is None:
                    first_terminal = (complete, status)

    def _cancels(self) -> None:
        """No execution starts after a cancel was acknowledged as `cancelled`."""
        for op in self.history.ops:
            if op.kind != "cancel" or op.status != "cancelled" or op.code not in (200, 409):
                continue
            job_id = op.request["jobId"]
            for run in self.verdict.executions.get(job_id, []):
                started = epoch(run["startedAt"]) or 0.0
                if started > op.invoke + 0.001:  # timestamps may have millisecond precision
                    late = started - op.invoke
                    detail = f"attempt {run['attempt']} on {run['worker']} started {late:.3f}s "
                    detail += "after the cancel was acknowledged"
                    self._anomaly("late-run", detail, job_id, self._span(job_id))

    def _idempotency(self) -> None:
        ids: dict[tuple[str, str], set[str]] = defaultdict(set)
        created: Counter[tuple[str, str]] = Counter()
        for op in self.history.ops:
            if op.kind == "submit" and op.outcome == "ok" and op.request.get("key"):
                pair = (op.request["subject"], op.request["key"])
                ids[pair].add(op.job_id or "")
                created[pair] += op.code == 202
        for (subject, key), found in ids.items():
            if len(found) > 1:
                self._anomaly("idempotency", f"{subject}/{key} answered with jobs {sorted(found)}")
            if created[subject, key] > 1:
                self._anomaly(
                    "idempotency", f"{subject}/{key} created {created[subject, key]} times"
                )
        subjects = sorted({subject for subject, _ in ids})
        for key, _ in self.pairs:
            jobs = [ids.get((subject, key)) for subject in subjects]
            both = [found for found in jobs if found]
            if len(both) >= 2 and set.intersection(*both):
                self._anomaly("idempotency", f"key {key} gave subjects {subjects} one job")

    def _metrics(self) -> None:
        jobs = list(self._registry.values())
        registry: Counter[tuple[str, str]] = Counter()
        runtime: Counter[str] = Counter()
        queue_wait: Counter[str] = Counter()
        for job in jobs:
            if job["status"] in TERMINAL:
                registry[job["tool"], job["status"]] += 1
                runtime[job["tool"]] += job["attempts"] > 0
                queue_wait[job["tool"]] += job["startedAt"] is not None
        finished: Counter[tuple[str, str]] = Counter()
        counts: dict[str, Counter[str]] = {"runtime": Counter(), "queue_wait": Counter()}
        for family in text_string_to_metric_families(self.target.metrics()):
            for sample in family.samples:
                if sample.name == "mcp_bridge_jobs_finished_total":
                    finished[sample.labels["tool"], sample.labels["status"]] += int(sample.value)
                elif sample.name == "mcp_bridge_job_runtime_seconds_count":
                    counts["runtime"][sample.labels["tool"]] += int(sample.value)
                elif sample.name == "mcp_bridge_job_queue_wait_seconds_count":
                    counts["queue_wait"][sample.labels["tool"]] += int(sample.value)
        if +finished != +registry:
            self._anomaly(
                "metrics", f"finished counters {dict(+finished)} ≠ registry {dict(+registry)}"
            )
        for name, expected in (("runtime", runtime), ("queue_wait", queue_wait)):
            if +counts[name] != +expected:
                self._anomaly(
                    "metrics",
                    f"{name} histogram counts {dict(+counts[name])} ≠ registry {dict(+expected)}",
                )
        self.verdict.counts["registryJobs"] = len(jobs)
        self.verdict.counts["metricsFinished"] = sum(finished.values())

    def _server_errors(self) -> None:
        windows = [(f.start, f.healed or f.end or f.start) for f in self.history.faults if f.outage]
        for op in self.history.ops:
            code = op.code
            if code is None or code < 500:
                continue
            inside = any(op.invoke <= end and op.complete >= start for start, end in windows)
            if code != 503 or not inside:
                where = "inside" if inside else "outside"
                self._anomaly("server-error", f"{op.kind} answered {code} {where} an outage window")

    def _classes(self) -> dict[str, int]:
        classes: Counter[str] = Counter()
        for op in self.history.ops:
            code = op.code
            classes["no answer" if code is None else f"{code // 100}xx"] += 1
        return dict(sorted(classes.items()))
