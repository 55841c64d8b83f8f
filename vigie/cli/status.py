from __future__ import annotations

from dataclasses import asdict

import click
from rich.console import Console
from rich.table import Table

from vigie.cli.main import load
from vigie.cli.output import cell, echo, echo_json, note_absent_store


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show each source's cursor, last success and last error, recent runs, and the alert
    deliveries waiting and dead."""
    from vigie.store import Store
    from vigie.store.alerts import counts as alert_counts

    config = load(ctx)
    with Store(config.store_url(), read_only=True) as store:
        sources = store.sources()
        counts = {(s.platform, s.channel): store.count_posts(s.platform, s.channel) for s in sources}
        runs = store.runs(10)
        where = store.where.shown  # the SQLite file, or the server's URL without its password
        backlog = alert_counts(store)
        absent = store.absent
    if absent:
        note_absent_store(where)
    if as_json:
        echo_json(
            {
                "store": where,
                "sources": [{**asdict(s), "posts": counts[(s.platform, s.channel)]} for s in sources],
                "runs": [dict(r) for r in runs],
                "alerts": backlog,
            },
            indent=2,
            default=str,
        )
        return
    table = Table(title=cell(f"Sources in {where}"))
    for column in ("source", "posts", "cursor", "resume below", "last success", "last error"):
        table.add_column(column)
    for s in sources:
        table.add_row(
            cell(f"{s.platform}:{s.channel}"),
            str(counts[(s.platform, s.channel)]),
            str(s.cursor or "-"),
            str(s.pending_before or "-"),
            cell(s.last_success_at or "-"),
            cell(s.last_error or ""),
        )
    Console(width=160).print(table)
    for r in runs:
        echo(f"run {r['id']}: {r['command']} — {r['status']} ({r['started_at']} → {r['finished_at'] or '…'})")
    if any(backlog.values()):
        from vigie.cli.daemon import alert_backlog_line

        echo(alert_backlog_line(backlog))
