"""fetch_media against a real HTTP server on 127.0.0.1: an image, a file with a lying
Content-Type, oversized files (declared and undeclared), a server error, robots.txt, and
URLs that are no http(s)."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pipeline.media.fetch import fetch_media
from pipeline.media.files import MediaFiles
from tests.support.flyers import render_flyer
from vigie.config import CrawlConfig
from vigie.http_client import HttpClient

UA = "VigieMediaTest/1.0"
MAX_BYTES = 1_000_000
CHUNK = b"\x00" * 65536


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (30, 20), "green").save(out, "PNG")
    return out.getvalue()


class MediaServer:
    """Serves fixed files and endless bodies; counts the bytes of each endless body it
    managed to hand to the socket before the client hung up."""

    def __init__(self) -> None:
        out = io.BytesIO()
        render_flyer("en").save(out, "JPEG", quality=80)
        self.jpeg = out.getvalue()
        self.png = _png()
        self.sent: dict[str, int] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # bodies without Content-Length end with the connection

            def do_GET(self) -> None:
                server.requests.append(self.path)
                if self.path == "/robots.txt":
                    self.reply(200, b"User-agent: *\nDisallow: /private/\n", "text/plain")
                elif self.path in ("/flyer.jpg", "/private/flyer.jpg"):
                    self.reply(200, server.jpeg, "image/jpeg")
                elif self.path == "/lying.html":
                    self.reply(200, server.png, "text/html; charset=utf-8")
                elif self.path == "/exact":
                    self.reply(200, b"\xff\xd8\xff" + b"\x00" * (MAX_BYTES - 3), "image/jpeg")
                elif self.path == "/empty":
                    self.reply(200, b"", "image/jpeg")
                elif self.path == "/error":
                    self.reply(500, b"internal error", "text/plain")
                elif self.path == "/missing":
                    self.reply(404, b"not found", "text/plain")
                elif self.path in ("/declared-huge", "/endless"):
                    self.endless(declare=self.path == "/declared-huge")
                else:
                    self.reply(404, b"", "text/plain")

            def reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def endless(self, declare: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                if declare:
                    self.send_header("Content-Length", str(500 * MAX_BYTES))
                self.end_headers()
                sent = 0
                try:
                    self.wfile.write(b"\xff\xd8\xff")
                    for _ in range(500 * MAX_BYTES // len(CHUNK)):
                        self.wfile.write(CHUNK)
                        sent += len(CHUNK)
                except OSError:  # the client stopped reading and closed
                    pass
                server.sent[self.path] = sent

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[MediaServer]:
    s = MediaServer()
    yield s
    s.stop()


@pytest.fixture
def client() -> Iterator[HttpClient]:
    crawl = CrawlConfig(
        user_agent=UA, download_delay=0, retry_times=1, backoff_base=0.01, timeout=5, obey_robots_txt=True
    )
    with HttpClient(crawl) as c:
        yield c


def test_an_image_is_fetched_hashed_and_typed_from_its_bytes(
    server: MediaServer, client: HttpClient, tmp_path: Path
) -> None:
    got = fetch_media(client, f"{server.url}/flyer.jpg", MAX_BYTES)
    assert got.status == "fetched" and got.error is None
    assert got.data == server.jpeg
    assert got.sha256 == hashlib.sha256(server.jpeg).hexdigest()
    assert got.content_type == "image/jpeg"
    store = MediaFiles(tmp_path)
    assert got.data is not None and got.sha256 is not None
    assert store.put(got.data) == got.sha256 and store.read(got.sha256) == server.jpeg
    assert server.requests[0] == "/robots.txt"


def test_a_lying_content_type_is_not_believed(server: MediaServer, client: HttpClient) -> None:
    got = fetch_media(client, f"{server.url}/lying.html", MAX_BYTES)
    assert got.status == "fetched" and got.content_type == "image/png"


def test_a_body_of_exactly_max_bytes_is_kept(server: MediaServer, client: HttpClient) -> None:
    got = fetch_media(client, f"{server.url}/exact", MAX_BYTES)
    assert got.status == "fetched" and got.data is not None and len(got.data) == MAX_BYTES
    assert fetch_media(client, f"{server.url}/exact", MAX_BYTES - 1).status == "too_big"


def test_a_declared_oversize_is_refused_before_the_body(server: MediaServer, client: HttpClient) -> None:
    got = fetch_media(client, f"{server.url}/declared-huge", MAX_BYTES)
    assert got.status == "too_big" and got.data is None and got.sha256 is None
    assert got.error is not None and "Content-Length" in got.error and "\n" not in got.error


def test_an_undeclared_oversize_stops_reading_at_the_limit(server: MediaServer, client: HttpClient) -> None:
    tracemalloc.start()
    start = time.monotonic()
    try:
        got = fetch_media(client, f"{server.url}/endless", MAX_BYTES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.status == "too_big" and got.data is None
    assert got.error is not None and "stopped reading" in got.error
    assert time.monotonic() - start < 10
    # The server offered 500 MB: the client held little more than the limit.
    assert peak < 3 * MAX_BYTES, f"peak memory {peak:,} bytes"
    deadline = time.monotonic() + 5
    while "/endless" not in server.sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.sent["/endless"] < 100 * MAX_BYTES  # it was cut off, not drained


def test_a_server_error_fails_with_one_line(server: MediaServer, client: HttpClient) -> None:
    for path, words in (("/error", "HTTP 500"), ("/missing", "HTTP 404"), ("/empty", "empty body")):
        got = fetch_media(client, f"{server.url}{path}", MAX_BYTES)
        assert got.status == "failed" and got.data is None
        assert got.error is not None and words in got.error and "\n" not in got.error


def test_robots_txt_refusal(server: MediaServer, client: HttpClient) -> None:
    got = fetch_media(client, f"{server.url}/private/flyer.jpg", MAX_BYTES)
    assert got.status == "refused" and got.error is not None and "robots.txt" in got.error
    assert "/private/flyer.jpg" not in server.requests


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/flyer.jpg", "file:///etc/passwd", "javascript:alert(1)", "http://", "http://[::1", ""],
)
def test_only_http_urls_are_fetched(client: HttpClient, url: str) -> None:
    got = fetch_media(client, url, MAX_BYTES)
    assert got.status == "refused" and got.error is not None and "not an http(s) URL" in got.error


def test_a_dead_server_fails_without_raising(client: HttpClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    got = fetch_media(client, f"http://127.0.0.1:{port}/flyer.jpg", MAX_BYTES)
    assert got.status == "failed" and got.error is not None and "\n" not in got.error
