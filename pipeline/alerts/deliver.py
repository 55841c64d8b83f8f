"""The delivery loop: every pending delivery whose attempt is due, one attempt each, until
none is due or the time allowed is spent.

Attempt n that fails is tried again the channel's `backoff_base` × 2^(n-1) seconds later,
at most `alerts.max_backoff_seconds` later (`next_attempt_at`). A delivery is `dead` once it
has been tried the channel's `max_attempts` times AND its alert is `alerts.give_up_hours`
old, so an outage shorter than that loses nothing; its payload is kept until `vigie alerts
retry` brings it back.

Delivery is at least once: an attempt is claimed in the store before it is made, so two
senders (the daemon's `alerts` job, `vigie alerts send`, a run) never make the same one;
each attempt ends within `attempt_seconds` and its claim lasts longer than that; a result
is recorded only while the claim is still the sender's. A sender killed after its request
reached the receiver and before it recorded the result leaves the delivery to be tried again
once the claim expires: the receiver then sees the alert twice, with the same
`X-Vigie-Alert-Id` (webhook) or Message-ID (email), and de-duplicates on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.alerts import DeliveryError
from vigie.config import VigieConfig
from vigie.store import Store, stored_time
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
    exponent = min(max(attempts - 1, 0), 60)  # 2^60 s is past any cap
    return float(min(base * 2**exponent, config.alerts.max_backoff_seconds))


def attempt_seconds(config: VigieConfig, channel: str) -> float:
    """The longest one attempt may take in all (connection, TLS, login, sending, answer)."""
    timeout = config.alerts.webhook.timeout if channel == "webhook" else config.alerts.email.timeout
    return 2 * timeout + 1


def _claim_seconds(config: VigieConfig, channel: str) -> float:
    """How long another sender leaves a claimed attempt alone: past its end and its record."""
    return attempt_seconds(config, channel) + 10


def gives_up(config: VigieConfig, delivery: stored.Delivery, attempts: int, at: datetime) -> bool:
    """Whether a delivery whose attempt `attempts` just failed is now a dead letter."""
    if attempts < max_attempts(config, delivery.channel):
        return False
    raised = stored_time(delivery.created_at)
    if raised is None:
        return True
    return (at - raised).total_seconds() >= config.alerts.give_up_hours * 3600


def where(config: VigieConfig, channel: str) -> str:
    """The channel as messages name it: the webhook's scheme and host only (a path or a
    query may carry a token), the email server's host and port."""
    from urllib.parse import urlsplit

    if channel == "webhook":
        parts = urlsplit(config.alerts.webhook.url or "")
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
        return f"webhook {parts.scheme}://{host}{port}"
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
    out_of_time: int = 0  # deliveries due that the time allowed left for later
    pending: int = 0  # pending deliveries once done

    @property
    def failed(self) -> bool:
        """Whether an attempt failed in this pass, or a configured channel could not send."""
        return bool(self.not_ready) or any(c.last_error for c in self.channels.values())

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
        if self.out_of_time:
            lines.append(
                f"alerts: {self.out_of_time} deliveries due wait for the next pass (the daemon's alerts job "
                "or `vigie alerts send`): the time allowed here was spent"
            )
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "dead": self.dead,
            "retrying": sum(len(c.retrying) for c in self.channels.values()),
            "not_ready": dict(self.not_ready),
            "out_of_time": self.out_of_time,
            "pending": self.pending,
            "errors": {ch: c.last_error for ch, c in self.channels.items() if c.last_error},
        }


