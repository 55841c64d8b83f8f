"""Posts and crawl cursors (the `sources` table).

Posts are keyed `platform:channel:post_id` on Telegram, `platform:post_id` elsewhere
(`vigie.records.post_key`); writing the same post twice adds nothing, and an
edited post replaces its stored content. A page's posts and how far the walk got are stored
in one transaction: the cursor never runs ahead of the posts it stands for."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import Connection, and_, bindparam, delete, func, select, true, update
from sqlalchemy.sql.elements import ColumnElement

from vigie import __version__
from vigie.store.core import utcnow
from vigie.store.portable import greatest, insert_missing, insert_missing_keys
from vigie.store.schema import post_media, posts, sources

if TYPE_CHECKING:
    from vigie.records import Post
    from vigie.store.core import Store

Outcome = Literal["new", "updated", "unchanged"]
# Content that makes a stored post "updated" when it changes; views change all the time.
_CONTENT = ("url", "text", "published_at", "forwarded_from", "reply_to", "edited", "media", "links")
# Later additions count only when set, so a post stored before them keeps its hash.
_CONTENT_SINCE_5 = ("attachments", "partial", "forwarded_from_name", "author_name", "hashtags", "mentions")
_UNSET: tuple[Any, ...] = ("[]", 0, None, None, "[]", "[]")


@dataclass(frozen=True, slots=True)
class SourceState:
    platform: str
    channel: str
    cursor: int | None = None
    pending_top: int | None = None
    pending_before: int | None = None
    last_attempt_at: str | None = None
    last_success_at: str | None = None
    last_error: str | None = None


def _file_part(url: str | None) -> str | None:
    """A media URL as far as it names the file: its path. Hosts (cdn4, cdn5…) and signed
    query tokens change between crawls of the same post; a mirror's port between runs."""
    return urlsplit(url).path if url else url


def _stable_media(row: dict[str, Any]) -> tuple[str, str]:
    media = [_file_part(u) for u in json.loads(row["media"])]
    attachments = [
        {**a, **{k: _file_part(a[k]) for k in ("url", "thumbnail_url") if k in a}}
        for a in json.loads(row.get("attachments") or "[]")
    ]
    return json.dumps(media, ensure_ascii=False), json.dumps(attachments, ensure_ascii=False)


