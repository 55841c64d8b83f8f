from __future__ import annotations

from pathlib import Path

import click

from vigie.cli import load


@click.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="HTML file to write (self-contained: opens from disk, fetches nothing).",
)
@click.option("--period", help="Only posts published in this year, month or day: 2026, 2026-11, 2026-11-05.")
@click.option("--title", help="Page title (default: 'Vigie report' plus the period).")
@click.pass_context
def report(ctx: click.Context, out: Path, period: str | None, title: str | None) -> None:
    """Write an HTML report: adverts over time, languages, routes, prices, contacts,
    repost clusters, referral outcomes and time to removal."""
    from pipeline.report import check_period, collect, render
    from vigie.store import Store

    try:
        period = check_period(period)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None
    config = load(ctx)
    with Store(config.store_path()) as store:
        figures = collect(store, period)
    page = render(figures, title or (f"Vigie report — {period}" if period else "Vigie report"))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    t = figures["totals"]
    click.echo(
        f"Wrote {out.resolve()}: {t['flagged']} flagged adverts, {t['referrals']} referrals"
        + (f" (published in {period})" if period else "")
    )
