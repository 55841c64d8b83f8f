"""Alerts and their deliveries.

An alert is one row per event (`alert_key` is the rule and its subject): raising it again
changes nothing. Raising it creates one delivery per configured channel in the same
transaction. A delivery is `pending` until a channel accepted it (`sent`) or it used up its
attempts (`dead`: the dead letter, its alert's payload kept for `vigie alerts retry`).

A sender claims an attempt before making it (attempts + 1, and `next_attempt_at` moved past
the attempt's longest duration), so two senders never make the same attempt and a sender
that dies mid-attempt leaves the delivery to be tried again later. A sender records its
result only while the claim is still its own (same attempt count, still pending): a sender
slower than its claim cannot overwrite what the next one recorded.

The rows `alerts:enabled:<rule>` record when each rule was first evaluated on this store;
they have no delivery.
Times are ISO 8601 UTC with microseconds (`timestamp`), so that they compare as text."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, update

from vigie.store.analysis import ANALYSED_POSTS, flagged_clause, flagged_posts_query
from vigie.store.portable import insert_missing, insert_missing_keys
from vigie.store.schema import alert_deliveries, alerts, analysis, posts, referrals, removal_checks

if TYPE_CHECKING:
    from vigie.store.core import Store

CHANNELS = ("webhook", "email")
STATUSES = ("pending", "sent", "dead")
ENABLED_RULE = "enabled"
SILENT_MARK = "known_before_alerting"  # in a silent alert's stored payload: never delivered


def enabled_key(rule: str) -> str:
    return f"alerts:enabled:{rule}"


def timestamp(moment: datetime) -> str:
    """How this module writes times: UTC, with microseconds, comparable as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class NewAlert:
    key: str
    rule: str
    subject: str
    created_at: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    alert_key: str
    channel: str
    status: str
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    sent_at: str | None
    payload: dict[str, Any]
    created_at: str = ""  # when its alert was raised


def _row(alert: NewAlert, silent: bool = False) -> dict[str, Any]:
    payload = {**alert.payload, SILENT_MARK: True} if silent else alert.payload
    return {
        "alert_key": alert.key,
        "rule": alert.rule,
        "subject": alert.subject,
        "created_at": alert.created_at,
        "payload": json.dumps(payload, ensure_ascii=False, sort_keys=True),
    }


def enabled_rules(store: Store, rules: Iterable[str]) -> set[str]:
    """Which of these rules were evaluated on this store before."""
    wanted = sorted(set(rules))
    with store.reading() as connection:
        keys = set(
            connection.scalars(
                select(alerts.c.alert_key).where(alerts.c.alert_key.in_([enabled_key(r) for r in wanted]))
            )
        )
    return {rule for rule in wanted if enabled_key(rule) in keys}


def raise_alerts(
    store: Store,
    found: Sequence[NewAlert],
    channels: Sequence[str],
    now: str,
    silent: Sequence[NewAlert] = (),
    enable: Sequence[str] = (),
) -> list[str]:
    """Store the alerts not stored yet, each with a pending delivery per channel, and the
    `silent` ones (known, never delivered: a first evaluation's baseline), and record the
    rules of `enable` as evaluated from now on. One transaction. Returns the keys of `found`
    that were new."""
    unknown = sorted(set(channels) - set(CHANNELS))
    if unknown:
        raise ValueError(f"alert channels {unknown}: expected {', '.join(CHANNELS)}")
    with store.transaction() as connection:
        for rule in sorted(set(enable)):
            baseline = sum(1 for a in silent if a.rule == rule)
            insert_missing(
                connection,
                alerts,
                {
                    "alert_key": enabled_key(rule),
                    "rule": ENABLED_RULE,
                    "subject": rule,
                    "created_at": now,
                    "payload": json.dumps({"rule": rule, "baseline": baseline}),
                },
            )
        if silent:
            insert_missing_keys(connection, alerts, [_row(a, silent=True) for a in silent])
        new = insert_missing_keys(connection, alerts, [_row(a) for a in found]) if found else []
        if new and channels:
            connection.execute(
                alert_deliveries.insert(),
                [
                    {
                        "alert_key": key,
                        "channel": channel,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                    }
                    for key in new
                    for channel in channels
                ],
            )
    return [str(key) for key in new]


