"""The shapes the report's charts share, as Vega-Lite specs: labelled horizontal bars and
(stacked) columns of counts."""

from __future__ import annotations

import math
from typing import Any

from pipeline.report.vega import INK, LINE

HALF, WIDE = 520, 1080  # drawing widths of a chart in a half or a full-width card
VALUE_ROOM = 110  # right of horizontal bars, for the value text
Spec = dict[str, Any]


def label_layer(width: int) -> Spec:
    """Row labels left of the bars, drawn as text marks so that each row is its own band
    even when two labels read the same."""
    return {
        "mark": {
            "type": "text",
            "align": "right",
            "dx": -8,
            "limit": width,
            "fontSize": 12,
            "color": INK,
            "aria": False,
        },
        "encoding": {"x": {"datum": 0}, "text": {"field": "label"}},
    }


def hbars(
    rows: list[Spec], *, color: str, label_width: int, width: int = HALF, extra: tuple[Spec, ...] = ()
) -> Spec:
    """Horizontal bars, one per row {label, value, end, text, desc}, the value text after each bar.
    `extra` layers {spec, max, under} draw over the bars, or under them, and widen the scale to `max`."""
    top = max([*(r["end"] for r in rows), *(layer.get("max", 0) for layer in extra)]) or 1
    x = {"type": "quantitative", "axis": None, "scale": {"domain": [0, top], "nice": False}}
    return {
        "width": width - label_width - VALUE_ROOM,
        "height": {"step": 26},
        "data": {"values": [{"row": i, **r} for i, r in enumerate(rows)]},
        "encoding": {"y": {"field": "row", "type": "ordinal", "axis": None}},
        "layer": [
            *(layer["spec"] for layer in extra if layer.get("under")),
            {
                "mark": {"type": "bar", "color": color, "height": 16},
                "encoding": {"x": {"field": "value", **x}, "description": {"field": "desc"}},
            },
            *(layer["spec"] for layer in extra if not layer.get("under")),
            label_layer(label_width),
            {
                "mark": {"type": "text", "align": "left", "dx": 6, "aria": False},
                "encoding": {"x": {"field": "end", "type": "quantitative"}, "text": {"field": "text"}},
            },
        ],
    }


def count_scale(largest: int) -> tuple[int, int]:
    """A round top for a count axis and its step: about four gridlines at 1, 2 or 5 × 10^k."""
    raw = max(largest, 1) / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return math.ceil(max(largest, 1) / step) * step, step


def columns(
    labels: list[str],
    cells: list[Spec],
    totals: list[Spec],
    *,
    width: int,
    color: str = "",
    colors: Spec | None = None,
    show_totals: bool = True,
) -> Spec:
    """Columns over the ordered `labels` in one `color`, or stacked by series in `colors` (a
    colour scale), and their `totals` {x, total, text} written above them when `show_totals`."""
    x = {"field": "x", "type": "ordinal", "scale": {"domain": labels}}
    top, step = count_scale(max((t["total"] for t in totals), default=1))
    axis = {"values": list(range(0, top + 1, step)), "format": ",d", "domain": False}
    scale = {"domain": [0, top], "nice": False}
    layers: list[Spec] = [
        {
            "mark": {"type": "bar", **({"color": color} if color else {})},
            "encoding": {
                "y": {
                    "field": "count",
                    "type": "quantitative",
                    "stack": "zero",
                    "axis": axis,
                    "scale": scale,
                },
                "order": {"field": "rank", "type": "quantitative"},
                "description": {"field": "desc"},
                **({"color": {"field": "series", "type": "nominal", "scale": colors}} if colors else {}),
            },
        }
    ]
    if show_totals:
        layers.append(
            {
                "data": {"values": totals},
                "mark": {"type": "text", "baseline": "bottom", "dy": -3, "aria": False},
                "encoding": {
                    "y": {"field": "total", "type": "quantitative", "axis": axis, "scale": scale},
                    "text": {"field": "text"},
                },
            }
        )
    return {
        "width": width - 60,
        "height": 220,
        "data": {"values": cells},
        "encoding": {"x": {**x, "axis": {"labelAngle": 0, "labelOverlap": True, "domainColor": LINE}}},
        "layer": layers,
    }
