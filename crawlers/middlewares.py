"""Downloader middleware: retry 429 and 5xx with backoff, honouring Retry-After.

Scrapy's own RetryMiddleware keeps handling network errors; HTTP status retries are
ours so that a 429 pauses the whole domain for as long as the server asked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.http import Response

log = logging.getLogger(__name__)
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 520, 522, 524})


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class BackoffRetryMiddleware:
    def __init__(self, retry_times: int, backoff_base: float, max_retry_after: float) -> None:
        self.retry_times = retry_times
        self.backoff_base = backoff_base
        self.max_retry_after = max_retry_after
        self.not_before: dict[str, float] = {}

    @classmethod
    def from_crawler(cls, crawler: Any) -> BackoffRetryMiddleware:
        s = crawler.settings
        return cls(
            s.getint("VIGIE_RETRY_TIMES", 5),
            s.getfloat("VIGIE_BACKOFF_BASE", 2.0),
            s.getfloat("VIGIE_MAX_RETRY_AFTER", 900.0),
        )

    async def process_request(self, request: Request, spider: Any = None) -> None:
        wait = self.not_before.get(urlsplit(request.url).netloc, 0.0) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    async def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Request | Response:
        if response.status not in RETRY_STATUSES:
            return response
        attempt = int(request.meta.get("vigie_retries", 0))
        if attempt >= self.retry_times:
            log.warning("giving up on %s after %d retries (HTTP %d)", request.url, attempt, response.status)
            return response
        header = response.headers.get(b"Retry-After")
        asked = retry_after_seconds(header.decode("latin-1") if header else None)
        delay = min(asked if asked is not None else self.backoff_base * 2**attempt, self.max_retry_after)
        host = urlsplit(request.url).netloc
        self.not_before[host] = max(self.not_before.get(host, 0.0), time.monotonic() + delay)
        log.info("HTTP %d on %s: retry %d in %.1fs", response.status, request.url, attempt + 1, delay)
        retry = request.replace(dont_filter=True)
        retry.meta["vigie_retries"] = attempt + 1
        return retry
