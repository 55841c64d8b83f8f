"""Importer for Telegram Desktop's "Export chat history" JSON (`result.json`).

Analysts export groups the public preview does not show. Both a single chat export and
a full account export (`chats.list`) are read. Dates come from `date_unixtime`, since
`date` is the exporting machine's local time without an offset; older exports have only
`date`, converted to UTC when the exporting machine's time zone is given and otherwise kept
without an offset (and counted in `ImportResult.warnings`).

Every photo, file, poll, contact and location becomes an `Attachment`. A file the export
left out ("(File not included. Change data exporting settings to download.)") has no path:
its attachment says why in `unavailable`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vigie.errors import InputFormatError
from vigie.records import MAX_INTEGER, Attachment, Post
from vigie.sanitize import web_url, web_url_or_path

_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
# Telegram Desktop writes a sentence in parentheses where a file's path would be.
_PLACEHOLDER = re.compile(r"^\(.*\)$", re.DOTALL)
# Telegram Desktop's media_type -> the attachment type; a file without one is a document.
_MEDIA_TYPES = {
    "sticker": "sticker",
    "voice_message": "voice",
    "video_message": "round_video",
    "video_file": "video",
    "animation": "video",
    "audio_file": "audio",
}


@dataclass
class ImportResult:
    chats: int = 0
    posts: list[Post] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # one line each, for the user
    local_times: int = 0  # messages whose time has no offset (no date_unixtime, no time zone)


def export_timezone(name: str) -> tzinfo | None:
    """The IANA time zone an export's local `date`s are in; "" for none. A bad name is a
    one-line InputFormatError."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputFormatError(
            f"unknown time zone {name[:60]!r}: expected an IANA name such as Europe/Istanbul or UTC"
        ) from None


def _text(value: Any) -> tuple[str, list[str]]:
    """Flatten `text` (a string or a list of strings and entity objects) and its links."""
    if isinstance(value, str):
        return value, []
    if not isinstance(value, list):
        return "", []
    parts, links = [], []
    for piece in value:
        if isinstance(piece, str):
            parts.append(piece)
        elif isinstance(piece, dict):
            parts.append(str(piece.get("text", "")))
            # Only http(s) links are kept as links; a `javascript:` href stays out.
            raw = piece.get("text") if piece.get("type") == "link" else piece.get("href")
            if raw and (url := web_url(str(raw))):
                links.append(url)
    return "".join(parts), links


def _when(message: dict[str, Any], key: str, zone: tzinfo | None) -> tuple[str | None, bool]:
    """The ISO time of `key`, and whether it is local wall-clock time of unknown offset."""
    unix = message.get(f"{key}_unixtime")
    if unix is not None and re.fullmatch(r"[0-9]{1,12}", str(unix)):
        try:
            return datetime.fromtimestamp(int(unix), UTC).isoformat(), False
        except (OverflowError, OSError, ValueError):  # beyond the years datetime holds
            pass
    raw = message.get(key)
    if not isinstance(raw, str):
        return None, False
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None, False
    if parsed.tzinfo:
        return parsed.isoformat(), False
    if zone is None:
        return parsed.isoformat(), True
    try:
        return parsed.replace(tzinfo=zone).astimezone(UTC).isoformat(), False
    except OverflowError:  # year 1 or 9999 shifted past what datetime holds
        return None, False


def _file(message: dict[str, Any], key: str) -> tuple[str | None, str | None]:
    """The path or URL of `message[key]`, or None with why it is missing."""
    value = message.get(key)
    if not isinstance(value, str) or not value.strip():
        return None, None
    if _PLACEHOLDER.match(value.strip()):
        return None, "too_big" if "exceeds maximum size" in value.lower() else "not_included"
    return web_url_or_path(value), None


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INTEGER:
        return value
    return None


def _words(value: Any) -> str | None:
    """A non-empty string field, trimmed; anything else is None."""
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _attachments(message: dict[str, Any]) -> list[Attachment]:
    found = []
    if "photo" in message:
        url, missing = _file(message, "photo")
        found.append(
            Attachment(
                type="photo", url=url, size=_count(message.get("photo_file_size")), unavailable=missing
            )
        )
    if "file" in message:
        url, missing = _file(message, "file")
        kind = _MEDIA_TYPES.get(str(message.get("media_type")), "document")
        thumbnail, _ = _file(message, "thumbnail")
        audio_title = " – ".join(
            t for t in (_words(message.get("title")), _words(message.get("performer"))) if t
        )
        found.append(
            Attachment(
                type=kind,
                url=url,
                name=_words(message.get("file_name")),
                size=_count(message.get("file_size")),
                duration=_count(message.get("duration_seconds")),
                thumbnail_url=thumbnail,
                title=(audio_title or None) if kind == "audio" else None,
                unavailable=missing,
            )
        )
    poll = message.get("poll")
    if isinstance(poll, dict):
        answers = poll.get("answers")
        options = [
            t
            for a in (answers if isinstance(answers, list) else [])
            if isinstance(a, dict) and (t := _words(a.get("text")))
        ]
        found.append(Attachment(type="poll", question=_words(poll.get("question")), options=options or None))
    contact = message.get("contact_information")
    if isinstance(contact, dict):
        name = " ".join(t for t in (_words(contact.get("first_name")), _words(contact.get("last_name"))) if t)
        found.append(Attachment(type="contact", title=name or None, name=_words(contact.get("phone_number"))))
    location = message.get("location_information")
    if isinstance(location, dict):
        lat, lon = location.get("latitude"), location.get("longitude")
        where = (
            f"{lat},{lon}"
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon))
            else None
        )
        place = ", ".join(t for t in (_words(message.get("place_name")), _words(message.get("address"))) if t)
        found.append(Attachment(type="location", title=place or where))
    return found


