"""Statistics of the benchmark harness on known data."""

from __future__ import annotations

import math

import pytest

from mcp_bridge.benchmarking.stats import (
    brief,
    describe,
    summarize_runs,
)


def test_describe_known_values() -> None:
    figures = describe([1.0, 2.0, 3.0, 4.0, 5.0])
    assert figures["count"] == 5
    assert figures["mean"] == pytest.approx(3.0)
    assert figures["min"] == 1.0 and figures["max"] == 5.0
    assert figures["p50"] == pytest.approx(3.0)
    assert figures["p90"] == pytest.approx(4.6)  # linear interpolation between ranks
    assert figures["p95"] == pytest.approx(4.8)
    assert figures["stdev"] == pytest.approx(math.sqrt(2.5))  # sample stdev (ddof=1)


def test_describe_single_value_has_zero_stdev() -> None:
    assert describe([0.5])["stdev"] == 0.0


def test_throughput_is_all_jobs_over_all_wall_time() -> None:
    summary = summarize_runs([1.0, 3.0], [10, 10])
    assert summary["throughput"] == pytest.approx(5.0)


def test_brief_empty_and_known() -> None:
    assert brief([]) == {"count": 0, "mean": None, "p50": None, "p95": None}
    assert brief([0.1, 0.3])["mean"] == pytest.approx(0.2)


def test_describe_refuses_empty_and_nan() -> None:
    with pytest.raises(ValueError):
        describe([])
    with pytest.raises(ValueError):
        describe([1.0, math.nan])
