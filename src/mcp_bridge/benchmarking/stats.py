"""Statistics for benchmark artefacts and the scaling qualification (numpy + scipy)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np


def _array(values: Sequence[float]) -> np.ndarray:
    data = np.asarray(values, dtype=float)
    if data.ndim != 1 or data.size == 0:
        raise ValueError("need a non-empty 1-D sequence of numbers")
    if not np.all(np.isfinite(data)):
        raise ValueError("values must be finite")
    return data


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation between closest ranks."""
    return float(np.percentile(_array(values), q))


def describe(values: Sequence[float]) -> dict[str, float | int]:
    """count, mean, min, max, p50, p90, p95 and the sample standard deviation (0 for one value)."""
    data = _array(values)
    p50, p90, p95 = np.percentile(data, [50, 90, 95])
    return {
        "count": int(data.size),
        "mean": float(data.mean()),
        "min": float(data.min()),
        "max": float(data.max()),
        "p50": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "stdev": float(data.std(ddof=1)) if data.size > 1 else 0.0,
    }


def summarize_runs(walls: Sequence[float], jobs: Sequence[int]) -> dict[str, float | int]:
    """`describe` of the iterations' wall seconds plus throughput (all jobs / all wall time)."""
    summary = describe(walls)
    total = float(np.sum(_array(walls)))
    summary["throughput"] = float(np.sum(np.asarray(jobs, dtype=float)) / total) if total else 0.0
    return summary


def brief(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, mean, p50 and p95 (None when there are no values)."""
    if len(values) == 0:
        return {"count": 0, "mean": None, "p50": None, "p95": None}
    data = _array(values)
    p50, p95 = np.percentile(data, [50, 95])
    return {
        "count": int(data.size),
        "mean": float(data.mean()),
        "p50": float(p50),
        "p95": float(p95),
    }


def _median_ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(a, axis=axis) / np.median(b, axis=axis)


def bootstrap_ratio_ci(
    w1: Sequence[float],
    w4: Sequence[float],
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int | None = 20_261_124,
) -> tuple[float, float, float]:
    """Speed-up median(w1)/median(w4) of two independent samples of wall times, with a
    two-sided bootstrap confidence interval (BCa; percentile when BCa degenerates).

    Returns (speedup, low, high).
    """
    from scipy import stats as scipy_stats

    a, b = _array(w1), _array(w4)
    if np.any(b <= 0) or np.any(a <= 0):
        raise ValueError("wall times must be positive")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    speedup = float(_median_ratio(a, b))
    if a.size < 2 or b.size < 2:
        return speedup, math.nan, math.nan
    low = high = math.nan
    for method in ("BCa", "percentile"):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate resamples: checked just below
            result = scipy_stats.bootstrap(
                (a, b),
                _median_ratio,
                n_resamples=resamples,
                paired=False,
                vectorized=True,
                confidence_level=confidence,
                method=method,
                rng=np.random.default_rng(seed),
            )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            break
    return speedup, low, high


def serial_fraction(speedup: float, n: int) -> float:
    """Amdahl's serial fraction f from a measured speed-up on n workers: (n/speedup - 1)/(n - 1).

    0 means perfectly parallel, 1 means no gain at all.
    """
    if n <= 1:
        raise ValueError("n must be greater than 1")
    if not speedup > 0:
        raise ValueError("speedup must be positive")
    return (n / speedup - 1) / (n - 1)