def content_sha256(row: dict[str, Any]) -> str:
    media, attachments = _stable_media(row)
    stable = {**row, "media": media, "attachments": attachments}
    later = [stable.get(name, unset) for name, unset in zip(_CONTENT_SINCE_5, _UNSET, strict=True)]
    values = [stable[name] for name in _CONTENT] + (later if later != list(_UNSET) else [])
    blob = json.dumps(values, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _row(post: Post) -> dict[str, Any]:
    row = {
        "key": post.key,
        "platform": post.platform,
        "channel": post.channel,
        "post_id": str(post.post_id),
        "url": post.url,
        "text": post.text,
        "published_at": post.published_at,
        "views": post.views,
        "forwarded_from": post.forwarded_from,
        "reply_to": post.reply_to,
        "edited": int(post.edited),
        "media": json.dumps(post.media, ensure_ascii=False),
        "links": json.dumps(post.links, ensure_ascii=False),
        "attachments": json.dumps([a.to_json() for a in post.attachments], ensure_ascii=False),
        "partial": int(post.partial),
        "forwarded_from_name": post.forwarded_from_name,
        "author_name": post.author_name,
        "hashtags": json.dumps(post.hashtags, ensure_ascii=False),
        "mentions": json.dumps(post.mentions, ensure_ascii=False),
        "likes": post.likes,
        "shares": post.shares,
        "comments": post.comments,
        # New or edited: its media are fetched (or, for an export's own files, read from the
        # media store) and read before it is classified.
        "media_pending": int(any(a.needs_reading() for a in post.attachments)),
        "media_attempts": 0,
        "media_tried_at": None,
        "ocr_text": None,
        "payload_sha256": post.payload_sha256,
        "captured_at": post.captured_at or utcnow(),
    }
    row["content_sha256"] = content_sha256(row)
    return row


_RUN = 500
# Counts that change all the time: kept when new, never making a post "updated".
_COUNTS = ("views", "likes", "shares", "comments")
_KEPT = ("key", "platform", "channel", "post_id", *_COUNTS)  # what an edit does not replace


def _locked(connection: Connection, keys: list[str]) -> dict[str, Any]:
    """Stored content hash and views of those `keys` already stored, locked until commit."""
    if not keys:
        return {}
    query = (
        select(posts.c.key, posts.c.content_sha256, *(posts.c[c] for c in _COUNTS))
        .where(posts.c.key.in_(keys))
        .order_by(posts.c.key)  # two writers lock shared rows in one order: neither waits on the other
        .with_for_update()
    )
    return {row.key: row for row in connection.execute(query)}


def _without_repeats(batch: Iterable[Post]) -> Iterator[list[Post]]:
    """The batch in runs where no post comes twice (a later copy is compared with the
    first), of at most _RUN posts (a statement's parameters are limited)."""
    run: dict[str, Post] = {}
    for post in batch:
        if post.key in run or len(run) >= _RUN:
            yield list(run.values())
            run = {}
        run[post.key] = post
    if run:
        yield list(run.values())


def _upsert(connection: Connection, batch: Iterable[Post], now: str) -> dict[Outcome, int]:
    counts: dict[Outcome, int] = {"new": 0, "updated": 0, "unchanged": 0}
    for run in _without_repeats(batch):
        for outcome, n in _upsert_distinct(connection, run, now).items():
            counts[outcome] += n
    return counts


def _upsert_distinct(connection: Connection, batch: list[Post], now: str) -> dict[Outcome, int]:
    """Store posts of distinct keys: new ones inserted, edited ones replaced, new view counts kept."""
    counts: dict[Outcome, int] = {"new": 0, "updated": 0, "unchanged": 0}
    rows = {post.key: {**_row(post), "crawler_version": __version__} for post in batch}
    keys = sorted(rows)  # and insert them in that order
    stored = _locked(connection, keys)
    fresh = [{**rows[k], "first_seen": now, "updated_at": now} for k in keys if k not in stored]
    inserted = set(insert_missing_keys(connection, posts, fresh)) if fresh else set()
    counts["new"] = len(inserted)
    # Rows a concurrent writer inserted between our look and our insert: compared like the others.
    stored |= _locked(connection, [row["key"] for row in fresh if row["key"] not in inserted])
    counted: list[dict[str, Any]] = []
    edits: list[dict[str, Any]] = []
    for key, old in stored.items():
        row = rows[key]
        # A minimised post has lost its text; its content hash still says whether it changed.
        if old.content_sha256 == row["content_sha256"]:
            counts["unchanged"] += 1
            if any(row[c] is not None and row[c] != getattr(old, c) for c in _COUNTS):
                counted.append({"b_key": key, **{f"b_{c}": row[c] for c in _COUNTS}})
        else:
            counts["updated"] += 1
            edits.append({f"b_{k}": v for k, v in row.items()})
    by_key = posts.c.key == bindparam("b_key")
    # A count the new capture lacks keeps the stored one.
    counts_kept = {c: func.coalesce(bindparam(f"b_{c}", type_=posts.c[c].type), posts.c[c]) for c in _COUNTS}
    if counted:
        connection.execute(update(posts).where(by_key).values(**counts_kept), counted)
    if edits:
        changed: dict[str, Any] = {k: bindparam(f"b_{k}") for k in rows[keys[0]] if k not in _KEPT}
        statement = update(posts).where(by_key).values(**changed, **counts_kept, updated_at=now, minimised=0)
        connection.execute(statement, edits)
        # What was read in the old version's media goes with it; the media stage reads the new.
        edited = [row["b_key"] for row in edits]
        connection.execute(delete(post_media).where(post_media.c.post_key.in_(edited)))
    return counts


def in_id_order() -> tuple[ColumnElement[Any], ...]:
    """Posts by platform, channel and id, numeric ids in number order (9 before 10)."""
    return (posts.c.platform, posts.c.channel, func.length(posts.c.post_id), posts.c.post_id)


def upsert_posts(store: Store, batch: Iterable[Post]) -> dict[Outcome, int]:
    with store.transaction() as connection:
        return _upsert(connection, batch, utcnow())


def _where(platform: str | None, channel: str | None) -> ColumnElement[bool]:
    named = [
        column == value
        for column, value in ((posts.c.platform, platform), (posts.c.channel, channel))
        if value
    ]
    return and_(true(), *named)


def count_posts(store: Store, platform: str | None = None, channel: str | None = None) -> int:
    with store.reading() as connection:
        return int(
            connection.scalar(select(func.count()).select_from(posts).where(_where(platform, channel))) or 0
        )


def iter_posts(
    store: Store, platform: str | None = None, channel: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every stored post (of a platform, of a channel), in channel and id order."""
    query = select(posts).where(_where(platform, channel)).order_by(*in_id_order())
    with store.reading() as connection:
        for row in connection.execute(query).mappings():
            yield dict(row)


def minimise_post(store: Store, key: str) -> None:
    """Data minimisation: a post that is not flagged keeps its key, score and times only
    (its media files are released: `media.unreferenced_files` then names those to delete)."""
    with store.transaction() as connection:
        connection.execute(
            update(posts)
            .where(posts.c.key == key)
            .values(
                text="",
                media="[]",
                links="[]",
                attachments="[]",
                ocr_text=None,
                forwarded_from_name=None,
                author_name=None,
                hashtags="[]",
                mentions="[]",
                minimised=1,
            )
        )
        connection.execute(delete(post_media).where(post_media.c.post_key == key))


# -- crawl cursors ---------------------------------------------------------------------


def source_state(store: Store, platform: str, channel: str) -> SourceState:
    with store.reading() as connection:
        row = (
            connection.execute(
                select(sources).where(sources.c.platform == platform, sources.c.channel == channel)
            )
            .mappings()
            .first()
        )
    return SourceState(**row) if row else SourceState(platform, channel)


def sources_list(store: Store) -> list[SourceState]:
    with store.reading() as connection:
        rows = connection.execute(select(sources).order_by(sources.c.platform, sources.c.channel)).mappings()
        return [SourceState(**row) for row in rows]


def _touch_source(connection: Connection, platform: str, channel: str) -> None:
    insert_missing(connection, sources, {"platform": platform, "channel": channel})


def store_page(
    store: Store,
    platform: str,
    channel: str,
    batch: list[Post],
    highest: int | None,
    lowest: int | None,
    complete: bool = False,
) -> dict[Outcome, int]:
    """Store a page's posts and, in the same transaction, how far the walk got.

    An unfinished walk is remembered as the range [lowest, highest] so the next run
    resumes below `lowest`; a complete walk moves the cursor to everything stored."""
    now = utcnow()
    with store.transaction() as connection:
        counts = _upsert(connection, batch, now)
        _touch_source(connection, platform, channel)
        this = update(sources).where(sources.c.platform == platform, sources.c.channel == channel)
        if complete:
            top = greatest(
                func.coalesce(sources.c.cursor, -1),
                func.coalesce(highest, -1),
                func.coalesce(sources.c.pending_top, -1),
            )
            connection.execute(
                this.values(
                    cursor=func.nullif(top, -1),
                    pending_top=None,
                    pending_before=None,
                    last_attempt_at=now,
                    last_success_at=now,
                    last_error=None,
                )
            )
        elif highest is not None and lowest is not None:
            connection.execute(
                this.values(
                    pending_top=greatest(func.coalesce(sources.c.pending_top, 0), highest),
                    pending_before=lowest,
                    last_attempt_at=now,
                )
            )
    return counts


def record_source_error(store: Store, platform: str, channel: str, reason: str) -> None:
    with store.transaction() as connection:
        _touch_source(connection, platform, channel)
        connection.execute(
            update(sources)
            .where(sources.c.platform == platform, sources.c.channel == channel)
            .values(last_error=reason, last_attempt_at=utcnow())
        )
