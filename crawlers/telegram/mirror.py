"""A local stand-in for t.me: renders public channel preview pages from sample JSON.

Used by `vigie demo`, the tests and the benchmarks. It serves `/s/<channel>` and
`/s/<channel>?before=<id>` pages of the newest posts below `before`, like Telegram, and can
misbehave on purpose (429s, missing "more" links, broken HTML, hidden channels).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from crawlers.telegram.render import (
    PLACEHOLDER_PREFIX,
    landing_page,
    render_message,
    render_page,
    render_text,
)

# Rendering lives in `render`; these names stay importable from here.
__all__ = [
    "Faults",
    "Mirror",
    "load_channels",
    "render_message",
    "render_page",
    "render_text",
    "serve_forever",
]

# Files a post's "images" name, served under /media/<name> when not given to Mirror(media=…).
_MEDIA_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
_MEDIA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def sample_channels_dir() -> Path:
    return Path(__file__).resolve().parent / "samples" / "channels"


def sample_media_dir() -> Path:
    return Path(__file__).resolve().parent / "samples" / "media"


def media_type(name: str) -> str:
    """The Content-Type the mirror serves a media file with, from its extension."""
    return _MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def load_channels(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    channels = {}
    for path in sorted((directory or sample_channels_dir()).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        channels[data["username"].lower()] = data
    return channels


def placeholder_image(name: str) -> bytes | None:
    """A small JPEG for a sample photo without a file of its own: a smooth two-colour
    gradient from the name (no text to read, too flat for a perceptual hash to match on)."""
    if not re.fullmatch(rf"{PLACEHOLDER_PREFIX}[0-9a-f]{{40}}\.jpg", name):
        return None
    from PIL import Image

    seed = bytes.fromhex(name[len(PLACEHOLDER_PREFIX) : len(PLACEHOLDER_PREFIX) + 40])
    left, right = seed[:3], seed[3:6]
    width, height = 160, 120
    row = bytes(
        round(a + (b - a) * x / (width - 1)) for x in range(width) for a, b in zip(left, right, strict=True)
    )
    image = Image.frombytes("RGB", (width, height), row * height)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


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
        robots: str = "User-agent: *\nAllow: /s/\nAllow: /media/\nDisallow: /\n",
        media: dict[str, bytes] | None = None,
    ) -> None:
        self.channels = channels if channels is not None else load_channels()
        # name -> bytes served under /media/<name>; other names come from samples/media/.
        self.media = dict(media or {})
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

    def media_bytes(self, name: str) -> bytes | None:
        """The file a post's "images" names: given to the mirror, else a bundled sample."""
        if name in self.media:
            return self.media[name]
        if name.startswith(PLACEHOLDER_PREFIX):
            return placeholder_image(name)
        if not _MEDIA_NAME.fullmatch(name) or ".." in name:
            return None
        path = sample_media_dir() / name
        return path.read_bytes() if path.is_file() else None

    def respond(
        self, path: str, query: dict[str, list[str]], user_agent: str = ""
    ) -> tuple[int, dict[str, str], str | bytes]:
        target = path + ("?" + "&".join(f"{k}={v[0]}" for k, v in query.items()) if query else "")
        with self.lock:
            self.requests.append(target)
            self.log.append((time.monotonic(), target, user_agent))
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, self.robots
        if path.startswith("/media/"):
            name = unquote(path.removeprefix("/media/"))
            data = self.media_bytes(name)
            if data is None:
                return 404, {}, "<html><body>Not found</body></html>"
            return 200, {"Content-Type": media_type(name)}, data
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
                self.channels[name],
                before,
                self.page_size,
                more_link=(name, before) not in f.no_more_link,
                media_base=self.url,
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
                data = body if isinstance(body, bytes) else body.encode("utf-8")
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
