"""Platforms' answers to referrals: every answer kept in `platform_outcomes` (an audit
trail), the latest one on the referral itself.

An answer moves a referral to `removed` (the content, or the whole account, is gone),
`restricted` or `declined`; an answer older than the one the referral holds is kept in the
trail but moves nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, or_, select, true, update

from vigie.errors import StoreError
from vigie.store.schema import platform_outcomes, posts, referrals

if TYPE_CHECKING:
    from vigie.store.core import Store

KINDS = ("removed", "account_suspended", "restricted", "rejected")
SOURCES = ("analyst", "csv", "dsa-tdb")
# The referral's state after each kind of answer.
STATUS = {
    "removed": "removed",
    "account_suspended": "removed",  # the content is gone with the account
    "restricted": "restricted",
    "rejected": "declined",
}


def referred_items(store: Store, notice_id: str | None = None) -> list[dict[str, Any]]:
    """Referred posts (of one notice, or all) with what an answer is matched on: the post's
    platform, id and URL, and the referral's time and latest answer."""
    r, p = referrals.c, posts.c
    query = (
        select(
            r.post_key, r.notice_id, r.platform.label("notice_platform"), r.status, r.referred_at,
            r.outcome, r.outcome_at, p.platform, p.channel, p.post_id, p.url,
        )
        .select_from(referrals.join(posts, p.key == r.post_key))
        .where(r.referred_at.is_not(None), r.notice_id == notice_id if notice_id else true())
        .order_by(r.notice_id, r.post_key)
    )  # fmt: skip
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def record_outcome(
    store: Store,
    post_key: str,
    outcome: str,
    decided_at: str,
    source: str,
    now: str,
    notice_id: str | None = None,
    reason: str | None = None,
    reference: str | None = None,
    note: str | None = None,
    recorded_by: str | None = None,
) -> bool:
    """Keep a platform's answer about a referred post, and move the referral to it unless a
    newer answer is already there. False, with nothing written, when the same answer (same
    kind and time) or the same statement of reasons (`reference` of a DSA match) is
    already kept. Times are ISO 8601 in UTC, as the store writes them."""
    if outcome not in KINDS:
        raise StoreError(f"outcome {outcome!r}: expected one of {', '.join(KINDS)}")
    if source not in SOURCES:
        raise StoreError(f"outcome source {source!r}: expected one of {', '.join(SOURCES)}")
    o = platform_outcomes.c
    with store.transaction() as connection:
        current = connection.execute(
            select(referrals.c.referred_at, referrals.c.outcome_at, referrals.c.removed_at)
            .where(referrals.c.post_key == post_key)
            .with_for_update()
        ).first()
        if current is None or current.referred_at is None:
            raise StoreError(f"{post_key}: not referred; only a referred post has an answer")
        same = and_(o.outcome == outcome, o.decided_at == decided_at)
        if source == "dsa-tdb" and reference:
            same = or_(same, and_(o.source == "dsa-tdb", o.reference == reference))
        if connection.scalar(select(o.id).where(o.post_key == post_key, same).limit(1)) is not None:
            return False
        connection.execute(
            insert(platform_outcomes).values(
                post_key=post_key,
                notice_id=notice_id,
                outcome=outcome,
                reason=reason,
                decided_at=decided_at,
                recorded_at=now,
                source=source,
                reference=reference,
                recorded_by=recorded_by,
                note=note,
            )
        )
        # A Telegram re-check sets removed_at without an answer: that is newer news too.
        latest = current.outcome_at or current.removed_at
        if latest is None or decided_at >= latest:
            status = STATUS[outcome]
            connection.execute(
                update(referrals)
                .where(referrals.c.post_key == post_key)
                .values(
                    status=status,
                    outcome=outcome,
                    outcome_at=decided_at,
                    removed_at=decided_at if status == "removed" else None,
                    updated_at=now,
                )
            )
        return True


def outcomes_of(store: Store, post_key: str) -> list[dict[str, Any]]:
    """Every answer kept for a post, in the order they were recorded."""
    query = (
        select(platform_outcomes)
        .where(platform_outcomes.c.post_key == post_key)
        .order_by(platform_outcomes.c.id)
    )
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def report_referrals(store: Store, period: str | None) -> list[dict[str, Any]]:
    """The referrals of posts published in `period` (a year, month or day prefix of the ISO
    date) or all, with their latest answer: what the report's outcome figures read."""
    r = referrals.c
    in_period = posts.c.published_at.startswith(period, autoescape=True) if period else true()
    query = (
        select(r.status, r.platform, r.referred_at, r.removed_at, r.outcome, r.outcome_at)
        .select_from(referrals.join(posts, posts.c.key == r.post_key))
        .where(in_period)
    )
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
