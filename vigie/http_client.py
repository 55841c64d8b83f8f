"""The one HTTP client for everything Vigie fetches outside the Scrapy crawler: removal
checks of referred posts and Kibana installs. It keeps the crawler's manners:

- the User-Agent, timeout, retries and backoff of the crawl configuration;
- 429 and 5xx retried with exponential backoff (urllib3 `Retry`), a server's Retry-After
  honoured up to `crawl.max_retry_after`;
- robots.txt fetched once per origin and obeyed (`urllib.robotparser`): a disallowed URL
  raises `RobotsDisallowed` and is not fetched;
- at least `crawl.download_delay` seconds between the end of one request to a host and
  the start of the next.

`get(url, max_bytes=n)` streams the body and stops reading past n bytes (a declared
Content-Length above n stops it before the body): `ResponseTooLarge`, nothing kept.

A dead server or a server that keeps failing raises one `HttpError` with a one-line
message. Messages and the log never show a credential: URL userinfo, the value of an
Authorization header, or a query parameter named like a key, token or password.

One client per thread (a `requests.Session` is not meant to be shared between threads).
"""

from __future__ import annotations

import http.client
import logging
import re
import socket
import ssl
import time
import urllib.robotparser
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import takewhile
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from vigie.config import CrawlConfig
from vigie.errors import VigieError

log = logging.getLogger(__name__)

# The statuses the crawler retries too (crawlers/middlewares.py).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 520, 522, 524})
# A connection refused, reset or unanswered is retried at most this often: a server that
# is down is reported within seconds (or timeouts), not after the whole backoff series.
NO_ANSWER_RETRIES = 2
MAX_REDIRECTS = 5
# Header and query parameter names whose values are credentials.
_SECRET_NAME = r"(?:pass(?:word)?|secret|token|api[-_]?key|key|auth\w*|credential|sig(?:nature)?)s?"
_SECRET_HEADER = re.compile(_SECRET_NAME + "$", re.I)
_SECRET_QUERY_VALUE = re.compile(r"([?&][\w.-]*" + _SECRET_NAME + r"=)[^&#\s'\"]*", re.I)
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@?#]*@")


class HttpError(VigieError):
    """Raised by `HttpClient` when a request gets no usable answer. `url` is the URL with its
    credentials masked, `reason` a short phrase for the caller's own message. The caller
    stops what needed the answer; nothing was fetched past it."""

    def __init__(self, message: str, url: str, reason: str) -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason


class ServerUnreachable(HttpError):
    """No answer at all (connection refused, host not found, timeout, TLS failure), after
    the connection retries."""


class RetriesExhausted(HttpError):
    """The server kept answering a status Vigie retries (429, 5xx) until no retry was left.
    `status` is the last one."""

    def __init__(self, message: str, url: str, reason: str, status: int) -> None:
        super().__init__(message, url, reason)
        self.status = status


class RobotsDisallowed(HttpError):
    """The host's robots.txt disallows the URL for Vigie's User-Agent (or robots.txt answered
    a server error, which RFC 9309 reads as disallowing everything). Nothing was fetched."""


class ResponseTooLarge(HttpError):
    """`get(url, max_bytes=...)` met a body longer than `limit` bytes (`declared` is the
    Content-Length when the server sent one). Reading stopped there; nothing is kept."""

    def __init__(self, message: str, url: str, reason: str, limit: int, declared: int | None) -> None:
        super().__init__(message, url, reason)
        self.limit = limit
        self.declared = declared


def redact(text: str) -> str:
    """`text` (a URL, a path, a message) with URL userinfo and the values of query parameters
    named like credentials replaced by `***`."""
    return _SECRET_QUERY_VALUE.sub(r"\1***", _USERINFO.sub(r"\1***@", text))


class _RedactingFilter(logging.Filter):
    """urllib3 logs request paths with their query string: mask the credentials in them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_LOG_FILTER = _RedactingFilter()


def _install_log_filter() -> None:
    for name in ("urllib3", "urllib3.connectionpool", "urllib3.util.retry", __name__):
        logger = logging.getLogger(name)
        if _LOG_FILTER not in logger.filters:
            logger.addFilter(_LOG_FILTER)


class _Retry(Retry):
    """urllib3's Retry with the crawl configuration's schedule: the first retry waits
    `backoff_factor` seconds and each next one twice as long (urllib3 retries the first at
    once), and a server's Retry-After is capped at `max_retry_after`."""

    def __init__(self, *args: Any, max_retry_after: float = 900.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_retry_after = max_retry_after

    def new(self, **kw: Any) -> _Retry:
        kw.setdefault("max_retry_after", self.max_retry_after)
        return super().new(**kw)

    def get_backoff_time(self) -> float:
        failures = len(list(takewhile(lambda h: h.redirect_location is None, reversed(self.history))))
        if failures == 0:
            return 0.0
        return float(min(self.backoff_max, self.backoff_factor * 2 ** (failures - 1)))

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), self.max_retry_after)


