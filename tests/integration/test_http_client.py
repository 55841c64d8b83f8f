"""The HTTP client of removal checks and Kibana installs, against real HTTP servers on
127.0.0.1: retries and Retry-After, robots.txt, the per-host delay, the User-Agent, dead
and silent servers, and credentials kept out of messages and the log."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from typing import Any

import pytest

from vigie.config import CrawlConfig
from vigie.errors import VigieError
from vigie.http_client import (
    HttpClient,
    RetriesExhausted,
    RobotsDisallowed,
    ServerUnreachable,
    redact,
)

UA = "VigieTest/1.0 (+https://vigie.example/about)"


class Server:
    """Answers each path from a script of (status, headers, body), the last one repeated;
    paths without a script get 200 "ok". Records every request."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[tuple[int, dict[str, str], str]]] = {}
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body_in = self.rfile.read(length) if length else b""
                with server.lock:
                    server.log.append(
                        {
                            "at": time.monotonic(),
                            "method": self.command,
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body_in,
                        }
                    )
                    script = server.scripts.get(self.path.split("?")[0])
                    status, headers, text = (200, {}, "ok") if not script else script[0]
                    if script and len(script) > 1:
                        script.pop(0)
                data = text.encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def paths(self) -> list[str]:
        return [r["path"] for r in self.log]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.stop()


def crawl(**overrides: Any) -> CrawlConfig:
    settings: dict[str, Any] = {
        "user_agent": UA,
        "download_delay": 0,
        "retry_times": 3,
        "backoff_base": 0.05,
        "timeout": 5,
        "obey_robots_txt": False,
    }
    return CrawlConfig(**{**settings, **overrides})


def dead_url() -> str:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- retries --------------------------------------------------------------------------------


def test_503_is_retried_after_the_servers_retry_after(server: Server) -> None:
    server.scripts["/page"] = [(503, {"Retry-After": "1"}, "busy"), (503, {"Retry-After": "1"}, "busy")]
    server.scripts["/page"].append((200, {"Content-Type": "text/plain"}, "here"))
    with HttpClient(crawl(backoff_base=0)) as client:
        start = time.monotonic()
        response = client.get(server.url + "/page")
        elapsed = time.monotonic() - start
    assert response.status == 200 and response.body == b"here" and response.content_type == "text/plain"
    times = [r["at"] for r in server.log if r["path"] == "/page"]
    assert len(times) == 3
    assert all(later - earlier >= 0.95 for earlier, later in pairwise(times))
    assert 1.9 <= elapsed < 4


def test_retry_after_is_capped_by_the_configuration(server: Server) -> None:
    server.scripts["/page"] = [(429, {"Retry-After": "3600"}, "slow down"), (200, {}, "ok")]
    with HttpClient(crawl(backoff_base=0, max_retry_after=0.5)) as client:
        start = time.monotonic()
        assert client.get(server.url + "/page").status == 200
    assert 0.45 <= time.monotonic() - start < 3


def test_backoff_doubles_without_retry_after(server: Server) -> None:
    no_headers: dict[str, str] = {}
    server.scripts["/page"] = [(500, no_headers, "oops")] * 3 + [(200, no_headers, "ok")]
    with HttpClient(crawl(backoff_base=0.2)) as client:
        assert client.get(server.url + "/page").status == 200
    times = [r["at"] for r in server.log]
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert len(gaps) == 3
    for gap, want in zip(gaps, (0.2, 0.4, 0.8), strict=True):
        assert want - 0.02 <= gap < want + 0.5


def test_exhausted_retries_are_one_line_error_with_the_last_status(server: Server) -> None:
    server.scripts["/page"] = [(503, {}, "down for maintenance")]
    with HttpClient(crawl(retry_times=2)) as client, pytest.raises(RetriesExhausted) as caught:
        client.get(server.url + "/page")
    assert str(caught.value) == f"GET {server.url}/page: HTTP 503 after 2 retries"
    assert caught.value.status == 503 and isinstance(caught.value, VigieError)
    assert server.paths() == ["/page"] * 3


def test_statuses_not_retried_come_back_as_they_are(server: Server) -> None:
    server.scripts["/gone"] = [(404, {}, "not here")]
    server.scripts["/moved"] = [(302, {"Location": "/elsewhere"}, "")]
    with HttpClient(crawl()) as client:
        assert client.get(server.url + "/gone").status == 404
        moved = client.get(server.url + "/moved", follow_redirects=False)
        assert moved.status == 302 and moved.headers["Location"] == "/elsewhere"
        followed = client.get(server.url + "/moved")
        assert followed.status == 200 and followed.url == server.url + "/elsewhere"
    assert server.paths() == ["/gone", "/moved", "/moved", "/elsewhere"]


