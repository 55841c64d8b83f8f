"""The page: figures and their charts through Jinja2 templates, with autoescape on."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from pipeline.report.charts import draw
from pipeline.report.formats import hours, number, rate, shown
from pipeline.report.model import Figures
from vigie.sanitize import web_url

# Nothing is fetched and no script runs, whatever a post managed to put in the page.
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("pipeline.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(number=number, hours=hours, rate=rate, shown=shown)
    env.tests["web_url"] = lambda value: web_url(value) is not None  # never a javascript: or data: link
    return env


def _scope(figures: Figures) -> str:
    t = figures.totals
    if figures.period:
        return f"Posts published in {figures.period}"
    if t.first_published:
        return f"All posts, adverts published {t.first_published} to {t.last_published}"
    return "All posts in the store"


def render(figures: Figures, title: str) -> str:
    """The whole page, one self-contained HTML file."""
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            f=figures,
            t=figures.totals,
            title=title,
            scope=_scope(figures),
            generated=figures.generated_at[:16].replace("T", " "),
            charts=draw(figures),
            csp=CSP,
        )
    )
