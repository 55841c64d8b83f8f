from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from vigie.cli.main import load
from vigie.cli.output import cell, echo, echo_json


@click.group("referrals")
def referrals_group() -> None:
    """Export notices for platforms, verify removals, publish statistics."""


@referrals_group.command("export")
@click.option("--platform", type=click.Choice(["telegram", "meta", "tiktok", "x", "youtube"]), required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "xlsx", "json", "dsa"]),
    default="dsa",
    show_default=True,
    help="csv or xlsx: a row per URL (cells a spreadsheet would run as formulas start with '); "
    "json: notices, values as found; dsa: an email-ready Article 16 notice per cluster (+ JSON).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Directory, made if its parent exists (default: referrals.out_dir).",
)
@click.option("--dry-run", is_flag=True, help="Show what would be exported; write and change nothing.")
@click.pass_context
def export_cmd(ctx: click.Context, platform: str, fmt: str, out: str | None, dry_run: bool) -> None:
    """Export confirmed items not yet referred: one notice per repost cluster listing every
    URL, with the DSA Article 16 elements and the evidence kept."""
    from pipeline.refer.notices import export
    from pipeline.stages import reindex_if_configured
    from vigie.store import Store

    if out and not Path(out).parent.is_dir():
        raise click.BadParameter(
            f"{out}: the directory {Path(out).parent} does not exist", param_hint="--out"
        )
    config = load(ctx)
    out_dir = Path(out) if out else config.data_path() / config.referrals.out_dir
    with Store(config.store_url()) as store:
        result = export(store, config.referrals, platform, fmt, out_dir, dry_run=dry_run)
    verb = "would export" if dry_run else "exported"
    echo(
        f"{verb} {len(result.notices)} notice(s), {result.items} URL(s) for {platform} (batch {result.batch_id})"
    )
    for notice in result.notices:
        echo(
            f"  {notice['notice_id']}: {len(notice['urls'])} URL(s), {notice['content_type']}; "
            f"{notice['explanation'][:140]}…"
        )
    for path in result.files:
        echo(f"  wrote {path}")
    if not dry_run and result.notices:
        reindex_if_configured(config)


@referrals_group.command("check")
@click.option("--base-url", help="Telegram preview host (mirrors, tests).")
@click.option("--force", is_flag=True, help="Check every referred item now, however recently checked.")
@click.pass_context
def check(ctx: click.Context, base_url: str | None, force: bool) -> None:
    """Re-crawl referred posts and record whether each was removed or is still online."""
    from pipeline.refer.removals import check_removals
    from pipeline.stages import reindex_if_configured
    from vigie.store import Store

    config = load(ctx)
    with Store(config.store_url()) as store:
        report = check_removals(store, config, base_url=base_url, force=force)
    echo(
        f"checked {report.checked}: {report.removed} removed, {report.online} still online, "
        f"{len(report.errors)} errors"
    )
    for error in report.errors[:20]:
        echo(f"  error: {error}", err=True)
    if report.checked:
        reindex_if_configured(config)


@referrals_group.command("stats")
@click.option("--period", help="YYYY or YYYY-MM of the referral date (default: all).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def stats_cmd(ctx: click.Context, period: str | None, as_json: bool) -> None:
    """Notices by platform, content type and outcome, and median time to removal."""
    from pipeline.refer.stats import stats
    from pipeline.report import check_period
    from vigie.store import Store

    try:
        checked = check_period(period)
    except ValueError:
        checked = None
    if period and (checked is None or len(checked) not in (4, 7)):
        raise click.BadParameter(f"{period!r}: expected YYYY or YYYY-MM", param_hint="--period")
    period = checked
    with Store(load(ctx).store_url(), read_only=True) as store:
        figures = stats(store, period)
    if as_json:
        echo_json(figures, indent=1)
        return
    table = Table(
        title=f"Referrals {figures['period']}: {figures['notices']} notices, {figures['items']} URLs; "
        f"median time to removal {figures['median_hours_to_removal']} h"
    )
    for col in (
        "platform",
        "notices",
        "URLs",
        "content types",
        "removed",
        "online",
        "pending",
        "removal rate",
        "median hours",
    ):
        table.add_column(col)
    for platform, p in sorted(figures["by_platform"].items()):
        types = ", ".join(f"{k} {v}" for k, v in sorted(p["by_content_type"].items()))
        rate = f"{p['removal_rate']:.0%}" if p["removal_rate"] is not None else "-"
        table.add_row(
            cell(platform),
            str(p["notices"]),
            str(p["items"]),
            cell(types),
            str(p["outcomes"]["removed"]),
            str(p["outcomes"]["online"]),
            str(p["outcomes"]["pending"]),
            rate,
            "-" if p["median_hours_to_removal"] is None else str(p["median_hours_to_removal"]),
        )
    Console(width=160).print(table)
