"""How busy the machine was with work that is not ours, while a measurement ran.

A scaling figure read on a machine that other processes keep busy says more about the machine than
about the system measured; checks use this to answer UNKNOWN, not FAIL, in that case.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

import psutil


def _ours() -> float:
    """CPU seconds used by this process and every descendant (the stacks, the CLI, workers),
    living or already reaped."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:4])  # user, system, children_user, children_system
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):  # exited meanwhile: counted once reaped
            total += sum(child.cpu_times()[:2])
    return total


def _busy() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores)."""
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq + times.steal


@dataclass
class CpuShare:
    wall: float
    foreign: float  # share of the machine's capacity used by other processes, 0..1
    ours: float  # share used by us and our descendants, 0..1


class ForeignLoad:
    """`with ForeignLoad() as meter: …` then `meter.result`: who used the CPU meanwhile."""

    def __enter__(self) -> ForeignLoad:
        self._wall, self._busy, self._ours = time.monotonic(), _busy(), _ours()
        return self

    def __exit__(self, *_: object) -> None:
        wall = time.monotonic() - self._wall
        capacity = wall * len(os.sched_getaffinity(0))
        busy, ours = _busy() - self._busy, _ours() - self._ours
        self.result = CpuShare(
            wall=wall,
            foreign=max(0.0, min(1.0, (busy - ours) / capacity)) if capacity else 0.0,
            ours=max(0.0, min(1.0, ours / capacity)) if capacity else 0.0,
        )
