from __future__ import annotations

from typing import Any

import click

from vigie.cli import load
from vigie.commands.output import print_crawl_report


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Where the demo store goes (default: the configured data_dir).",
)
@click.option("--max-pages", type=click.IntRange(min=1), default=100, show_default=True)
@click.pass_context
def demo(ctx: click.Context, data_dir: str | None, max_pages: int) -> None:
    """Crawl the bundled sample channels, served on 127.0.0.1, into a demo store
    (demo.db beside the configured store) and print a summary. Safe to run again: a
    second run adds nothing."""
    from crawlers.mirror import Mirror
    from crawlers.run import crawl_telegram

    config = load(ctx)
    changes: dict[str, Any] = {
        "store": {"path": "demo.db"},
        "crawl": {**config.crawl.model_dump(), "download_delay": 0.0, "autothrottle": False},
    }
    if data_dir:
        changes["data_dir"] = data_dir
    config = config.model_validate({**config.model_dump(), **changes})
    with Mirror() as mirror:
        channels = sorted(mirror.channels)
        click.echo(f"serving {len(channels)} sample channels at {mirror.url}; store: {config.store_path()}")
        report = crawl_telegram(config, channels, base_url=mirror.url, max_pages=max_pages)
    print_crawl_report(report)
