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


@dataclass(frozen=True)
class Interval:
    """A statistic with its bootstrap confidence interval."""

    value: float
    low: float
    high: float
    confidence: float
    rounds: int

    def decide(self, limit: float) -> bool | None:
        """True when the whole interval clears `limit`, False when it lies wholly below it,
        None while it straddles it (more rounds may decide)."""
        if self.low >= limit:
            return True
        if self.high < limit:
            return False
        return None

    def as_dict(self) -> dict[str, float | int]:
        return {
            "value": round(self.value, 4),
            "ciLow": round(self.low, 4),
            "ciHigh": round(self.high, 4),
            "confidence": self.confidence,
            "rounds": self.rounds,
        }

    def text(self, unit: str = "×") -> str:
        return f"{self.value:.2f}{unit} (95% CI {self.low:.2f}–{self.high:.2f})"


def relative_speedup_ci(
    a1: Sequence[float],
    a4: Sequence[float],
    b1: Sequence[float],
    b4: Sequence[float],
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 20261202,
) -> Interval:
    """(median(a1)/median(a4)) / (median(b1)/median(b4)): system a's speedup relative to system
    b's, from the same interleaved rounds. The bootstrap resamples whole rounds (paired), so a
    round slowed by the machine slows both systems' figures together."""
    data = [np.asarray(x, dtype=float) for x in (a1, a4, b1, b4)]
    if len({len(x) for x in data}) != 1:
        raise ValueError("paired series must have one value per round each")

    def statistic(x1, x4, y1, y4, axis=-1):
        med = np.median
        return (med(x1, axis=axis) / med(x4, axis=axis)) / (med(y1, axis=axis) / med(y4, axis=axis))

    result = stats.bootstrap(
        tuple(data),
        statistic,
        paired=True,
        vectorized=True,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return Interval(
        float(statistic(*data)),
        float(result.confidence_interval.low),
        float(result.confidence_interval.high),
        confidence,
        len(data[0]),
    )
