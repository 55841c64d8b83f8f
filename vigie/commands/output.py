"""Tables and JSON for command results."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from crawlers.report import CrawlReport


def print_crawl_report(report: CrawlReport, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        return
    table = Table(title="Crawl summary")
    for column in ("source", "pages", "seen", "new", "updated", "unchanged", "status"):
        table.add_column(column, justify="left" if column in ("source", "status") else "right")
    for s in report.sources.values():
        status = (
            f"[red]error: {s.error}[/red]"
            if s.error
            else ("complete" if s.complete else "partial (resumes next run)")
        )
        table.add_row(
            f"{s.platform}:{s.channel}",
            str(s.pages),
            str(s.seen),
            str(s.new),
            str(s.updated),
            str(s.unchanged),
            status,
        )
    t = report.totals()
    table.add_row(
        "[b]total[/b]",
        str(t["pages"]),
        str(t["seen"]),
        str(t["new"]),
        str(t["updated"]),
        str(t["unchanged"]),
        f"{len(report.failed)} failed",
    )
    Console(width=140).print(table)
