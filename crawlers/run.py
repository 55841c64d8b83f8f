"""Run a Telegram crawl in this process and report what it did."""

from __future__ import annotations

import logging
from pathlib import Path

from crawlers.report import CrawlReport
from crawlers.settings import scrapy_settings
from crawlers.spiders.telegram import TelegramCrawlArgs, TelegramSpider
from vigie.config import VigieConfig
from vigie.store import Store


def crawl_telegram(
    config: VigieConfig,
    channels: list[str],
    base_url: str | None = None,
    max_pages: int | None = None,
    out: str | Path | None = None,
    log_level: str = "WARNING",
) -> CrawlReport:
    """Crawl `channels` into the configured store. Twisted's reactor cannot restart, so
    call this once per process (the CLI and the daemon's workers do)."""
    from scrapy.crawler import CrawlerProcess

    args = TelegramCrawlArgs(
        channels=channels,
        base_url=base_url or config.telegram.base_url,
        max_pages=max_pages or config.crawl.max_pages,
        lookback_posts=config.crawl.lookback_posts,
    )
    store_path = config.store_path()
    with Store(store_path) as store:
        states = {c: store.source_state("telegram", c) for c in args.channels}
        run_id = store.start_run("crawl telegram " + " ".join(args.channels))

    report = CrawlReport()
    settings = scrapy_settings(config.crawl, str(store_path), str(out) if out else None, log_level)
    quiet = log_level == "WARNING"
    for name in ("scrapy", "twisted", "py.warnings", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.INFO)
    process = CrawlerProcess(settings)
    process.crawl(TelegramSpider, args=args, states=states, report=report)
    process.start()

    with Store(store_path) as store:
        status = (
            "failed"
            if report.failed and len(report.failed) == len(report.sources)
            else ("partial" if report.failed else "ok")
        )
        store.finish_run(run_id, status, report.to_json())
    return report
