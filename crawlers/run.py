"""Run a Telegram crawl in this process and report what it did."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from crawlers.report import CrawlReport
from crawlers.settings import scrapy_settings
from crawlers.telegram.spider import TelegramCrawlArgs, TelegramSpider
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
    call this once per process (the CLI and the daemon's workers do).

    The run is recorded `failed` when the crawler itself failed (`report.unexpected`), when
    every source failed, or when anything raised here; the sources the crawler failed on
    get the error as their last error."""
    from scrapy.crawler import CrawlerProcess

    args = TelegramCrawlArgs(
        channels=channels,
        base_url=base_url or config.telegram.base_url,
        max_pages=max_pages or config.crawl.max_pages,
        lookback_posts=config.crawl.lookback_posts,
    )
    store_url = config.store_url()  # a SQLite file's URL, or a server's
    report = CrawlReport()
    with Store(store_url) as store, store.run("crawl telegram " + " ".join(args.channels)) as run:
        states = {c: store.source_state("telegram", c) for c in args.channels}
        settings = scrapy_settings(config.crawl, store_url, str(out) if out else None, log_level)
        quiet = log_level == "WARNING"
        for name in ("scrapy", "twisted", "py.warnings", "asyncio"):
            logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.INFO)
        process = CrawlerProcess(settings)
        done = process.crawl(TelegramSpider, args=args, states=states, report=report)

        def crawl_failed(failure: Any) -> None:
            # The crawl could not start or stopped (a pipeline that cannot open, ...).
            report.errors.append(f"crawl stopped: {failure.type.__name__}: {failure.getErrorMessage()}")

        done.addErrback(crawl_failed)
        process.start()

        for source in report.sources.values():
            if source.unexpected and source.error:
                store.record_source_error(source.platform, source.channel, source.error)
        run.status, run.stats = report.status, report.to_json()
    return report
