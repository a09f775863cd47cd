"""The history of a chaos run: every client operation and every fault, in wall-clock time.

An operation is `ok` (the system answered 2xx: it happened), `fail` (a 4xx: it did not) or
`info` (no answer or a 5xx: it may or may not have happened), as in Jepsen.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..drivers import Reply
from .target import job_of


@dataclass
class Op:
    index: int
    process: str
    kind: str  # submit | get | cancel
    invoke: float
    complete: float
    request: dict[str, Any]
    response: dict[str, Any]
    outcome: str  # ok | fail | info

    @property
    def code(self) -> int | None:
        return self.response.get("code")

    @property
    def job_id(self) -> str | None:
        return self.response.get("jobId")

    @property
    def status(self) -> str | None:
        return self.response.get("status")


@dataclass
class Fault:
    kind: str
    target: str
    start: float
    end: float | None = None
    healed: float | None = None
    recovered: float | None = None  # a probe job submitted after the heal succeeded
    probe: str | None = None
    note: str | None = None
    outage: bool = False  # 503 answers are allowed while it lasts

    @property
    def recovery(self) -> float | None:
        return None if self.recovered is None else self.recovered - self.start


def outcome_of(reply: Reply) -> str:
    if reply.status is None or reply.status >= 500:
        return "info"
    return "ok" if reply.status < 300 else "fail"


def response_of(reply: Reply) -> dict[str, Any]:
    """What the history keeps of an answer: its code, the job it shows, or why there was none."""
    job = job_of(reply) or {}
    return {
        "code": reply.status,
        "jobId": job.get("id"),
        "status": job.get("status"),
        "error": reply.transport_error,
    }


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # fault kind → why it was not run
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def run(
        self, process: str, kind: str, request: dict[str, Any], call: Callable[[], Reply]
    ) -> tuple[Op, Reply]:
        """Invoke `call`, recording invoke and completion times, request and response."""
        invoke = time.time()
        reply = call()
        complete = time.time()
        with self._lock:
            op = Op(
                len(self.ops),
                process,
                kind,
                invoke,
                complete,
                request,
                response_of(reply),
                outcome_of(reply),
            )
            self.ops.append(op)
        return op, reply

    def fault(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def jsonl(self) -> str:
        rows = [{"type": "op", **asdict(op)} for op in self.ops]
        rows += [{"type": "fault", **asdict(fault)} for fault in self.faults]
        rows.sort(key=lambda row: row.get("invoke", row.get("start", 0.0)))
        return "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)

    def around(self, start: float, end: float, margin: float = 1.0) -> list[dict[str, Any]]:
        """The faults active between `start` and `end` (± margin)."""
        found = []
        for fault in self.faults:
            stop = fault.healed or fault.end or fault.start
            if fault.start <= end + margin and stop >= start - margin:
                found.append({"kind": fault.kind, "target": fault.target, "start": fault.start})
        return found
