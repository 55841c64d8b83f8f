"""Vega-Lite specs to SVG, on the server, through vl-convert.

vl-convert, not matplotlib or pygal: same data, same SVG bytes; ARIA labels on marks; one wheel.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from markupsafe import Markup

from pipeline.report.formats import shown

VEGA_LITE = "5.21"  # pinned with vl-convert-python in constraints.txt: the same data draws the same SVG
INK, MUTED, LINE = "#1d2330", "#5b6474", "#9aa3b2"
# Text is measured on the server: Liberation Sans has the metrics of Arial and Helvetica, the fonts readers have.
FONT = "Liberation Sans, Arial, Helvetica, sans-serif"
CONFIG: dict[str, Any] = {
    "background": None,
    "padding": 4,
    "font": FONT,
    "view": {"stroke": None},
    "axis": {
        "labelColor": INK,
        "labelFontSize": 12,
        "domainColor": LINE,
        "tickColor": LINE,
        "gridColor": "#e6e9ee",
        "title": None,
    },
    "axisY": {"labelPadding": 6},
    "legend": {
        "orient": "bottom",
        "title": None,
        "labelColor": MUTED,
        "labelFontSize": 12,
        "symbolType": "square",
    },
    "text": {"fontSize": 11, "color": MUTED},
}
SVG_NS = "{http://www.w3.org/2000/svg}"
UNSAFE_TAGS = frozenset(("script", "foreignObject", "iframe", "image", "use", "a"))


class UnsafeChartError(RuntimeError):
    """An SVG from vl-convert carries an element or attribute that could run or fetch
    something. It would be a bug in the chart specs; nothing is written."""


def check_svg(svg: str) -> None:
    """Raises UnsafeChartError for an element or attribute that could run a script or fetch."""
    for element in ET.fromstring(svg).iter():
        tag = element.tag.removeprefix(SVG_NS)
        if tag in UNSAFE_TAGS:
            raise UnsafeChartError(f"chart SVG has a <{tag}> element")
        for attribute in element.attrib:
            name = attribute.rsplit("}", 1)[-1].lower()
            if name.startswith("on") or name == "href":
                raise UnsafeChartError(f"chart SVG has a {name} attribute on <{tag}>")


def _shown(value: Any) -> Any:
    """Every string of a spec as the page shows text from posts. The spec's own strings (fields,
    colours, expressions) hold no controls, so data values and the domains naming them stay equal."""
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, dict):
        return {key: _shown(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shown(item) for item in value]
    return value


def to_svg(spec: dict[str, Any]) -> Markup:
    """One chart as an inline <svg> element, safe to place in the page as it is."""
    import vl_convert

    svg = vl_convert.vegalite_to_svg(
        {"$schema": f"https://vega.github.io/schema/vega-lite/v{VEGA_LITE}.json", **_shown(spec)},
        vl_version=VEGA_LITE,
        config=CONFIG,
        allowed_base_urls=[],  # the data is inline; nothing may be fetched
    )
    check_svg(svg)
    return Markup(svg)  # checked above; vl-convert escapes every string it draws
