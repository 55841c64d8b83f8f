"""The report's charts as Vega-Lite specs, one function per chart, drawn to SVG by `vega`.

Every string from the data (channel names, routes, platforms) goes into a spec as a data
value, never into an expression, so Vega treats it as text to draw and escape.
"""

from __future__ import annotations

from markupsafe import Markup

from pipeline.report.formats import hours, number, percent
from pipeline.report.layouts import HALF, WIDE, Spec, columns, hbars, label_layer
from pipeline.report.model import Figures
from pipeline.report.vega import INK, to_svg

PALETTE = ("#1f5fa8", "#e07b39", "#2e9e6b", "#8a5cc2", "#c9453c", "#3fa7b5", "#b08a2e", "#6b7280")
REMOVED_GREEN = "#2e9e6b"
STATUS = {  # status → legend label, colour
    "removed": ("Removed", REMOVED_GREEN),
    "online": ("Still online", "#c9453c"),
    "restricted": ("Restricted by the platform", "#8a5cc2"),
    "declined": ("Declined by the platform", "#7a4a2a"),
    "referred": ("Referred, awaiting", "#1f5fa8"),
    "confirmed": ("Confirmed, not yet referred", "#e0a43a"),
    "rejected": ("Rejected on review", "#9aa3b2"),
}


def _status(name: str) -> tuple[str, str]:
    return STATUS.get(name, (name, "#6b7280"))


def timeline(f: Figures) -> Spec | None:
    tl = f.timeline
    if not tl.buckets:
        return None
    week = "Week of " if tl.granularity == "week" else ""
    cells = [
        {
            "x": b,
            "series": s.platform,
            "rank": rank,
            "count": n,
            "desc": f"{week}{b}, {s.platform}: {number(n)}",
        }
        for rank, s in enumerate(tl.series)
        for b, n in zip(tl.buckets, s.counts, strict=True)
        if n
    ]
    totals = [{"x": b, "total": n, "text": number(n)} for b, n in zip(tl.buckets, tl.total, strict=True) if n]
    platforms = [s.platform for s in tl.series]
    colors = {"domain": platforms, "range": [PALETTE[i % len(PALETTE)] for i in range(len(platforms))]}
    spec = columns(tl.buckets, cells, totals, width=WIDE, colors=colors, show_totals=len(tl.buckets) <= 40)
    fmt = "%b %Y" if tl.granularity == "month" else "%-d %b"
    spec["encoding"]["x"]["axis"]["labelExpr"] = f"utcFormat(toDate(datum.value), '{fmt}')"
    return spec


def languages(f: Figures) -> Spec | None:
    total = sum(lang.count for lang in f.languages)
    rows = []
    for lang in f.languages:
        label = f"{lang.label} ({lang.lang})" if lang.lang else lang.label
        text = f"{number(lang.count)} · {percent(lang.count, total)}"
        rows.append(
            {"label": label, "value": lang.count, "end": lang.count, "text": text, "desc": f"{label}: {text}"}
        )
    return hbars(rows, color=PALETTE[0], label_width=180) if rows else None


def routes(f: Figures) -> Spec | None:
    rows = [
        {
            "label": r.label,
            "value": r.count,
            "end": r.count,
            "text": number(r.count),
            "desc": f"{r.label}: {number(r.count)} adverts",
        }
        for r in f.routes
    ]
    return hbars(rows, color=PALETTE[2], label_width=220) if rows else None


def prices(f: Figures) -> Spec | None:
    rows = []
    for p in f.prices:
        middle = f" (middle half €{number(p.p25_eur)}–€{number(p.p75_eur)})" if p.p25_eur is not None else ""
        rows.append(
            {
                "label": p.label,
                "value": p.median_eur,
                "low": p.p25_eur,
                "high": p.p75_eur,
                "end": max(p.median_eur, p.p75_eur or 0),
                "text": f"€{number(p.median_eur)}  n={number(p.n)}",
                "desc": f"{p.label}: median €{number(p.median_eur)}{middle}, {number(p.n)} adverts",
            }
        )
    if not rows:
        return None
    ranged = {"filter": "isValid(datum.low)"}
    whisker = {"type": "rule", "color": INK, "strokeWidth": 1.5, "aria": False}
    cap = {"type": "tick", "color": INK, "thickness": 1.5, "size": 10, "orient": "vertical", "aria": False}
    extra = [
        {
            "spec": {
                "transform": [ranged],
                "mark": whisker,
                "encoding": {"x": {"field": "low", "type": "quantitative"}, "x2": {"field": "high"}},
            }
        },
        {
            "spec": {
                "transform": [ranged],
                "mark": cap,
                "encoding": {"x": {"field": "low", "type": "quantitative"}},
            }
        },
        {
            "spec": {
                "transform": [ranged],
                "mark": cap,
                "encoding": {"x": {"field": "high", "type": "quantitative"}},
            }
        },
    ]
    return hbars(rows, color=PALETTE[1], label_width=250, width=WIDE, extra=tuple(extra))


