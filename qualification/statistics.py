"""Scaling statistics: speedup of medians with a bootstrap confidence interval (scipy)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Scaling:
    workers: int
    rounds: int
    median_w1: float
    median_wn: float
    speedup: float
    ci_low: float
    ci_high: float
    confidence: float

    @property
    def efficiency(self) -> float:
        return self.speedup / self.workers

    @property
    def serial_fraction(self) -> float:
        """Amdahl's serial fraction implied by the speedup on `workers` workers."""
        return serial_fraction(self.speedup, self.workers)

    def as_dict(self) -> dict[str, float | int]:
        data = asdict(self)
        return {
            "workers": self.workers,
            "rounds": self.rounds,
            "medianW1": round(data["median_w1"], 4),
            f"medianW{self.workers}": round(data["median_wn"], 4),
            "speedup": round(self.speedup, 3),
            "ciLow": round(self.ci_low, 3),
            "ciHigh": round(self.ci_high, 3),
            "confidence": self.confidence,
            "efficiency": round(self.efficiency, 3),
            "serialFraction": round(self.serial_fraction, 4),
        }


def serial_fraction(speedup: float, workers: int) -> float:
    """f in Amdahl's law S = 1 / (f + (1 - f) / n), solved for f."""
    return (workers / speedup - 1) / (workers - 1)


def speedup_ci(
    w1: Sequence[float],
    wn: Sequence[float],
    workers: int = 4,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 20261124,
) -> Scaling:
    """median(w1) / median(wn) with a percentile bootstrap interval (independent samples)."""
    a, b = np.asarray(w1, dtype=float), np.asarray(wn, dtype=float)

    def ratio(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.median(x, axis=axis) / np.median(y, axis=axis)

    result = stats.bootstrap(
        (a, b),
        ratio,
        paired=False,
        vectorized=True,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return Scaling(
        workers,
        min(len(a), len(b)),
        float(np.median(a)),
        float(np.median(b)),
        float(ratio(a, b)),
        float(interval.low),
        float(interval.high),
        confidence,
    )
