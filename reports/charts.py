"""Hand-built, self-contained SVG chart of the scaling figures (no JS, no external resources)."""

from __future__ import annotations

import math
from html import escape

from .scaling import ScalingRow

WIDTH, HEIGHT = 860, 300
C_W1, C_W4, C_INK, C_GRID, C_MUTED, C_TARGET = (
    "#8fa3bf",
    "#1f6f8b",
    "#1d2733",
    "#e3e8ef",
    "#6b7785",
    "#c2410c",
)
FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\""


def nice_ticks(top: float, count: int = 5) -> list[float]:
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(math.ceil(top / step)) + 1)]


def _fmt(value: float) -> str:
    return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"


def _text(
    x: float,
    y: float,
    body: str,
    size: int = 11,
    anchor: str = "middle",
    fill: str = C_INK,
    weight: str = "normal",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}" font-weight="{weight}">{escape(body)}</text>'
    )


def threshold_value(row: ScalingRow) -> float | None:
    """The limit the check asserted on the speed-up or on its CI lower bound, if any."""
    for expectation in row.expectations:
        limit = expectation.limit
        if expectation.name in ("speedup", "ciLow") and isinstance(limit, int | float):
            return float(limit)
    return None


def _medians_panel(rows: list[ScalingRow], x0: float, y0: float, w: float, h: float) -> list[str]:
    out = [
        _text(x0, y0 - 14, "Median per configuration (1 vs 4 workers)", 13, "start", weight="600")
    ]
    data = [r for r in rows if r.number("medianW1") is not None or r.number("medianW4") is not None]
    if not data:
        return out + [_text(x0 + w / 2, y0 + h / 2, "no medians recorded", 12, fill=C_MUTED)]
    values = [v for r in data for v in (r.number("medianW1"), r.number("medianW4")) if v]
    values += [s for r in data for s in r.samples(1) + r.samples(4)]
    ticks = nice_ticks(max(values) * 1.1)
    y_max = ticks[-1]

    def ypos(v: float) -> float:
        return y0 + h - (v / y_max) * h

    for t in ticks:
        out.append(
            f'<line x1="{x0}" x2="{x0 + w}" y1="{ypos(t):.1f}" y2="{ypos(t):.1f}" '
            f'stroke="{C_GRID}"/>'
        )
        out.append(_text(x0 - 6, ypos(t) + 4, _fmt(t), 10, "end", C_MUTED))
    unit = next((r.unit for r in data if r.unit), "")
    axis = f"median ({unit})" if unit else "median"
    out.append(
        f'<text transform="translate({x0 - 40},{y0 + h / 2}) rotate(-90)" font-size="10" '
        f'text-anchor="middle" fill="{C_MUTED}">{escape(axis)}</text>'
    )
    group = w / len(data)
    bar = min(34.0, group / 3.2)
    for i, row in enumerate(data):
        cx = x0 + group * (i + 0.5)
        for workers, colour, dx in ((1, C_W1, -bar * 0.55), (4, C_W4, bar * 0.55)):
            value = row.number(f"medianW{workers}")
            bx = cx + dx - bar / 2
            if value is not None:
                out.append(
                    f'<rect x="{bx:.1f}" y="{ypos(value):.1f}" width="{bar:.1f}" '
                    f'height="{y0 + h - ypos(value):.1f}" fill="{colour}" rx="2">'
                    f"<title>{escape(row.check_id)} {workers}w median {value:g}</title>"
                    "</rect>"
                )
            samples = row.samples(workers)
            for k, sample in enumerate(samples):
                spread = 0.5 if len(samples) == 1 else 0.2 + 0.6 * k / (len(samples) - 1)
                out.append(
                    f'<circle cx="{bx + bar * spread:.1f}" cy="{ypos(sample):.1f}" r="2.4" '
                    f'fill="#fff" stroke="{C_INK}" stroke-width="1">'
                    f"<title>round {k + 1}: {sample:g}</title></circle>"
                )
            if value is not None:
                label_y = min([ypos(value), *(ypos(v) for v in samples)])
                out.append(_text(bx + bar / 2, label_y - 5, _fmt(value), 10))
        out.append(_text(cx, y0 + h + 16, row.check_id.removeprefix("scaling."), 11))
    out.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{y0 + h}" y2="{y0 + h}" stroke="{C_MUTED}"/>')
    legend_y = y0 + h + 34
    if any(r.samples(1) or r.samples(4) for r in data):
        lx = x0 + 180
        out.append(
            f'<circle cx="{lx + 5}" cy="{legend_y - 4}" r="2.4" fill="#fff" stroke="{C_INK}"/>'
        )
        out.append(_text(lx + 14, legend_y, "per-round value", 10, "start", C_MUTED))
    for j, (label, colour) in enumerate((("1 worker", C_W1), ("4 workers", C_W4))):
        lx = x0 + j * 90
        out.append(
            f'<rect x="{lx}" y="{legend_y - 9}" width="10" height="10" fill="{colour}" rx="2"/>'
        )
        out.append(_text(lx + 14, legend_y, label, 10, "start", C_MUTED))
    return out


