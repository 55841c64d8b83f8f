"""Discovered sources: the flagged posts that point elsewhere, and the decisions taken on
the sources they point to (approved ones are crawled beside the configured ones; dismissed
ones are not offered again)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from vigie.store.analysis import flagged_clause
from vigie.store.portable import upsert
from vigie.store.schema import analysis, discovered_sources, posts, referrals

if TYPE_CHECKING:
    from vigie.store.core import Store

STATUSES = ("approved", "dismissed")
AUTOMATIC = "automatic"  # `decided_by` of a source followed without an analyst


def flagged_posts_of(
    store: Store, sources: Iterable[tuple[str, str]], decided: Sequence[str]
) -> Iterator[dict[str, Any]]:
    """The flagged posts of `sources` ((platform, channel) pairs), with what they point
    through: sure adverts an analyst has not rejected, and posts whose referral an analyst's
    confirmation led to (`decided`), whatever they scored."""
    wanted = set(sources)
    if not wanted:
        return
    p = posts.c
    query = (
        select(p.key, p.platform, p.channel, p.post_id, p.url, p.text, p.forwarded_from, p.links, p.mentions)
        .select_from(
            posts.join(analysis, analysis.c.post_key == p.key).outerjoin(
                referrals, referrals.c.post_key == p.key
            )
        )
        .where(flagged_clause(decided), p.channel.in_(sorted({channel for _, channel in wanted})))
        .order_by(p.platform, p.channel, p.key)
    )
    with store.reading() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]
    for row in rows:
        if (row["platform"], row["channel"]) not in wanted:
            continue
        row["links"] = _json_list(row["links"])
        row["mentions"] = _json_list(row["mentions"])
        yield row


def _json_list(value: str | None) -> list[str]:
    try:
        found = json.loads(value or "[]")
    except ValueError:
        return []
    return [str(v) for v in found if isinstance(v, str)] if isinstance(found, list) else []


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    try:
        evidence = json.loads(row.get("evidence") or "{}")
    except ValueError:
        evidence = {}
    return {**row, "evidence": evidence if isinstance(evidence, dict) else {}}


def decisions(store: Store, status: str | None = None) -> list[dict[str, Any]]:
    """Every decided source (or those with `status`), oldest decision first."""
    d = discovered_sources.c
    query = select(discovered_sources).order_by(d.decided_at, d.platform, d.channel)
    if status is not None:
        query = query.where(d.status == status)
    with store.reading() as connection:
        return [_decoded(dict(row)) for row in connection.execute(query).mappings()]


def decision(store: Store, platform: str, channel: str) -> dict[str, Any] | None:
    d = discovered_sources.c
    query = select(discovered_sources).where(d.platform == platform, d.channel == channel)
    with store.reading() as connection:
        row = connection.execute(query).mappings().first()
    return _decoded(dict(row)) if row else None


def decide(
    store: Store,
    platform: str,
    channel: str,
    status: str,
    decided_by: str,
    decided_at: str,
    hops: int = 1,
    score: float | None = None,
    evidence: dict[str, Any] | None = None,
) -> None:
    """Record (or replace) the decision on a source, with the evidence it was taken on."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r}: expected one of {', '.join(STATUSES)}")
    row = {
        "platform": platform,
        "channel": channel,
        "status": status,
        "decided_at": decided_at,
        "decided_by": decided_by,
        "hops": hops,
        "score": score,
        "evidence": json.dumps(evidence or {}, ensure_ascii=False, sort_keys=True),
    }
    if decided_by == AUTOMATIC:
        row["followed_at"] = decided_at
    with store.transaction() as connection:
        # An analyst's later decision keeps `followed_at`: the day's cap still counts it.
        upsert(connection, discovered_sources, row, keys=("platform", "channel"))


def count_followed_between(store: Store, start: str, end: str) -> int:
    """Sources followed automatically from `start` to before `end` (ISO times in UTC),
    whatever an analyst decided on them since."""
    d = discovered_sources.c
    query = (
        select(func.count())
        .select_from(discovered_sources)
        .where(d.followed_at >= start, d.followed_at < end)
    )
    with store.reading() as connection:
        return int(connection.scalar(query) or 0)
