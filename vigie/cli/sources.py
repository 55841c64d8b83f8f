"""`vigie sources`: the sources flagged posts point to, and the analyst's decisions on them."""

from __future__ import annotations

import getpass
import os
from typing import Any

import click

from vigie.cli.main import load
from vigie.cli.output import cell, echo, echo_json

SOURCE_HELP = "PLATFORM:HANDLE (telegram:name, tiktok:name, x:name, ...), @name (Telegram) or an account link"


def _analyst(option: str | None) -> str:
    return option or os.environ.get("VIGIE_REVIEWER") or getpass.getuser()


def _source(value: str) -> tuple[str, str]:
    from pipeline.discovery import parse_source

    try:
        return parse_source(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="SOURCE") from None


@click.group("sources")
def sources_group() -> None:
    """Sources found from the watched ones: the Telegram channels and other platforms'
    accounts that flagged posts forward from, link to or @mention. Approved Telegram
    channels are crawled beside the configured ones; `discovery.follow` approves the best
    candidates automatically after each classification."""


@sources_group.command("candidates")
@click.option(
    "--min-score",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Leave out lower scores.",
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Candidates shown.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, with every pointing post.")
@click.pass_context
def candidates(ctx: click.Context, min_score: float, limit: int, as_json: bool) -> None:
    """Candidates, best first. Score = flagged posts pointing to it + 2 x distinct watched
    sources they come from (posts not flagged do not count); hops: 1 from a configured
    source, n + 1 from a source approved at hop n. Watched and dismissed sources are left out."""
    from pipeline.discovery import find_candidates
    from vigie.store import Store

    config = load(ctx)
    with Store(config.store_url(), read_only=True) as store:
        found = find_candidates(config, store, min_score)
    shown = found[:limit]
    if as_json:
        echo_json({"candidates": [c.to_json() for c in shown], "total": len(found)}, indent=1)
        return
    if not found:
        echo("no candidates: no flagged post of a watched source points to a source not yet decided on")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Candidate sources")
    for column in ("platform", "handle", "score", "flagged posts", "sources", "hops", "evidence"):
        table.add_column(column, justify="right" if column in ("score", "flagged posts", "hops") else "left")
    for c in shown:
        evidence = c.evidence()
        lines = [f"{e['post']} ({', '.join(e['how'])})" for e in evidence[:3]]
        if len(evidence) > 3:
            lines.append(f"... {len(evidence) - 3} more (--json)")
        table.add_row(
            cell(c.platform),
            cell(c.handle),
            f"{c.score:g}",
            str(c.flagged_posts),
            cell("\n".join(c.sources)),
            str(c.hops),
            cell("\n".join(lines)),
        )
    console = Console(width=180)
    console.print(table)
    if len(found) > len(shown):
        echo(f"{len(found) - len(shown)} more candidates (--limit)")
    echo("approve with `vigie sources add SOURCE`, or dismiss with `vigie sources dismiss SOURCE`")


def _decide(ctx: click.Context, value: str, status: str, by: str | None) -> None:
    from pipeline.discovery import decide
    from vigie.store import Store

    platform, handle = _source(value)
    config = load(ctx)
    analyst = _analyst(by)
    with Store(config.store_url()) as store:
        try:
            done = decide(config, store, platform, handle, status, analyst)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    key = f"{platform}:{handle}"
    if not done.changed:
        echo(f"{key} was already {status} (by {done.decided_by}, {done.decided_at}); nothing changed")
        return
    found, previous = done.candidate, done.previous
    if found is not None:
        posts = f"{found.flagged_posts} flagged post{'' if found.flagged_posts == 1 else 's'}"
        basis = f"score {found.score:g}: {posts} from {', '.join(found.sources)}, hop {found.hops}"
    elif previous is not None:
        basis = f"{previous['status']} by {previous['decided_by']}, {previous['decided_at']}, until now"
    else:
        basis = "no flagged post of a watched source points to it yet"
    echo(f"{key} {status} by {analyst} ({basis})")
    if status != "approved":
        if done.previous is not None and done.previous["status"] == "approved" and done.crawled:
            echo("it is no longer crawled (a running daemon drops its crawl job within a minute)")
        return
    if done.crawled:
        echo("it is crawled from now on with the configured sources (`vigie crawl`, `vigie run`, the daemon)")
    else:
        echo(
            f"Vigie does not crawl {platform}: it is recorded as watched; import its posts with "
            f"`vigie import ...` (see `vigie import --help`) to find the sources it points to"
        )


@sources_group.command("add")
@click.argument("source", metavar="SOURCE")
@click.option("--by", "by", help="Your name (default: $VIGIE_REVIEWER or the login name).")
@click.pass_context
def add(ctx: click.Context, source: str, by: str | None) -> None:
    """Approve SOURCE: PLATFORM:HANDLE, @name (Telegram) or an account link (t.me/name,
    tiktok.com/@name, ...). The evidence it had is recorded with the decision."""
    _decide(ctx, source, "approved", by)


@sources_group.command("dismiss")
@click.argument("source", metavar="SOURCE")
@click.option("--by", "by", help="Your name (default: $VIGIE_REVIEWER or the login name).")
@click.pass_context
def dismiss(ctx: click.Context, source: str, by: str | None) -> None:
    """Dismiss SOURCE (as for `add`): it is no longer offered, nor crawled if it was approved."""
    _decide(ctx, source, "dismissed", by)


@sources_group.command("list")
@click.option("--all", "everything", is_flag=True, help="Also the dismissed sources.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_sources(ctx: click.Context, everything: bool, as_json: bool) -> None:
    """The watched sources: configured ones and approved ones, with who approved each and when."""
    from pipeline.discovery import CRAWLED
    from vigie.store import Store
    from vigie.store.discovery import decisions

    config = load(ctx)
    with Store(config.store_url(), read_only=True) as store:
        decided = decisions(store)
    configured = {(s.platform, s.channel) for s in config.sources}
    rows: list[dict[str, Any]] = [
        {
            "platform": s.platform,
            "handle": s.channel,
            "status": "configured",
            "decided_by": None,
            "decided_at": None,
            "hops": 0,
            "score": None,
            "crawled": True,
        }
        for s in config.sources
    ]
    for d in decided:
        if (d["platform"], d["channel"]) in configured or (d["status"] != "approved" and not everything):
            continue
        rows.append(
            {
                "platform": d["platform"],
                "handle": d["channel"],
                "status": d["status"],
                "decided_by": d["decided_by"],
                "decided_at": d["decided_at"],
                "hops": d["hops"],
                "score": d["score"],
                "crawled": d["status"] == "approved" and d["platform"] in CRAWLED,
                "evidence": d["evidence"],
            }
        )
    if as_json:
        echo_json({"sources": rows}, indent=1)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Watched sources" + (" and dismissed ones" if everything else ""))
    for column in ("platform", "handle", "status", "by", "when", "hops", "score", "crawled"):
        table.add_column(column, justify="right" if column in ("hops", "score") else "left")
    for r in rows:
        table.add_row(
            cell(r["platform"]),
            cell(r["handle"]),
            cell(r["status"]),
            cell(r["decided_by"] or "configuration"),
            cell(r["decided_at"] or "-"),
            str(r["hops"]),
            f"{r['score']:g}" if r["score"] is not None else "-",
            "yes"
            if r["crawled"]
            else "no"
            if r["status"] != "approved"
            else "no: import its posts (`vigie import`)",
        )
    Console(width=160).print(table)
