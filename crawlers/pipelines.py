"""Item pipelines, in order: clean a post, store it, optionally write it to JSON Lines.

A page's posts are stored in one transaction together with how far the walk got, so a
crash between pages loses nothing and the cursor never runs ahead of stored data.
"""

from __future__ import annotations

import json
import logging
from typing import IO, Any

from scrapy.exceptions import DropItem
from scrapy.utils.defer import deferred_from_coro

from crawlers.items import SourceFailed
from crawlers.report import CrawlReport
from vigie.records import MAX_INTEGER, Page, Post
from vigie.sanitize import strip_controls
from vigie.store import DatabaseError, Store, one_line

log = logging.getLogger(__name__)


def clean_text(text: str) -> str:
    """A post's text as the store keeps it: control characters other than newline and tab
    carry no meaning in a post (`ESC ] 0 ;` sets a terminal's title) and are removed; lone
    surrogates, which UTF-8 cannot hold, become U+FFFD. The hash of the markup the post was
    read from (`payload_sha256`) stays the evidence of what was published."""
    return strip_controls(text)


def clean_post(post: Post) -> Post:
    """`clean_text` over every text a post carries: its own, a forward's author name, the
    account's display name, hashtags and mentions, and its attachments' names, titles, poll
    questions and options."""
    post.text = clean_text(post.text)
    if post.forwarded_from_name is not None:
        post.forwarded_from_name = clean_text(post.forwarded_from_name)
    if post.author_name is not None:
        post.author_name = clean_text(post.author_name)
    post.hashtags = [clean_text(t) for t in post.hashtags]
    post.mentions = [clean_text(m) for m in post.mentions]
    for a in post.attachments:
        for name in ("name", "title", "question"):
            if getattr(a, name) is not None:
                setattr(a, name, clean_text(getattr(a, name)))
        if a.options is not None:
            a.options = [clean_text(o) for o in a.options]
    return post


class _Pipeline:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> Any:
        return cls(crawler)

    @property
    def report(self) -> CrawlReport:
        spider = self.crawler.spider
        if getattr(spider, "report", None) is None:
            spider.report = CrawlReport()
        return spider.report


class CleanPostPipeline(_Pipeline):
    def process_item(self, item: Any, spider: Any = None) -> Any:
        if not isinstance(item, Page):
            return item
        kept = []
        for post in item.posts:
            if not isinstance(post.post_id, int) or not 0 < post.post_id <= MAX_INTEGER or not post.channel:
                self.report.source(item.platform, item.channel).dropped += 1
                log.warning("dropped %.80s: post without a channel or an id the store can hold", post.key)
                continue
            kept.append(clean_post(post))
        item.posts = kept
        return item


class StorePipeline(_Pipeline):
    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        self.store_path = crawler.settings.get("VIGIE_STORE_PATH")
        self.store: Store | None = None

    def open_spider(self, spider: Any = None) -> None:
        self.store = Store(self.store_path)

    def close_spider(self, spider: Any = None) -> None:
        if self.store is not None:
            self.store.close()

    def process_item(self, item: Any, spider: Any = None) -> Any:
        try:
            return self._store(item)
        except DatabaseError as exc:
            # Nothing moved the cursor: stop here, the next run fetches these pages again.
            reason = one_line(exc)  # the driver's message: not the statement and its post text
            shown = self.store.where.shown if self.store else "the store"  # a URL, its password masked
            log.error("store %s failed: %s; stopping the crawl", shown, reason)
            for source in self.report.sources.values():
                source.error = source.error or f"store failed: {reason}"
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="store_failed"))
            raise DropItem(f"{getattr(item, 'key', type(item).__name__)}: not stored ({reason})") from None

    def _store(self, item: Any) -> Any:
        assert self.store is not None
        if isinstance(item, Page) and (error := self.report.source(item.platform, item.channel).error):
            # An earlier page of this walk was not stored: storing this one would claim its range.
            raise DropItem(
                f"{item.platform}:{item.channel}: page not stored after an earlier failure ({error})"
            )
        if isinstance(item, Page):
            counts = self.store.store_page(
                item.platform, item.channel, item.posts, item.highest, item.lowest, item.complete
            )
            source = self.report.source(item.platform, item.channel)
            source.seen += len(item.posts)
            source.complete = item.complete
            for outcome, n in counts.items():
                setattr(source, outcome, getattr(source, outcome) + n)
        elif isinstance(item, SourceFailed):
            self.store.record_source_error(item.platform, item.channel, item.reason)
            self.report.source(item.platform, item.channel).error = item.reason
        return item


class JsonLinesPipeline(_Pipeline):
    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        self.path = crawler.settings.get("VIGIE_OUT")
        self.file: IO[str] | None = None

    def open_spider(self, spider: Any = None) -> None:
        self.file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close_spider

    def close_spider(self, spider: Any = None) -> None:
        if self.file:
            self.file.close()

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, Page) and self.file:
            for post in item.posts:
                self.file.write(json.dumps(post.to_json(), ensure_ascii=False) + "\n")
            self.file.flush()
        return item
