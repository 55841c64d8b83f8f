"""Walks Telegram public channel previews from the newest post down to the stored cursor.

Each channel is one walk: the newest page, then `?before=<id>` pages, until the walk
reaches the cursor (less a look-back, to catch edits) or the channel's first post. A walk
cut short (page limit, error, kill) leaves its range in the store; the next walk jumps
over that range once it reaches it and carries on below it.

An exception in the spider or a pipeline is a failure of the crawler, not of the source:
the source's walk stops there, the error goes into the report marked `unexpected`, and the
run that reports it is recorded as failed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import scrapy
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from crawlers.items import SourceFailed
from crawlers.report import CrawlReport
from crawlers.telegram.preview import parse_page
from vigie.config import channel_name, http_url
from vigie.errors import MarkupChangedError, SourceUnavailableError
from vigie.records import Page
from vigie.store import SourceState, utcnow

REDIRECTS = [301, 302, 303, 307, 308]


class TelegramCrawlArgs(BaseModel):
    """The spider's arguments, validated before anything is fetched."""

    model_config = ConfigDict(extra="forbid")

    channels: list[str] = Field(min_length=1, description="Channel usernames, @names or t.me links")
    base_url: str = Field("https://t.me", description="Preview host (mirrors, tests)")
    max_pages: int = Field(50, ge=1, description="Pages per channel per run at most")
    lookback_posts: int = Field(20, ge=0, description="Posts below the cursor re-read to catch edits")

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        names = [channel_name(v) for v in value]
        return list(dict.fromkeys(names))

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return http_url(value, "https://t.me")


@dataclass
class Walk:
    channel: str
    state: SourceState
    stop_at: int = 0  # ids at or below this need not be fetched
    pages: int = 0
    highest: int | None = None
    lowest: int | None = None
    jumped: bool = False
    befores: list[int] = field(default_factory=list)


