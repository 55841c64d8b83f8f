from __future__ import annotations

import os

import click

from vigie.cli.main import load
from vigie.cli.output import echo


@click.group("kibana")
def kibana_group() -> None:
    """Kibana: the analysts' data view, visualizations and dashboard."""


@kibana_group.command("install")
@click.option("--url", help="Kibana URL (default: $VIGIE_KIBANA_URL, then kibana.url in the configuration).")
@click.option("--dry-run", is_flag=True, help="List what would be imported; send nothing.")
@click.option(
    "--space", help="Kibana space id (default: kibana.space in the configuration, else the default space)."
)
@click.pass_context
def install_cmd(ctx: click.Context, url: str | None, dry_run: bool, space: str | None) -> None:
    """Import (overwriting) the data view, visualizations and dashboard. Credentials come
    from $VIGIE_KIBANA_API_KEY, or $VIGIE_KIBANA_USERNAME and $VIGIE_KIBANA_PASSWORD."""
    from pipeline.index.kibana import install, load_saved_objects

    config = load(ctx)
    url = url or os.environ.get("VIGIE_KIBANA_URL") or config.kibana.url
    space = space or config.kibana.space or None
    for line in install(url or "", load_saved_objects(), dry_run=dry_run, space=space, crawl=config.crawl):
        echo(line)
