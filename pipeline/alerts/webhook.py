"""Alerts by webhook: one JSON POST per attempt, signed.

Headers: `X-Vigie-Timestamp` (Unix seconds of the attempt), `X-Vigie-Signature:
sha256=<hex>` (HMAC-SHA256, with the key in $VIGIE_WEBHOOK_SECRET, of the timestamp, a dot
and the exact body: a receiver rejects an old timestamp, and a replayed request cannot
carry a new one) and `X-Vigie-Alert-Id` (the alert's key percent-encoded as UTF-8, the same
for every attempt of one alert: a receiver de-duplicates on it; the body's `alert_id` is the
key as it is). Delivery is at least once (`pipeline.alerts.deliver`). Any 2xx
answer is a delivery; anything else, or no answer, is a failed attempt that the delivery
loop retries with backoff (`pipeline.alerts.deliver`), so each request is made once here."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import quote

from pipeline.alerts import DeliveryError
from vigie.config import CrawlConfig, WebhookConfig, secret
from vigie.http_client import HttpClient, HttpError

SECRET_ENV = "VIGIE_WEBHOOK_SECRET"


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")


def signature(key: str, body: bytes, timestamp: str) -> str:
    """The X-Vigie-Signature value of `body` sent with this X-Vigie-Timestamp."""
    signed = timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(key.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def alert_id_header(alert_id: str) -> str:
    """The alert's key as an HTTP header can carry it: ASCII, percent-encoded UTF-8 (keys
    hold text from posts, in any script)."""
    return quote(alert_id, safe=":/@+-._~")


def missing_setup(config: WebhookConfig) -> str | None:
    """Why the webhook cannot send now, or None."""
    if not config.url:
        return "alerts.webhook.url is empty"
    if not secret(SECRET_ENV):
        return f"${SECRET_ENV} is not set (the key that signs each alert)"
    return None


def send(config: WebhookConfig, crawl: CrawlConfig, payload: dict[str, Any]) -> str | None:
    """POST the alert once. Raises DeliveryError when the receiver did not take it."""
    problem = missing_setup(config)
    if problem:
        raise DeliveryError(problem)
    key = secret(SECRET_ENV) or ""
    body = body_of(payload)
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "X-Vigie-Signature": signature(key, body, stamp),
        "X-Vigie-Alert-Id": alert_id_header(str(payload.get("alert_id", ""))),
        "X-Vigie-Timestamp": stamp,
    }
    # One request per attempt: the delivery loop counts attempts and spaces them.
    once = crawl.model_copy(update={"retry_times": 0})
    try:
        with HttpClient(once, obey_robots=False, delay=0.0, timeout=config.timeout) as client:
            answer = client.post(config.url, body, headers)
    except HttpError as exc:
        raise DeliveryError(exc.reason) from None
    if not 200 <= answer.status < 300:
        raise DeliveryError(f"HTTP {answer.status}")
    return None
