"""Meta Content Library exports as posts: the CSV the Content Library's web UI downloads
(nested fields flattened to dotted columns: `post_owner.username`, `statistics.views`…)
and the JSON / JSON Lines records of its API search results, for Facebook and Instagram
posts.

Each record names its platform in a `platform` field, its permalink's host, the file's name
or, failing those, the shape of its owner and statistics (Facebook owners are Pages, groups,
events and profiles; Instagram's are business, creator and personal accounts; only Facebook
counts reactions and shares). A Facebook post's URL does not follow from its Page and id,
so the record's own permalink is kept when it has one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crawlers.imports.common import (
    ImportResult,
    Record,
    RecordError,
    canonical_sha256,
    count,
    csv_header,
    csv_rows,
    files,
    hashtags_in,
    is_json_lines,
    json_document,
    json_lines,
    links_in,
    mentions_in,
    merged,
    one_record,
    text_field,
    utc_time,
)
from vigie import platforms
from vigie.records import Attachment, Post
from vigie.sanitize import web_url

_FACEBOOK_OWNERS = {"page", "group", "event", "profile", "user"}
_INSTAGRAM_OWNERS = {"business", "creator", "personal"}
_VIDEO_FILE = re.compile(r"\.(mp4|mov|webm|m4v)(\?|$)", re.IGNORECASE)


class _OtherPlatform(RecordError):
    """A record of a platform Vigie does not keep: counted, not listed record by record."""

    def __init__(self, name: str) -> None:
        super().__init__("platform", f"{name[:40]!r} is not a platform Vigie keeps")
        self.name = name.strip().lower()[:40]


def _nested(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row's dotted columns as the API's nested record."""
    record: dict[str, Any] = {}
    for column, cell in row.items():
        node = record
        *parents, leaf = column.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = cell
    return record


def _owner(record: dict[str, Any]) -> dict[str, Any]:
    """`post_owner`, whether the API wrapped it in `data` (Facebook) or not (Instagram)."""
    owner = record.get("post_owner")
    if isinstance(owner, dict) and "data" in owner:
        owner = owner["data"]
    if isinstance(owner, list):
        owner = owner[0] if owner else {}
    return owner if isinstance(owner, dict) else {}


def _platform(record: dict[str, Any], owner: dict[str, Any], permalink: str | None, file: str) -> str:
    named = record.get("platform") or record.get("product")
    if isinstance(named, str) and named.strip():
        try:
            return platforms.platform_name(named)
        except ValueError:
            raise _OtherPlatform(named) from None
    if permalink:
        host = (urlsplit(permalink).hostname or "").removeprefix("www.").removeprefix("m.")
        if host in ("facebook.com", "fb.com", "instagram.com"):
            return "instagram" if host == "instagram.com" else "facebook"
    kind = str(owner.get("type") or "").strip().lower()
    if kind in _FACEBOOK_OWNERS or "surface" in record:
        return "facebook"
    if kind in _INSTAGRAM_OWNERS:
        return "instagram"
    name = file.lower()
    for word, platform in (("instagram", "instagram"), ("facebook", "facebook")):
        if word in name:
            return platform
    statistics = record.get("statistics")
    if isinstance(statistics, dict) and ("reaction_count" in statistics or "share_count" in statistics):
        return "facebook"
    raise RecordError(
        "platform", "cannot tell Facebook from Instagram (no platform, permalink or owner type)"
    )


def _attachments(value: Any, field: str) -> list[Attachment]:
    """`multimedia`: the API's list of {type, url}, or the CSV's cell (JSON or URLs)."""
    if isinstance(value, str):
        cell = value.strip()
        if not cell:
            return []
        if cell[0] in "[{":
            try:
                value = json.loads(cell)
            except json.JSONDecodeError:
                raise RecordError(field, "not a JSON list of media") from None
        else:
            value = [{"url": u} for u in re.split(r"[\s,|]+", cell) if u]
    if isinstance(value, dict):
        value = value.get("data", [value])
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(field, "expected a list of media")
    found = []
    for item in value:
        if not isinstance(item, dict):
            continue
        url = web_url(item.get("url") if isinstance(item.get("url"), str) else None)
        kind = str(item.get("type") or "").lower()
        if kind == "video" or (not kind and url and _VIDEO_FILE.search(url)):
            thumbnail = item.get("thumbnail_url") or item.get("preview_url")
            found.append(
                Attachment(
                    type="video",
                    url=url,
                    thumbnail_url=web_url(thumbnail) if isinstance(thumbnail, str) else None,
                )
            )
        elif url:
            found.append(Attachment(type="photo", url=url))
    return found


def _hashtags(value: Any) -> list[str]:
    if isinstance(value, str):
        value = (
            re.split(r"[\s,|]+", value.strip())
            if value.strip() and value.strip()[0] != "["
            else _json_list(value)
        )
    if not isinstance(value, list):
        return []
    return [v.strip().lstrip("#") for v in value if isinstance(v, str) and v.strip().lstrip("#")]


def _json_list(cell: str) -> list[Any]:
    try:
        value = json.loads(cell)
    except json.JSONDecodeError:
        raise RecordError("hashtags", "not a JSON list") from None
    return value if isinstance(value, list) else []


def _library_url(record: dict[str, Any], platform: str) -> str | None:
    """An Instagram post's Content Library link, when it has no permalink: its id is the
    Library's, not the shortcode a public URL needs."""
    link = record.get("mcl_url")
    return web_url(link.strip()) if platform == "instagram" and isinstance(link, str) else None


