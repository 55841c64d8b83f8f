"""Importer for Telegram Desktop's "Export chat history" JSON (`result.json`).

Analysts export groups the public preview does not show. Both a single chat export and
a full account export (`chats.list`) are read. Dates come from `date_unixtime`, since
`date` is the exporting machine's local time without an offset.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigie.errors import InputFormatError
from vigie.records import MAX_INTEGER, Post
from vigie.sanitize import web_url, web_url_or_path

_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")


@dataclass
class ImportResult:
    chats: int = 0
    posts: list[Post] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


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


def _when(message: dict[str, Any], key: str) -> str | None:
    unix = message.get(f"{key}_unixtime")
    if unix is not None and re.fullmatch(r"[0-9]{1,12}", str(unix)):
        try:
            return datetime.fromtimestamp(int(unix), UTC).isoformat()
        except (OverflowError, OSError, ValueError):  # beyond the years datetime holds
            pass
    raw = message.get(key)
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            return None
        return parsed.isoformat() if parsed.tzinfo else parsed.replace(tzinfo=UTC).isoformat()
    return None


def _chat_posts(
    chat: dict[str, Any], channel: str | None, captured_at: str, result: ImportResult
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
        media = [
            path
            for k in ("photo", "file")
            if isinstance(message.get(k), str) and (path := web_url_or_path(message[k]))
        ]
        reply = message.get("reply_to_message_id")
        url = f"https://t.me/{name}/{post_id}" if username else f"https://t.me/c/{chat_id}/{post_id}"
        yield Post(
            platform="telegram",
            channel=name,
            post_id=post_id,
            url=url,
            text=text,
            published_at=_when(message, "date"),
            views=None,
            forwarded_from=str(message["forwarded_from"]) if message.get("forwarded_from") else None,
            reply_to=url.rsplit("/", 1)[0] + f"/{reply}" if isinstance(reply, int) else None,
            edited=bool(message.get("edited")),
            media=media,
            links=list(dict.fromkeys(links)),
            payload_sha256=hashlib.sha256(
                json.dumps(message, ensure_ascii=False, sort_keys=True).encode("utf-8")
            ).hexdigest(),
            captured_at=captured_at,
        )


def read_export(path: str | Path, channel: str | None = None) -> ImportResult:
    """Read a `result.json`. `channel` names the source when the export has no username."""
    file = Path(path)
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
            result.posts.extend(_chat_posts(chat, channel, captured_at, result))
        except InputFormatError as exc:
            raise InputFormatError(f"{file}: {exc}") from None
        result.chats += 1
    return result