def payloads(store: Store, rule: str) -> list[dict[str, Any]]:
    """The payloads of the stored alerts of one rule, oldest first."""
    query = (
        select(alerts.c.payload)
        .where(alerts.c.rule == rule)
        .order_by(alerts.c.created_at, alerts.c.alert_key)
    )
    with store.reading() as connection:
        return [json.loads(row.payload) for row in connection.execute(query)]


# -- deliveries ---------------------------------------------------------------------------


def _delivery_query() -> Any:
    d = alert_deliveries.c
    return select(
        d.alert_key,
        d.channel,
        d.status,
        d.attempts,
        d.next_attempt_at,
        d.last_error,
        d.sent_at,
        alerts.c.payload,
        alerts.c.created_at,
    ).select_from(alert_deliveries.join(alerts, alerts.c.alert_key == d.alert_key))


def _delivery(row: Any) -> Delivery:
    return Delivery(
        alert_key=row.alert_key,
        channel=row.channel,
        status=row.status,
        attempts=int(row.attempts),
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        sent_at=row.sent_at,
        payload=json.loads(row.payload),
        created_at=str(row.created_at),
    )


def due(store: Store, now: str, channels: Sequence[str]) -> list[Delivery]:
    """Pending deliveries of these channels whose next attempt is due, oldest first."""
    d = alert_deliveries.c
    query = (
        _delivery_query()
        .where(
            d.status == "pending",
            d.channel.in_(list(channels)),
            or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now),
        )
        .order_by(alerts.c.created_at, d.alert_key, d.channel)
    )
    with store.reading() as connection:
        return [_delivery(row) for row in connection.execute(query)]


def next_due(store: Store, channels: Sequence[str]) -> str | None:
    """When the earliest pending delivery of these channels is due next."""
    d = alert_deliveries.c
    query = select(func.min(d.next_attempt_at)).where(d.status == "pending", d.channel.in_(list(channels)))
    with store.reading() as connection:
        value = connection.scalar(query)
    return str(value) if value is not None else None


def claim(store: Store, delivery: Delivery, now: str, busy_until: str) -> bool:
    """Take the delivery's next attempt: True when no other sender took it first. Until
    `busy_until` no one else tries it; a sender that dies leaves it to be tried then."""
    d = alert_deliveries.c
    with store.transaction() as connection:
        result = connection.execute(
            update(alert_deliveries)
            .where(
                d.alert_key == delivery.alert_key,
                d.channel == delivery.channel,
                d.status == "pending",
                d.attempts == delivery.attempts,
                or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now),
            )
            .values(attempts=delivery.attempts + 1, next_attempt_at=busy_until)
        )
        return bool(result.rowcount == 1)


def _still_claimed(alert_key: str, channel: str, attempt: int) -> Any:
    d = alert_deliveries.c
    return and_(d.alert_key == alert_key, d.channel == channel, d.status == "pending", d.attempts == attempt)


def record_sent(store: Store, alert_key: str, channel: str, now: str, attempt: int) -> bool:
    """Attempt number `attempt` (as claimed) delivered: False when the claim was no longer
    this sender's (another one claimed the delivery since), and nothing is changed."""
    with store.transaction() as connection:
        result = connection.execute(
            update(alert_deliveries)
            .where(_still_claimed(alert_key, channel, attempt))
            .values(status="sent", sent_at=now, next_attempt_at=None, last_error=None)
        )
        return bool(result.rowcount == 1)


