"""Scaling figures (1 vs 4 workers) from the ``scaling.*`` check records."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .contract import Expectation
from .models import CheckResult, Status

SCALING_CHECKS: tuple[tuple[str, str], ...] = (
    ("scaling.bridge", "Bridge (Redis, multiprocess workers)"),
    ("scaling.mcp", "Bridge, MCP tool (demo.sleep over stdio)"),
    ("scaling.raw-celery", "Raw Celery (Redis)"),
    ("scaling.inline", "Inline worker (memory transport)"),
)

# (measured key, column label, format)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("medianW1", "Median 1 worker", "{:.3f}"),
    ("medianW4", "Median 4 workers", "{:.3f}"),
    ("speedup", "Speed-up", "{:.2f}×"),
    ("ciLow", "CI low", "{:.2f}×"),
    ("ciHigh", "CI high", "{:.2f}×"),
    ("efficiency", "Efficiency", "{:.0%}"),
    ("serialFraction", "Serial fraction", "{:.3f}"),
    ("rounds", "Rounds", "{}"),
    ("workload", "Workload", "{}"),
    ("cores", "Cores", "{}"),
)
DASH = "—"


@dataclass
class ScalingRow:
    check_id: str
    label: str
    status: Status | None  # None: no record
    measured: dict[str, Any]
    expectations: list[Expectation]

    def number(self, key: str) -> float | None:
        value = self.measured.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if math.isfinite(value) else None

    def samples(self, workers: int) -> list[float]:
        """Per-round values when the record carries them (``roundsW1``/``samplesW1`` lists)."""
        for key in (f"roundsW{workers}", f"samplesW{workers}", f"w{workers}Rounds"):
            value = self.measured.get(key)
            if isinstance(value, list):
                return [float(v) for v in value if isinstance(v, int | float)]
        return []

    def cell(self, key: str, fmt: str) -> str:
        value = self.measured.get(key)
        if value is None or value == "":
            return DASH
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                return fmt.format(value)
            except (ValueError, TypeError):
                return str(value)
        if isinstance(value, dict):
            return ", ".join(f"{k}={v}" for k, v in value.items())
        if isinstance(value, list):
            return ", ".join(map(str, value))
        return str(value)

    @property
    def cells(self) -> list[str]:
        return [self.cell(key, fmt) for key, _, fmt in COLUMNS]

    @property
    def unit(self) -> str:
        """Best guess at what the medians measure, from the record or the speed-up direction."""
        unit = self.measured.get("unit")
        if isinstance(unit, str) and unit:
            return unit
        w1, w4, speedup = self.number("medianW1"), self.number("medianW4"), self.number("speedup")
        if w1 and w4 and speedup:
            if math.isclose(w1 / w4, speedup, rel_tol=0.2):
                return "s"
            if math.isclose(w4 / w1, speedup, rel_tol=0.2):
                return "jobs/s"
        return ""


def scaling_rows(checks: dict[str, CheckResult]) -> list[ScalingRow]:
    rows = []
    for check_id, label in SCALING_CHECKS:
        check = checks.get(check_id)
        rows.append(
            ScalingRow(
                check_id=check_id,
                label=label,
                status=check.status if check else None,
                measured=check.measured if check else {},
                expectations=check.expectations if check else [],
            )
        )
    return rows


def headline(rows: list[ScalingRow]) -> str:
    """One line for the changelog, e.g. ``bridge 3.62× (95% CI 3.41–3.80)``."""
    parts = []
    for row in rows:
        speedup = row.number("speedup")
        if speedup is None:
            continue
        text = f"{row.check_id.removeprefix('scaling.')} {speedup:.2f}×"
        low, high = row.number("ciLow"), row.number("ciHigh")
        if low is not None and high is not None:
            conf = row.number("confidence")
            label = f"{conf:.0%} CI" if conf is not None and 0 < conf < 1 else "CI"
            text += f" ({label} {low:.2f}–{high:.2f})"
        parts.append(text)
    return ", ".join(parts)


def mcp_hop(rows: list[ScalingRow]) -> str:
    """One line on what the MCP hop costs per job, from ``scaling.mcp``'s ``mcpHop`` figures,
    e.g. ``+0.9 ms job runtime (1 worker), +1.2 ms (4 workers); wall 1.01×/1.03× the built-in``;
    empty when the record has none."""
    row = next((r for r in rows if r.check_id == "scaling.mcp"), None)
    hop = row.measured.get("mcpHop") if row else None
    if not isinstance(hop, dict):
        return ""
    runtime, walls = [], []
    for workers in (1, 4):
        figures = hop.get(f"w{workers}")
        if not isinstance(figures, dict):
            continue
        overhead, ratio = figures.get("runtimeOverheadMs"), figures.get("wallRatio")
        unit = "worker" if workers == 1 else "workers"
        if isinstance(overhead, int | float):
            runtime.append(f"{overhead:+.1f} ms ({workers} {unit})")
        if isinstance(ratio, int | float):
            walls.append(f"{ratio:.2f}×")
    parts = []
    if runtime:
        parts.append("job runtime " + ", ".join(runtime))
    if walls:
        parts.append("round wall time " + "/".join(walls) + " the built-in tool's (1/4 workers)")
    return "; ".join(parts)
