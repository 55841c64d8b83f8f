"""Importer for 4CAT dataset exports: the CSV download (one row a post, the columns of the
datasource's `map_item`) and the NDJSON download (the original captured items, read as
Zeeschuimer's).

A 4CAT CSV does not name its platform; it shows in the datasource's columns and URLs
(`tiktok_url`, `https://www.instagram.com/p/...`, `https://x.com/...`). When neither the
file nor the caller says, the file is refused rather than guessed. Times come from
`unix_timestamp`, else `timestamp`, which 4CAT writes in UTC."""

from __future__ import annotations

from collections import Counter
from datetime import UTC
from pathlib import Path
from urllib.parse import urlsplit

from crawlers.imports._capture import (
    MAPPERS,
    account,
    item_parts,
    kept_platform,
    media_urls,
    take_item,
    unkept_warnings,
)
from crawlers.imports.common import (
    ImportResult,
    Record,
    RecordError,
    count,
    csv_rows,
    files,
    hashtags_in,
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
from vigie.errors import InputFormatError
from vigie.records import Attachment, Post
from vigie.sanitize import web_url

# Columns whose URL tells a dataset's platform, in the order they are trusted.
_URL_COLUMNS = ("tiktok_url", "url", "link", "collected_from_url", "post_source_domain")
_PLATFORM_COLUMNS = ("platform", "source_platform", "datasource")
# Each count and the columns 4CAT's datasources write it in (TikTok, Instagram, X, Threads).
_COUNTS = {
    "views": ("plays", "play_count", "views", "view_count", "impression_count"),
    "likes": ("likes", "like_count", "num_likes"),
    "shares": ("shares", "retweet_count", "reposts"),
    "comments": ("comments", "num_comments", "reply_count", "replies"),
}
_FIX = "pass the platform (--platform tiktok, instagram, x or threads)"


def read_4cat(paths: list[Path], platform: str | None = None) -> ImportResult:
    """Posts of 4CAT CSV and NDJSON exports. `platform` is the dataset's platform where the
    file does not name it."""
    given = None
    if platform:
        given = kept_platform(platform)
        if given is None:
            raise InputFormatError(
                f"platform {platform[:40]!r}: 4CAT exports are read for {', '.join(MAPPERS)}"
            )
    result = ImportResult()
    unkept: Counter[str] = Counter()
    for path in files(list(paths)):
        if _is_ndjson(path):
            result.extend(_read_ndjson(path, given, unkept))
        else:
            result.extend(_read_csv(path, given))
    result.warnings += unkept_warnings(unkept)
    return result


def _is_ndjson(path: Path) -> bool:
    if path.suffix.lower() in (".ndjson", ".jsonl", ".json"):
        return True
    if path.suffix.lower() == ".csv":
        return False
    try:
        with path.open("rb") as f:
            head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return head.startswith(b"{")


def _read_ndjson(path: Path, given: str | None, unkept: Counter[str]) -> ImportResult:
    result = ImportResult()
    records = list(json_lines(path))
    named = any(isinstance(r, Record) and item_parts(r.value)[0] for r in records)
    if records and not named and given is None:
        raise InputFormatError(f"{path}: the export does not say its platform; {_FIX}")
    for record in records:
        result.records += 1
        if not isinstance(record, Record):
            result.skip(*record)
            continue
        if not isinstance(record.value, dict):
            result.skip(
                record.where,
                RecordError("record", f"expected an object, found {type(record.value).__name__}"),
            )
            continue
        # A Zeeschuimer item, an item with 4CAT's `__import_meta`, or the captured object alone.
        name, meta, prefix = item_parts(record.value)
        platform = kept_platform(name) if name else given
        take_item(result, record, name, platform, meta, prefix, unkept, f"missing; {_FIX}")
    return result


def _platform_of(row: dict[str, str]) -> str | None:
    """The platform a row shows: a platform column, or the host of one of its URLs."""
    for column in _PLATFORM_COLUMNS:
        if name := kept_platform(row.get(column, "")):
            return name
    for column in _URL_COLUMNS:
        value = (row.get(column) or "").strip()
        host = urlsplit(value).netloc.lower().removeprefix("www.") if "://" in value else value.lower()
        if name := kept_platform(host.removeprefix("www.")):
            return name
    return None


def _read_csv(path: Path, given: str | None) -> ImportResult:
    result = ImportResult()
    rows = list(csv_rows(path))
    if rows and not any("id" in row for _, row, _ in rows):
        raise InputFormatError(f"{path}: not a 4CAT CSV export (no 'id' column)")
    said = {p for _, row, _ in rows if (p := _platform_of(row))}
    if len(said) > 1:
        raise InputFormatError(
            f"{path}: rows of several platforms ({', '.join(sorted(said))}): not one 4CAT dataset"
        )
    platform = next(iter(said), None) or given
    if rows and platform is None:
        raise InputFormatError(f"{path}: the export does not say its platform; {_FIX}")
    if given and platform != given:
        result.warnings.append(
            f"{path.name}: the export is a {platform} dataset; read as {platform}, not {given}"
        )
    width = max((len(row) for _, row, _ in rows), default=0)
    for where, row, sha256 in rows:
        result.records += 1
        if sha256.startswith("error: "):
            result.skip(where, RecordError("row", f"not a CSV row ({sha256.removeprefix('error: ')})"))
            continue
        if len(row) < width:
            # A row cut short: its cells would fill the wrong columns' places.
            result.skip(where, RecordError("row", f"{len(row)} cells where the header has {width}"))
            continue
        try:
            with one_record():
                result.posts.append(_row_post(str(platform), row, sha256))
        except RecordError as exc:
            result.skip(where, exc)
    return result


def _cells(row: dict[str, str], *columns: str) -> list[str]:
    """The comma-separated values 4CAT joins into one cell, of each column in turn."""
    return [v.strip() for c in columns for v in (row.get(c) or "").split(",") if v.strip()]


def _first(row: dict[str, str], columns: tuple[str, ...]) -> tuple[str, str]:
    """(column, value) of the first of `columns` the row fills."""
    for column in columns:
        if (row.get(column) or "").strip():
            return column, row[column]
    return columns[0], ""


def _row_count(row: dict[str, str], name: str) -> int | None:
    column, value = _first(row, _COUNTS[name])
    if value.strip() == "-1":
        return None  # 4CAT's "not known" (Instagram's num_comments)
    return count(value, column)


def _row_media(platform: str, row: dict[str, str]) -> list[Attachment]:
    url = web_url
    out: list[Attachment] = []
    if platform == "tiktok":
        video, cover = url(row.get("video_url") or ""), url(row.get("thumbnail_url") or "")
        if video or cover:
            out.append(Attachment("video", url=video, thumbnail_url=cover))
    elif platform == "instagram":
        # `image_urls` are what is shown, `media_urls` the files: they differ for videos.
        shown, files_ = _cells(row, "image_urls"), _cells(row, "media_urls")
        for i in range(max(len(shown), len(files_))):
            picture = url(shown[i]) if i < len(shown) else None
            file = url(files_[i]) if i < len(files_) else None
            if file and file != picture:
                out.append(Attachment("video", url=file, thumbnail_url=picture))
            elif picture or file:
                out.append(Attachment("photo", url=picture or file))
    else:
        out += [Attachment("photo", url=u) for v in _cells(row, "images", "image_url") if (u := url(v))]
        out += [Attachment("video", url=u) for v in _cells(row, "videos", "video_url") if (u := url(v))]
    return out


def _row_post(platform: str, row: dict[str, str], sha256: str) -> Post:
    raw_id = (row.get("id") or "").strip()
    if not raw_id:
        raise RecordError("id", "missing")
    try:
        pid = str(platforms.post_id(platform, raw_id))
    except ValueError as exc:
        raise RecordError("id", str(exc)) from None
    author = (row.get("author") or "").strip()
    channel = account(platform, author, (row.get("author_id") or "").strip(), "author")
    url = platforms.post_url(platform, channel, pid)
    if not author:
        # Without a handle the canonical URL cannot be built: the export's own link.
        url = web_url((row.get("link") or row.get("url") or "").strip()) or url
    text = text_field(row.get("body"), "body")
    if (row.get("unix_timestamp") or "").strip():
        published = utc_time(row["unix_timestamp"].strip(), "unix_timestamp")
    else:
        published = utc_time((row.get("timestamp") or "").strip(), "timestamp", UTC)
    name = (row.get("author_fullname") or row.get("author_full") or "").strip()
    structured_links = [u for v in _cells(row, "urls", "link_url") if (u := web_url(v))]
    attachments = _row_media(platform, row)
    return Post(
        platform=platform,
        channel=channel,
        post_id=pid,
        url=url,
        text=text,
        published_at=published,
        views=_row_count(row, "views"),
        likes=_row_count(row, "likes"),
        # X's shares are retweets and quote posts, as the other X importers count them.
        shares=reposts(_row_count(row, "shares"), count(row.get("quote_count"), "quote_count"))
        if platform == "x"
        else _row_count(row, "shares"),
        comments=_row_count(row, "comments"),
        author_name=name or None,
        hashtags=merged([h.lstrip("#") for h in _cells(row, "hashtags", "challenges")], hashtags_in(text)),
        mentions=merged([m.lstrip("@").lower() for m in _cells(row, "mentions")], mentions_in(text)),
        links=merged(structured_links, links_in(text)),
        attachments=attachments,
        media=media_urls(attachments),
        payload_sha256=sha256,
    )
