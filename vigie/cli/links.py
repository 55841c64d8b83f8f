from __future__ import annotations

import click

from vigie.cli.main import load
from vigie.cli.output import echo, echo_json


@click.command("links")
@click.option("--min-shared", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def links(ctx: click.Context, min_shared: int, as_json: bool) -> None:
    """Channels whose flagged posts share a phone number, handle or messenger link (the
    hotlines in `networks.hotlines` aside)."""
    from pipeline.enrich.reposts import channels_sharing_contacts
    from pipeline.intel.networks import hotline_contacts
    from vigie.store import Store

    config = load(ctx)
    with Store(config.store_url(), read_only=True) as store:
        pairs = channels_sharing_contacts(store, min_shared, hotline_contacts(config.networks.hotlines))
    if as_json:
        echo_json(pairs, indent=1)
        return
    for pair in pairs:
        echo(f"{' ↔ '.join(pair['channels'])}: {pair['shared']} shared ({', '.join(pair['contacts'][:5])})")
    if not pairs:
        echo("no channels share contacts")
