"""`vigie cluster`: how a cluster (daemons, workers, the job queue) is doing, from its store."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from vigie.cli.main import load
from vigie.cli.output import cell, echo, echo_json


@click.group("cluster")
def cluster_group() -> None:
    """Cluster mode: `vigie daemon run --cluster` on one or more machines (one leads, the
    others stand by) and `vigie worker` processes, over one PostgreSQL store."""


def duration(seconds: float | None) -> str:
    """A wait or an age for people: 42s, 7m 05s, 3h 12m, 2d 4h."""
    if seconds is None:
        return "-"
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _args(args: Any) -> str:
    if isinstance(args, dict):
        return " ".join(f"{k}={v}" for k, v in sorted(args.items()))
    return "" if args is None else json.dumps(args, ensure_ascii=False)


def _job(job: dict[str, Any] | None) -> str:
    if not job:
        return "-"
    parts = [f"#{job['id']}", job["task"], _args(job["args"]), f"({duration(job['running_seconds'])})"]
    return " ".join(part for part in parts if part)


def _table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    return table


def print_status(status: dict[str, Any]) -> None:
    console = Console(width=160)
    if not status["queue_installed"]:
        echo(
            f"No cluster has run on this store ({status['store']}): its job queue is not installed. "
            "`vigie daemon run --cluster` or `vigie worker` installs it."
        )
        return
    echo(
        f"Cluster on {status['store']} (a node is dead after {duration(status['lease_seconds'])} of silence)"
    )
    leader = status["leader"]
    if leader:
        echo(
            f"leader: {leader['node']} on {leader['host']} pid {leader['pid']}, since {leader['since']}, "
            f"heartbeat {duration(leader['heartbeat_age_seconds'])} ago"
        )
    else:
        echo("leader: none (no daemon holds the lead with a live heartbeat)")
    for node in status["standby"]:
        role = "standby" if node["role"] == "standby" else "former leader"
        echo(
            f"{role}: {node['node']} on {node['host']} pid {node['pid']}, {node['state']}, "
            f"heartbeat {duration(node['heartbeat_age_seconds'])} ago"
        )

    workers = _table("Workers", ("worker", "egress", "host", "heartbeat", "state", "job in hand"))
    for w in status["workers"]:
        workers.add_row(
            cell(w["node"]), cell(w["egress"] or "-"), cell(f"{w['host']} pid {w['pid']}"),
            duration(w["heartbeat_age_seconds"]) + " ago", w["state"], cell(_job(w["job"])),
        )  # fmt: skip
    console.print(workers)

    queue = _table("Queue", ("task", "todo", "doing", "failed (24 h)"))
    for q in status["queue"]:
        queue.add_row(cell(q["task"]), str(q["todo"]), str(q["doing"]), str(q["failed_24h"]))
    console.print(queue)
    echo(f"oldest waiting job: {duration(status['oldest_pending_seconds'])}")
    claims = status["claims"]
    echo(f"classification claims: {claims['posts']} posts in {claims['batches']} batches")

    if status["running"]:
        running = _table("Running jobs", ("job", "queue worker", "worker heartbeat"))
        for job in status["running"]:
            running.add_row(
                cell(_job(job)),
                str(job["worker_id"] or "-"),
                duration(job["worker_heartbeat_age_seconds"]) + " ago",
            )
        console.print(running)

    sources = _table("Source lag", ("source", "last success", "lag", "last error"))
    for s in status["sources"]:
        lag = duration(s["lag_seconds"]) if s["last_success_at"] else "never crawled"
        sources.add_row(
            cell(s["source"]), cell(s["last_success_at"] or "-"), lag, cell(s["last_error"] or "")
        )
    console.print(sources)

    if status["errors"]:
        errors = _table("Failed jobs (24 h)", ("job", "task", "arguments", "failed at", "tries", "error"))
        for e in status["errors"]:
            errors.add_row(
                str(e["job_id"]), cell(e["task"]), cell(_args(e["args"])), cell(e["failed_at"] or "-"),
                str(e["attempts"]), cell(" ".join(str(e["error"]).split())[:200]),
            )  # fmt: skip
        console.print(errors)


@cluster_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """The leader and standby daemons, the workers and the job each holds, the queue per task
    (waiting, running, failed in the last 24 hours) and its oldest wait, each source's time
    since its last successful crawl, classification claims and recent failed jobs."""
    from pipeline.cluster.status import cluster_status

    found = cluster_status(load(ctx))
    if as_json:
        echo_json(found, indent=2, default=str)
    else:
        print_status(found)
