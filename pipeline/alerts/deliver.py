"""The delivery loop: every pending delivery whose attempt is due, one attempt each, until
none is due or the time allowed is spent.

Attempt n that fails is tried again the channel's `backoff_base` × 2^(n-1) seconds later
(`next_attempt_at`); after the channel's `max_attempts` the delivery is `dead`, its payload
kept until `vigie alerts retry` brings it back. An attempt is claimed in the store before it
is made, so two senders (the daemon's passes, `vigie alerts send`) never make the same one,
and a sender that dies mid-attempt leaves the delivery to be tried once its claim expires:
a receiver may then see an alert twice, with the same `X-Vigie-Alert-Id`, never not at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.alerts import DeliveryError
from vigie.config import VigieConfig
from vigie.store import Store
from vigie.store import alerts as stored

log = logging.getLogger(__name__)

Sender = Callable[[dict[str, Any]], "str | None"]


def configured_channels(config: VigieConfig) -> list[str]:
    """The channels alerts go to: those the configuration names."""
    channels = []
    if config.alerts.webhook.url:
        channels.append("webhook")
    if config.alerts.email.host:
        channels.append("email")
    return channels


def max_attempts(config: VigieConfig, channel: str) -> int:
    return config.alerts.webhook.max_attempts if channel == "webhook" else config.alerts.email.max_attempts


def backoff(config: VigieConfig, attempts: int, channel: str = "webhook") -> float:
    """Seconds between attempt `attempts` (1 for the first) of a channel and the next one."""
    base = config.alerts.webhook.backoff_base if channel == "webhook" else config.alerts.email.backoff_base
    return float(base * 2 ** (attempts - 1))


def _busy_seconds(config: VigieConfig, channel: str) -> float:
    """How long one attempt may take at most: another sender waits this long."""
    timeout = config.alerts.webhook.timeout if channel == "webhook" else config.alerts.email.timeout
    return 2 * timeout + 30


def where(config: VigieConfig, channel: str) -> str:
    """The channel as messages name it (the webhook URL without credentials)."""
    from vigie.http_client import redact

    if channel == "webhook":
        return f"webhook {redact(config.alerts.webhook.url)}"
    return f"email via {config.alerts.email.host}:{config.alerts.email.port}"


def senders(config: VigieConfig) -> tuple[dict[str, Sender], dict[str, str]]:
    """The channels that can send now, and why the others configured cannot."""
    from pipeline.alerts import email, webhook

    ready: dict[str, Sender] = {}
    problems: dict[str, str] = {}
    for channel in configured_channels(config):
        if channel == "webhook":
            problem = webhook.missing_setup(config.alerts.webhook)
            if problem is None:
                ready[channel] = lambda payload: webhook.send(config.alerts.webhook, config.crawl, payload)
        else:
            problem = email.missing_setup(config.alerts.email)
            if problem is None:
                ready[channel] = lambda payload: email.send(config.alerts.email, payload)
        if problem is not None:
            problems[channel] = problem
    return ready, problems


@dataclass
class ChannelReport:
    sent: int = 0
    dead: int = 0
    retrying: set[str] = field(default_factory=set)  # alerts whose last attempt failed, tried again later
    last_error: str | None = None
    next_attempt_at: str | None = None


@dataclass
class DeliveryReport:
    channels: dict[str, ChannelReport] = field(default_factory=dict)
    not_ready: dict[str, str] = field(default_factory=dict)  # channel -> why nothing was tried
    warnings: list[str] = field(default_factory=list)

    def of(self, channel: str) -> ChannelReport:
        return self.channels.setdefault(channel, ChannelReport())

    @property
    def sent(self) -> int:
        return sum(c.sent for c in self.channels.values())

    @property
    def dead(self) -> int:
        return sum(c.dead for c in self.channels.values())

    def messages(self, config: VigieConfig) -> list[str]:
        """One line per channel that failed or could not send: what happened, what waits."""
        lines = list(self.warnings)
        for channel, why in self.not_ready.items():
            lines.append(
                f"alerts: {where(config, channel)} not used: {why}; its alerts wait, nothing is lost"
            )
        for channel, c in self.channels.items():
            if not c.last_error:
                continue
            parts = []
            if c.retrying:
                parts.append(f"{len(c.retrying)} to be tried again (next at {c.next_attempt_at})")
            if c.dead:
                parts.append(f"{c.dead} kept as dead letters (`vigie alerts retry --dead` sends them again)")
            lines.append(f"alerts: {where(config, channel)}: {c.last_error}; " + "; ".join(parts))
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "dead": self.dead,
            "retrying": sum(len(c.retrying) for c in self.channels.values()),
            "not_ready": dict(self.not_ready),
        }


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def attempt(
    store: Store, config: VigieConfig, delivery: stored.Delivery, send: Sender, report: DeliveryReport
) -> None:
    """One attempt at one delivery, if no other sender took it first."""
    began = datetime.now(UTC)
    busy_until = stored.timestamp(began + timedelta(seconds=_busy_seconds(config, delivery.channel)))
    if not stored.claim(store, delivery, stored.timestamp(began), busy_until):
        return
    attempts = delivery.attempts + 1
    channel = report.of(delivery.channel)
    try:
        warning = send(delivery.payload)
    except DeliveryError as exc:
        ended = datetime.now(UTC)
        channel.last_error = exc.reason
        limit = max_attempts(config, delivery.channel)
        if attempts >= limit:
            stored.record_failure(store, delivery.alert_key, delivery.channel, exc.reason, None)
            channel.dead += 1
            channel.retrying.discard(delivery.alert_key)
            log.info(  # the report's one line per channel says it to the user
                "alert %s: %s failed %d times, kept as a dead letter: %s",
                delivery.alert_key, delivery.channel, attempts, exc.reason,
            )  # fmt: skip
        else:
            next_at = stored.timestamp(ended + timedelta(seconds=backoff(config, attempts, delivery.channel)))
            stored.record_failure(store, delivery.alert_key, delivery.channel, exc.reason, next_at)
            channel.retrying.add(delivery.alert_key)
            channel.next_attempt_at = next_at
            log.info(
                "alert %s: %s attempt %d of %d failed: %s",
                delivery.alert_key, delivery.channel, attempts, limit, exc.reason,
            )  # fmt: skip
        return
    stored.record_sent(store, delivery.alert_key, delivery.channel, stored.timestamp(datetime.now(UTC)))
    channel.sent += 1
    channel.retrying.discard(delivery.alert_key)
    if warning:
        report.warnings.append(f"alerts: {delivery.alert_key}: {warning}")
    log.info("alert %s: sent by %s (attempt %d)", delivery.alert_key, delivery.channel, attempts)


def deliver(store: Store, config: VigieConfig, wait: float = 0.0) -> DeliveryReport:
    """Make every due attempt; then, while the next one falls within `wait` seconds of the
    start, wait for it and go on."""
    ready, problems = senders(config)
    report = DeliveryReport(not_ready=problems)
    if not ready:
        return report
    deadline = time.monotonic() + wait
    channels = sorted(ready)
    while True:
        for delivery in stored.due(store, stored.timestamp(datetime.now(UTC)), channels):
            attempt(store, config, delivery, ready[delivery.channel], report)
        upcoming = stored.next_due(store, channels)
        if upcoming is None:
            return report
        pause = (_parse(upcoming) - datetime.now(UTC)).total_seconds()
        if time.monotonic() + max(pause, 0.0) > deadline:
            return report  # later attempts: the next run, `vigie alerts send` or the daemon's job
        if pause > 0:
            time.sleep(pause)


def send_now(config: VigieConfig, payload: dict[str, Any]) -> dict[str, str | None]:
    """Send one payload by every configured channel at once, outside the store (the test
    alert): channel -> None when sent, else the reason it was not."""
    ready, problems = senders(config)
    results: dict[str, str | None] = dict(problems)
    for channel, send in ready.items():
        try:
            send(payload)
        except DeliveryError as exc:
            results[channel] = exc.reason
        else:
            results[channel] = None
    return results
