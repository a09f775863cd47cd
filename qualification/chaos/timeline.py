"""A timeline picture of a chaos run: jobs finished per second under the faults' windows (SVG)."""

from __future__ import annotations

from collections import Counter
from html import escape

from .history import Fault

COLOURS = {
    "worker-kill": "#d62728",
    "worker-pause": "#ff7f0e",
    "redis-kill": "#9467bd",
    "api-restart": "#1f77b4",
    "broker-outage": "#8c564b",
    "partition": "#7f7f7f",
}
WIDTH, HEIGHT, LEFT, TOP, BOTTOM = 960, 260, 50, 40, 30


def svg(start: float, end: float, finished: list[float], faults: list[Fault]) -> str:
    """`finished`: epoch seconds at which jobs ended; the x axis runs from `start` to `end`."""
    span = max(end - start, 1.0)
    plot_w, plot_h = WIDTH - LEFT - 10, HEIGHT - TOP - BOTTOM
    per_second = Counter(int(t - start) for t in finished if start <= t <= end)
    peak = max(per_second.values(), default=1)

    def x(t: float) -> float:
        return LEFT + (t - start) / span * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{LEFT}" y="14" font-size="13">Jobs finished per second, faults shaded '
        f"({len(finished)} jobs, {len(faults)} faults, {span:.0f} s)</text>",
    ]
    for fault in faults:
        stop = fault.healed or fault.end or fault.start
        colour = COLOURS.get(fault.kind, "#999")
        w = max(x(stop) - x(fault.start), 2.0)
        parts.append(
            f'<rect x="{x(fault.start):.1f}" y="{TOP}" width="{w:.1f}" height="{plot_h}" '
            f'fill="{colour}" fill-opacity="0.25">'
            f"<title>{escape(fault.kind)} {escape(fault.target)}</title></rect>"
        )
    bar_w = max(plot_w / span - 1, 1.0)
    for second, count in sorted(per_second.items()):
        h = count / peak * plot_h
        parts.append(
            f'<rect x="{x(start + second):.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" '
            f'height="{h:.1f}" fill="#2ca02c"/>'
        )
    base = TOP + plot_h
    parts.append(f'<line x1="{LEFT}" y1="{base}" x2="{LEFT + plot_w}" y2="{base}" stroke="#000"/>')
    parts.append(f'<text x="{LEFT - 5}" y="{TOP + 10}" text-anchor="end">{peak}/s</text>')
    for tick in range(0, int(span) + 1, max(int(span // 10), 1)):
        parts.append(
            f'<text x="{x(start + tick):.1f}" y="{base + 14}" text-anchor="middle">{tick}s</text>'
        )
    legend_x = LEFT
    for kind, colour in COLOURS.items():
        parts.append(
            f'<rect x="{legend_x}" y="20" width="10" height="10" fill="{colour}" '
            'fill-opacity="0.5"/>'
            f'<text x="{legend_x + 14}" y="29">{kind}</text>'
        )
        legend_x += 14 + 7 * len(kind) + 16
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