class TelegramSpider(scrapy.Spider):
    name = "telegram"

    def __init__(
        self,
        args: TelegramCrawlArgs,
        states: dict[str, SourceState],
        report: CrawlReport | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.args = args
        self.report = report or CrawlReport()
        self.walks: dict[str, Walk] = {}
        for channel in args.channels:
            state = states.get(channel) or SourceState("telegram", channel)
            stop_at = max(0, state.cursor - args.lookback_posts) if state.cursor else 0
            self.walks[channel] = Walk(channel, state, stop_at)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> TelegramSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.on_spider_error, signal=signals.spider_error)
        crawler.signals.connect(spider.on_item_error, signal=signals.item_error)
        return spider

    def unexpected(self, channel: str | None, what: str, failure: Failure) -> None:
        reason = f"{what}: {failure.type.__name__ if failure.type else 'error'}: {failure.getErrorMessage()}"
        if channel not in self.walks:
            self.report.errors.append(reason)
            return
        source = self.report.source("telegram", channel)
        if not source.unexpected:
            source.error, source.unexpected = reason, True

    def on_spider_error(self, failure: Failure, response: Response | Failure, spider: Any) -> None:
        request = getattr(response, "request", None) or getattr(failure, "request", None)
        channel = request.cb_kwargs.get("channel") if request is not None else None
        self.unexpected(channel, "crawler error reading a page", failure)

    def on_item_error(self, item: Any, response: Any, spider: Any, failure: Failure) -> None:
        self.unexpected(getattr(item, "channel", None), "crawler error storing a page", failure)

    def page_request(self, walk: Walk, before: int | None) -> scrapy.Request:
        url = f"{self.args.base_url}/s/{walk.channel}" + (f"?before={before}" if before else "")
        return scrapy.Request(
            url,
            callback=self.parse,
            errback=self.failed,
            cb_kwargs={"channel": walk.channel, "before": before},
            meta={"dont_redirect": True, "handle_httpstatus_list": [*REDIRECTS, 404]},
            dont_filter=True,
        )

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for walk in self.walks.values():
            self.report.source("telegram", walk.channel)
            try:
                request = self.page_request(walk, None)
            except Exception:  # the crawler's failure, reported; the other walks go on
                self.unexpected(walk.channel, "crawler error starting the walk", Failure())
                continue
            yield request

    def parse(self, response: Response, channel: str, before: int | None) -> Iterator[Any]:
        walk = self.walks[channel]
        source = self.report.source("telegram", channel)
        if source.error:
            return  # an earlier page of this walk failed: never store past the gap
        if response.status in REDIRECTS:
            where = (response.headers.get(b"Location") or b"").decode("latin-1")
            yield SourceFailed(
                "telegram", channel, f"no public preview for @{channel} (redirected to {where or '?'})"
            )
            return
        if response.status == 404:
            yield SourceFailed("telegram", channel, f"@{channel} not found (HTTP 404 at {response.url})")
            return
        content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1") or None
        try:
            page = parse_page(response.body, response.url, captured_at=utcnow(), content_type=content_type)
        except (MarkupChangedError, SourceUnavailableError) as exc:
            yield SourceFailed("telegram", channel, str(exc))
            return

        walk.pages += 1
        source.pages += 1
        for reason in page.skipped:
            source.dropped += 1
            source.warn(f"skipped {reason}")
            self.logger.warning("@%s: skipped %s", channel, reason)
        # The preview parser gives Telegram's integer ids.
        posts = [p for p in page.posts if before is None or int(p.post_id) < before]
        for post in posts:
            if post.channel != channel:
                # A renamed channel keeps its ids; keep the name the source is tracked by.
                post.channel, post.url = channel, f"https://t.me/{channel}/{post.post_id}"
        if not posts and page.skipped:
            # No readable id tells where the walk is: go on below the page's "more" link, or
            # stop here without claiming the walk complete.
            more = page.before
            if more is None or (before is not None and more >= before):
                yield SourceFailed(
                    "telegram", channel, f"no readable post on {response.url}: {page.skipped[0]}"
                )
            elif walk.pages < self.args.max_pages:
                walk.befores.append(more)
                yield self.page_request(walk, more)
            return
        if not posts:
            yield Page("telegram", channel, [], walk.highest, walk.lowest, complete=True)
            return

        ids = [int(p.post_id) for p in posts]
        low = min(ids)
        walk.highest = max(walk.highest or 0, *ids)
        walk.lowest = min(walk.lowest or low, low)
        next_before = self.next_before(walk, page.before, low)
        yield Page("telegram", channel, posts, walk.highest, walk.lowest, complete=next_before is None)
        if next_before is None or source.error:
            return  # done, or an earlier page of this walk failed: never store past a gap
        if walk.pages >= self.args.max_pages:
            self.logger.info(
                "@%s: page limit reached; the next run resumes below id %d", channel, walk.lowest
            )
        else:
            walk.befores.append(next_before)
            yield self.page_request(walk, next_before)

    def next_before(self, walk: Walk, more: int | None, low: int) -> int | None:
        """Where the walk goes next, or None when it is complete."""
        if low <= walk.stop_at or low <= 1:
            return None
        pending_top, pending_before = walk.state.pending_top, walk.state.pending_before
        if not walk.jumped and pending_top and pending_before and low <= pending_top:
            walk.jumped = True  # the range (pending_before, pending_top] is already stored
            if pending_before <= walk.stop_at + 1:
                return None
            return min(pending_before, low)
        # Some pages lack the "more" link although older posts exist: ask below our lowest id.
        target = more if more is not None and more <= low else low
        if walk.befores and target >= walk.befores[-1]:
            return None  # no progress: never loop on a page that repeats itself
        return target

    def failed(self, failure: Failure) -> Iterator[SourceFailed]:
        request = failure.request  # type: ignore[attr-defined]
        channel = request.cb_kwargs["channel"]
        response = getattr(failure.value, "response", None)
        reason = (
            f"HTTP {response.status} at {request.url} after retries"
            if response is not None
            else f"{failure.type.__name__ if failure.type else 'error'} at {request.url}: {failure.getErrorMessage()}"
        )
        yield SourceFailed("telegram", channel, reason)