# --- robots.txt -----------------------------------------------------------------------------


def test_robots_txt_is_read_once_and_obeyed(server: Server) -> None:
    server.scripts["/robots.txt"] = [
        (200, {}, "User-agent: *\nDisallow: /private/\n\nUser-agent: VigieTest\nDisallow: /no-vigie\n")
    ]
    with HttpClient(crawl(obey_robots_txt=True)) as client:
        assert client.get(server.url + "/public").status == 200
        with pytest.raises(RobotsDisallowed) as caught:
            client.get(server.url + "/no-vigie?x=1")
        assert client.get(server.url + "/private/page").status == 200  # VigieTest's own group applies
        assert client.get(server.url + "/public?again=1").status == 200
    assert str(caught.value) == (
        f"{server.url}/no-vigie?x=1: not fetched: robots.txt of {server.url} disallows it for {UA}"
    )
    assert server.paths() == ["/robots.txt", "/public", "/private/page", "/public?again=1"]
    assert {r["headers"]["user-agent"] for r in server.log} == {UA}


def test_robots_txt_4xx_allows_and_5xx_refuses_everything(server: Server) -> None:
    other = Server()
    try:
        server.scripts["/robots.txt"] = [(404, {}, "no such file")]
        other.scripts["/robots.txt"] = [(503, {}, "broken")]
        with HttpClient(crawl(obey_robots_txt=True, retry_times=1)) as client:
            assert client.get(server.url + "/anything").status == 200
            with pytest.raises(RobotsDisallowed, match=r"robots\.txt of .* answered HTTP 503"):
                client.get(other.url + "/anything")
            with pytest.raises(RobotsDisallowed):
                client.get(other.url + "/else")
        assert server.paths() == ["/robots.txt", "/anything"]
        assert other.paths() == ["/robots.txt", "/robots.txt"]  # one retry, then cached
    finally:
        other.stop()


def test_robots_txt_ignored_when_configured_off(server: Server) -> None:
    server.scripts["/robots.txt"] = [(200, {}, "User-agent: *\nDisallow: /\n")]
    with HttpClient(crawl(obey_robots_txt=False)) as client:
        assert client.get(server.url + "/page").status == 200
    with HttpClient(crawl(obey_robots_txt=True), obey_robots=False) as client:
        assert client.get(server.url + "/page").status == 200
    assert server.paths() == ["/page", "/page"]


# --- manners --------------------------------------------------------------------------------


def test_delay_between_requests_to_one_host(server: Server) -> None:
    server.scripts["/robots.txt"] = [(200, {}, "User-agent: *\nAllow: /\n")]
    with HttpClient(crawl(download_delay=0.3, obey_robots_txt=True)) as client:
        for n in range(3):
            client.get(f"{server.url}/page/{n}")
        # Another host name has its own clock: localhost is not held back by 127.0.0.1.
        client.get(f"http://localhost:{server.port}/page/3")
    paths = [r["path"] for r in server.log]
    assert paths == ["/robots.txt", "/page/0", "/page/1", "/page/2", "/robots.txt", "/page/3"]
    times = [r["at"] for r in server.log]
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert all(gap >= 0.3 for gap in gaps[:3]), gaps  # robots.txt counts as a request
    assert gaps[3] < 0.25, gaps
    assert gaps[4] >= 0.3, gaps


def test_user_agent_and_headers_are_sent(server: Server) -> None:
    with HttpClient(crawl(), headers={"kbn-xsrf": "true"}) as client:
        response = client.post(server.url + "/api", b"payload", headers={"Content-Type": "application/x"})
    assert response.status == 200
    (request,) = server.log
    assert request["method"] == "POST" and request["body"] == b"payload"
    assert request["headers"]["user-agent"] == UA
    assert request["headers"]["kbn-xsrf"] == "true"
    assert request["headers"]["content-type"] == "application/x"


def test_post_is_retried_too(server: Server) -> None:
    server.scripts["/api"] = [(503, {"Retry-After": "1"}, ""), (200, {}, "{}")]
    with HttpClient(crawl()) as client:
        assert client.post(server.url + "/api", b"x").status == 200
    assert [r["body"] for r in server.log] == [b"x", b"x"]