def record_failure(
    store: Store, alert_key: str, channel: str, error: str, next_attempt_at: str | None, attempt: int
) -> bool:
    """Attempt number `attempt` (as claimed) failed: tried again at `next_attempt_at`, or
    dead (None) with its payload kept. False when the claim was no longer this sender's."""
    values: dict[str, Any] = {"last_error": error[:500], "next_attempt_at": next_attempt_at}
    if next_attempt_at is None:
        values["status"] = "dead"
    with store.transaction() as connection:
        result = connection.execute(
            update(alert_deliveries).where(_still_claimed(alert_key, channel, attempt)).values(**values)
        )
        return bool(result.rowcount == 1)


def add_deliveries(store: Store, channels: Sequence[str], raised_since: str, now: str) -> int:
    """Pending deliveries, due now, for the alerts raised since then that a channel lacks
    (alerts raised while no channel was configured, or before this one was added); silent
    alerts stay undelivered. Returns how many."""
    a, d = alerts.c, alert_deliveries.c
    if not channels:
        return 0
    query = select(a.alert_key, a.payload).where(a.rule != ENABLED_RULE, a.created_at >= raised_since)
    with store.transaction() as connection:
        candidates = {
            str(row.alert_key): row.payload
            for row in connection.execute(query)
            if SILENT_MARK not in json.loads(row.payload)
        }
        if not candidates:
            return 0
        have = {
            (str(row.alert_key), str(row.channel))
            for row in connection.execute(
                select(d.alert_key, d.channel).where(d.alert_key.in_(sorted(candidates)))
            )
        }
        rows = [
            {"alert_key": key, "channel": channel, "status": "pending", "attempts": 0, "next_attempt_at": now}
            for key in sorted(candidates)
            for channel in channels
            if (key, channel) not in have
        ]
        if rows:
            connection.execute(alert_deliveries.insert(), rows)
    return len(rows)


def revive(store: Store, now: str, keys: Sequence[str] = (), dead: bool = False) -> int:
    """Dead deliveries (all with `dead`, or those of `keys`) back to pending, due now, with
    their attempts started again. Returns how many."""
    d = alert_deliveries.c
    wanted = [d.status == "dead"]
    if keys:
        wanted.append(d.alert_key.in_(list(keys)))
    elif not dead:
        return 0
    with store.transaction() as connection:
        result = connection.execute(
            update(alert_deliveries)
            .where(and_(*wanted))
            .values(status="pending", attempts=0, next_attempt_at=now)
        )
        return int(result.rowcount or 0)


def stored_keys(store: Store, keys: Sequence[str]) -> set[str]:
    """Which of `keys` are stored alerts."""
    with store.reading() as connection:
        rows = connection.execute(select(alerts.c.alert_key).where(alerts.c.alert_key.in_(list(keys))))
        return {str(row.alert_key) for row in rows}