def _within(send: Sender, payload: dict[str, Any], seconds: float) -> str | None:
    """`send(payload)`, given up after `seconds` in all: a server that answers one byte at a
    time cannot hold an attempt past its claim. An attempt given up on may still reach the
    receiver (at least once)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["warning"] = send(payload)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="alert-attempt", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise DeliveryError(f"not done within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    warning: str | None = outcome.get("warning")
    return warning


def attempt(
    store: Store, config: VigieConfig, delivery: stored.Delivery, send: Sender, report: DeliveryReport
) -> None:
    """One attempt at one delivery, if no other sender took it first. Whatever the sender
    raises is a failed attempt: one alert never stops the others."""
    began = datetime.now(UTC)
    busy_until = stored.timestamp(began + timedelta(seconds=_claim_seconds(config, delivery.channel)))
    if not stored.claim(store, delivery, stored.timestamp(began), busy_until):
        return
    attempts = delivery.attempts + 1
    channel = report.of(delivery.channel)
    try:
        warning = _within(send, delivery.payload, attempt_seconds(config, delivery.channel))
    except Exception as exc:
        reason = exc.reason if isinstance(exc, DeliveryError) else f"{type(exc).__name__} while sending"
        if not isinstance(exc, DeliveryError):
            log.debug("alert %s: %s attempt failed", delivery.alert_key, delivery.channel, exc_info=True)
        ended = datetime.now(UTC)
        channel.last_error = reason
        if gives_up(config, delivery, attempts, ended):
            if stored.record_failure(store, delivery.alert_key, delivery.channel, reason, None, attempts):
                channel.dead += 1
            channel.retrying.discard(delivery.alert_key)
            log.info(  # the report's one line per channel says it to the user
                "alert %s: %s failed %d times, kept as a dead letter: %s",
                delivery.alert_key, delivery.channel, attempts, reason,
            )  # fmt: skip
        else:
            next_at = stored.timestamp(ended + timedelta(seconds=backoff(config, attempts, delivery.channel)))
            if stored.record_failure(store, delivery.alert_key, delivery.channel, reason, next_at, attempts):
                channel.retrying.add(delivery.alert_key)
                channel.next_attempt_at = min(filter(None, (channel.next_attempt_at, next_at)))
            log.info(
                "alert %s: %s attempt %d failed: %s",
                delivery.alert_key, delivery.channel, attempts, reason,
            )  # fmt: skip
        return
    if not stored.record_sent(
        store, delivery.alert_key, delivery.channel, stored.timestamp(datetime.now(UTC)), attempts
    ):
        log.info("alert %s: sent by %s after its claim expired", delivery.alert_key, delivery.channel)
        return
    channel.sent += 1
    channel.retrying.discard(delivery.alert_key)
    if warning:
        report.warnings.append(f"alerts: {delivery.alert_key}: {warning}")
    log.info("alert %s: sent by %s (attempt %d)", delivery.alert_key, delivery.channel, attempts)


def deliver(
    store: Store,
    config: VigieConfig,
    wait: float = 0.0,
    budget: float | None = None,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Make every due attempt; then, while the next one falls within `wait` seconds of the
    start, wait for it and go on. With `budget`, no attempt starts once that many seconds
    are spent (one attempt takes `attempt_seconds` at most): what is due then is counted in
    `out_of_time` and waits for the next pass. Once `stop` is set no attempt starts; the
    one under way ends and is recorded."""
    stop = stop or threading.Event()
    ready, problems = senders(config)
    report = DeliveryReport(not_ready=problems)
    started = time.monotonic()
    deadline = started + wait
    cutoff = None if budget is None else started + budget
    channels = sorted(ready)
    while channels:
        due = stored.due(store, stored.timestamp(datetime.now(UTC)), channels)
        for n, delivery in enumerate(due):
            if stop.is_set() or (cutoff is not None and time.monotonic() >= cutoff):
                report.out_of_time = len(due) - n
                break
            attempt(store, config, delivery, ready[delivery.channel], report)
        if report.out_of_time or stop.is_set():
            break
        upcoming = stored_time(stored.next_due(store, channels))
        if upcoming is None:
            break
        pause = (upcoming - datetime.now(UTC)).total_seconds()
        if time.monotonic() + max(pause, 0.0) > min(deadline, cutoff or deadline):
            break  # later attempts: the next run, `vigie alerts send` or the daemon's job
        if pause > 0:
            stop.wait(pause)
    waiting = stored.pending_by_channel(store)
    report.pending = sum(waiting.values())
    for channel, n in sorted(waiting.items()):
        if channel not in configured_channels(config):
            report.warnings.append(
                f"alerts: {n} deliveries by {channel} wait, but no {channel} channel is configured any more "
                f"(configure it again to send them, or `vigie alerts list --status pending`)"
            )
    return report


def send_now(config: VigieConfig, payload: dict[str, Any]) -> dict[str, str | None]:
    """Send one payload by every configured channel at once, outside the store (the test
    alert): channel -> None when sent, else the reason it was not."""
    ready, problems = senders(config)
    results: dict[str, str | None] = dict(problems)
    for channel, send in ready.items():
        try:
            _within(send, payload, attempt_seconds(config, channel))
        except DeliveryError as exc:
            results[channel] = exc.reason
        except Exception as exc:
            results[channel] = f"{type(exc).__name__} while sending"
        else:
            results[channel] = None
    return results