# --- failures -------------------------------------------------------------------------------


def test_dead_server_is_one_line_error_after_the_connection_retries() -> None:
    url = dead_url()
    with HttpClient(crawl(retry_times=5, backoff_base=0.1)) as client:
        start = time.monotonic()
        with pytest.raises(ServerUnreachable) as caught:
            client.get(url + "/page")
        elapsed = time.monotonic() - start
    assert str(caught.value) == f"GET {url}/page: no answer (connection refused) after 2 retries"
    assert caught.value.reason == "connection refused"
    assert 0.25 <= elapsed < 3  # 0.1 s then 0.2 s of backoff, not five retries


def test_dead_server_when_reading_robots_txt() -> None:
    url = dead_url()
    with (
        HttpClient(crawl(obey_robots_txt=True, retry_times=0)) as client,
        pytest.raises(ServerUnreachable) as e,
    ):
        client.get(url + "/page")
    assert str(e.value) == f"GET {url}/robots.txt: no answer (connection refused) after 0 retries"


def test_silent_server_times_out() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # accepts connections (the kernel does) but never answers
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        client = HttpClient(crawl(retry_times=5, backoff_base=0.05, timeout=0.3))
        start = time.monotonic()
        with client, pytest.raises(ServerUnreachable) as e:
            client.get(url + "/page")
        elapsed = time.monotonic() - start
    assert str(e.value) == f"GET {url}/page: no answer (no answer within 0.3 s) after 2 retries"
    assert 0.9 <= elapsed < 2.5  # three tries of 0.3 s, not six
    assert "\n" not in str(e.value)


# --- credentials ----------------------------------------------------------------------------


def test_credentials_stay_out_of_messages(server: Server) -> None:
    server.scripts["/page"] = [(503, {}, "")]
    secret_url = f"http://analyst:hunter2pass@127.0.0.1:{server.port}/page?api_key=S3CRETKEY&before=5"
    with HttpClient(crawl(retry_times=0)) as client, pytest.raises(RetriesExhausted) as caught:
        client.get(secret_url)
    assert (
        str(caught.value)
        == f"GET http://***@127.0.0.1:{server.port}/page?api_key=***&before=5: HTTP 503 after 0 retries"
    )
    assert server.log[0]["headers"]["authorization"].startswith("Basic ")  # userinfo was still used
    dead = dead_url().replace("http://", "http://analyst:hunter2pass@") + "/x?token=S3CRETKEY"
    with HttpClient(crawl(retry_times=0)) as client, pytest.raises(ServerUnreachable) as unreachable:
        client.get(dead)
    for message in (str(unreachable.value), unreachable.value.url):
        assert "hunter2pass" not in message and "S3CRETKEY" not in message and "analyst" not in message


def test_mask_hides_the_clients_credential_headers() -> None:
    import base64

    basic = base64.b64encode(b"analyst:hunter2pass").decode()
    client = HttpClient(crawl(), headers={"Authorization": f"Basic {basic}", "X-Api-Key": "K3Y-VALUE"})
    echoed = f"denied for Basic {basic} (analyst:hunter2pass), key K3Y-VALUE, pw hunter2pass"
    masked = client.mask(echoed)
    client.close()
    assert basic not in masked and "hunter2pass" not in masked and "K3Y-VALUE" not in masked
    assert masked == "denied for *** (***), key ***, pw ***"


def test_credentials_stay_out_of_the_log(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    server.scripts["/page"] = [(503, {}, ""), (200, {}, "ok")]
    # On urllib3's own logger too: other code may have quietened it earlier in the session.
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    with HttpClient(crawl(backoff_base=0), headers={"Authorization": "ApiKey T0KENVALUE"}) as client:
        client.get(f"http://analyst:hunter2pass@127.0.0.1:{server.port}/page?access_token=S3CRET&n=1")
    assert "/page" in caplog.text  # urllib3 did log the requests
    for secret in ("T0KENVALUE", "hunter2pass", "S3CRET"):
        assert secret not in caplog.text


def test_redact() -> None:
    assert (
        redact("https://u:p@es.example:9200/x?key=abc&size=2")
        == "https://***@es.example:9200/x?key=***&size=2"
    )
    assert (
        redact('"GET /s/chan?before=3&password=pw HTTP/1.1" 200')
        == '"GET /s/chan?before=3&password=*** HTTP/1.1" 200'
    )
    assert redact("plain text, no URL") == "plain text, no URL"
