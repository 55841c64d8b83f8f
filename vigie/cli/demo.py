from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from vigie.cli.main import load
from vigie.cli.output import print_crawl_report

if TYPE_CHECKING:
    from vigie.store import Store

MAX_ALERTS_SHOWN = 10


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="The demo's own directory (default: demo/ in $VIGIE_DATA_DIR or ~/.local/share/vigie).",
)
@click.option("--max-pages", type=click.IntRange(min=1), default=100, show_default=True)
@click.option(
    "--mirror-port",
    type=click.IntRange(1, 65535),
    default=8080,
    show_default=True,
    help="Port of `vigie mirror` that the demo's configuration re-crawls for removal checks.",
)
@click.option("--crawl-only", is_flag=True, help="Stop after crawling (no classifier needed).")
@click.pass_context
def demo(
    ctx: click.Context, data_dir: str | None, max_pages: int, mirror_port: int, crawl_only: bool
) -> None:
    """The whole pipeline on the bundled sample channels, served on 127.0.0.1: crawl,
    classify, extract entities, group reposts, index into Elasticsearch when one is
    configured, and write the referral candidates. Everything goes into a directory of its
    own, with a configuration (vigie.yaml) that the other commands use once $VIGIE_CONFIG
    names it; the demo prints those commands. Your own store is never touched. Safe to run
    again: a second run adds nothing."""
    from crawlers.run import crawl_telegram
    from crawlers.telegram.mirror import Mirror
    from pipeline.refer.review import review_queue
    from pipeline.stages import RunReport, after_run, classify_and_index, referral_candidates
    from vigie.cli import demo_dir as sample
    from vigie.cli.run import print_run_summary, progress_bar
    from vigie.store import Store

    directory = Path(data_dir).expanduser() if data_dir else sample.default_dir()
    sample.check_dir(directory)
    report = RunReport()
    with Mirror() as mirror:
        channels = sorted(mirror.channels)
        config_path, config = sample.write_config(
            directory, sample.demo_config(load(ctx), directory, channels, mirror_port)
        )
        click.echo(
            f"serving {len(channels)} sample channels at {mirror.url}; demo data (sample only): {directory}"
        )
        report.crawl = crawl_telegram(config, channels, base_url=mirror.url, max_pages=max_pages)
        print_crawl_report(report.crawl)
        if crawl_only:
            click.echo(
                f"Crawled only. Next: export VIGIE_CONFIG={config_path.resolve()}; `vigie status`; "
                "`vigie run --no-crawl` classifies what the demo stored (its images wait for the mirror)."
            )
            return
        console = Console(width=140)
        with Store(config.store_url()) as store:
            # The mirror also serves the posts' images, which are fetched before classification.
            with progress_bar(console) as progress:
                classify_and_index(config, report, progress, store=store)
            after_run(config, store, report)
            print_run_summary(report, console)
            print_intelligence(store)
    out = config.store_path().with_name(sample.CANDIDATES_NAME)
    clusters = referral_candidates(config, out)
    click.echo(f"referral candidates: {clusters} clusters of flagged posts → {out}")
    with Store(config.store_url()) as store:
        queue = review_queue(store, limit=None)
    # A cluster of reposts shows a notice listing several URLs; else the top one.
    cluster = next((g for g in queue if len(g["posts"]) > 1), queue[0] if queue else None)
    click.echo()
    click.echo(sample.format_steps(sample.next_steps(config_path, config, cluster, datetime.now(UTC).year)))


def print_intelligence(store: Store) -> None:
    """The networks found and the alerts raised, a line each."""
    from pipeline.intel.networks import stored_networks
    from vigie.cli.output import echo
    from vigie.store import alerts as stored_alerts

    networks = stored_networks(store)
    raised = stored_alerts.listed(store, limit=None)
    for network in networks:
        echo(
            f"network {network.network_id}: {', '.join(network.sources)} "
            f"({network.flagged_posts} flagged posts)"
        )
    for alert in raised[:MAX_ALERTS_SHOWN]:
        echo(f"alert {alert['alert_key']}: {alert['payload'].get('summary', '')}")
    if len(raised) > MAX_ALERTS_SHOWN:
        echo(f"… and {len(raised) - MAX_ALERTS_SHOWN} more alerts (`vigie alerts list`)")
