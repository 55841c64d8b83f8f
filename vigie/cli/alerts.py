"""`vigie alerts`: what the rules raised, where each went, and the dead letters."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from vigie.cli.main import load
from vigie.cli.output import cell, echo, echo_json
from vigie.errors import VigieError


@click.group("alerts")
def alerts_group() -> None:
    """Alerts raised by the rules in `alerts.rules` (a new network, a new contact in a known
    one, a big sure repost cluster, a route's weekly count above its baseline, a referred
    post still online), each raised once and delivered by webhook (`alerts.webhook`, signed
    with $VIGIE_WEBHOOK_SECRET) and email (`alerts.email`, credentials from
    $VIGIE_SMTP_USER and $VIGIE_SMTP_PASSWORD), at least once: a receiver de-duplicates on
    X-Vigie-Alert-Id. A failed delivery is retried with backoff; one tried max_attempts
    times and older than alerts.give_up_hours is kept as a dead letter. `vigie run` and the
    daemon evaluate the rules after each classification (the daemon's `alerts` job
    delivers); a rule's first evaluation on a store holding classified posts records what it
    matches as known and sends nothing."""


def _delivery_cell(deliveries: list[dict[str, Any]]) -> str:
    if not deliveries:
        return "not delivered (no channel, or known before alerting began)"
    parts = []
    for d in deliveries:
        text = f"{d['channel']}: {d['status']} after {d['attempts']} attempts"
        if d["status"] == "pending" and d.get("next_attempt_at"):
            text += f", next {d['next_attempt_at']}"
        if d["status"] != "sent" and d.get("last_error"):
            text += f" ({d['last_error']})"
        parts.append(text)
    return "; ".join(parts)


@alerts_group.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "sent", "dead"]),
    help="Only alerts with a delivery in this state (dead: the dead letters).",
)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: each alert, its payload and deliveries.")
@click.pass_context
def list_alerts(ctx: click.Context, status: str | None, limit: int, as_json: bool) -> None:
    """The alerts raised, newest first, with each delivery's state and attempts."""
    from rich.console import Console
    from rich.table import Table

    from vigie.store import Store
    from vigie.store import alerts as stored

    with Store(load(ctx).store_url(), read_only=True) as store:
        rows = stored.listed(store, status=status, limit=limit)
    if as_json:
        echo_json(rows, indent=1)
        return
    if not rows:
        echo(f"no alerts{f' with a {status} delivery' if status else ''}")
        return
    table = Table(title=f"Alerts ({len(rows)})")
    for column in ("alert", "raised", "summary", "deliveries"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            cell(row["alert_key"]),
            cell(row["created_at"][:19].replace("T", " ")),
            cell(row["payload"].get("summary", "")),
            cell(_delivery_cell(row["deliveries"])),
        )
    Console(width=180).print(table)


@alerts_group.command("retry")
@click.argument("keys", nargs=-1)
@click.option("--dead", is_flag=True, help="Every dead letter.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds to keep retrying what fails again.",
)
@click.pass_context
def retry(ctx: click.Context, keys: tuple[str, ...], dead: bool, wait: float) -> None:
    """Bring dead letters (those of KEYS, or all with --dead) back to pending, with their
    attempts counted again from zero, and deliver them now."""
    from datetime import UTC, datetime

    from pipeline.alerts.deliver import deliver
    from vigie.store import Store
    from vigie.store import alerts as stored

    if not keys and not dead:
        raise click.UsageError("name the alerts to retry (KEY…) or give --dead for every dead letter")
    config = load(ctx)
    with Store(config.store_url()) as store:
        if keys:
            unknown = sorted(set(keys) - stored.stored_keys(store, list(keys)))
            if unknown:
                raise VigieError(f"no such alert: {', '.join(unknown)} (see `vigie alerts list`)")
        revived = stored.revive(store, stored.timestamp(datetime.now(UTC)), keys=list(keys), dead=dead)
        echo(f"{revived} dead deliveries back to pending")
        with _stopped_by_sigterm() as stop:
            report = deliver(store, config, wait=wait, stop=stop)
    _print_delivery(config, report)
    _fail_if_failed(config, report)


@contextmanager
def _stopped_by_sigterm() -> Iterator[threading.Event]:
    """An event set by SIGTERM: the delivery under way ends and is recorded, no other starts
    (a receiver then sees it once, not again after the claim expires)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_delivery(config: Any, report: Any) -> None:
    echo(f"sent {report.sent}, dead letters {report.dead}, waiting {report.pending}")
    for line in report.messages(config):
        echo(line, err=True)


def _fail_if_failed(config: Any, report: Any) -> None:
    """Exit 1 when a delivery failed in this pass (each channel's line is printed above)."""
    from pipeline.alerts.deliver import where

    if report.failed:
        failed = sorted({*report.not_ready, *(ch for ch, c in report.channels.items() if c.last_error)})
        raise VigieError(
            "alerts not all delivered by "
            + ", ".join(where(config, ch) for ch in failed)
            + "; they wait in the store and are tried again"
        )


@alerts_group.command("send")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds to keep retrying deliveries that fail (0: one attempt each, the rest later).",
)
@click.option(
    "--no-baseline",
    is_flag=True,
    help="On a store never evaluated before, send what matches instead of recording it as known.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def send(ctx: click.Context, wait: float, no_baseline: bool, as_json: bool) -> None:
    """Evaluate the rules over the stored networks, clusters, routes and referrals, raise
    what is new and deliver every delivery due (networks are refreshed by each run and by
    `vigie networks --refresh`)."""
    from pipeline.alerts.deliver import deliver
    from pipeline.alerts.rules import raise_new
    from vigie.store import Store

    config = load(ctx)
    with Store(config.store_url()) as store:
        raised = raise_new(store, config, baseline=not no_baseline)
        with _stopped_by_sigterm() as stop:
            report = deliver(store, config, wait=wait, stop=stop)
        if not as_json:
            for alert in raised.new:
                echo(f"raised {alert.key}: {alert.summary}")
    if as_json:
        echo_json(
            {
                "raised": [a.payload() for a in raised.new],
                "baseline": raised.baseline,
                "errors": raised.errors,
                "delivery": report.to_json(),
            },
            indent=1,
        )
        _fail_if_failed(config, report)
        return
    if raised.baseline:
        echo(
            f"first evaluation on this store: {raised.baseline} matching alerts recorded as known, not sent "
            "(--no-baseline sends them)"
        )
    if raised.redelivered:
        echo(f"{raised.redelivered} deliveries added for channels configured after their alert was raised")
    for error in raised.errors:
        echo(error, err=True)
    _print_delivery(config, report)
    _fail_if_failed(config, report)


@alerts_group.command("test")
@click.pass_context
def test(ctx: click.Context) -> None:
    """Send a test alert to each configured channel now (it is not stored); exit 1 when a
    channel did not take it."""
    from pipeline.alerts.deliver import send_now, where
    from pipeline.alerts.rules import trial_alert

    config = load(ctx)
    results = send_now(config, trial_alert().payload())
    if not results:
        raise VigieError("no alert channel is configured: set alerts.webhook.url or alerts.email.host")
    failed = []
    for channel, problem in results.items():
        if problem is None:
            echo(f"{where(config, channel)}: test alert sent")
        else:
            failed.append(f"{where(config, channel)}: {problem}")
    if failed:
        raise VigieError("test alert not delivered: " + "; ".join(failed))
