"""A stacked bar chart as plain geometry for an inline SVG: no JavaScript, nothing to download."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# outcome -> colour, bottom to top: what reached Kingdee first, problems on top
SERIES: dict[str, str] = {
    "created": "#2f855a",
    "existing": "#9ae6b4",
    "would_create": "#90cdf4",
    "quarantined": "#dd6b20",
    "unmapped": "#718096",
    "held": "#805ad5",
    "rejected": "#c53030",
}


@dataclass
class Segment:
    y: float
    height: float
    color: str
    title: str


@dataclass
class Bar:
    x: float
    width: float
    href: str
    title: str
    label: str | None  # shown under the bar (every few bars)
    segments: list[Segment] = field(default_factory=list)


@dataclass
class Chart:
    width: int
    height: int
    left: int
    top: int
    plot_height: int
    plot_width: int
    bars: list[Bar]
    ticks: list[tuple[float, str]]  # (y, text)
    legend: list[tuple[str, str]]  # (series, colour)


def _nice(value: float) -> int:
    """The smallest 1, 2 or 5 × 10^k at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return int(next(m * power for m in (1, 2, 5, 10) if m * power >= value))


def stacked(points: Sequence[dict[str, Any]], labels: dict[str, str], width: int = 960, height: int = 260) -> Chart:
    """``points``: ``{"label", "title", "href", "values": {series: count}}`` in x order."""
    left, top, bottom, right = 48, 12, 44, 8
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice(max((sum(p["values"].get(s, 0) for s in SERIES) for p in points), default=0))
    slot = plot_w / max(len(points), 1)
    every = max(1, math.ceil(len(points) / 12))  # at most ~12 labels under the axis
    bars = []
    for index, point in enumerate(points):
        bar = Bar(
            x=left + index * slot + slot * 0.15,
            width=max(slot * 0.7, 1.0),
            href=point["href"],
            title=point["title"],
            label=point["label"] if index % every == 0 else None,
        )
        base = top + plot_h
        for series, color in SERIES.items():
            count = point["values"].get(series, 0)
            if not count:
                continue
            h = plot_h * count / peak
            base -= h
            bar.segments.append(Segment(y=base, height=h, color=color, title=f"{labels.get(series, series)}: {count}"))
        bars.append(bar)
    ticks = [(top + plot_h - plot_h * i / 4, f"{peak * i / 4:g}") for i in range(5)]
    present = {s for p in points for s, v in p["values"].items() if v}
    legend = [(s, c) for s, c in SERIES.items() if s in present]
    return Chart(width, height, left, top, plot_h, plot_w, bars, ticks, legend)