def outcomes(f: Figures) -> Spec | None:
    oc = f.outcomes
    total = sum(oc.by_status.values())
    if not total:
        return None
    parts = []
    for rank, st in enumerate(oc.statuses):
        label, _ = _status(st)
        n = oc.by_status[st]
        share = percent(n, total)
        parts.append(
            {
                "rank": rank,
                "legend": f"{label}: {number(n)} ({share})",
                "value": n,
                "desc": f"{label}: {number(n)} ({share})",
            }
        )
    colors = {"domain": [p["legend"] for p in parts], "range": [_status(st)[1] for st in oc.statuses]}
    centre = {"type": "text", "aria": False, "color": INK}
    return {
        "width": 210,
        "height": 210,
        "layer": [
            {
                "data": {"values": parts},
                "mark": {
                    "type": "arc",
                    "innerRadius": 64,
                    "outerRadius": 105,
                    "stroke": "#fff",
                    "strokeWidth": 1.5,
                },
                "encoding": {
                    "theta": {"field": "value", "type": "quantitative", "stack": True},
                    "order": {"field": "rank", "type": "quantitative"},  # slices in the legend's order
                    "color": {
                        "field": "legend",
                        "type": "nominal",
                        "scale": colors,
                        "sort": None,
                        "legend": {"orient": "right", "labelLimit": 260},
                    },
                    "description": {"field": "desc"},
                },
            },
            {
                "data": {"values": [{"t": number(total)}]},
                "mark": {**centre, "fontSize": 26, "fontWeight": 650, "dy": -8},
                "encoding": {"text": {"field": "t"}},
            },
            {
                "data": {"values": [{"t": "referrals"}]},
                "mark": {**centre, "dy": 16},
                "encoding": {"text": {"field": "t"}},
            },
        ],
    }


def outcomes_by_platform(f: Figures) -> Spec | None:
    oc = f.outcomes
    if not oc.by_platform:
        return None
    segments, labels = [], []
    for row, p in enumerate(oc.by_platform):
        labels.append({"row": row, "label": p.platform, "text": f"n = {number(p.total)}"})
        start = 0
        for st in oc.statuses:
            n = p.counts.get(st, 0)
            if not n:
                continue
            name = _status(st)[0]
            share = percent(n, p.total)
            segments.append(
                {
                    "row": row,
                    "status": name,
                    "start": start / p.total,
                    "end": (start + n) / p.total,
                    "mid": (start + n / 2) / p.total,
                    "text": number(n) if n / p.total > 0.07 else "",
                    "desc": f"{p.platform}, {name}: {number(n)} ({share})",
                }
            )
            start += n
    colors = {
        "domain": [_status(st)[0] for st in oc.statuses],
        "range": [_status(st)[1] for st in oc.statuses],
    }
    x = {"type": "quantitative", "axis": None, "scale": {"domain": [0, 1]}}
    return {
        "width": HALF - 110 - 70,
        "height": {"step": 34},
        "encoding": {"y": {"field": "row", "type": "ordinal", "axis": None}},
        "layer": [
            {
                "data": {"values": segments},
                "mark": {"type": "bar", "height": 22},
                "encoding": {
                    "x": {"field": "start", **x},
                    "x2": {"field": "end"},
                    "color": {
                        "field": "status",
                        "type": "nominal",
                        "scale": colors,
                        "sort": None,
                        "legend": {"columns": 2, "labelLimit": 200},
                    },
                    "description": {"field": "desc"},
                },
            },
            {
                "data": {"values": segments},
                "mark": {"type": "text", "color": "#fff", "fontWeight": 600, "aria": False},
                "encoding": {"x": {"field": "mid", "type": "quantitative"}, "text": {"field": "text"}},
            },
            {"data": {"values": labels}, **label_layer(100)},
            {
                "data": {"values": labels},
                "mark": {"type": "text", "align": "left", "dx": 8, "aria": False},
                "encoding": {"x": {"datum": 1}, "text": {"field": "text"}},
            },
        ],
    }


