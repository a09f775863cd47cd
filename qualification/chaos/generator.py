"""The workload: concurrent clients submitting a mixed stream of jobs at a steady rate.

Short jobs, latched long jobs (held until the generator releases them), failing jobs, idempotent
replays (a key sent again, bursts of concurrent POSTs with one key, one key from two subjects),
cancels of queued and of running jobs, and reads. Every call goes into the `History`; a submit
whose answer was lost (`info`) is sent again with its idempotency key until it is answered.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..stack.latch import BOUND_MS, Latch
from .history import History, Op
from .target import Target

SUBJECTS = ("chaos-a", "chaos-b")
#: Relative frequency of each client operation.
MIX: dict[str, int] = {
    "short": 38,
    "fail": 8,
    "latched": 10,
    "cancel-queued": 6,
    "cancel-running": 4,
    "replay": 8,
    "burst": 3,
    "two-subjects": 3,
    "get": 20,
}
BURST = 4  # concurrent POSTs with one key
#: How long the generator holds a latched job, at most (a uniform draw from 0.2 s to this).
LATCH_HOLD_SECONDS = 1.5
#: The longest pause between resends of an unanswered submit (an API restarting, a 503).
RESEND_PAUSE_SECONDS = 0.5


@dataclass
class Workload:
    seed: int
    rate: float = 10.0  # client operations per second, all clients together
    clients: int = 4
    mix: dict[str, int] = field(default_factory=lambda: dict(MIX))


@dataclass
class Submission:
    subject: str
    key: str
    tool: str
    arguments: dict[str, Any]


class Generator:
    def __init__(self, target: Target, history: History, workload: Workload) -> None:
        self.target, self.history, self.workload = target, history, workload
        self.stop = threading.Event()
        self.latches: list[Latch] = []
        self.pairs: list[tuple[str, str]] = []  # keys sent by both subjects
        self._lock = threading.Lock()
        self._followups = ThreadPoolExecutor(16, thread_name_prefix="chaos-followup")
        self._threads: list[threading.Thread] = []
        self._resend_for = target.deadlines.startup() + target.deadlines.client()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for index in range(self.workload.clients):
            thread = threading.Thread(target=self._client, args=(index,), name=f"chaos-c{index}")
            thread.start()
            self._threads.append(thread)

    def join_clients(self) -> None:
        for thread in self._threads:
            thread.join()

    def finish(self) -> None:
        """Stop the clients (they run until told), then release every latch (the workload's
        part of the heal)."""
        self.stop.set()
        self.join_clients()
        self._followups.shutdown(wait=True)
        with self._lock:
            for latch in self.latches:
                latch.release()

    # -- one client --------------------------------------------------------------------------

    def _client(self, index: int) -> None:
        rng = random.Random(f"{self.workload.seed}-client-{index}")
        kinds, weights = zip(*self.workload.mix.items(), strict=True)
        state = _ClientState(f"c{index}", SUBJECTS[index % len(SUBJECTS)], rng)
        period = self.workload.clients / self.workload.rate
        next_at = time.monotonic() + rng.uniform(0, period)
        while not self.stop.wait(max(0.0, next_at - time.monotonic())):
            kind = rng.choices(kinds, weights)[0]
            getattr(self, "_" + kind.replace("-", "_"))(state)
            next_at = max(next_at + period, time.monotonic())

    def _submit(
        self,
        state: _ClientState,
        tool: str,
        arguments: dict[str, Any],
        key: str | None = None,
        subject: str | None = None,
    ) -> Op:
        """Submit, sending again with the same key while the answer is unknown."""
        subject = subject or state.subject
        key = key or state.new_key(self.workload.seed)
        request = {"tool": tool, "arguments": arguments, "key": key, "subject": subject}
        give_up = time.monotonic() + self._resend_for
        pause = 0.05
        while True:
            op, _ = self.history.run(
                state.name,
                "submit",
                request,
                lambda: self.target.submit(tool, arguments, key, subject),
            )
            if op.outcome != "info" or time.monotonic() > give_up:
                break
            time.sleep(pause)  # a resend's backoff, not a wait on the system
            pause = min(2 * pause, RESEND_PAUSE_SECONDS)
        if op.outcome == "ok" and op.job_id:
            state.remember(Submission(subject, key, tool, arguments), op.job_id)
        return op

    def _cancel(self, state: _ClientState, job_id: str) -> Op:
        op, _ = self.history.run(
            state.name,
            "cancel",
            {"jobId": job_id, "subject": state.subject},
            lambda: self.target.cancel(job_id, state.subject),
        )
        return op

    # -- operations --------------------------------------------------------------------------

    def _short(self, state: _ClientState) -> None:
        if state.rng.random() < 0.5:
            self._submit(state, "echo", {"message": state.rng.choice(["a", "bb", "ccc"])})
        else:
            self._submit(state, "sleep", {"ms": state.rng.randint(5, 60)})

    def _fail(self, state: _ClientState) -> None:
        self._submit(state, "fail", {"message": "chaos"})

    def _new_latch(self) -> Latch:
        latch = self.target.latch()
        with self._lock:
            self.latches.append(latch)
        return latch

    def _latched(self, state: _ClientState) -> None:
        latch = self._new_latch()
        op = self._submit(state, "latch", latch.arguments())
        hold = state.rng.uniform(0.2, LATCH_HOLD_SECONDS)
        if op.outcome == "ok":
            self._followups.submit(self._release_later, latch, hold)
        else:
            latch.release()

    def _release_later(self, latch: Latch, hold: float) -> None:
        self.stop.wait(hold)
        latch.release()

    def _cancel_queued(self, state: _ClientState) -> None:
        op = self._submit(state, "sleep", {"ms": 300})
        if op.outcome == "ok" and op.job_id:
            self._cancel(state, op.job_id)

    def _cancel_running(self, state: _ClientState) -> None:
        latch = self._new_latch()
        op = self._submit(state, "latch", latch.arguments())
        if op.outcome == "ok" and op.job_id:
            self._followups.submit(self._cancel_when_held, state, latch, op.job_id)
        else:
            latch.release()

    def _cancel_when_held(self, state: _ClientState, latch: Latch, job_id: str) -> None:
        """Cancel once the job is inside the tool (or the run ends), then release the latch."""
        deadline = time.monotonic() + self.target.deadlines.jobs()
        while not self.stop.is_set() and time.monotonic() < deadline:
            if any(hold["jobId"] == job_id for hold in latch.holders()):
                break
            self.stop.wait(0.05)
        try:
            self._cancel(state, job_id)
        finally:
            latch.release()

    def _replay(self, state: _ClientState) -> None:
        if not state.sent:
            return self._short(state)
        sent = state.rng.choice(state.sent)
        self._submit(state, sent.tool, sent.arguments, sent.key, sent.subject)
        return None

    def _burst(self, state: _ClientState) -> None:
        key = state.new_key(self.workload.seed)
        arguments = {"message": key}
        barrier = threading.Barrier(BURST)

        def one(_: int) -> None:
            barrier.wait()
            self._submit(state, "echo", arguments, key)

        with ThreadPoolExecutor(BURST) as pool:
            list(pool.map(one, range(BURST)))

    def _two_subjects(self, state: _ClientState) -> None:
        key = state.new_key(self.workload.seed)
        with self._lock:
            self.pairs.append((key, "echo"))
        for subject in SUBJECTS:
            self._submit(state, "echo", {"message": key}, key, subject)

    def _get(self, state: _ClientState) -> None:
        if not state.job_ids:
            return self._short(state)
        job_id = state.rng.choice(state.job_ids)
        self.history.run(state.name, "get", {"jobId": job_id}, lambda: self.target.job(job_id))
        return None


class _ClientState:
    def __init__(self, name: str, subject: str, rng: random.Random) -> None:
        self.name, self.subject, self.rng = name, subject, rng
        self.sent: list[Submission] = []
        self.job_ids: list[str] = []
        self._count = 0
        self._lock = threading.Lock()

    def new_key(self, seed: int) -> str:
        with self._lock:
            self._count += 1
            return f"s{seed}-{self.name}-{self._count}"

    def remember(self, submission: Submission, job_id: str) -> None:
        with self._lock:
            self.sent.append(submission)
            self.job_ids.append(job_id)


assert BOUND_MS / 1000 > LATCH_HOLD_SECONDS  # the tool's own bound never ends a hold first
