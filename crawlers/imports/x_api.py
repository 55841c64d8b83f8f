"""X API v2 search results as posts: response pages (`{"data": [tweet…], "includes":
{"users", "media", "tweets"}, "meta"}`), JSON Lines of such pages (what `twarc2 search`
writes), or JSON Lines of single tweets with their author and media inline (`twarc2
flatten`).

A tweet's author comes from `includes.users` by `author_id` (or its inline `author`), its
media from `includes.media` by `attachments.media_keys`. Shares are retweets plus quotes;
views are impressions. A long post's full text is `note_tweet.text`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crawlers.imports.common import (
    ImportResult,
    Record,
    RecordError,
    canonical_sha256,
    count,
    files,
    hashtags_in,
    is_json_lines,
    json_document,
    json_lines,
    links_in,
    mentions_in,
    merged,
    one_record,
    reposts,
    text_field,
    utc_time,
)
from vigie import platforms
from vigie.records import Attachment, Post
from vigie.sanitize import web_url


class _Includes:
    """A page's expansions, looked up by id: users, media and referenced tweets."""

    def __init__(self, includes: Any) -> None:
        includes = includes if isinstance(includes, dict) else {}
        self.users = self._by(includes.get("users"), "id")
        self.media = self._by(includes.get("media"), "media_key")
        self.tweets = self._by(includes.get("tweets"), "id")

    @staticmethod
    def _by(items: Any, key: str) -> dict[str, dict[str, Any]]:
        if not isinstance(items, list):
            return {}
        return {str(i[key]): i for i in items if isinstance(i, dict) and i.get(key) is not None}


def _author(tweet: dict[str, Any], includes: _Includes) -> tuple[str, str | None]:
    """The author's handle (or numeric id when no user object came with it) and name."""
    user = tweet.get("author")
    author_id = tweet.get("author_id")
    if not isinstance(user, dict):
        user = includes.users.get(str(author_id), {}) if author_id is not None else {}
    name = user.get("username") or author_id or user.get("id")
    if not name:
        raise RecordError("author_id", "missing (no author and no includes.users entry)")
    try:
        channel = platforms.handle("x", text_field(str(name), "author.username"))
    except ValueError as exc:
        raise RecordError("author.username", str(exc)) from None
    display = user.get("name")
    return channel, display if isinstance(display, str) and display else None


def _entities(tweet: dict[str, Any]) -> tuple[list[str], list[str], list[str], set[str]]:
    """Hashtags, mentions and expanded links the API marked, and the t.co links they stand for."""
    hashtags: list[str] = []
    mentions: list[str] = []
    links: list[str] = []
    short: set[str] = set()
    note = tweet.get("note_tweet")
    for entities in (tweet.get("entities"), note.get("entities") if isinstance(note, dict) else None):
        if not isinstance(entities, dict):
            continue
        for tag in entities.get("hashtags") or []:
            if isinstance(tag, dict) and isinstance(tag.get("tag"), str):
                hashtags.append(tag["tag"])
        for mention in entities.get("mentions") or []:
            if isinstance(mention, dict) and isinstance(mention.get("username"), str):
                mentions.append(mention["username"].lower())
        for url in entities.get("urls") or []:
            if not isinstance(url, dict):
                continue
            if isinstance(url.get("url"), str):
                short.add(url["url"])
            if url.get("media_key"):  # the link to the tweet's own photo or video
                continue
            expanded = url.get("unwound_url") or url.get("expanded_url")
            if isinstance(expanded, str) and web_url(expanded):
                links.append(expanded)
    return hashtags, mentions, links, short


def _best_variant(media: dict[str, Any]) -> str | None:
    variants = [
        v
        for v in media.get("variants") or []
        if isinstance(v, dict) and v.get("content_type") == "video/mp4" and isinstance(v.get("url"), str)
    ]
    variants.sort(key=lambda v: rate if isinstance(rate := v.get("bit_rate"), int) else 0)
    return web_url(variants[-1]["url"]) if variants else None


def _attachments(tweet: dict[str, Any], includes: _Includes) -> list[Attachment]:
    attachments = tweet.get("attachments")
    if not isinstance(attachments, dict):
        return []
    items = attachments.get("media")  # inline in flattened tweets
    if not isinstance(items, list):
        keys = attachments.get("media_keys")
        items = [includes.media.get(str(k)) for k in keys] if isinstance(keys, list) else []
    found = []
    for media in items:
        if not isinstance(media, dict):
            continue
        duration = media.get("duration_ms")
        seconds = duration // 1000 if isinstance(duration, int) and not isinstance(duration, bool) else None
        if media.get("type") == "photo":
            found.append(Attachment(type="photo", url=web_url(media.get("url"))))
        elif media.get("type") in ("video", "animated_gif"):
            found.append(
                Attachment(
                    type="video",
                    url=_best_variant(media),
                    thumbnail_url=web_url(media.get("preview_image_url")),
                    duration=seconds,
                )
            )
    return found


def _status_url(ref: dict[str, Any], includes: _Includes) -> str:
    """A referenced tweet's URL: under its author when the page (or, flattened, the
    reference itself) names them."""
    tweet_id = str(ref["id"])
    referenced = {**includes.tweets.get(tweet_id, {}), **ref}
    user = referenced.get("author")
    if not isinstance(user, dict):
        user = includes.users.get(str(referenced.get("author_id")), {})
    try:
        account = platforms.handle("x", str(user.get("username") or "i"))
    except ValueError:
        account = "i"
    return f"https://x.com/{account}/status/{tweet_id}"