def listed(store: Store, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Alerts newest first, each with its deliveries; with `status`, the alerts having a
    delivery in that state. Silent (baseline) alerts have no delivery and are left out
    when a status is asked for."""
    a, d = alerts.c, alert_deliveries.c
    query = select(a.alert_key, a.rule, a.subject, a.created_at, a.payload).where(a.rule != ENABLED_RULE)
    if status is not None:
        query = query.where(a.alert_key.in_(select(d.alert_key).where(d.status == status).scalar_subquery()))
    query = query.order_by(a.created_at.desc(), a.alert_key)
    if limit is not None:
        query = query.limit(limit)
    with store.reading() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]
        keys = [row["alert_key"] for row in rows]
        deliveries: dict[str, list[dict[str, Any]]] = {}
        if keys:
            found = connection.execute(
                select(
                    d.alert_key, d.channel, d.status, d.attempts, d.next_attempt_at, d.last_error, d.sent_at
                )
                .where(d.alert_key.in_(keys))
                .order_by(d.alert_key, d.channel)
            ).mappings()
            for delivery in found:
                item = dict(delivery)
                deliveries.setdefault(item.pop("alert_key"), []).append(item)
    for row in rows:
        row["payload"] = json.loads(row["payload"])
        row["deliveries"] = deliveries.get(row["alert_key"], [])
    return rows


def counts(store: Store) -> dict[str, int]:
    """Deliveries by status."""
    d = alert_deliveries.c
    with store.reading() as connection:
        rows = connection.execute(select(d.status, func.count()).group_by(d.status)).all()
    return {status: 0 for status in STATUSES} | {str(status): int(n) for status, n in rows}


def pending_by_channel(store: Store) -> dict[str, int]:
    """Pending deliveries per channel."""
    d = alert_deliveries.c
    query = select(d.channel, func.count()).where(d.status == "pending").group_by(d.channel)
    with store.reading() as connection:
        return {str(channel): int(n) for channel, n in connection.execute(query).all()}


def classified_posts(store: Store) -> int:
    """How many posts have been classified (by any model)."""
    with store.reading() as connection:
        return int(connection.scalar(select(func.count()).select_from(analysis)) or 0)


# -- what the rules read ------------------------------------------------------------------


def flagged_clusters(store: Store, decided: Sequence[str], min_posts: int) -> list[dict[str, Any]]:
    """Repost clusters with at least `min_posts` flagged posts: their size, best score,
    channels, URLs and first and last publication."""
    p, an = posts.c, analysis.c
    query = (
        select(an.cluster_id, p.platform, p.channel, p.url, p.published_at, an.score)
        .select_from(ANALYSED_POSTS)
        .where(flagged_clause(decided), an.cluster_id.is_not(None))
        .order_by(an.cluster_id, p.published_at, p.key)
    )
    clusters: dict[str, dict[str, Any]] = {}
    with store.reading() as connection:
        for row in connection.execute(query):
            cluster = clusters.setdefault(
                row.cluster_id,
                {"cluster_id": row.cluster_id, "posts": 0, "best_score": 0.0, "sources": set(), "urls": [],
                 "first_published": None, "last_published": None},
            )  # fmt: skip
            cluster["posts"] += 1
            cluster["best_score"] = max(cluster["best_score"], float(row.score))
            cluster["sources"].add(f"{row.platform}:{row.channel}")
            cluster["urls"].append(row.url)
            if row.published_at:
                cluster["first_published"] = min(filter(None, (cluster["first_published"], row.published_at)))
                cluster["last_published"] = max(filter(None, (cluster["last_published"], row.published_at)))
    found = [c for c in clusters.values() if c["posts"] >= min_posts]
    for cluster in found:
        cluster["sources"] = sorted(cluster["sources"])
    return found


def flagged_route_posts(store: Store, decided: Sequence[str], published_since: str) -> list[dict[str, Any]]:
    """The flagged posts published since then, as `flagged_posts_query` gives them, with
    their entities (JSON text, as stored) and repost cluster: what the route rule reads."""
    query = flagged_posts_query(decided, analysis.c.entities, analysis.c.cluster_id).where(
        posts.c.published_at >= published_since
    )
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def referred_unremoved(store: Store, referred_before: str) -> list[dict[str, Any]]:
    """Referred posts referred before that time and not known removed: their referral and
    their latest removal check."""
    r, p, c = referrals.c, posts.c, removal_checks.c
    latest = (
        select(c.post_key, func.max(c.id).label("check_id")).group_by(c.post_key).subquery("latest_check")
    )
    query = (
        select(
            r.post_key, r.status, r.platform, r.notice_id, r.referred_at, r.last_checked_at, p.url, p.channel,
            removal_checks.c.outcome.label("last_check"), removal_checks.c.checked_at.label("last_check_at"),
        )
        .select_from(
            referrals.join(posts, p.key == r.post_key)
            .outerjoin(latest, latest.c.post_key == r.post_key)
            .outerjoin(removal_checks, removal_checks.c.id == latest.c.check_id)
        )
        .where(
            r.referred_at.is_not(None),
            r.referred_at < referred_before,
            r.status.in_(["referred", "online"]),
            r.removed_at.is_(None),
        )
        .order_by(r.referred_at, r.post_key)
    )  # fmt: skip
    with store.reading() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]
    return [row for row in rows if row["last_check"] in (None, "online", "error")]