@dataclass(frozen=True)
class Response:
    status: int
    url: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class _Robots:
    parser: urllib.robotparser.RobotFileParser | None  # None: every URL allowed
    refusal: str = ""  # why every URL is refused, when robots.txt itself failed


class HttpClient:
    """GET and POST with the crawler's manners (see the module docstring).

    `obey_robots` and `delay` default to the crawl configuration's; Vigie's own services
    (Kibana) are called with both off: robots.txt and the delay are manners towards the
    platforms, not towards an API the operator runs. `headers` go with every request and
    their values are never shown."""

    def __init__(
        self,
        crawl: CrawlConfig,
        *,
        obey_robots: bool | None = None,
        delay: float | None = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.user_agent = crawl.user_agent
        self.obey_robots = crawl.obey_robots_txt if obey_robots is None else obey_robots
        self.delay = crawl.download_delay if delay is None else delay
        self.timeout = crawl.timeout if timeout is None else timeout
        self.retries = crawl.retry_times
        self._secrets = _secret_values(headers or {})
        self._robots: dict[str, _Robots] = {}
        self._last_request_end: dict[str, float] = {}  # by host name, monotonic time
        retry = _Retry(
            total=crawl.retry_times,
            connect=min(crawl.retry_times, NO_ANSWER_RETRIES),
            read=min(crawl.retry_times, NO_ANSWER_RETRIES),
            status=crawl.retry_times,
            other=0,
            redirect=False,  # requests follows redirects itself
            # Kibana's import overwrites: repeating it is harmless.
            allowed_methods=frozenset({"GET", "HEAD", "POST"}),
            status_forcelist=RETRY_STATUSES,
            backoff_factor=crawl.backoff_base,
            backoff_max=max(crawl.max_retry_after, crawl.backoff_base),
            respect_retry_after_header=True,
            raise_on_status=False,  # the last answer is looked at below
            max_retry_after=crawl.max_retry_after,
        )
        self.session = requests.Session()
        self.session.max_redirects = MAX_REDIRECTS
        self.session.headers["User-Agent"] = self.user_agent
        self.session.headers.update(headers or {})
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._finalizer = weakref.finalize(self, self.session.close)
        _install_log_filter()

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, *, follow_redirects: bool = True, max_bytes: int | None = None) -> Response:
        """The answer to GET `url`, whatever its status, once no retry is due. Raises
        `RobotsDisallowed`, `ServerUnreachable` or `RetriesExhausted`; with `max_bytes`,
        `ResponseTooLarge` for a longer body, of which at most `max_bytes` + one chunk
        was read."""
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must be 0 or more, not {max_bytes}")
        if self.obey_robots:
            self._check_robots(url)
        return self._request("GET", url, follow_redirects=follow_redirects, max_bytes=max_bytes)

    def post(self, url: str, body: bytes, headers: Mapping[str, str] | None = None) -> Response:
        """The answer to POST `body` to `url`. robots.txt does not apply to a POST, and a
        redirect comes back as the answer: following it would turn the POST into a GET."""
        return self._request("POST", url, follow_redirects=False, data=body, headers=dict(headers or {}))

    def mask(self, text: str) -> str:
        """`text` (a server's error message, say) without URL credentials or the values of
        this client's credential headers."""
        text = redact(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # -- internals ------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        *,
        follow_redirects: bool = True,
        max_bytes: int | None = None,
        **kwargs: Any,
    ) -> Response:
        shown = redact(url)
        host = (urlsplit(url).hostname or "").lower()
        wait = self._last_request_end.get(host, 0.0) + self.delay - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            answer = self.session.request(
                method,
                url,
                timeout=self.timeout,
                allow_redirects=follow_redirects,
                stream=max_bytes is not None,
                **kwargs,
            )
        except requests.TooManyRedirects:
            raise HttpError(
                f"{method} {shown}: more than {MAX_REDIRECTS} redirects", shown, "too many redirects"
            ) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            reason = _reason(exc, self.timeout)
            raise ServerUnreachable(
                f"{method} {shown}: no answer ({reason}) after {min(self.retries, NO_ANSWER_RETRIES)} retries",
                shown,
                reason,
            ) from None
        except requests.RequestException as exc:
            reason = _reason(exc, self.timeout)
            raise HttpError(f"{method} {shown}: {reason}", shown, reason) from None
        finally:
            self._last_request_end[host] = time.monotonic()
        with answer:
            if max_bytes is None:
                body = answer.content
            else:
                try:
                    body = self._read_at_most(answer, max_bytes, method, shown)
                finally:
                    self._last_request_end[host] = time.monotonic()
        if answer.status_code in RETRY_STATUSES:
            reason = f"HTTP {answer.status_code} after {self.retries} retries"
            raise RetriesExhausted(f"{method} {shown}: {reason}", shown, reason, answer.status_code)
        return Response(answer.status_code, answer.url, answer.headers, body)

    def _read_at_most(self, answer: requests.Response, max_bytes: int, method: str, shown: str) -> bytes:
        """The streamed body of `answer`, or `ResponseTooLarge` as soon as it passes `max_bytes`
        (before reading, when the declared Content-Length already does)."""
        declared: int | None
        try:
            declared = int(answer.headers.get("Content-Length", ""))
        except ValueError:
            declared = None
        if declared is not None and declared > max_bytes:
            reason = f"Content-Length {declared:,} bytes is over the limit of {max_bytes:,}"
            raise ResponseTooLarge(f"{method} {shown}: {reason}", shown, reason, max_bytes, declared)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in answer.iter_content(chunk_size=64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    reason = f"body over the limit of {max_bytes:,} bytes (stopped reading)"
                    raise ResponseTooLarge(f"{method} {shown}: {reason}", shown, reason, max_bytes, declared)
                chunks.append(chunk)
        except requests.RequestException as exc:  # the connection broke off mid-body
            reason = _reason(exc, self.timeout)
            raise HttpError(f"{method} {shown}: body cut off ({reason})", shown, reason) from None
        return b"".join(chunks)

    def _check_robots(self, url: str) -> None:
        parts = urlsplit(url)
        origin = f"{parts.scheme.lower()}://{parts.netloc}"
        robots = self._robots.get(origin)
        if robots is None:
            robots = self._robots[origin] = self._fetch_robots(origin)
        shown = redact(url)
        if robots.refusal:
            raise RobotsDisallowed(f"{shown}: not fetched: {robots.refusal}", shown, robots.refusal)
        if robots.parser is not None and not robots.parser.can_fetch(self.user_agent, url):
            reason = f"robots.txt of {redact(origin)} disallows it for {self.user_agent}"
            raise RobotsDisallowed(f"{shown}: not fetched: {reason}", shown, reason)

    def _fetch_robots(self, origin: str) -> _Robots:
        """RFC 9309: a 4xx robots.txt allows everything, a 5xx one disallows everything."""
        try:
            answer = self._request("GET", f"{origin}/robots.txt")
        except RetriesExhausted as exc:
            return _Robots(None, f"robots.txt of {redact(origin)} answered HTTP {exc.status}")
        if 400 <= answer.status < 500:
            return _Robots(None)
        if answer.status >= 300:
            return _Robots(None, f"robots.txt of {redact(origin)} answered HTTP {answer.status}")
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(answer.text().splitlines())
        log.debug("robots.txt of %s read", redact(origin))
        return _Robots(parser)


def _secret_values(headers: Mapping[str, str]) -> list[str]:
    """The values of credential headers and their tokens, longest first."""
    import base64
    import binascii

    found: set[str] = set()
    for name, value in headers.items():
        if not _SECRET_HEADER.search(name):
            continue
        found.add(value)
        scheme, _, token = value.partition(" ")
        if token:
            found.add(token)
            if scheme.lower() == "basic":
                try:
                    user_password = base64.b64decode(token, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    continue
                found.add(user_password)
                found.add(user_password.partition(":")[2])
    return sorted((s for s in found if len(s) >= 3), key=len, reverse=True)


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and every exception it wraps (urllib3 hides the cause in `reason` and `args`)."""
    out: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop(0)
        if item is None or any(item is seen for seen in out):
            continue
        out.append(item)
        reason = getattr(item, "reason", None)
        todo.append(reason if isinstance(reason, BaseException) else None)
        todo += [item.__cause__, item.__context__]
        todo += [a for a in item.args if isinstance(a, BaseException)]
    return out


def _reason(exc: BaseException, timeout: float) -> str:
    """A short phrase for what went wrong, built from the error types and the operating
    system's words, never from exception text (which repeats the URL)."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, (socket.gaierror, urllib3.exceptions.NameResolutionError)):
            return "host name not found"
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, (TimeoutError, urllib3.exceptions.ReadTimeoutError, requests.Timeout)):
            return f"no answer within {timeout:g} s"
        if isinstance(e, ssl.SSLError):
            return f"TLS failed ({e.reason or 'handshake'})"
        if isinstance(e, http.client.RemoteDisconnected):
            return "the server closed the connection without answering"
    for e in chain:
        if isinstance(e, OSError) and e.strerror:
            return e.strerror[:1].lower() + e.strerror[1:]
    return type(chain[-1]).__name__
