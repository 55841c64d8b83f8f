"""Download one media file as evidence, through Vigie's one HTTP client (robots.txt, the
per-host delay, Retry-After, backoff, the User-Agent): the bytes, their SHA-256 and the
type their first bytes show. A bad server is an outcome, never an exception."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pipeline.media.files import sha256_hex
from pipeline.media.sniff import sniff
from vigie.http_client import HttpClient, HttpError, ResponseTooLarge, RobotsDisallowed, redact

FetchStatus = Literal["fetched", "too_big", "failed", "refused"]


@dataclass(frozen=True, slots=True)
class Fetched:
    """What `fetch_media` got. "fetched": `data`, `sha256` and `content_type` (sniffed from
    the bytes, None when unknown) are set; "too_big": over `max_bytes`, nothing kept;
    "refused": not fetched (robots.txt, a scheme other than http(s)); "failed": no usable
    answer. `error` is a one-line reason for all but "fetched"."""

    status: FetchStatus
    data: bytes | None = None
    content_type: str | None = None
    sha256: str | None = None
    error: str | None = None
    # A failure worth trying again later (the server down or overloaded); a 404 is not.
    transient: bool = False


def fetch_media(client: HttpClient, url: str, max_bytes: int) -> Fetched:
    """GET `url` with `client`, keeping at most `max_bytes` bytes (see `Fetched`)."""
    shown = redact(url)
    try:
        parts = urlsplit(url)
        usable = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. a broken IPv6 literal
        usable = False
    if not usable:
        return Fetched("refused", error=f"{shown[:200]}: not an http(s) URL")
    try:
        answer = client.get(url, max_bytes=max_bytes)
    except ResponseTooLarge as exc:
        return Fetched("too_big", error=str(exc))
    except RobotsDisallowed as exc:
        return Fetched("refused", error=str(exc))
    except HttpError as exc:
        return Fetched("failed", error=str(exc), transient=True)
    if not 200 <= answer.status < 300:
        transient = answer.status >= 500 or answer.status in (408, 429)
        return Fetched("failed", error=f"GET {shown}: HTTP {answer.status}", transient=transient)
    if not answer.body:
        return Fetched("failed", error=f"GET {shown}: empty body")
    return Fetched("fetched", answer.body, sniff(answer.body), sha256_hex(answer.body))
