from __future__ import annotations

from pathlib import Path

import click

from vigie.cli.main import load
from vigie.cli.output import echo
from vigie.errors import VigieError


@click.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="HTML file to write (self-contained: opens from disk, fetches nothing). Its directory must exist.",
)
@click.option("--period", help="Only posts published in this year, month or day: 2026, 2026-11, 2026-11-05.")
@click.option("--title", help="Page title (default: 'Vigie report' plus the period).")
@click.pass_context
def report(ctx: click.Context, out: Path, period: str | None, title: str | None) -> None:
    """Write an HTML report: adverts over time, languages, routes, prices, contacts,
    repost clusters, referral outcomes and time to removal; prices by route and month, new
    terms and routes, and the smuggling networks."""
    from pipeline.report import check_period, collect, render
    from vigie.store import Store

    try:
        period = check_period(period)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None
    if not out.parent.is_dir():
        raise click.BadParameter(f"{out}: the directory {out.parent} does not exist", param_hint="--out")
    config = load(ctx)
    with Store(config.store_url(), read_only=True) as store:
        figures = collect(store, period, config)
    page = render(figures, title or (f"Vigie report — {period}" if period else "Vigie report"))
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise VigieError(f"cannot write {out}: {exc.strerror or exc}") from None
    t = figures.totals
    echo(
        f"Wrote {out.resolve()}: {t.flagged} flagged adverts, {t.referrals} referrals"
        + (f" (published in {period})" if period else "")
    )
