"""§4 monitoring: the Prometheus scrape exposes queue-wait and runtime histograms, finished counts
and the queue depth, and they account for exactly the jobs the Celery workers ran.

The scrape comes through the target's client (`metrics`, with the target's own credentials unless
a check says otherwise); the Prometheus text and its metric names are the checklist's.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import Counter
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .crosscheck import observer_agrees
from .drivers import ANONYMOUS, Target

pytestmark = pytest.mark.monitoring

QUEUE_WAIT = "mcp_bridge_job_queue_wait_seconds"
RUNTIME = "mcp_bridge_job_runtime_seconds"
FINISHED = "mcp_bridge_jobs_finished_total"
SUBMITTED = "mcp_bridge_jobs_submitted_total"
DEPTH = "mcp_bridge_queue_depth"
HTTP = "mcp_bridge_http_request_duration_seconds"

#: The first job holds the single worker on a latch until the others are seen queued; one fails.
JOBS: list[tuple[str, dict[str, Any], str]] = [
    ("latch", {}, "succeeded"),
    ("echo", {"message": "1"}, "succeeded"),
    ("echo", {"message": "2"}, "succeeded"),
    ("sleep", {"ms": 100}, "succeeded"),
    ("echo", {"message": "3"}, "succeeded"),
    ("fail", {"message": "on purpose"}, "failed"),
]


class Scrape:
    """One metrics scrape, parsed with prometheus_client's own parser."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.types: dict[str, str] = {}
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def labelled(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {labels: v for (sample, labels), v in self.samples.items() if sample == name}


def _scrape(t: Target) -> Scrape:
    reply = t.client.metrics()
    assert reply.status == 200, reply.describe()
    return Scrape(reply.text)


def _label_key(labels: frozenset[tuple[str, str]], drop: str = "") -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels) if k != drop)


