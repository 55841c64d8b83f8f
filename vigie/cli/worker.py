"""`vigie worker`: a cluster worker in the foreground."""

from __future__ import annotations

import click

from vigie.cli.main import load


@click.command("worker")
@click.option(
    "--egress",
    metavar="NAME",
    help="The egress this worker crawls by (cluster.egresses; default: the only one).",
)
@click.option(
    "--name",
    "node_name",
    metavar="NODE",
    help="This node's name in `vigie cluster status` (default HOST-PID).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Jobs at once: a crawl child and a classification can overlap (one classification at a time).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    metavar="PORT",
    help="Prometheus metrics on this port (default cluster.metrics_port; 0: off).",
)
@click.pass_context
def worker(
    ctx: click.Context, egress: str | None, node_name: str | None, concurrency: int, metrics_port: int | None
) -> None:
    """Cluster mode (PostgreSQL store): take crawl, classification and control jobs from the
    queue until SIGTERM. Crawls in hand then go back to the queue; a classification finishes."""
    from pipeline.cluster.worker import run_worker

    obj = ctx.find_root().obj or {}
    config = load(ctx)
    code = run_worker(
        config,
        obj.get("config_path"),
        egress,
        node_name,
        concurrency,
        metrics_port,
        verbose=bool(obj.get("verbose")),
        log_format=str(obj.get("log_format") or "text"),
    )
    ctx.exit(code)
