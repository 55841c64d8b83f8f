"""Everything a command prints goes through here: text from posts and from the outside
world (errors, channel names, contacts) is made safe for the terminal first, and never
read as rich markup."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from crawlers.report import CrawlReport
from vigie.sanitize import for_terminal, terminal_json


def cell(value: Any) -> Text:
    """A table cell or printed value: terminal-safe, and taken literally (a post saying
    `[link=...]` stays text)."""
    return Text(for_terminal(value))


def markup(value: Any) -> str:
    """`value` made terminal-safe and escaped, to sit inside a rich markup string."""
    return escape(for_terminal(value))


def echo(message: Any, err: bool = False) -> None:
    click.echo(for_terminal(message), err=err)


def echo_json(data: Any, **kwargs: Any) -> None:
    click.echo(terminal_json(data, **kwargs))


def note_absent_store(shown: str) -> None:
    """On standard error, so that --json output stays one document."""
    echo(
        f"no store at {shown}: nothing has been collected there yet; run `vigie run` "
        "(or `make demo`), or point --config at the store you meant",
        err=True,
    )


def print_crawl_report(report: CrawlReport, as_json: bool = False) -> None:
    if as_json:
        echo_json(report.to_json(), indent=2)
        return
    table = Table(title="Crawl summary")
    for column in ("source", "pages", "seen", "new", "updated", "unchanged", "status"):
        table.add_column(column, justify="left" if column in ("source", "status") else "right")
    for s in report.sources.values():
        status = (
            Text(f"error: {for_terminal(s.error)}", style="red")
            if s.error
            else Text("complete" if s.complete else "partial (resumes next run)")
        )
        table.add_row(
            cell(f"{s.platform}:{s.channel}"),
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
