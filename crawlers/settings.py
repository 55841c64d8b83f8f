"""Scrapy settings built from Vigie's validated configuration. Polite by default."""

from __future__ import annotations

from typing import Any

from vigie.config import CrawlConfig


def scrapy_settings(
    crawl: CrawlConfig, store_path: str, out: str | None = None, log_level: str = "WARNING"
) -> dict[str, Any]:
    pipelines = {
        "crawlers.pipelines.CleanPostPipeline": 100,
        "crawlers.pipelines.StorePipeline": 500,
    }
    if out:
        pipelines["crawlers.pipelines.JsonLinesPipeline"] = 800
    return {
        "BOT_NAME": "vigie",
        "USER_AGENT": crawl.user_agent,
        "ROBOTSTXT_OBEY": crawl.obey_robots_txt,
        "CONCURRENT_REQUESTS": 8,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "DOWNLOAD_DELAY": crawl.download_delay,
        "AUTOTHROTTLE_ENABLED": crawl.autothrottle,
        "AUTOTHROTTLE_START_DELAY": max(crawl.download_delay, 1.0),
        "AUTOTHROTTLE_MAX_DELAY": 60.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "DOWNLOAD_TIMEOUT": crawl.timeout,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": crawl.retry_times,
        "RETRY_HTTP_CODES": [],  # HTTP statuses are retried by BackoffRetryMiddleware
        "VIGIE_RETRY_TIMES": crawl.retry_times,
        "VIGIE_BACKOFF_BASE": crawl.backoff_base,
        "VIGIE_MAX_RETRY_AFTER": crawl.max_retry_after,
        "DOWNLOADER_MIDDLEWARES": {"crawlers.middlewares.BackoffRetryMiddleware": 560},
        "ITEM_PIPELINES": pipelines,
        "VIGIE_STORE_PATH": store_path,
        "VIGIE_OUT": out,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "LOG_LEVEL": log_level,
        # Scrapy's records go to the handler the `vigie` command installs, which prints
        # tracebacks only with --debug; Scrapy's own handler would print every one of them.
        "LOG_INSTALL_ROOT_HANDLER": False,
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
    }