def _post(record: Any, sha256: str, file: str) -> Post:
    if not isinstance(record, dict):
        raise RecordError("record", f"expected an object, found {type(record).__name__}")
    if record.get("id") in (None, ""):
        raise RecordError("id", "missing")
    owner = _owner(record)
    link = record.get("permalink") or record.get("permalink_url") or record.get("url")
    permalink = web_url(link.strip()) if isinstance(link, str) else None
    platform = _platform(record, owner, permalink, file)
    # An Instagram post is keyed by its shortcode, as every other importer keys it; the
    # Library's own id is kept only where the permalink does not give one.
    code = re.search(r"/(?:p|reel|tv)/([A-Za-z0-9_-]+)", permalink or "") if platform == "instagram" else None
    try:
        post_id = platforms.post_id(platform, code.group(1) if code else record["id"])
    except ValueError as exc:
        raise RecordError("id", str(exc)) from None
    account = owner.get("username") or owner.get("id")
    if account in (None, ""):
        raise RecordError("post_owner", "missing (no username and no id)")
    try:
        channel = platforms.handle(platform, str(account))
    except ValueError as exc:
        raise RecordError("post_owner.username", str(exc)) from None
    text = text_field(record.get("text"), "text")
    statistics = record.get("statistics")
    stats: dict[str, Any] = statistics if isinstance(statistics, dict) else {}

    def stat(name: str) -> int | None:
        return count(stats.get(name, record.get(name)), f"statistics.{name}")

    likes = stat("like_count")
    if platform == "facebook":
        reactions = stat("reaction_count")
        likes = reactions if reactions is not None else likes
    attached = record.get("link_attachment") or record.get("link_attachment_fields")
    attached_link = attached.get("link") if isinstance(attached, dict) else None
    link_url = web_url(attached_link.strip()) if isinstance(attached_link, str) else None
    attachments = _attachments(record.get("multimedia"), "multimedia")
    name = owner.get("name")
    return Post(
        platform=platform,
        channel=channel,
        post_id=post_id,
        url=permalink or _library_url(record, platform) or platforms.post_url(platform, channel, post_id),
        text=text,
        published_at=utc_time(record.get("creation_time"), "creation_time"),
        author_name=name if isinstance(name, str) and name else None,
        views=stat("views"),
        likes=likes,
        shares=stat("share_count"),
        comments=stat("comment_count"),
        hashtags=merged(_hashtags(record.get("hashtags")), hashtags_in(text)),
        mentions=mentions_in(text),
        links=merged([link_url] if link_url else [], links_in(text)),
        attachments=attachments,
        media=[u for a in attachments if (u := a.url or a.thumbnail_url)],
        payload_sha256=sha256,
    )


def _in_document(value: Any, where: str, sha256: str) -> Iterator[tuple[str, Any, str]]:
    """The posts of one JSON value: a search response (`data`), a list, or one post."""
    if isinstance(value, dict) and isinstance(value.get("data"), list) and "id" not in value:
        value = value["data"]
    if isinstance(value, list):
        for number, item in enumerate(value, start=1):
            yield f"{where} record {number}", item, canonical_sha256(item)
    else:
        yield where, value, sha256 or canonical_sha256(value)


def _records(path: Path, result: ImportResult) -> Iterator[tuple[str, Any, str]]:
    if path.suffix.lower() == ".csv":
        width = len(set(csv_header(path)))
        for where, row, sha256 in csv_rows(path):
            if sha256.startswith("error: ") or len(row) < width:
                result.records += 1
                reason = (
                    sha256.removeprefix("error: ")
                    if sha256.startswith("error: ")
                    else (f"{len(row)} of the header's {width} columns (a cut or broken row)")
                )
                result.skip(where, RecordError("row", reason))
                continue
            yield where, _nested(row), sha256
    elif is_json_lines(path):
        for item in json_lines(path):
            if isinstance(item, Record):
                yield from _in_document(item.value, item.where, item.sha256)
            else:
                result.records += 1
                result.skip(*item)
    else:
        yield from _in_document(json_document(path), path.name, "")


def read_meta_content_library(paths: list[Path]) -> ImportResult:
    """Posts from Meta Content Library CSV downloads and API results (see the module's docstring)."""
    result = ImportResult()
    guessed: dict[str, int] = {}
    others: dict[str, int] = {}
    for path in files(list(paths)):
        for where, record, sha256 in _records(path, result):
            result.records += 1
            try:
                with one_record():
                    post = _post(record, sha256, path.name)
            except _OtherPlatform as exc:
                others[exc.name] = others.get(exc.name, 0) + 1
                continue
            except RecordError as exc:
                result.skip(where, exc)
                continue
            result.posts.append(post)
            if (
                post.url == platforms.post_url(post.platform, post.channel, post.post_id)
                and post.platform == "instagram"
                and str(post.post_id).isdigit()  # the Library's id, not a shortcode
            ):
                guessed.setdefault(path.name, 0)
                guessed[path.name] += 1
    for name, n in sorted(others.items()):
        result.warnings.append(
            f"{n} record(s) of platform {name!r} skipped: Vigie keeps {', '.join(platforms.PLATFORMS)}"
        )
    for name, n in guessed.items():
        result.warnings.append(
            f"{name}: {n} Instagram post(s) have no permalink or mcl_url, so their URL is built from the "
            "Library's id and may not open; export with permalinks to refer them"
        )
    return result
