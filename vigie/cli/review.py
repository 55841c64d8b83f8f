from __future__ import annotations

import getpass
import os

import click
from rich.console import Console
from rich.table import Table

from vigie.cli.main import load
from vigie.cli.output import cell, echo, echo_json, note_absent_store


def _reviewer(option: str | None) -> str:
    return option or os.environ.get("VIGIE_REVIEWER") or getpass.getuser()


@click.group("review", invoke_without_command=True)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def review_group(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Flagged posts and repost clusters awaiting a decision: sure adverts first, then the
    review band (posts the classifier is unsure of), each highest score first.
    Decide with `vigie review confirm|reject TARGET --reason ...` (TARGET: a cluster id or a post key)."""
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.refer.review import review_queue
    from vigie.store import Store

    with Store(load(ctx).store_url(), read_only=True) as store:
        queue = review_queue(store, limit)
        if store.absent:
            note_absent_store(store.where.shown)
    if as_json:
        echo_json(queue, indent=1)
        return
    table = Table(title=f"Awaiting review ({len(queue)} shown)", show_lines=True)
    for col in (
        "target",
        "band",
        "score",
        "copies",
        "channels",
        "contacts",
        "cues",
        "images (PDQ)",
        "example",
    ):
        table.add_column(col, overflow="fold")
    for g in queue:
        table.add_row(
            cell(g["target"]),
            g["band"],
            f"{g['score']:.2f}",
            str(len(g["posts"])),
            cell(", ".join(sorted({p["channel"] for p in g["posts"]}))),
            cell(", ".join(g["contacts"][:4])),
            cell(", ".join(g["cues"][:6])),
            cell("\n".join(h[:16] + "…" for h in g["pdq"][:3])),
            cell((g["example"] or "")[:160]),
        )
    Console(width=160).print(table)


def _decide(ctx: click.Context, target: str, decision: str, reason: str, reviewer: str | None) -> None:
    from pipeline.refer.review import decide
    from pipeline.stages import reindex_if_configured
    from vigie.store import Store

    config = load(ctx)
    with Store(config.store_url()) as store:
        keys = decide(store, target, decision, reason, _reviewer(reviewer))
    echo(f"{decision} {len(keys)} post(s) of {target} ({_reviewer(reviewer)}: {reason})")
    reindex_if_configured(config)


@review_group.command("confirm")
@click.argument("target")
@click.option("--reason", required=True, help="Why this is a smuggling advert (kept in the audit log).")
@click.option("--reviewer", help="Your name (default: $VIGIE_REVIEWER or the login name).")
@click.pass_context
def confirm(ctx: click.Context, target: str, reason: str, reviewer: str | None) -> None:
    """Confirm TARGET (cluster id or post key) as a smuggling advert, ready to refer."""
    _decide(ctx, target, "confirmed", reason, reviewer)


@review_group.command("reject")
@click.argument("target")
@click.option("--reason", required=True, help="Why this is not an advert (kept in the audit log).")
@click.option("--reviewer", help="Your name (default: $VIGIE_REVIEWER or the login name).")
@click.pass_context
def reject(ctx: click.Context, target: str, reason: str, reviewer: str | None) -> None:
    """Reject TARGET: not an advert. It will not be referred, and trains the next model."""
    _decide(ctx, target, "rejected", reason, reviewer)


@review_group.command("log")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.pass_context
def log(ctx: click.Context, limit: int) -> None:
    """The audit log: who decided what, when and why."""
    from vigie.store import Store, cases

    with Store(load(ctx).store_url(), read_only=True) as store:
        rows = cases.review_log(store, limit)
    for r in rows:
        echo(
            f"{r['decided_at']} {r['reviewer']} {r['decision']} {r['post_key']} ({r['cluster_id'] or '-'}): "
            f"{r['reason']}"
        )
