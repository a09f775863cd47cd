"""The scaling statistic of the qualification suite (qualification/statistics.py) on known data."""

from __future__ import annotations

import pytest

from qualification.statistics import serial_fraction, speedup_ci


def test_interval_contains_the_true_ratio_of_separated_samples() -> None:
    # Population medians 2.0 and 0.5: the true speedup is 4.
    offsets = [-0.04, -0.03, -0.02, -0.01, 0.0, 0.0, 0.01, 0.02, 0.03, 0.04]
    w1 = [2.0 + d for d in offsets]
    w4 = [0.5 + d / 4 for d in offsets]
    result = speedup_ci(w1, w4, resamples=5000, seed=7)
    assert result.speedup == pytest.approx(4.0)
    assert 3.8 < result.ci_low <= 4.0 <= result.ci_high < 4.2
    assert result.efficiency == pytest.approx(1.0)


def test_noisier_samples_give_a_wider_interval() -> None:
    tight = speedup_ci([2.0, 2.01, 1.99, 2.0], [0.5, 0.501, 0.499, 0.5])
    loose = speedup_ci([2.0, 2.4, 1.6, 2.0], [0.5, 0.6, 0.4, 0.5])
    assert (loose.ci_high - loose.ci_low) > 5 * (tight.ci_high - tight.ci_low)


def test_reproducible_with_a_seed() -> None:
    w1, w4 = [2.1, 2.0, 2.2, 1.9, 2.05], [0.6, 0.55, 0.5, 0.52, 0.58]
    assert speedup_ci(w1, w4, seed=3) == speedup_ci(w1, w4, seed=3)


def test_serial_fraction_amdahl() -> None:
    assert serial_fraction(4.0, 4) == pytest.approx(0.0)  # perfectly parallel
    assert serial_fraction(1.0, 4) == pytest.approx(1.0)  # no gain at all
    assert serial_fraction(2.0, 4) == pytest.approx(1 / 3)


def test_record_names_the_fields_the_report_reads() -> None:
    record = speedup_ci([2.0, 2.1, 1.9], [0.5, 0.52, 0.49]).as_dict()
    assert {
        "medianW1",
        "medianW4",
        "speedup",
        "ciLow",
        "ciHigh",
        "efficiency",
        "serialFraction",
        "rounds",
    } <= set(record)
