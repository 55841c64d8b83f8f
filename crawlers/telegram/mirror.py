"""A local stand-in for t.me: renders public channel preview pages from sample JSON.

Used by `vigie demo`, the tests and the benchmarks. It serves `/s/<channel>` and
`/s/<channel>?before=<id>` pages of the newest posts below `before`, like Telegram, and can
misbehave on purpose (429s, missing "more" links, broken HTML, hidden channels).
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

_URL = re.compile(r"(https?://[^\s<>\"]+|(?:wa\.me|t\.me)/[^\s<>\"]+|@[A-Za-z][A-Za-z0-9_]{3,31})")
_EMOJI = re.compile("[\U0001f1e6-\U0001f1ff]{2}|[\u2600-\u27bf\U0001f300-\U0001faff]\ufe0f?")


def sample_channels_dir() -> Path:
    return Path(__file__).resolve().parent / "samples" / "channels"


def load_channels(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    channels = {}
    for path in sorted((directory or sample_channels_dir()).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        channels[data["username"].lower()] = data
    return channels


def _emoji_html(match: re.Match[str]) -> str:
    char = match.group(0)
    code = char.encode("utf-8").hex().upper()
    return (
        f'<i class="emoji" style="background-image:url(\'//telegram.org/img/emoji/40/{code}.png\')">'
        f"<b>{char}</b></i>"
    )


def render_text(text: str) -> str:
    out = []
    for piece in _URL.split(text):
        if not piece:
            continue
        if _URL.fullmatch(piece):
            href = (
                piece
                if piece.startswith("http")
                else (f"https://t.me/{piece[1:]}" if piece.startswith("@") else f"https://{piece}")
            )
            out.append(
                f'<a href="{html.escape(href)}" target="_blank" rel="noopener">{html.escape(piece)}</a>'
            )
        else:
            out.append(_EMOJI.sub(_emoji_html, html.escape(piece)))
    return "".join(out).replace("\n", "<br/>")


def _views(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M".replace(".0M", "M")
    if n >= 1_000:
        return f"{n / 1_000:.2f}".rstrip("0").rstrip(".") + "K"
    return str(n)


def _media_url(channel: str, post_id: int, n: int, ext: str) -> str:
    digest = hashlib.sha1(f"{channel}/{post_id}/{n}".encode()).hexdigest()
    return f"https://cdn4.telesco.pe/file/{digest}.{ext}"


def render_message(channel: dict[str, Any], post: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> str:
    name, pid = channel["username"], post["id"]
    title = html.escape(channel.get("title", name))
    parts = [
        f'<div class="tgme_widget_message_wrap js-widget_message_wrap"><div class="tgme_widget_message '
        f'text_not_supported_wrap js-widget_message" data-post="{name}/{pid}" data-view="x">',
        f'<div class="tgme_widget_message_user"><a href="https://t.me/{name}"><i class="tgme_widget_message_user_photo bgcolor1" data-content="{title[:1]}"></i></a></div>',
        '<div class="tgme_widget_message_bubble"><i class="tgme_widget_message_bubble_tail"></i>',
        f'<div class="tgme_widget_message_author accent_color"><a class="tgme_widget_message_owner_name" href="https://t.me/{name}"><span dir="auto">{title}</span></a></div>',
    ]
    if post.get("forwarded_from"):
        src = html.escape(post["forwarded_from"])
        parts.append(
            f'<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from '
            f'<a class="tgme_widget_message_forwarded_from_name" href="{src}"><span dir="auto">{src.split("/")[-2]}</span></a></div>'
        )
    if post.get("reply_to"):
        quoted = by_id.get(post["reply_to"], {}).get("text", "")[:80]
        parts.append(
            f'<a class="tgme_widget_message_reply" href="https://t.me/{name}/{post["reply_to"]}">'
            f'<div class="tgme_widget_message_author accent_color"><span class="tgme_widget_message_author_name">{title}</span></div>'
            f'<div class="tgme_widget_message_text js-message_reply_text" dir="auto">{render_text(quoted)}</div></a>'
        )
    for n in range(post.get("photos", 0)):
        parts.append(
            f'<a class="tgme_widget_message_photo_wrap blured {pid}{n}" href="https://t.me/{name}/{pid}?single" '
            f"style=\"width:800px;background-image:url('{_media_url(name, pid, n, 'jpg')}')\">"
            '<div class="tgme_widget_message_photo" style="padding-top:75%"></div></a>'
        )
    if post.get("video"):
        parts.append(
            f'<a class="tgme_widget_message_video_player blured js-message_video_player" href="https://t.me/{name}/{pid}">'
            f'<i class="tgme_widget_message_video_thumb" style="background-image:url(\'{_media_url(name, pid, 9, "jpg")}\')"></i>'
            f'<div class="tgme_widget_message_video_wrap"><video src="{_media_url(name, pid, 0, "mp4")}" '
            'class="tgme_widget_message_video js-message_video" width="100%" height="100%"></video></div></a>'
        )
    if post.get("text"):
        parts.append(
            f'<div class="tgme_widget_message_text js-message_text" dir="auto">{render_text(post["text"])}</div>'
        )
    preview = post.get("link_preview")
    if preview:
        parts.append(
            f'<a class="tgme_widget_message_link_preview" href="{html.escape(preview["url"])}">'
            f'<div class="link_preview_site_name accent_color" dir="auto">{html.escape(preview.get("site", ""))}</div>'
            f'<div class="link_preview_title" dir="auto">{html.escape(preview.get("title", ""))}</div>'
            f'<div class="link_preview_description" dir="auto">{html.escape(preview.get("description", ""))}</div></a>'
        )
    when = datetime.fromisoformat(post["date"])
    edited = "edited " if post.get("edited") else ""
    parts.append(
        '<div class="tgme_widget_message_footer compact js-message_footer"><div class="tgme_widget_message_info short js-message_info">'
        f'<span class="tgme_widget_message_views">{_views(int(post.get("views", 0)))}</span>'
        f'<span class="copyonclick"><span class="tgme_widget_message_meta">{edited}<a class="tgme_widget_message_date" '
        f'href="https://t.me/{name}/{pid}"><time datetime="{when.isoformat()}" class="time">{when:%H:%M}</time></a></span></span>'
        "</div></div></div></div></div>"
    )
    return "".join(parts)


def render_page(channel: dict[str, Any], before: int | None, page_size: int, more_link: bool = True) -> str:
    posts = [p for p in channel["posts"] if not p.get("deleted")]
    by_id = {p["id"]: p for p in posts}
    older = [p for p in posts if before is None or p["id"] < before]
    shown = older[-page_size:]
    name = channel["username"]
    head = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(channel.get('title', name))} – Telegram</title></head>"
        '<body class="widget_frame_base tgme_webpreview"><main class="tgme_main"><div class="tgme_container">'
        '<section class="tgme_channel_history js-message_history">'
    )
    more = ""
    if shown and more_link and len(older) > len(shown):
        low = shown[0]["id"]
        more = (
            '<div class="tgme_widget_message_centered js-messages_more_wrap">'
            f'<a href="/s/{name}?before={low}" class="tme_messages_more js-messages_more" data-before="{low}"></a></div>'
        )
    body = "".join(render_message(channel, p, by_id) for p in shown)
    info = (
        '<div class="tgme_channel_info"><div class="tgme_channel_info_header">'
        f'<div class="tgme_channel_info_header_title"><span dir="auto">{html.escape(channel.get("title", name))}</span></div>'
        f'<div class="tgme_channel_info_header_username"><a href="https://t.me/{name}">@{name}</a></div></div>'
        f'<div class="tgme_channel_info_description">{render_text(channel.get("description", ""))}</div>'
        f'<div class="tgme_channel_info_counters"><div class="tgme_channel_info_counter"><span class="counter_value">'
        f'{_views(int(channel.get("subscribers", 0)))}</span> <span class="counter_type">subscribers</span></div></div></div>'
    )
    return head + more + body + "</section>" + info + "</div></main></body></html>"


def landing_page(name: str) -> str:
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Telegram: Contact @'
        + html.escape(name)
        + '</title></head><body><div class="tgme_page_wrap"><div class="tgme_page">'
        f'<div class="tgme_page_title"><span dir="auto">{html.escape(name)}</span></div>'
        '<div class="tgme_page_description">If you have <strong>Telegram</strong>, you can contact '
        f"@{html.escape(name)} right away.</div></div></div></body></html>"
    )


@dataclass
class Faults:
    """Misbehaviour to serve on purpose, for tests."""

    throttle: dict[str, int] = field(default_factory=dict)  # channel -> number of 429s first
    retry_after: str = "1"
    no_more_link: set[tuple[str, int | None]] = field(default_factory=set)  # (channel, before)
    broken: set[str] = field(default_factory=set)  # channels served truncated garbage
    hidden: set[str] = field(default_factory=set)  # channels without a public preview
    not_found: set[str] = field(default_factory=set)  # channels answering 404
    delay: float = 0.0  # seconds before answering a preview page (slow servers)


class Mirror:
    """A threaded HTTP server on 127.0.0.1 serving preview pages for `channels`."""

    def __init__(
        self,
        channels: dict[str, dict[str, Any]] | None = None,
        page_size: int = 20,
        faults: Faults | None = None,
        port: int = 0,
        robots: str = "User-agent: *\nAllow: /s/\nDisallow: /\n",
    ) -> None:
        self.channels = channels if channels is not None else load_channels()
        self.page_size = page_size
        self.faults = faults or Faults()
        self.robots = robots
        self.requests: list[str] = []  # path?query of each request, in order
        self.log: list[tuple[float, str, str]] = []  # (monotonic time, path?query, User-Agent)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Mirror:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Mirror:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def delete_post(self, channel: str, post_id: int) -> None:
        """Simulate a takedown: the post disappears from the preview."""
        with self.lock:
            for post in self.channels[channel]["posts"]:
                if post["id"] == post_id:
                    post["deleted"] = True

    def respond(
        self, path: str, query: dict[str, list[str]], user_agent: str = ""
    ) -> tuple[int, dict[str, str], str]:
        target = path + ("?" + "&".join(f"{k}={v[0]}" for k, v in query.items()) if query else "")
        with self.lock:
            self.requests.append(target)
            self.log.append((time.monotonic(), target, user_agent))
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, self.robots
        match = re.fullmatch(r"/s/([A-Za-z0-9_]+)/?", path)
        if not match:
            name = path.strip("/").split("/")[0]
            if name.lower() in self.channels or name.lower() in self.faults.hidden:
                return 200, {}, landing_page(name)
            return 404, {}, "<html><body>Not found</body></html>"
        name = match.group(1).lower()
        f = self.faults
        if name in f.not_found:
            return 404, {}, "<html><body>Not found</body></html>"
        if name in f.hidden or name not in self.channels:
            return 302, {"Location": f"/{name}"}, ""
        with self.lock:
            if f.throttle.get(name, 0) > 0:
                f.throttle[name] -= 1
                return 429, {"Retry-After": f.retry_after}, "Too Many Requests"
        if name in f.broken:
            return (
                200,
                {},
                '<html><body><div class="tgme_widget_message" data-post><div class="tgme_widget_message_text">half a pa',
            )
        if f.delay:
            time.sleep(f.delay)
        before = int(query["before"][0]) if query.get("before", [""])[0].isdigit() else None
        with self.lock:
            page = render_page(
                self.channels[name], before, self.page_size, more_link=(name, before) not in f.no_more_link
            )
        return 200, {}, page

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                status, headers, body = mirror.respond(
                    parts.path, parse_qs(parts.query), self.headers.get("User-Agent", "")
                )
                data = body.encode("utf-8")
                self.send_response(status)
                headers.setdefault("Content-Type", "text/html; charset=utf-8")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                # The client may be gone (a crawler killed mid-request): nothing to answer.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def serve_forever(port: int = 8080, removed: Iterable[tuple[str, int]] = ()) -> None:
    """Serve until killed; each (channel, post id) in `removed` is taken down first."""
    mirror = Mirror(port=port)
    for channel, post_id in removed:
        mirror.delete_post(channel, post_id)
        print(f"taken down: https://t.me/{channel}/{post_id}", flush=True)
    with mirror:
        print(f"serving sample channels at {mirror.url}/s/<channel>", flush=True)
        while True:
            time.sleep(3600)