def removal_by_platform(f: Figures) -> Spec | None:
    rm = f.removal
    rows = []
    for p in rm.by_platform:
        value = p.median_hours or 0
        text = f"{hours(p.median_hours)}  n={number(p.n)}"
        rows.append(
            {
                "label": p.platform,
                "value": value,
                "end": value,
                "text": text,
                "desc": f"{p.platform}: median {text}",
            }
        )
    if not rows:
        return None
    day = {"type": "rule", "color": "#c9453c", "strokeDash": [4, 3], "aria": False}
    label = {"type": "text", "color": "#c9453c", "baseline": "bottom", "aria": False}
    marker = {
        "max": 24 * 1.1,
        "under": True,
        "spec": {
            "layer": [
                {"mark": day, "encoding": {"x": {"datum": 24}}},
                {
                    "data": {"values": [{"t": "24 h"}]},
                    "mark": {**label, "y": -2},
                    "encoding": {"x": {"datum": 24}, "text": {"field": "t"}},
                },
            ]
        },
    }
    return hbars(rows, color=REMOVED_GREEN, label_width=100, extra=(marker,))


def removal_distribution(f: Figures) -> Spec | None:
    rm = f.removal
    if not rm.n:
        return None
    cells = [
        {"x": b.label, "rank": 0, "count": b.count, "desc": f"{b.label}: {number(b.count)} removed posts"}
        for b in rm.distribution
        if b.count
    ]
    totals = [{"x": b.label, "total": b.count, "text": number(b.count)} for b in rm.distribution if b.count]
    return columns([b.label for b in rm.distribution], cells, totals, width=HALF, color=REMOVED_GREEN)


def price_trends(f: Figures) -> Spec | None:
    """Median price per route and month, a line per route."""
    if f.trends is None or not f.trends.prices:
        return None
    routes = list(dict.fromkeys(p.route for p in f.trends.prices))
    points = []
    for p in f.trends.prices:
        native = (
            f" ({number(round(p.median_in_currency))} {p.currency})"
            if p.currency and p.currency != "EUR" and p.median_in_currency is not None
            else ""
        )
        points.append(
            {
                "month": f"{p.month}-01",
                "route": p.route,
                "median": round(p.median_eur),
                "desc": f"{p.route}, {p.month}: median €{number(round(p.median_eur))}{native}, {number(p.posts)} adverts",
            }
        )
    colors = {"domain": routes, "range": [PALETTE[i % len(PALETTE)] for i in range(len(routes))]}
    x = {
        "field": "month",
        "type": "temporal",
        "timeUnit": "yearmonth",
        "axis": {"format": "%b %Y", "labelAngle": 0, "tickCount": {"interval": "month", "step": 1}},
    }
    y = {
        "field": "median",
        "type": "quantitative",
        "axis": {"format": ",d", "labelExpr": "'€' + datum.label"},
    }
    color = {
        "field": "route",
        "type": "nominal",
        "scale": colors,
        "sort": None,
        "legend": {"labelLimit": 320, "columns": 2},
    }
    return {
        "width": WIDE - 80,
        "height": 260,
        "data": {"values": points},
        "encoding": {"x": x, "y": y, "color": color},
        "layer": [
            {"mark": {"type": "line", "strokeWidth": 2, "aria": False}},
            {
                "mark": {"type": "point", "filled": True, "size": 50},
                "encoding": {"description": {"field": "desc"}},
            },
        ],
    }


def new_terms(f: Figures) -> Spec | None:
    if f.trends is None or not f.trends.new_terms:
        return None
    rows = [
        {
            "label": t.term,
            "value": t.posts,
            "end": t.posts,
            "text": f"{number(t.posts)} (before: {number(t.baseline_posts)})",
            "desc": f"{t.term}: {number(t.posts)} adverts, {number(t.baseline_posts)} in the baseline, "
            f"{number(t.sources)} sources",
        }
        for t in f.trends.new_terms[:12]
    ]
    return hbars(rows, color=PALETTE[3], label_width=200)


CHARTS = {
    "timeline": timeline,
    "languages": languages,
    "routes": routes,
    "prices": prices,
    "outcomes": outcomes,
    "outcomes_by_platform": outcomes_by_platform,
    "removal_by_platform": removal_by_platform,
    "removal_distribution": removal_distribution,
    "price_trends": price_trends,
    "new_terms": new_terms,
}


def draw(figures: Figures) -> dict[str, Markup | None]:
    """Every chart's SVG by name; None for a chart with nothing to show."""
    specs = {name: chart(figures) for name, chart in CHARTS.items()}
    return {name: to_svg(spec) if spec else None for name, spec in specs.items()}
