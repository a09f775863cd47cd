"""§4 monitoring: /metrics exposes queue-wait and runtime histograms, finished counts and the
queue depth, and they account for exactly the jobs the Celery workers ran."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from qualification.stack.bridge import BridgeStack

pytestmark = pytest.mark.monitoring

QUEUE_WAIT = "mcp_bridge_job_queue_wait_seconds"
RUNTIME = "mcp_bridge_job_runtime_seconds"
FINISHED = "mcp_bridge_jobs_finished_total"
SUBMITTED = "mcp_bridge_jobs_submitted_total"
DEPTH = "mcp_bridge_queue_depth"
HTTP = "mcp_bridge_http_request_duration_seconds"

#: The first job holds the single worker so the others are seen queued; one job fails.
JOBS: list[tuple[str, dict[str, Any], str]] = [
    ("sleep", {"ms": 400}, "succeeded"),
    ("echo", {"message": "1"}, "succeeded"),
    ("echo", {"message": "2"}, "succeeded"),
    ("sleep", {"ms": 100}, "succeeded"),
    ("echo", {"message": "3"}, "succeeded"),
    ("fail", {"message": "on purpose"}, "failed"),
]


class Scrape:
    """One /metrics scrape, parsed with prometheus_client's own parser."""

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


def _scrape(bridge: BridgeStack) -> Scrape:
    response = bridge.http.get("/metrics")
    assert response.status_code == 200, response.text
    return Scrape(response.text)


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


@pytest.mark.check(
    "monitoring.histograms",
    section="4",
    title="/metrics queue-wait and runtime histograms and finished counts match the jobs run",
)
def test_histograms_account_for_jobs(shared_stack, evidence):
    bridge = shared_stack
    before = _scrape(bridge)
    ids = [bridge.submit_ok(tool, arguments) for tool, arguments, _ in JOBS[:2]]
    during = _scrape(bridge)  # the echo waits behind the 400 ms sleep
    ids += [bridge.submit_ok(tool, arguments) for tool, arguments, _ in JOBS[2:]]
    jobs = bridge.wait_terminal(ids, timeout=60)
    after = _scrape(bridge)
    evidence.attach_text("metrics-before.txt", before.text)
    evidence.attach_text("metrics-during.txt", during.text)
    evidence.attach_text("metrics-after.txt", after.text)

    ran = Counter(tool for tool, _, _ in JOBS)
    finished = Counter(f"status={status},tool={tool}" for tool, _, status in JOBS)
    tools = {f"tool={tool}": float(n) for tool, n in ran.items()}
    measured = {
        "queueWaitCount": _by_labels(_deltas(before, after, f"{QUEUE_WAIT}_count")),
        "queueWaitInfBucket": {
            _label_key(labels, drop="le"): delta
            for labels, delta in _deltas(before, after, f"{QUEUE_WAIT}_bucket").items()
            if ("le", "+Inf") in labels
        },
        "runtimeCount": _by_labels(_deltas(before, after, f"{RUNTIME}_count")),
        "finished": _by_labels(_deltas(before, after, FINISHED)),
        "submitted": _by_labels(_deltas(before, after, SUBMITTED)),
        "runtimeSumSleep": after.value(f"{RUNTIME}_sum", tool="sleep")
        - before.value(f"{RUNTIME}_sum", tool="sleep"),
        "queueWaitSumEcho": after.value(f"{QUEUE_WAIT}_sum", tool="echo")
        - before.value(f"{QUEUE_WAIT}_sum", tool="echo"),
        "httpPostJobs202": after.value(
            f"{HTTP}_count", method="POST", route="/v1/jobs", status="202"
        )
        - before.value(f"{HTTP}_count", method="POST", route="/v1/jobs", status="202"),
        "queueDepthDuring": during.value(DEPTH),
        "queueDepthAfter": after.value(DEPTH),
        "types": {name: after.types.get(name) for name in (QUEUE_WAIT, RUNTIME, DEPTH)},
        "statuses": {job_id: job["status"] for job_id, job in jobs.items()},
    }
    evidence.measure(**measured)
    evidence.threshold(
        queueWaitCount=tools,
        runtimeCount=tools,
        queueWaitInfBucket="== queueWaitCount",
        finished=dict(finished),
        submitted=tools,
        runtimeSumSleep=">= 0.45 s (400 ms + 100 ms slept) and < 30 s",
        queueWaitSumEcho=">= 0.3 s (the echoes queue behind the 400 ms sleep)",
        httpPostJobs202=len(JOBS),
        queueDepthDuring=">= 1 (jobs wait behind the 400 ms sleep)",
        queueDepthAfter="== 0",
        types={QUEUE_WAIT: "histogram", RUNTIME: "histogram", DEPTH: "gauge"},
    )
    assert [jobs[i]["status"] for i in ids] == [status for _, _, status in JOBS]
    assert measured["types"] == {QUEUE_WAIT: "histogram", RUNTIME: "histogram", DEPTH: "gauge"}
    assert measured["queueWaitCount"] == tools, "queue-wait _count per tool != jobs run"
    assert measured["runtimeCount"] == tools, "runtime _count per tool != jobs run"
    assert measured["queueWaitInfBucket"] == tools, "the +Inf bucket disagrees with _count"
    assert measured["finished"] == {key: float(n) for key, n in finished.items()}, (
        "finished counter by tool and status != jobs run"
    )
    assert measured["submitted"] == tools, "submitted counter per tool != jobs submitted"
    assert 0.45 <= measured["runtimeSumSleep"] < 30, "runtime is not in seconds"
    assert 0.3 <= measured["queueWaitSumEcho"] < 30, "queue wait does not measure the wait"
    assert measured["httpPostJobs202"] == len(JOBS)
    assert measured["queueDepthDuring"] >= 1
    assert measured["queueDepthAfter"] == 0