def _deltas(before: Scrape, after: Scrape, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Per label set, the non-zero change of `name` between two scrapes."""
    changed = {}
    for labels in set(before.labelled(name)) | set(after.labelled(name)):
        delta = after.samples.get((name, labels), 0.0) - before.samples.get((name, labels), 0.0)
        if delta:
            changed[labels] = delta
    return changed


def _by_labels(deltas: dict[frozenset[tuple[str, str]], float]) -> dict[str, float]:
    return {_label_key(labels): delta for labels, delta in deltas.items()}


def _bounds(name: str, measured: float, low: float, high: float, evidence) -> None:
    """Expect `low <= measured <= high` (4 decimals, bounds rounded outwards)."""
    evidence.expect(f"{name}Min", round(measured, 4), ">=", math.floor(low * 1e4) / 1e4)
    evidence.expect(f"{name}Max", round(measured, 4), "<=", math.ceil(high * 1e4) / 1e4)


def _submits_counted(before: Scrape, after: Scrape) -> float | dict[str, float]:
    """How many POSTs the HTTP histogram counted as answered 202 between two scrapes, when they
    all went to one route (the submit route, whatever the target calls it); else each route's
    count, which no number equals."""
    routes = {
        dict(labels).get("route", ""): delta
        for labels, delta in _deltas(before, after, f"{HTTP}_count").items()
        if {("method", "POST"), ("status", "202")} <= labels
    }
    return next(iter(routes.values())) if len(routes) == 1 else routes


# a fresh bridge with exactly one worker (the latch holds it while the others queue)
@pytest.mark.needs("boot", "latch")
@pytest.mark.check(
    "monitoring.histograms",
    section="4",
    title="/metrics queue-wait and runtime histograms and finished counts match the jobs run",
)
def test_histograms_account_for_jobs(shared_target, evidence):
    t = shared_target
    before = _scrape(t)
    latch = t.latch()
    sent = {"latch": time.time()}
    ids = [t.client.submit_ok("latch", latch.arguments())]
    latch.wait_held(ids[0], t.deadlines.jobs())
    held = time.time()
    created: dict[str, float] = {}  # a 202 came back: the job was created before this
    for tool, arguments, _ in JOBS[1:]:
        sent.setdefault(tool, time.time())
        ids.append(t.client.submit_ok(tool, arguments))
        created[ids[-1]] = time.time()
    during = _scrape(t)  # every job but the latch waits behind it
    released = time.time()  # no job behind the latch can start before this
    latch.release()
    jobs = t.client.wait_terminal(ids, timeout=t.deadlines.jobs(len(ids), 0.1))
    seen_done = time.time()
    after = _scrape(t)
    evidence.attach_text("metrics-before.txt", before.text)
    evidence.attach_text("metrics-during.txt", during.text)
    evidence.attach_text("metrics-after.txt", after.text)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    ran = Counter(tool for tool, _, _ in JOBS)
    finished = {
        f"status={status},tool={tool}": float(n)
        for (tool, status), n in Counter((tool, status) for tool, _, status in JOBS).items()
    }
    tools = {f"tool={tool}": float(n) for tool, n in ran.items()}
    echoes = [job_id for job_id, (tool, _, _) in zip(ids, JOBS, strict=True) if tool == "echo"]
    evidence.measure(heldSeconds=round(released - held, 4))
    evidence.expect(
        "statuses", [jobs[i]["status"] for i in ids], "==", [status for _, _, status in JOBS]
    )
    observer_agrees(t, jobs)
    evidence.expect(
        "types",
        {name: after.types.get(name) for name in (QUEUE_WAIT, RUNTIME, DEPTH)},
        "==",
        {QUEUE_WAIT: "histogram", RUNTIME: "histogram", DEPTH: "gauge"},
    )
    evidence.expect(
        "queueWaitCount", _by_labels(_deltas(before, after, f"{QUEUE_WAIT}_count")), "==", tools
    )
    evidence.expect(
        "queueWaitInfBucket",
        {
            _label_key(labels, drop="le"): change
            for labels, change in _deltas(before, after, f"{QUEUE_WAIT}_bucket").items()
            if ("le", "+Inf") in labels
        },
        "==",
        tools,
        note="the +Inf bucket agrees with _count",
    )
    evidence.expect(
        "runtimeCount", _by_labels(_deltas(before, after, f"{RUNTIME}_count")), "==", tools
    )
    evidence.expect("finished", _by_labels(_deltas(before, after, FINISHED)), "==", finished)
    evidence.expect("submitted", _by_labels(_deltas(before, after, SUBMITTED)), "==", tools)
    # Seconds, bounded by what the check saw: the latch ran from before it was seen holding
    # until after its release; each echo waited from before its 202 until after the release.
    _bounds(
        "runtimeSumLatch",
        delta(f"{RUNTIME}_sum", tool="latch"),
        released - held,
        seen_done - sent["latch"],
        evidence,
    )
    _bounds(
        "runtimeSumSleep",
        delta(f"{RUNTIME}_sum", tool="sleep"),
        0.1,
        seen_done - sent["sleep"],
        evidence,
    )
    _bounds(
        "queueWaitSumEcho",
        delta(f"{QUEUE_WAIT}_sum", tool="echo"),
        sum(released - created[i] for i in echoes),
        len(echoes) * (seen_done - sent["echo"]),
        evidence,
    )
    evidence.expect(
        "httpPostJobs202",
        _submits_counted(before, after),
        "==",
        len(JOBS),
        note="POSTs answered 202, all on one route (the submit route)",
    )
    evidence.expect("queueDepthDuring", during.value(DEPTH), "==", len(JOBS) - 1)
    evidence.expect("queueDepthAfter", after.value(DEPTH), "==", 0)


@pytest.mark.needs("boot", "configure")
@pytest.mark.check(
    "monitoring.metrics-token",
    section="4",
    title="With METRICS_TOKEN set, /metrics answers only that bearer token (refused otherwise)",
)
def test_metrics_token_guards_the_scrape(target, evidence):
    token = secrets.token_urlsafe(24)
    t = target(workers=0, settings={"METRICS_TOKEN": token})
    client = t.client
    attempts = {
        "none": lambda: client.metrics(token=ANONYMOUS),
        "other-token": lambda: client.metrics(token=secrets.token_urlsafe(24)),
        "job-token": lambda: client.metrics(token=client.token()),
        "token-without-scheme": lambda: client.request(
            "metrics", token=ANONYMOUS, headers={"Authorization": token}
        ),
        # the target's own scrape credentials: for ours, `Bearer $METRICS_TOKEN`
        "metrics-token": lambda: client.metrics(),
    }
    replies = {name: attempt() for name, attempt in attempts.items()}
    statuses = {name: reply.status for name, reply in replies.items()}
    evidence.measure(statuses=statuses)
    # refused: unauthenticated (401); a valid job token may instead be authenticated but not
    # allowed (403: a target that keeps metrics behind a role); ours answers 401 to both
    refused = {"none": {401}, "other-token": {401}, "job-token": {401, 403},
               "token-without-scheme": {401}}  # fmt: skip
    evidence.expect(
        "refused",
        {name: statuses[name] in allowed for name, allowed in refused.items()},
        "==",
        dict.fromkeys(refused, True),
        note=str(statuses),
    )
    evidence.expect("scrapeStatus", statuses["metrics-token"], "==", 200)
    scrape = replies["metrics-token"].text
    evidence.expect("scrapeNamesJobMetrics", SUBMITTED.removesuffix("_total") in scrape, "==", True)
