"""Posts from the objects a platform's web app received, as researcher capture tools keep
them: Zeeschuimer's items (`data` beside `source_platform`, `timestamp_collected`, ...) and
4CAT's NDJSON of the same items (the object with `__import_meta`). One mapper per platform,
following the field names Zeeschuimer captures and 4CAT's datasources read."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from crawlers.imports.common import (
    ImportResult,
    Record,
    RecordError,
    count,
    hashtags_in,
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

# An X media link names its author: https://x.com/<screen_name>/status/<id>/photo/1
_X_MEDIA_AUTHOR = re.compile(r"^https?://(?:www\.)?(?:x|twitter)\.com/([A-Za-z0-9_]{1,15})/status/")


def _obj(value: Any, field: str) -> dict[str, Any]:
    """An object field (None is {}); anything else is malformed."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(field, f"expected an object, found {type(value).__name__}")
    return value


def _objs(value: Any, field: str) -> list[dict[str, Any]]:
    """A list of objects (None is []); items that are not objects are left out."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(field, f"expected a list, found {type(value).__name__}")
    return [item for item in value if isinstance(item, dict)]


def _at(value: Any, path: str) -> Any:
    """The value at a dotted path, None where a step is missing or not an object."""
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _web(value: Any) -> str | None:
    return web_url(value) if isinstance(value, str) else None


def _first_web(values: Any) -> str | None:
    """The first http(s) URL of a list of them (TikTok's `urlList`)."""
    if isinstance(values, str):
        return _web(values)
    for value in values if isinstance(values, list) else []:
        if url := _web(value):
            return url
    return None


def _words(values: list[Any]) -> list[str]:
    return [v.lstrip("#@") for v in values if isinstance(v, str) and v.strip()]


def _post_id(platform: str, value: Any, field: str) -> str:
    if value is None or value == "":
        raise RecordError(field, "missing")
    try:
        return str(platforms.post_id(platform, value))
    except ValueError as exc:
        raise RecordError(field, str(exc)) from None


def account(platform: str, name: Any, account_id: Any, field: str) -> str:
    """The account's handle, or its numeric id when the record gives no handle."""
    if isinstance(name, str) and name.strip():
        try:
            return platforms.handle(platform, name)
        except ValueError as exc:
            raise RecordError(field, str(exc)) from None
    if isinstance(account_id, int | str) and not isinstance(account_id, bool) and str(account_id).isdigit():
        return str(account_id)
    raise RecordError(field, "missing (no handle and no account id)")


def media_urls(attachments: list[Attachment]) -> list[str]:
    """`Post.media`: each picture's or video's file, else its thumbnail."""
    return [url for a in attachments if a.type in ("photo", "video") and (url := a.url or a.thumbnail_url)]


def _tiktok(d: dict[str, Any], p: str) -> Post:
    pid = _post_id("tiktok", d.get("id"), p + "id")
    author = d.get("author")
    if isinstance(author, dict):
        # As intercepted from TikTok's API: an author object.
        channel = account("tiktok", author.get("uniqueId"), author.get("id"), p + "author.uniqueId")
        display = author.get("nickname")
    elif isinstance(author, str) or author is None:
        # As embedded in a page's JSON: the handle, with the display name beside it.
        channel = account("tiktok", author, d.get("authorId"), p + "author")
        display = d.get("nickname")
    else:
        raise RecordError(p + "author", f"expected an object, found {type(author).__name__}")
    desc = text_field(d.get("desc"), p + "desc")
    transcript = text_field(d.get("voice_to_text"), p + "voice_to_text")
    text = f"{desc}\n\n{transcript}" if transcript.strip() else desc
    stats = _obj(d.get("stats"), p + "stats")
    stats_v2 = _obj(d.get("statsV2"), p + "statsV2")

    def stat(key: str) -> int | None:
        if stats.get(key) is not None:
            return count(stats.get(key), f"{p}stats.{key}")
        return count(stats_v2.get(key), f"{p}statsV2.{key}")

    extras = _objs(d.get("textExtra"), p + "textExtra")
    tags = _words([e.get("hashtagName") for e in extras])
    tags += _words([c.get("title") for c in _objs(d.get("challenges"), p + "challenges")])
    mentioned = [m.lower() for m in _words([e.get("userUniqueId") for e in extras])]
    attachments: list[Attachment] = []
    image_post = _obj(d.get("imagePost"), p + "imagePost")
    if image_post:
        # A photo post: its pictures, in order.
        for image in _objs(image_post.get("images"), p + "imagePost.images"):
            if url := _first_web(_at(image, "imageURL.urlList")):
                attachments.append(Attachment("photo", url=url))
    else:
        video = _obj(d.get("video"), p + "video")
        url = _web(video.get("playAddr")) or _web(video.get("downloadAddr"))
        cover = _web(video.get("cover")) or _web(video.get("originCover"))
        if url or cover:
            seconds = video.get("duration")
            duration = (
                seconds
                if isinstance(seconds, int) and not isinstance(seconds, bool) and seconds > 0
                else None
            )
            attachments.append(Attachment("video", url=url, thumbnail_url=cover, duration=duration))
    return Post(
        platform="tiktok",
        channel=channel,
        post_id=pid,
        url=platforms.post_url("tiktok", channel, pid),
        text=text,
        published_at=utc_time(d.get("createTime"), p + "createTime"),
        views=stat("playCount"),
        likes=stat("diggCount"),
        shares=stat("shareCount"),
        comments=stat("commentCount"),
        author_name=display if isinstance(display, str) and display else None,
        hashtags=merged(tags, hashtags_in(text)),
        mentions=merged(mentioned, mentions_in(text)),
        links=links_in(text),
        attachments=attachments,
        media=media_urls(attachments),
    )


def _meta_media(d: dict[str, Any], p: str) -> list[Attachment]:
    """Instagram's and Threads' pictures and videos: a carousel's items, else the post's own."""
    nodes = _objs(d.get("carousel_media"), p + "carousel_media") or [d]
    out = []
    for node in nodes:
        candidates = _objs(_at(node, "image_versions2.candidates"), "candidates")
        # The grid's "Polaris" objects give only `display_uri`.
        image = _first_web([c.get("url") for c in candidates]) or _web(node.get("display_uri"))
        video = _first_web([v.get("url") for v in _objs(node.get("video_versions"), "video_versions")])
        if video:
            out.append(Attachment("video", url=video, thumbnail_url=image))
        elif image:
            out.append(Attachment("photo", url=image))
    return out


def _meta_author(d: dict[str, Any], platform: str, p: str) -> tuple[str, str | None]:
    user = _obj(d.get("user"), p + "user") or _obj(d.get("owner"), p + "owner")
    channel = account(platform, user.get("username"), user.get("pk") or user.get("id"), p + "user.username")
    name = user.get("full_name")
    return channel, name if isinstance(name, str) and name else None


def _instagram(d: dict[str, Any], p: str) -> Post:
    # The shortcode is the post's id in its URL (/p/<code>/); the older graph format calls it
    # `shortcode`, with the caption in `edge_media_to_caption` and the time in `taken_at_timestamp`.
    field = p + ("code" if "code" in d or "shortcode" not in d else "shortcode")
    pid = _post_id("instagram", d.get("code") or d.get("shortcode"), field)
    channel, name = _meta_author(d, "instagram", p)
    text = text_field(_obj(d.get("caption"), p + "caption").get("text"), p + "caption.text")
    if not text and "edge_media_to_caption" in d:
        edges = _objs(_at(d, "edge_media_to_caption.edges"), p + "edge_media_to_caption.edges")
        text = text_field(_at(edges[0], "node.text") if edges else None, p + "edge_media_to_caption")
    taken = "taken_at" if "taken_at" in d else "taken_at_timestamp"
    hidden = bool(d.get("like_and_view_counts_disabled"))
    views_field = "view_count" if d.get("view_count") is not None else "play_count"
    return Post(
        platform="instagram",
        channel=channel,
        post_id=pid,
        url=platforms.post_url("instagram", channel, pid),
        text=text,
        published_at=utc_time(d.get(taken), p + taken),
        views=count(d.get(views_field), p + views_field),
        likes=None if hidden else count(d.get("like_count"), p + "like_count"),
        comments=count(d.get("comment_count"), p + "comment_count"),
        author_name=name,
        hashtags=hashtags_in(text),
        mentions=mentions_in(text),
        links=links_in(text),
        attachments=(attachments := _meta_media(d, p)),
        media=media_urls(attachments),
    )


def _unwrapped(url: str | None) -> str | None:
    """A link behind Meta's redirect (l.threads.net/?u=<link>) is the link itself."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc.lower().startswith("l.") and (target := parse_qs(parts.query).get("u")):
        return web_url(target[0])
    return url


def _threads(d: dict[str, Any], p: str) -> Post:
    pid = _post_id("threads", d.get("code"), p + "code")
    channel, name = _meta_author(d, "threads", p)
    text = text_field(_obj(d.get("caption"), p + "caption").get("text"), p + "caption.text")
    info = _obj(d.get("text_post_app_info"), p + "text_post_app_info")
    attachments = _meta_media(d, p)
    preview = _obj(info.get("link_preview_attachment"), p + "text_post_app_info.link_preview_attachment")
    link = _unwrapped(_web(preview.get("url")))
    if link:
        title = preview.get("title") or preview.get("display_url")
        attachments.append(
            Attachment(
                "link_preview",
                url=link,
                title=title if isinstance(title, str) else None,
                thumbnail_url=_web(preview.get("image_url")),
            )
        )
    return Post(
        platform="threads",
        channel=channel,
        post_id=pid,
        url=platforms.post_url("threads", channel, pid),
        text=text,
        published_at=utc_time(d.get("taken_at"), p + "taken_at"),
        likes=count(d.get("like_count"), p + "like_count"),
        shares=count(info.get("repost_count"), p + "text_post_app_info.repost_count"),
        comments=count(info.get("direct_reply_count"), p + "text_post_app_info.direct_reply_count"),
        author_name=name,
        hashtags=hashtags_in(text),
        mentions=mentions_in(text),
        links=merged([link] if link else [], links_in(text)),
        attachments=attachments,
        media=media_urls(attachments),
    )


def _x_unwrapped(d: dict[str, Any], p: str) -> tuple[dict[str, Any], str]:
    """A tweet out of its "TweetWithVisibilityResults" wrapper; a withheld one is malformed."""
    typename = d.get("__typename")
    if typename in ("TweetTombstone", "TweetUnavailable"):
        raise RecordError(p + "__typename", f"{typename}: the tweet itself is not in the capture")
    if isinstance(d.get("tweet"), dict):
        return d["tweet"], p + "tweet."
    return d, p


def _x_author(d: dict[str, Any], legacy: dict[str, Any]) -> tuple[str | None, str | None, Any]:
    """(screen name, display name, account id): from the user result's `core` (newer) or
    `legacy`, the legacy format's `user`, or the author an X media link names."""
    user = _at(d, "core.user_results.result")
    user = user if isinstance(user, dict) else {}
    screen = _at(user, "core.screen_name") or _at(user, "legacy.screen_name") or _at(d, "user.screen_name")
    name = _at(user, "core.name") or _at(user, "legacy.name") or _at(d, "user.name")
    if not isinstance(screen, str) or not screen:
        screen = None
        for key in ("extended_entities", "entities"):
            for m in _objs(_at(legacy, f"{key}.media"), "media"):
                if match := _X_MEDIA_AUTHOR.match(str(m.get("expanded_url") or "")):
                    screen = match.group(1)
                    break
            if screen:
                break
    account_id = legacy.get("user_id_str") or user.get("rest_id") or _at(d, "user.id_str")
    return screen, name if isinstance(name, str) and name else None, account_id


def _x_words(d: dict[str, Any], legacy: dict[str, Any], p: str) -> tuple[str, dict[str, Any]]:
    """A tweet's whole text and its entities: a long post's `note_tweet`, else `full_text`."""
    note = _at(d, "note_tweet.note_tweet_results.result")
    if isinstance(note, dict) and isinstance(note.get("text"), str):
        return note["text"], _obj(
            note.get("entity_set"), p + "note_tweet.note_tweet_results.result.entity_set"
        )
    text = text_field(legacy.get("full_text", legacy.get("text")), p + "legacy.full_text")
    return text, _obj(legacy.get("entities"), p + "legacy.entities")


def _bitrate(variant: dict[str, Any]) -> int:
    rate = variant.get("bitrate")
    return rate if isinstance(rate, int) else 0


def _x(raw: dict[str, Any], prefix: str) -> Post:
    d, p = _x_unwrapped(raw, prefix)
    legacy = _obj(d.get("legacy"), p + "legacy")
    pid = _post_id("x", d.get("rest_id") or legacy.get("id_str") or d.get("id"), p + "rest_id")
    screen, name, account_id = _x_author(d, legacy)
    channel = account("x", screen, account_id, p + "core.user_results.result.core.screen_name")
    # Without a screen name the canonical URL cannot be built; X's id-only permalink can.
    url = platforms.post_url("x", channel, pid) if screen else f"https://x.com/i/web/status/{pid}"
    text, entities = _x_words(d, legacy, p)
    forwarded_from = forwarded_name = None
    retweet = _at(legacy, "retweeted_status_result.result")
    if isinstance(retweet, dict):
        # A repost: its text is the original's whole text, and it is credited like a forward.
        retweet, rp = _x_unwrapped(retweet, p + "legacy.retweeted_status_result.result.")
        rt_legacy = _obj(retweet.get("legacy"), rp + "legacy")
        rt_screen, forwarded_name, _ = _x_author(retweet, rt_legacy)
        text, entities = _x_words(retweet, rt_legacy, rp)
        if rt_screen:
            forwarded_from = platforms.account_url("x", account("x", rt_screen, None, rp + "core"))
    reply_to = None
    reply_id, reply_user = legacy.get("in_reply_to_status_id_str"), legacy.get("in_reply_to_screen_name")
    if isinstance(reply_id, str) and reply_id.isdigit() and isinstance(reply_user, str) and reply_user:
        try:
            reply_to = platforms.post_url("x", platforms.handle("x", reply_user), reply_id)
        except ValueError:
            reply_to = None  # not a screen name: the reply is kept without its parent
    urls = _objs(entities.get("urls"), p + "legacy.entities.urls")
    media = _objs(_at(legacy, "extended_entities.media"), p + "legacy.extended_entities.media") or _objs(
        _at(legacy, "entities.media"), p + "legacy.entities.media"
    )
    # The t.co links written in the text stand for the expanded links and the media.
    shortened = {u.get("url") for u in [*urls, *media]}
    links = [link for u in urls if (link := _web(u.get("expanded_url")))]
    attachments = []
    for m in media:
        picture = _web(m.get("media_url_https"))
        if m.get("type") == "photo" and picture:
            attachments.append(Attachment("photo", url=picture))
        elif m.get("type") in ("video", "animated_gif"):
            variants = [
                v
                for v in _objs(_at(m, "video_info.variants"), "video_info.variants")
                if str(v.get("content_type", "")).startswith("video/") and _web(v.get("url"))
            ]
            variants.sort(key=_bitrate, reverse=True)
            millis = _at(m, "video_info.duration_millis")
            attachments.append(
                Attachment(
                    "video",
                    url=variants[0]["url"] if variants else None,
                    thumbnail_url=picture,
                    duration=millis // 1000 if isinstance(millis, int) and millis > 0 else None,
                )
            )
    views = _obj(d.get("views"), p + "views")
    return Post(
        platform="x",
        channel=channel,
        post_id=pid,
        url=url,
        text=text,
        published_at=utc_time(legacy.get("created_at"), p + "legacy.created_at"),
        views=count(views.get("count"), p + "views.count"),
        likes=count(legacy.get("favorite_count"), p + "legacy.favorite_count"),
        shares=reposts(
            count(legacy.get("retweet_count"), p + "legacy.retweet_count"),
            count(legacy.get("quote_count"), p + "legacy.quote_count"),
        ),
        comments=count(legacy.get("reply_count"), p + "legacy.reply_count"),
        forwarded_from=forwarded_from,
        forwarded_from_name=forwarded_name if isinstance(forwarded_name, str) else None,
        reply_to=reply_to,
        author_name=name,
        hashtags=merged(
            _words([h.get("text") for h in _objs(entities.get("hashtags"), "hashtags")]), hashtags_in(text)
        ),
        mentions=merged(
            [
                m.lower()
                for m in _words([u.get("screen_name") for u in _objs(entities.get("user_mentions"), "m")])
            ],
            mentions_in(text),
        ),
        links=merged(links, [link for link in links_in(text) if link not in shortened]),
        attachments=attachments,
        media=media_urls(attachments),
    )


MAPPERS: dict[str, Callable[[dict[str, Any], str], Post]] = {
    "tiktok": _tiktok,
    "instagram": _instagram,
    "x": _x,
    "threads": _threads,
}


def kept_platform(value: Any) -> str | None:
    """Vigie's name for a capture's platform ("tiktok.com" is "tiktok"), None when Vigie
    does not read that platform's captures."""
    if not isinstance(value, str):
        return None
    try:
        name = platforms.platform_name(value)
    except ValueError:
        return None
    return name if name in MAPPERS else None


def map_item(platform: str, data: Any, prefix: str, sha256: str, captured_at: str) -> Post:
    """The post in one captured object of `platform`; `prefix` is where the object sits in
    the record ("data." in a Zeeschuimer item), so an error names the field as the file has it."""
    if not isinstance(data, dict):
        raise RecordError(prefix.rstrip(".") or "record", f"expected an object, found {type(data).__name__}")
    post = MAPPERS[platform](data, prefix)
    post.payload_sha256 = sha256
    post.captured_at = captured_at
    return post


def take_item(
    result: ImportResult,
    record: Record,
    name: Any,
    platform: str | None,
    meta: dict[str, Any],
    prefix: str,
    unkept: Counter[str],
    missing: str,
) -> None:
    """One captured item (`item_parts`) into `result`: its post, or a skip naming why (no
    platform: `missing`; a platform Vigie does not keep: counted in `unkept`)."""
    field = "source_platform" if prefix else "__import_meta.source_platform"
    if platform is None:
        if not name:
            result.skip(record.where, RecordError(field, missing))
            return
        unkept[str(name)] += 1
        result.skip(record.where, RecordError(field, f"{str(name)[:40]!r} is not a platform Vigie keeps"))
        return
    try:
        when = captured_at(meta, "timestamp_collected" if prefix else "__import_meta.timestamp_collected")
        with one_record():
            post = map_item(platform, captured_object(record.value, prefix), prefix, record.sha256, when)
    except RecordError as exc:
        result.skip(record.where, exc)
        return
    result.posts.append(post)


def item_parts(value: Any) -> tuple[Any, dict[str, Any], str]:
    """(the platform as the record names it, the captured object, its field prefix) of a
    Zeeschuimer item (`data` beside its metadata) or a 4CAT NDJSON line (the object with
    the metadata in `__import_meta`); (None, {}, "") for anything else."""
    if isinstance(value, dict) and isinstance(value.get("data"), dict):
        return value.get("source_platform"), value, "data."
    if isinstance(value, dict) and isinstance(value.get("__import_meta"), dict):
        meta = value["__import_meta"]
        return meta.get("source_platform"), meta, ""
    return None, {}, ""


def captured_object(value: dict[str, Any], prefix: str) -> Any:
    if prefix:
        return value.get("data")
    return {k: v for k, v in value.items() if k != "__import_meta"}


def captured_at(meta: dict[str, Any], field: str) -> str:
    """When the tool collected the item (`timestamp_collected`, milliseconds), "" if unsaid."""
    return utc_time(meta.get("timestamp_collected"), field) or ""


def unkept_warnings(unkept: Counter[str]) -> list[str]:
    """One line per platform whose records were left out."""
    readable = ", ".join(sorted(MAPPERS))
    return [
        f"{n} {name[:40]!r} record(s) left out: Vigie reads {readable} captures"
        for name, n in sorted(unkept.items())
    ]
