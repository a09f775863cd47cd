"""Statistics for benchmark artefacts and the scaling qualification (numpy + scipy)."""

from __future__ import annotations

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
