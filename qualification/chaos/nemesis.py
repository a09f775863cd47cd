"""The nemesis: a seeded schedule of faults, injected one at a time and each healed before the next.

Kinds: a worker SIGKILLed (then started again); a worker SIGSTOPped beyond its lease, then
SIGCONTed (a zombie waking up after its job was taken over); Redis SIGKILLed and restarted on its
append-only file; the API restarted; a broker outage window (Redis stopped, then started). After
each heal a probe job is submitted: the fault's recovery time runs from its injection until the
probe succeeded.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from dataclasses import asdict, dataclass

from ..drivers import TERMINAL
from .history import Fault, History
from .target import Target, status_of

#: Relative frequency of each fault kind.
FAULTS: dict[str, int] = {
    "worker-kill": 3,
    "worker-pause": 3,
    "redis-kill": 2,
    "api-restart": 2,
    "broker-outage": 2,
    "partition": 1,
}
#: A paused worker is held this many of its leases (drawn uniformly): always beyond the lease.
PAUSE_LEASES = (1.5, 3.0)
#: A broker outage lasts this long (seconds, drawn uniformly).
OUTAGE_SECONDS = (1.0, 3.0)
#: The share of the run in which faults start.
LAST_FAULT = 0.85
#: Faults during which the API may answer 503 (the broker or the API itself is down).
OUTAGES = frozenset({"redis-kill", "api-restart", "broker-outage"})


@dataclass(frozen=True)
class Planned:
    at: float  # seconds after the start
    kind: str
    slot: int  # the worker it hits (worker faults)
    hold: float  # seconds the fault lasts before its heal (pause, outage)


def schedule(
    seed: int,
    duration: float,
    interval: float,
    workers: int,
    lease: float,
    mix: dict[str, int] | None = None,
) -> list[Planned]:
    """The faults of a run: reproducible from the seed alone (with the same arguments). The
    last fault starts before `LAST_FAULT` of the run, so it is healed while work still flows."""
    rng = random.Random(f"{seed}-nemesis")
    kinds, weights = zip(*(mix or FAULTS).items(), strict=True)
    plan: list[Planned] = []
    at = interval * rng.uniform(0.5, 1.0)
    while at < duration * LAST_FAULT:
        kind = rng.choices(kinds, weights)[0]
        slot = rng.randrange(workers)
        if kind == "worker-pause":
            hold = lease * rng.uniform(*PAUSE_LEASES)
        elif kind == "broker-outage":
            hold = rng.uniform(*OUTAGE_SECONDS)
        else:
            hold = 0.0
        plan.append(Planned(round(at, 3), kind, slot, round(hold, 3)))
        at += interval * rng.uniform(0.5, 1.5)
    return plan


def partition_unavailable() -> str:
    """Why the partition fault is not run here (it is recorded as skipped with this reason)."""
    try:
        probe = subprocess.run(["ip", "netns", "list"], capture_output=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"no `ip netns` on this machine ({type(error).__name__})"
    if probe.returncode != 0:
        return "`ip netns` is not permitted here"
    return (
        "not implemented yet: the workers would have to run in a network namespace reaching "
        "Redis over a veth pair (this machine allows `ip netns`)"
    )


class Nemesis:
    def __init__(self, target: Target, history: History, plan: list[Planned]) -> None:
        self.target, self.history, self.plan = target, history, plan
        self.stop = threading.Event()
        self.not_reached: list[Planned] = []
        self._thread = threading.Thread(target=self._run, name="chaos-nemesis")
        self._probes = 0
        self.error: BaseException | None = None

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread.start()

    def wait(self) -> None:
        """Until every planned fault was injected, healed and probed (each step is bounded by
        its own deadline), then everything is healed."""
        self._thread.join()
        if self.error is not None:
            raise self.error

    def finish(self) -> None:
        """Stop injecting; the fault in progress is healed before this returns."""
        self.stop.set()
        self.wait()

    def _run(self) -> None:
        skipped_partition = None
        try:
            for index, planned in enumerate(self.plan):
                if self.stop.wait(max(0.0, self._started + planned.at - time.monotonic())):
                    self.not_reached = self.plan[index:]
                    return
                if planned.kind == "partition":
                    skipped_partition = skipped_partition or partition_unavailable()
                    self.history.skipped["partition"] = skipped_partition
                    continue
                broker_fault = planned.kind in ("redis-kill", "broker-outage")
                if broker_fault and not self.target.broker_controllable:
                    self.history.skipped[planned.kind] = "the broker was given as a URL"
                    continue
                self._inject(planned)
        except BaseException as error:  # the run fails with it, after the heal
            self.error = error
        finally:
            self.heal()

    def _inject(self, planned: Planned) -> None:
        target = self.target
        slot = planned.slot % len(target.workers)
        name = target.workers[slot] if planned.kind.startswith("worker") else planned.kind
        fault = Fault(planned.kind, name, time.time(), outage=planned.kind in OUTAGES)
        self.history.fault(fault)
        if planned.kind == "worker-kill":
            target.kill_worker(slot)
            fault.end = time.time()
            target.start_worker(slot, wait=False)  # a replacement boots while work goes on
        elif planned.kind == "worker-pause":
            target.pause_worker(slot)
            time.sleep(planned.hold)  # the pause's length is the fault itself
            fault.end = time.time()
            target.resume_worker(slot)
        elif planned.kind == "redis-kill":
            target.broker_kill_restart()
            fault.end = time.time()
        elif planned.kind == "api-restart":
            target.api_restart()
            fault.end = time.time()
        elif planned.kind == "broker-outage":
            target.broker_stop()
            time.sleep(planned.hold)  # the outage window's length is the fault itself
            fault.end = time.time()
            target.broker_start()
        fault.healed = time.time()
        self._probe(fault)

    def _probe(self, fault: Fault) -> None:
        """Submit a probe job and wait until it ends: the fault's recovery time."""
        self._probes += 1
        key = f"probe-{self._probes}-{fault.kind}"
        op, _ = self.history.run(
            "nemesis",
            "submit",
            {"tool": "echo", "arguments": {"message": key}, "key": key, "subject": "nemesis"},
            lambda: self.target.submit("echo", {"message": key}, key, "nemesis"),
        )
        if op.outcome != "ok" or not op.job_id:
            fault.note = f"probe not accepted: {op.response}"
            return
        fault.probe = op.job_id
        deadline = time.monotonic() + self.target.deadlines.stranded()
        while time.monotonic() < deadline:
            wait = min(deadline - time.monotonic(), 10.0)
            status = status_of(self.target.job(op.job_id, wait=max(wait, 0.1)))
            if status in TERMINAL:
                if status == "succeeded":
                    fault.recovered = time.time()
                else:
                    fault.note = f"probe {status}"
                return
        fault.note = "probe did not finish"

    def heal(self) -> None:
        """Every worker running and not paused, the broker and the API up."""
        target = self.target
        for slot in range(len(target.workers)):
            target.resume_worker(slot)
            target.start_worker(slot)
        if target.broker_controllable and not target.broker_running():
            target.broker_start()
        if not target.api_running():
            target.api_restart()


def plan_dump(plan: list[Planned]) -> list[dict]:
    return [asdict(p) for p in plan]