def _chat_posts(
    chat: dict[str, Any], channel: str | None, captured_at: str, zone: tzinfo | None, result: ImportResult
) -> Iterator[Post]:
    chat_id = chat.get("id")
    username = channel or (str(chat["username"]) if _USERNAME.match(str(chat.get("username", ""))) else None)
    name = (username or f"c{chat_id}").lower()
    messages = chat.get("messages")
    if not isinstance(messages, list):
        raise InputFormatError(
            f"chat {chat.get('name', chat_id)!r}: field 'messages' is missing or not a list"
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("type", "message") != "message":
            continue
        post_id = message.get("id")
        if not isinstance(post_id, int) or isinstance(post_id, bool) or post_id <= 0:
            result.skipped.append(f"messages[{index}]: no positive integer id")
            continue
        if post_id > MAX_INTEGER:
            result.skipped.append(f"messages[{index}]: id out of range (1 to {MAX_INTEGER})")
            continue
        text, links = _text(message.get("text_entities") or message.get("text", ""))
        attachments = _attachments(message)
        media = [a.url for a in attachments if a.url and a.type not in ("poll", "contact", "location")]
        published_at, local = _when(message, "date", zone)
        result.local_times += local
        reply = message.get("reply_to_message_id")
        url = f"https://t.me/{name}/{post_id}" if username else f"https://t.me/c/{chat_id}/{post_id}"
        yield Post(
            platform="telegram",
            channel=name,
            post_id=post_id,
            url=url,
            text=text,
            published_at=published_at,
            views=None,
            # An export names a forward's author, never links it.
            forwarded_from=str(message["forwarded_from"]) if message.get("forwarded_from") else None,
            forwarded_from_name=_words(message.get("forwarded_from")),
            reply_to=url.rsplit("/", 1)[0] + f"/{reply}" if isinstance(reply, int) else None,
            edited=bool(message.get("edited")),
            media=media,
            links=list(dict.fromkeys(links)),
            attachments=attachments,
            payload_sha256=hashlib.sha256(
                json.dumps(message, ensure_ascii=False, sort_keys=True).encode("utf-8")
            ).hexdigest(),
            captured_at=captured_at,
        )


def read_export(path: str | Path, channel: str | None = None, timezone: str = "") -> ImportResult:
    """Read a `result.json`. `channel` names the source when the export has no username;
    `timezone` (an IANA name) is where the exporting machine was, for exports whose
    messages carry only local `date`s."""
    file = Path(path)
    zone = export_timezone(timezone)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputFormatError(f"{file}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputFormatError(f"{file}: not UTF-8 text; is this a Telegram Desktop JSON export?") from None
    except json.JSONDecodeError as exc:
        raise InputFormatError(
            f"{file}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError:  # Python refuses integers of thousands of digits
        raise InputFormatError(f"{file}: invalid JSON: a number too long to read") from None
    except RecursionError:
        raise InputFormatError(f"{file}: invalid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise InputFormatError(f"{file}: expected a JSON object with 'messages' (Telegram Desktop export)")
    if "messages" in data:
        chats = [data]
    elif isinstance(data.get("chats"), dict) and isinstance(data["chats"].get("list"), list):
        chats = [c for c in data["chats"]["list"] if isinstance(c, dict)]
        if channel and len(chats) > 1:
            raise InputFormatError(f"{file}: --channel names one chat, but the export holds {len(chats)}")
    else:
        raise InputFormatError(f"{file}: no 'messages' and no 'chats.list': not a Telegram Desktop export")
    result = ImportResult()
    captured_at = datetime.fromtimestamp(file.stat().st_mtime, UTC).isoformat(timespec="seconds")
    for chat in chats:
        try:
            result.posts.extend(_chat_posts(chat, channel, captured_at, zone, result))
        except InputFormatError as exc:
            raise InputFormatError(f"{file}: {exc}") from None
        result.chats += 1
    if result.local_times:
        result.warnings.append(
            f"{file}: {result.local_times} message(s) have no date_unixtime (an older export), so their "
            "times are the exporting machine's local time, kept without an offset; give that machine's "
            "time zone with --timezone (e.g. Europe/Istanbul) or telegram.export_timezone to store them in UTC"
        )
    return result
