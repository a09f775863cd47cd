"""Statistics for benchmark artefacts and the scaling qualification (standard library only).

Percentiles interpolate linearly between closest ranks, as numpy's default does; the service
needs no numpy for them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def _values(values: Sequence[float]) -> list[float]:
    data = [float(v) for v in values]
    if not data:
        raise ValueError("need a non-empty 1-D sequence of numbers")
    if not all(math.isfinite(v) for v in data):
        raise ValueError("values must be finite")
    return data


def _percentile(ordered: list[float], q: float) -> float:
    if not 0 <= q <= 100:
        raise ValueError("percentile must be within 0 and 100")
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation between closest ranks."""
    return _percentile(sorted(_values(values)), q)


def describe(values: Sequence[float]) -> dict[str, float | int]:
    """count, mean, min, max, p50, p90, p95 and the sample standard deviation (0 for one value)."""
    data = sorted(_values(values))
    return {
        "count": len(data),
        "mean": statistics.fmean(data),
        "min": data[0],
        "max": data[-1],
        "p50": _percentile(data, 50),
        "p90": _percentile(data, 90),
        "p95": _percentile(data, 95),
        "stdev": statistics.stdev(data) if len(data) > 1 else 0.0,
    }


def summarize_runs(walls: Sequence[float], jobs: Sequence[int]) -> dict[str, float | int]:
    """`describe` of the iterations' wall seconds plus throughput (all jobs / all wall time)."""
    summary = describe(walls)
    total = math.fsum(_values(walls))
    summary["throughput"] = math.fsum(float(j) for j in jobs) / total if total else 0.0
    return summary


def brief(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, mean, p50 and p95 (None when there are no values)."""
    if len(values) == 0:
        return {"count": 0, "mean": None, "p50": None, "p95": None}
    data = sorted(_values(values))
    return {
        "count": len(data),
        "mean": statistics.fmean(data),
        "p50": _percentile(data, 50),
        "p95": _percentile(data, 95),
    }
