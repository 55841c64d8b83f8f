from __future__ import annotations

import json

import click

from vigie.cli import load


@click.group("es")
def es_group() -> None:
    """Elasticsearch: index template, replay of the local spool."""


@es_group.command("setup")
@click.option("--dry-run", is_flag=True, help="Print what would be installed; change nothing.")
@click.option("--print-template", is_flag=True, help="Print the index template JSON.")
@click.pass_context
def setup_cmd(ctx: click.Context, dry_run: bool, print_template: bool) -> None:
    """Install or upgrade the index template and alias (idempotent)."""
    from pipeline.es_index import connect, es_url, setup, template_body

    config = load(ctx).elasticsearch
    if print_template:
        click.echo(json.dumps(template_body(config), indent=1))
    es = None if dry_run and not es_url(config) else connect(config)
    for step in setup(es, config, dry_run=dry_run):
        click.echo(f"{'would ' if dry_run else ''}{step.action}: {step.target} ({step.detail})")


@es_group.command("replay")
@click.pass_context
def replay(ctx: click.Context) -> None:
    """Send what the spool and the store hold that the cluster has not acknowledged."""
    from pipeline.es_index import connect, count_indexed, setup, spooled, sync
    from vigie.store import Store

    config = load(ctx)
    es = connect(config.elasticsearch)
    setup(es, config.elasticsearch)
    with Store(config.store_path()) as store:
        before = len(spooled(store))
        result = sync(store, es, config.elasticsearch)
        left = len(spooled(store))
    click.echo(
        f"spool: {before} before, {left} left; sent {result.indexed + result.replayed} documents, "
        f"removed {result.deleted}; {count_indexed(es, config.elasticsearch)} documents in the index"
    )
    for error in result.errors:
        click.echo(f"error: {error}", err=True)
    if left:
        raise SystemExit(1)