def _tweet_post(tweet: Any, sha256: str, includes: _Includes, captured_at: str) -> Post:
    if not isinstance(tweet, dict):
        raise RecordError("tweet", f"expected an object, found {type(tweet).__name__}")
    if tweet.get("id") in (None, ""):
        raise RecordError("id", "missing")
    try:
        post_id = platforms.post_id("x", tweet["id"])
    except ValueError as exc:
        raise RecordError("id", str(exc)) from None
    channel, author_name = _author(tweet, includes)
    note = tweet.get("note_tweet")
    text = text_field(note.get("text"), "note_tweet.text") if isinstance(note, dict) else ""
    text = text or text_field(tweet.get("text"), "text")
    metrics = tweet.get("public_metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    retweets = count(metrics.get("retweet_count"), "public_metrics.retweet_count")
    quotes = count(metrics.get("quote_count"), "public_metrics.quote_count")
    hashtags, mentions, links, short = _entities(tweet)
    attachments = _attachments(tweet, includes)
    reply_to = forwarded_from = None
    for ref in tweet.get("referenced_tweets") or []:
        if not isinstance(ref, dict) or ref.get("id") is None:
            continue
        if ref.get("type") == "replied_to":
            reply_to = _status_url(ref, includes)
        elif ref.get("type") == "retweeted":
            forwarded_from = _status_url(ref, includes)
    history = tweet.get("edit_history_tweet_ids")
    return Post(
        platform="x",
        channel=channel,
        post_id=post_id,
        url=platforms.post_url("x", channel, post_id),
        text=text,
        published_at=utc_time(tweet.get("created_at"), "created_at"),
        author_name=author_name,
        views=count(metrics.get("impression_count"), "public_metrics.impression_count"),
        likes=count(metrics.get("like_count"), "public_metrics.like_count"),
        shares=reposts(retweets, quotes),
        comments=count(metrics.get("reply_count"), "public_metrics.reply_count"),
        hashtags=merged(hashtags, hashtags_in(text)),
        mentions=merged(mentions, mentions_in(text)),
        links=merged(links, [u for u in links_in(text) if u not in short]),
        attachments=attachments,
        media=[u for a in attachments if (u := a.url or a.thumbnail_url)],
        reply_to=reply_to,
        forwarded_from=forwarded_from,
        edited=isinstance(history, list) and len(history) > 1,
        payload_sha256=sha256,
        captured_at=captured_at,
    )


def _captured_at(value: dict[str, Any]) -> str:
    """When twarc fetched it (`__twarc.retrieved_at`), if it says."""
    meta = value.get("__twarc")
    try:
        return (
            (utc_time(meta.get("retrieved_at"), "__twarc.retrieved_at") or "")
            if isinstance(meta, dict)
            else ""
        )
    except RecordError:
        return ""


def _tweets(
    value: Any, where: str, sha256: str, warnings: list[str]
) -> Iterator[tuple[str, Any, str, _Includes, str]]:
    """The tweets of one JSON value: a response page, a list of pages, or one tweet."""
    if isinstance(value, list):
        for number, item in enumerate(value, start=1):
            yield from _tweets(item, f"{where} page {number}", canonical_sha256(item), warnings)
        return
    if (
        isinstance(value, dict)
        and "data" not in value
        and "id" not in value
        and ("meta" in value or "errors" in value)
    ):
        # A page with no results, or an error response.
        errors = value.get("errors")
        if isinstance(errors, list) and errors:
            first = errors[0] if isinstance(errors[0], dict) else {}
            reason = str(first.get("detail") or first.get("title") or first.get("message") or "")[:200]
            warnings.append(f"{where}: the API answered an error, not tweets ({reason})")
        return
    if isinstance(value, dict) and "data" in value and "id" not in value:
        includes = _Includes(value.get("includes"))
        captured = _captured_at(value)
        data = value["data"]
        tweets = data if isinstance(data, list) else [data]
        for number, tweet in enumerate(tweets, start=1):
            yield f"{where} tweet {number}", tweet, canonical_sha256(tweet), includes, captured
        return
    captured = _captured_at(value) if isinstance(value, dict) else ""
    yield where, value, sha256 or canonical_sha256(value), _Includes(None), captured


def read_x_api(paths: list[Path]) -> ImportResult:
    """Posts from X API v2 search results (see the module's docstring)."""
    result = ImportResult()
    for path in files(list(paths)):
        if is_json_lines(path):
            values: list[tuple[Any, str, str]] = []
            for item in json_lines(path):
                if isinstance(item, Record):
                    values.append((item.value, item.where, item.sha256))
                else:
                    result.records += 1
                    result.skip(*item)
        else:
            values = [(json_document(path), path.name, "")]
        for value, where, sha256 in values:
            for place, tweet, digest, includes, captured in _tweets(value, where, sha256, result.warnings):
                result.records += 1
                try:
                    with one_record():
                        result.posts.append(_tweet_post(tweet, digest, includes, captured))
                except RecordError as exc:
                    result.skip(place, exc)
    return result
