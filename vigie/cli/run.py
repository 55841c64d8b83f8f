from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vigie.cli.main import load
from vigie.cli.output import cell, echo_json, markup, print_crawl_report
from vigie.errors import VigieError


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def print_run_summary(report: Any, console: Console) -> None:
    p, m = report.process, report.media
    if m.posts or m.waiting or m.deleted:
        console.print(
            f"Media: {m.posts} posts read ({m.fetched} files fetched, {m.reused} already held, {m.read} with text "
            f"in them; {m.too_big} too big, {m.failed} failed, {m.unavailable} not given by the platform); "
            f"{m.waiting} posts wait for their media; {m.deleted} files released"
        )
    table = Table(title="Classified")
    for col in ("source", "processed", "flagged"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for source, n in sorted(p.by_source.items()):
        table.add_row(cell(source), str(n), str(p.flagged_by_source.get(source, 0)))
    table.add_row("[b]total[/b]", str(p.processed), str(p.flagged))
    console.print(table)
    if p.for_review:
        console.print(
            f"{p.for_review} more posts wait for an analyst's decision (`vigie review`, after the adverts)"
        )
    langs = Table(title="By language")
    for col in ("lang", "processed", "flagged"):
        langs.add_column(col, justify="left" if col == "lang" else "right")
    for lang, n in sorted(p.by_lang.items(), key=lambda kv: -kv[1]):
        langs.add_row(cell(lang), str(n), str(p.flagged_by_lang.get(lang, 0)))
    console.print(langs)
    if report.es_count is not None:
        same = "equal" if report.es_count == report.store_flagged else "[red]differ[/red]"
        console.print(
            f"Elasticsearch: {report.indexed} indexed, {report.deleted} removed, {report.spooled} spooled; "
            f"{report.es_count} documents vs {report.store_flagged} flagged in the store ({same})"
        )
    for c in report.followed:
        console.print(
            f"following {markup(c.key)} automatically: score {c.score:g} ({c.flagged_posts} flagged posts "
            f"from {markup(', '.join(c.sources))}), hop {c.hops}"
        )
    print_after_run(report, console)
    for error in report.errors:
        console.print(f"[yellow]warning:[/yellow] {markup(error)}")


def print_after_run(report: Any, console: Console) -> None:
    """The networks and alerts lines of a run's summary."""
    if report.networks is not None:
        indexed = f"; {report.networks_indexed} indexed" if report.networks_indexed is not None else ""
        console.print(f"Networks: {report.networks} ({report.new_networks} new){indexed} (`vigie networks`)")
    if report.alerts_baseline:
        console.print(
            f"Alerts: first evaluation on this store: {report.alerts_baseline} matching alerts recorded as "
            "known, not sent; only what is new from now on is sent"
        )
    if report.alerts_raised or report.alerts_sent or report.alerts_dead or report.alerts_waiting:
        console.print(
            f"Alerts: {report.alerts_raised} raised, {report.alerts_sent} sent, {report.alerts_waiting} waiting, "
            f"{report.alerts_dead} dead letters (`vigie alerts list`)"
        )
    elif report.networks is None and not report.alerts_baseline:
        console.print("Networks and alerts: nothing new classified, nothing new to raise")


# A run waits this long for an alert's retries; later ones go to the next run or the daemon.
AFTER_RUN_WAIT_SECONDS = 10.0


@click.command()
@click.option("--no-crawl", is_flag=True, help="Only classify and index what is already stored.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def run(ctx: click.Context, no_crawl: bool, as_json: bool) -> None:
    """Crawl the configured sources, classify new posts, extract entities, group reposts,
    store, and index flagged posts into Elasticsearch when one is configured; then refresh
    the networks, raise the alerts their rules find and deliver them."""
    from pipeline.stages import RunReport, after_run, classify_and_index, crawl
    from vigie.store import Store

    config = load(ctx)
    console = Console(width=140, stderr=as_json)
    report = RunReport()
    if not no_crawl:
        crawl(config, report)
        if report.crawl is not None and not as_json:
            print_crawl_report(report.crawl)
    with Store(config.store_url()) as store:
        with progress_bar(console) as progress:
            classify_and_index(config, report, progress, store=store)
        after_run(config, store, report, wait=AFTER_RUN_WAIT_SECONDS)
    if as_json:
        echo_json(report.to_json(), indent=1)
    else:
        print_run_summary(report, console)
    if report.crawl is not None and report.crawl.unexpected:
        # What was stored is classified above; the crawl itself failed, and says so.
        raise VigieError(f"the crawl failed, recorded as a failed run: {report.crawl.unexpected[0]}")
