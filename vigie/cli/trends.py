from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from vigie.cli.main import load
from vigie.cli.output import cell, echo, echo_json

if TYPE_CHECKING:
    from pipeline.intel.trends import Trends


def _money(value: float | None, currency: str = "EUR") -> str:
    return "–" if value is None else f"{value:,.0f} {currency}"


def _change(value: float | None) -> str:
    return "–" if value is None else f"{value:+.0%}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "–"


def _print(result: Trends) -> None:
    console = Console(highlight=False, soft_wrap=False, width=max(Console().width, 140))
    echo(
        f"Trends {result.period} (from {result.start} up to {result.end}): {result.flagged_posts} flagged "
        f"posts; baseline from {result.baseline_start}: {result.baseline_posts}"
    )
    table = Table(title="Prices by route and month (median, EUR at the configured rates)")
    for name in (
        "route",
        "month",
        "posts",
        "median",
        "in currency",
        "min–max",
        "vs prev.",
        "vs first",
        "transport",
        "guar.",
        "terms",
    ):
        table.add_column(
            name, justify="left" if name in ("route", "month", "transport", "in currency") else "right"
        )
    for row in result.routes:
        table.add_row(
            cell(row.route),
            row.month,
            str(row.posts),
            _money(row.median_eur),
            _money(row.median_in_currency, row.currency or "") if row.currency else "–",
            f"{_money(row.min_eur)}–{_money(row.max_eur)}" if row.min_eur is not None else "–",
            _change(row.change_vs_previous),
            _change(row.change_vs_first),
            cell(_counts(row.transport)),
            str(row.guarantees),
            str(row.payment_terms),
        )
    console.print(table if result.routes else "no routes with both ends named in flagged posts")
    if not result.baseline_posts:
        echo(
            f"no flagged posts from {result.baseline_start} to {result.start}: no baseline for new terms and routes"
        )
        return
    terms = Table(title="New terms (rising against the baseline)")
    for name in ("term", "posts", "baseline", "sources", "score", "example"):
        terms.add_column(name, justify="left" if name in ("term", "example") else "right")
    for term in result.new_terms:
        terms.add_row(
            cell(term["term"]),
            str(term["posts"]),
            str(term["baseline_posts"]),
            str(term["sources"]),
            f"{term['score']:.2f}",
            cell(term["example_key"]),
        )
    console.print(terms if result.new_terms else "no new terms")
    routes = Table(title="New routes (none in the baseline)")
    for name in ("route", "posts", "sources", "first seen", "median", "example"):
        routes.add_column(name, justify="left" if name in ("route", "first seen", "example") else "right")
    for new in result.new_routes:
        routes.add_row(
            cell(new.route),
            str(new.posts),
            str(new.sources),
            new.first_seen,
            _money(new.median_eur),
            cell(new.example_key),
        )
    console.print(routes if result.new_routes else "no new routes")


@click.command("trends")
@click.option(
    "--period",
    required=True,
    help="A year, quarter, month or day: 2026, 2026-Q3, 2026-09, 2026-09-05.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of tables.")
@click.pass_context
def trends(ctx: click.Context, period: str, as_json: bool) -> None:
    """Prices per route and month (median in EUR, transport, guarantees and payment terms),
    new terms rising against the months before, and new routes."""
    from pipeline.intel.trends import compute
    from pipeline.report.period import check_span
    from vigie.store import Store

    try:
        period = check_span(period)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None
    config = load(ctx)
    with Store(config.store_url(), read_only=True) as store:
        result = compute(store, config, period)
    if as_json:
        echo_json(result.to_json(), indent=1)
        return
    _print(result)
