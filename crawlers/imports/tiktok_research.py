"""TikTok Research API video query results: what a researcher's script saves from
POST /v2/research/video/query/, as posts.

A file holds one response body (`{"data": {"videos": [...], "cursor", "has_more",
"search_id"}, "error": {...}}`), a plain list of videos, or JSON Lines of either (one
response per line, as a paging script appends them). A response whose `error.code` is not
"ok" is a warning naming the file and the code; its videos, if any, still import."""

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
    text_field,
    utc_time,
)
from vigie import platforms
from vigie.records import Attachment, Post


def _names(value: Any, field: str) -> list[str]:
    """A list of names (hashtags, mentions) as the API gives them; anything else is malformed."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError(field, "expected a list of names")
    return [v.strip().lstrip("#@") for v in value if v.strip()]


def _video_post(video: Any, sha256: str) -> Post:
    if not isinstance(video, dict):
        raise RecordError("video", f"expected an object, found {type(video).__name__}")
    if video.get("id") in (None, ""):
        raise RecordError("id", "missing")
    if not video.get("username"):
        raise RecordError("username", "missing")
    try:
        post_id = platforms.post_id("tiktok", video["id"])
    except ValueError as exc:
        raise RecordError("id", str(exc)) from None
    try:
        channel = platforms.handle("tiktok", text_field(video["username"], "username"))
    except ValueError as exc:
        raise RecordError("username", str(exc)) from None
    description = text_field(video.get("video_description"), "video_description")
    transcript = text_field(video.get("voice_to_text"), "voice_to_text").strip()
    text = f"{description}\n\n{transcript}" if transcript else description
    duration = count(video.get("video_duration"), "video_duration")
    return Post(
        platform="tiktok",
        channel=channel,
        post_id=post_id,
        url=platforms.post_url("tiktok", channel, post_id),
        text=text,
        published_at=utc_time(video.get("create_time"), "create_time"),
        views=count(video.get("view_count"), "view_count"),
        likes=count(video.get("like_count"), "like_count"),
        shares=count(video.get("share_count"), "share_count"),
        comments=count(video.get("comment_count"), "comment_count"),
        hashtags=merged(_names(video.get("hashtag_names"), "hashtag_names"), hashtags_in(text)),
        mentions=merged(
            [m.lower() for m in _names(video.get("video_mention_list"), "video_mention_list")],
            mentions_in(text),
        ),
        links=links_in(text),
        # The API gives no file or cover URL: the video is named, to be seen on the platform.
        attachments=[Attachment(type="video", duration=duration, unavailable="not_in_research_api")],
        payload_sha256=sha256,
    )


def _is_response(value: Any) -> bool:
    return isinstance(value, dict) and ("data" in value or "error" in value) and "id" not in value


def _response_videos(
    value: dict[str, Any], where: str, result: ImportResult
) -> Iterator[tuple[str, Any, str]]:
    error = value.get("error")
    if isinstance(error, dict) and str(error.get("code", "ok")) != "ok":
        message = str(error.get("message") or "")[:200]
        result.warnings.append(
            f"{where}: the API answered error code {str(error.get('code'))[:60]!r}"
            + (f" ({message})" if message else "")
        )
    data = value.get("data")
    if data is None or data == {}:
        return
    videos = data.get("videos") if isinstance(data, dict) else None
    if videos is None and isinstance(data, dict):
        return
    if not isinstance(videos, list):
        result.records += 1
        result.skip(where, RecordError("data.videos", "expected a list of videos"))
        return
    for number, video in enumerate(videos, start=1):
        yield f"{where} video {number}", video, canonical_sha256(video)


def _records(value: Any, where: str, sha256: str, result: ImportResult) -> Iterator[tuple[str, Any, str]]:
    """The videos of one JSON value (a response, a list of videos, or one video)."""
    if _is_response(value):
        yield from _response_videos(value, where, result)
    elif isinstance(value, list):
        for number, item in enumerate(value, start=1):
            if _is_response(item):
                yield from _response_videos(item, f"{where} response {number}", result)
            else:
                yield f"{where} video {number}", item, canonical_sha256(item)
    else:
        yield where, value, sha256


def _file_records(path: Path, result: ImportResult) -> Iterator[tuple[str, Any, str]]:
    if not is_json_lines(path):
        yield from _records(json_document(path), path.name, "", result)
        return
    for item in json_lines(path):
        if isinstance(item, Record):
            yield from _records(item.value, item.where, item.sha256, result)
        else:
            result.records += 1
            result.skip(*item)


def read_tiktok_research(paths: list[Path]) -> ImportResult:
    """Posts from TikTok Research API video query results (see the module's docstring)."""
    result = ImportResult()
    for path in files(list(paths)):
        for where, video, sha256 in _file_records(path, result):
            result.records += 1
            try:
                with one_record():
                    result.posts.append(_video_post(video, sha256 or canonical_sha256(video)))
            except RecordError as exc:
                result.skip(where, exc)
    return result
