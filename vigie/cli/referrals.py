from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from vigie.cli.main import load
from vigie.cli.output import cell, echo, echo_json, markup
from vigie.paths import write_atomically


@click.group("referrals")
def referrals_group() -> None:
    """Export notices for platforms, record their answers, verify removals, publish statistics."""


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


KIND_FLAGS = {
    "removed": "--removed",
    "rejected": "--rejected",
    "restricted": "--restricted",
    "account_suspended": "--account-suspended",
}


def _recorder(option: str | None) -> str:
    return option or os.environ.get("USER") or getpass.getuser()


@referrals_group.command("outcome")
@click.argument("notice_id")
@click.option("--removed", is_flag=True, help="The platform removed (or disabled) the content.")
@click.option("--rejected", metavar="REASON", help="The platform declined to act, for this reason.")
@click.option("--restricted", is_flag=True, help="Demoted, labelled, age- or interaction-restricted.")
@click.option("--account-suspended", is_flag=True, help="The account was suspended or terminated.")
@click.option(
    "--at",
    "at",
    metavar="TIME",
    help="When the platform decided: ISO 8601, with an offset or in UTC (default: now).",
)
@click.option("--note", help="Kept with the answer (the platform's reference, a ticket number).")
@click.option("--url", help="Only this item of the notice (default: every item).")
@click.option("--by", help="Who records the answer (default: $USER).")
@click.pass_context
def outcome_cmd(
    ctx: click.Context,
    notice_id: str,
    removed: bool,
    rejected: str | None,
    restricted: bool,
    account_suspended: bool,
    at: str | None,
    note: str | None,
    url: str | None,
    by: str | None,
) -> None:
    """Record what a platform answered to notice NOTICE_ID (every answer is kept)."""
    from pipeline.refer.outcomes import parse_time, record_answer
    from vigie.store import Store

    given = {
        "removed": removed,
        "rejected": rejected is not None,
        "restricted": restricted,
        "account_suspended": account_suspended,
    }
    kinds = [kind for kind, on in given.items() if on]
    if len(kinds) != 1:
        raise click.UsageError(
            f"give one outcome: {', '.join(KIND_FLAGS.values())}"
            + (f" (got {', '.join(KIND_FLAGS[k] for k in kinds)})" if kinds else "")
        )
    if at is not None:
        try:
            at = parse_time(at)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--at") from None
    with Store(load(ctx).store_url()) as store:
        result = record_answer(
            store, notice_id, kinds[0], _recorder(by), at=at, reason=rejected, note=note, url=url
        )
    echo(f"{notice_id}: {kinds[0]} recorded for {len(result.recorded)} item(s)")
    for key in result.already:
        echo(f"  {key}: this answer was already recorded")


@referrals_group.command("outcomes-import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def outcomes_import(ctx: click.Context, file: Path) -> None:
    """Record platforms' answers from a CSV with a header: notice_id, url (or post_key),
    outcome (removed, rejected, restricted, account_suspended), at, reason, note. Bad rows
    are named and skipped; an answer already recorded is not recorded twice."""
    from pipeline.refer.outcomes import import_csv
    from vigie.store import Store

    with Store(load(ctx).store_url()) as store:
        report = import_csv(store, file)
    echo(
        f"{file}: {report.rows} row(s), {report.recorded} answer(s) recorded, "
        f"{report.already} already recorded, {len(report.errors)} bad row(s)"
    )
    for error in report.errors[:50]:
        echo(f"  {error}", err=True)
    if report.errors:
        raise SystemExit(1)  # the good rows are recorded; the bad ones are to fix


@referrals_group.command("match-dsa")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.pass_context
def match_dsa_cmd(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Find referred posts in DSA Transparency Database statements of reasons (the
    database's CSV dumps, .csv or .zip, read as a stream) and record the platforms' decisions."""
    from pipeline.refer.dsa_tdb import match_dsa
    from vigie.store import Store

    console = Console(stderr=True)
    with (
        Store(load(ctx).store_url()) as store,
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("reading statements")
        report = match_dsa(
            store,
            list(files),
            lambda path, read: bar.update(task, description=f"{markup(path.name)}: {read:,} statements read"),
        )
    echo(
        f"read {report.read} statement(s), matched {report.matched}, recorded {report.recorded} "
        f"({report.already} already recorded, {report.before_referral} applied before the referral, "
        f"{len(report.errors)} unusable)"
    )
    for error in report.errors[:50]:
        echo(f"  {error}", err=True)


@referrals_group.command("stats")
@click.option("--period", help="YYYY or YYYY-MM of the referral date (default: all).")
@click.option(
    "--json", "as_json", is_flag=True, help="The figures as JSON (with --format art22: its figures)."
)
@click.option(
    "--format",
    "form",
    type=click.Choice(["table", "art22"]),
    default="table",
    show_default=True,
    help="art22: the trusted flagger's report under DSA Art. 22(3), in Markdown (counts only, no personal data).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to this file.")
@click.pass_context
def stats_cmd(ctx: click.Context, period: str | None, as_json: bool, form: str, out: Path | None) -> None:
    """Notices by platform, content type and outcome, and the median time to each outcome;
    or, with --format art22, the yearly report a trusted flagger publishes."""
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
    config = load(ctx)
    if form == "art22":
        from pipeline.refer.art22 import art22_report, render_markdown

        with Store(config.store_url(), read_only=True) as store:
            report = art22_report(store, config.referrals, period)
        text = json.dumps(report, indent=1, ensure_ascii=False) + "\n" if as_json else render_markdown(report)
        if out is None:
            click.echo(text, nl=False)
            return
        write_atomically(out, text)
        echo(f"wrote the Art. 22 report ({report['notices']} notices, {report['items']} items) to {out}")
        return
    with Store(config.store_url(), read_only=True) as store:
        figures = stats(store, period)
    if as_json:
        echo_json(figures, indent=1)
        return
    table = Table(
        title=f"Referrals {figures['period']}: {figures['notices']} notices, {figures['items']} URLs; "
        f"median time to removal {_hours(figures['median_hours_to_removal'])} h"
    )
    columns = (
        "platform",
        "notices",
        "URLs",
        "content types",
        *OUTCOME_COLUMNS.values(),
        "removal rate",
        "median hours",
    )
    for col in columns:
        table.add_column(col)
    for platform, p in sorted(figures["by_platform"].items()):
        types = ", ".join(f"{k} {v}" for k, v in sorted(p["by_content_type"].items()))
        rate = f"{p['removal_rate']:.0%}" if p["removal_rate"] is not None else "-"
        table.add_row(
            cell(platform),
            str(p["notices"]),
            str(p["items"]),
            cell(types),
            *(_outcome_cell(p, kind) for kind in OUTCOME_COLUMNS),
            rate,
            "-" if p["median_hours_to_removal"] is None else str(p["median_hours_to_removal"]),
        )
    Console(width=180).print(table)
    echo("Outcome cells: items (median hours from referral to the answer); median hours: to removal.")


OUTCOME_COLUMNS = {
    "removed": "removed",
    "account_suspended": "account suspended",
    "restricted": "restricted",
    "rejected": "rejected",
    "online": "online",
    "pending": "pending",
}


def _hours(value: float | None) -> str:
    return "-" if value is None else str(value)


def _outcome_cell(p: dict[str, Any], kind: str) -> str:
    n = p["outcomes"].get(kind, 0)
    median = p["median_hours"].get(kind)
    return f"{n} ({median} h)" if n and median is not None else str(n)