def _speedup_panel(rows: list[ScalingRow], x0: float, y0: float, w: float, h: float) -> list[str]:
    out = [_text(x0, y0 - 14, "Speed-up 1 → 4 workers (with CI)", 13, "start", weight="600")]
    data = [r for r in rows if r.number("speedup") is not None]
    if not data:
        return out + [_text(x0 + w / 2, y0 + h / 2, "no speed-up recorded", 12, fill=C_MUTED)]
    highs = [r.number("ciHigh") or 0.0 for r in data] + [r.number("speedup") or 0.0 for r in data]
    top = max(4.5, max(highs) * 1.1)
    ticks = [t for t in range(0, int(math.ceil(top)) + 1)]
    top = float(ticks[-1])

    def xpos(v: float) -> float:
        return x0 + (v / top) * w

    for t in ticks:
        out.append(
            f'<line x1="{xpos(t):.1f}" x2="{xpos(t):.1f}" y1="{y0}" y2="{y0 + h}" '
            f'stroke="{C_GRID}"/>'
        )
        out.append(_text(xpos(t), y0 + h + 14, f"{t}×", 10, fill=C_MUTED))
    for ref, label in ((1.0, "no gain"), (4.0, "ideal 4×")):
        out.append(
            f'<line x1="{xpos(ref):.1f}" x2="{xpos(ref):.1f}" y1="{y0}" y2="{y0 + h}" '
            f'stroke="{C_MUTED}" stroke-dasharray="3 3"/>'
        )
        out.append(_text(xpos(ref) + 3, y0 + 10, label, 9, "start", C_MUTED))
    lane = h / len(data)
    for i, row in enumerate(data):
        cy = y0 + lane * (i + 0.5)
        speedup = row.number("speedup") or 0.0
        target = threshold_value(row)
        if target is not None:
            out.append(
                f'<line x1="{xpos(target):.1f}" x2="{xpos(target):.1f}" '
                f'y1="{cy - lane * 0.35:.1f}" y2="{cy + lane * 0.35:.1f}" '
                f'stroke="{C_TARGET}" stroke-width="2"><title>threshold {target:g}×'
                "</title></line>"
            )
        low, high = row.number("ciLow"), row.number("ciHigh")
        if low is not None and high is not None:
            out.append(
                f'<line x1="{xpos(low):.1f}" x2="{xpos(high):.1f}" y1="{cy:.1f}" '
                f'y2="{cy:.1f}" stroke="{C_INK}" stroke-width="1.5"/>'
            )
            for end in (low, high):
                out.append(
                    f'<line x1="{xpos(end):.1f}" x2="{xpos(end):.1f}" y1="{cy - 5:.1f}" '
                    f'y2="{cy + 5:.1f}" stroke="{C_INK}" stroke-width="1.5"/>'
                )
        out.append(
            f'<circle cx="{xpos(speedup):.1f}" cy="{cy:.1f}" r="5.5" fill="{C_W4}">'
            f"<title>{escape(row.check_id)} speed-up {speedup:.2f}×</title></circle>"
        )
        label_x = max(xpos(speedup) + 9, xpos(high) + 7 if high is not None else 0.0)
        out.append(_text(label_x, cy + 4, f"{speedup:.2f}×", 11, "start", weight="600"))
        out.append(_text(x0 - 8, cy + 4, row.check_id.removeprefix("scaling."), 11, "end"))
    out.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{y0 + h}" y2="{y0 + h}" stroke="{C_MUTED}"/>')
    if any(threshold_value(r) is not None for r in data):
        out.append(f'<rect x="{x0}" y="{y0 + h + 25}" width="10" height="3" fill="{C_TARGET}"/>')
        out.append(_text(x0 + 14, y0 + h + 30, "required (check threshold)", 10, "start", C_MUTED))
    return out


def scaling_svg(rows: list[ScalingRow]) -> str:
    """The chart as an inline ``<svg>`` element (also valid as a standalone .svg file)."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="scaling-title" '
        f'class="scaling-chart" {FONT}>',
        '<title id="scaling-title">Scaling: 1 vs 4 worker medians and speed-up with CI</title>',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    parts += _medians_panel(rows, 70, 40, 330, 190)
    parts += _speedup_panel(rows, 560, 40, 270, 190)
    parts.append("</svg>")
    return "\n".join(parts)
