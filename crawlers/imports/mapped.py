"""Posts from other tools' plain files: a CSV with a header row, or JSON Lines (.jsonl,
.ndjson), whose columns the user maps onto post fields (`vigie.config.CSV_FIELDS`).

text, post_id and channel must be mapped; the platform comes from a column or from the
caller. A cell holding a list (hashtags, mentions, links, media) is split on commas, spaces
or '|'; JSON Lines may hold real lists. A post's URL is built from handle and id where the
platform's URLs follow from them, so only Facebook rows need a `url` column."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import tzinfo
from pathlib import Path
from typing import Any

from crawlers.imports.common import (
    LINES_SUFFIXES,
    ImportResult,
    Record,
    RecordError,
    count,
    csv_header,
    csv_rows,
    files,
    hashtags_in,
    json_lines,
    links_in,
    mentions_in,
    merged,
    one_record,
    text_field,
    utc_time,
    zone,
)
from vigie import platforms
from vigie.config import CSV_FIELDS
from vigie.errors import InputFormatError
from vigie.records import Attachment, Post
from vigie.sanitize import web_url

REQUIRED = ("text", "post_id", "channel")
# Platforms whose post URL cannot be built from handle and id.
_URL_REQUIRED = ("facebook",)
_SPLIT = re.compile(r"[\s,|]+")
_VIDEO_FILE = re.compile(r"\.(mp4|mov|webm|m4v)(\?|$)", re.IGNORECASE)


class _OtherPlatform(RecordError):
    """A row of a platform Vigie does not keep: counted, not listed row by row."""

    def __init__(self, name: str) -> None:
        super().__init__("platform", f"{name[:40]!r} is not a platform Vigie keeps")
        self.name = name


def _checked(columns: dict[str, str], platform: str) -> tuple[dict[str, str], str]:
    unknown = sorted(set(columns) - set(CSV_FIELDS))
    if unknown:
        raise InputFormatError(
            f"unknown post field(s) in the column mapping: {', '.join(unknown)}; expected {', '.join(CSV_FIELDS)}"
        )
    mapping = {f: c.strip() for f, c in columns.items() if isinstance(c, str) and c.strip()}
    for field in REQUIRED:
        if field not in mapping:
            raise InputFormatError(
                f"the column mapping names no column for {field!r} (required: {', '.join(REQUIRED)})"
            )
    name = ""
    if platform:
        try:
            name = platforms.platform_name(platform)
        except ValueError as exc:
            raise InputFormatError(str(exc)) from None
    elif "platform" not in mapping:
        raise InputFormatError("no platform: map a column to 'platform' or give the platform of every row")
    return mapping, name


def _cell(row: dict[str, Any], column: str) -> Any:
    """A row's value under `column`; in JSON Lines a dotted name reaches inside objects."""
    if column in row or "." not in column:
        return row.get(column)
    value: Any = row
    for part in column.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _items(value: Any, column: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v for v in _SPLIT.split(value.strip()) if v]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise RecordError(column, "expected a list or a text of items separated by commas, spaces or '|'")


def _text(value: Any, column: str) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return text_field(value, column)


