from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from vigie.cli import load
from vigie.commands.output import print_crawl_report


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Where the demo store goes (default: the configured data_dir).",
)
@click.option("--max-pages", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--crawl-only", is_flag=True, help="Stop after crawling (no classifier needed).")
@click.pass_context
def demo(ctx: click.Context, data_dir: str | None, max_pages: int, crawl_only: bool) -> None:
    """The whole pipeline on the bundled sample channels, served on 127.0.0.1: crawl into a
    demo store (demo.db beside the configured store), classify, extract entities, group
    reposts, index into Elasticsearch when one is configured, and write the referral
    candidates. Safe to run again: a second run adds nothing."""
    from crawlers.mirror import Mirror
    from crawlers.run import crawl_telegram
    from pipeline.run import RunReport, classify_and_index, referral_candidates
    from vigie.commands.run_cmd import print_run_summary, progress_bar

    config = load(ctx)
    changes: dict[str, Any] = {
        "store": {"path": "demo.db"},
        "crawl": {**config.crawl.model_dump(), "download_delay": 0.0, "autothrottle": False},
    }
    if data_dir:
        changes["data_dir"] = data_dir
    config = config.model_validate({**config.model_dump(), **changes})
    report = RunReport()
    with Mirror() as mirror:
        channels = sorted(mirror.channels)
        click.echo(f"serving {len(channels)} sample channels at {mirror.url}; store: {config.store_path()}")
        report.crawl = crawl_telegram(config, channels, base_url=mirror.url, max_pages=max_pages)
    print_crawl_report(report.crawl)
    if crawl_only:
        return
    console = Console(width=140)
    with progress_bar(console) as progress:
        classify_and_index(config, report, progress)
    print_run_summary(report, console)
    out = Path(config.store_path()).with_name("demo-referral-candidates.json")
    clusters = referral_candidates(config, out)
    click.echo(f"referral candidates: {clusters} clusters of flagged posts → {out}")