def _post(
    row: dict[str, Any], mapping: dict[str, str], platform: str, local: tzinfo | None, sha256: str
) -> Post:
    def get(field: str) -> Any:
        return _cell(row, mapping[field]) if field in mapping else None

    named = _text(get("platform"), mapping.get("platform", "platform")).strip()
    if named:
        try:
            platform = platforms.platform_name(named)
        except ValueError:
            raise _OtherPlatform(named) from None
    if not platform:
        raise RecordError(
            mapping.get("platform", "platform"), "empty, and no platform was given for every row"
        )
    account = _text(get("channel"), mapping["channel"]).strip()
    if not account:
        raise RecordError(mapping["channel"], "missing")
    try:
        channel = platforms.handle(platform, account)
    except ValueError as exc:
        raise RecordError(mapping["channel"], str(exc)) from None
    raw_id = get("post_id")
    if raw_id is None or raw_id == "":
        raise RecordError(mapping["post_id"], "missing")
    try:
        post_id = platforms.post_id(platform, raw_id.strip() if isinstance(raw_id, str) else raw_id)
    except ValueError as exc:
        raise RecordError(mapping["post_id"], str(exc)) from None
    given = _text(get("url"), mapping.get("url", "url")).strip()
    if given:
        url = web_url(given)
        if url is None:
            raise RecordError(mapping["url"], f"{given[:60]!r} is not an http(s) URL")
    elif platform in _URL_REQUIRED:
        raise RecordError(
            mapping.get("url", "url"), f"missing: a {platform} post's URL does not follow from its id"
        )
    else:
        url = platforms.post_url(platform, channel, post_id)
    text = _text(get("text"), mapping["text"])
    media = [u for u in _items(get("media"), mapping.get("media", "media")) if web_url(u)]
    attachments = [Attachment(type="video" if _VIDEO_FILE.search(u) else "photo", url=u) for u in media]
    author = _text(get("author_name"), mapping.get("author_name", "author_name")).strip()

    def number(field: str) -> int | None:
        return count(get(field), mapping.get(field, field))

    return Post(
        platform=platform,
        channel=channel,
        post_id=post_id,
        url=url,
        text=text,
        published_at=utc_time(get("published_at"), mapping.get("published_at", "published_at"), local),
        author_name=author or None,
        views=number("views"),
        likes=number("likes"),
        shares=number("shares"),
        comments=number("comments"),
        hashtags=merged(
            [h.lstrip("#") for h in _items(get("hashtags"), mapping.get("hashtags", "hashtags"))],
            hashtags_in(text),
        ),
        mentions=merged(
            [m.lstrip("@").lower() for m in _items(get("mentions"), mapping.get("mentions", "mentions"))],
            mentions_in(text),
        ),
        links=merged(
            [u for u in _items(get("links"), mapping.get("links", "links")) if web_url(u)], links_in(text)
        ),
        attachments=attachments,
        media=media,
        payload_sha256=sha256,
    )


def _is_lines(path: Path) -> bool:
    if path.suffix.lower() in LINES_SUFFIXES:
        return True
    if path.suffix.lower() in (".csv", ".txt"):
        return False
    try:
        with path.open("rb") as handle:
            first = next((line for line in handle if line.strip()), b"")
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return first.lstrip().startswith(b"{")


def _rows(
    path: Path, mapping: dict[str, str], result: ImportResult
) -> Iterator[tuple[str, dict[str, Any], str]]:
    if _is_lines(path):
        for item in json_lines(path):
            if not isinstance(item, Record):
                result.records += 1
                result.skip(*item)
            elif not isinstance(item.value, dict):
                result.records += 1
                result.skip(
                    item.where, RecordError("line", f"expected an object, found {type(item.value).__name__}")
                )
            else:
                yield item.where, item.value, item.sha256
        return
    header = csv_header(path)
    for field, column in mapping.items():
        if column not in header:
            raise InputFormatError(f"{path}:1: no column {column[:60]!r} (mapped to {field!r}) in the header")
    width = len(set(header))
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
        yield where, row, sha256


def read_mapped(
    paths: list[Path], columns: dict[str, str], platform: str = "", timezone: str = ""
) -> ImportResult:
    """Posts from CSV or JSON Lines files whose `columns` map post fields to the file's
    column names. `platform` is every row's when no column names it; `timezone` (an IANA
    name) is where times written without an offset were taken."""
    mapping, default = _checked(columns, platform)
    local = zone(timezone)
    result = ImportResult()
    others: Counter[str] = Counter()
    for path in files(list(paths)):
        for where, row, sha256 in _rows(path, mapping, result):
            result.records += 1
            try:
                with one_record():
                    result.posts.append(_post(row, mapping, default, local, sha256))
            except _OtherPlatform as exc:
                others[exc.name.strip().lower()[:40]] += 1
            except RecordError as exc:
                result.skip(where, exc)
    for name, n in sorted(others.items()):
        result.warnings.append(
            f"{n} row(s) of platform {name!r} skipped: Vigie keeps {', '.join(platforms.PLATFORMS)}"
        )
    return result
