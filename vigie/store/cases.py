"""Cases: analysts' reviews (an audit log), referrals and their batches, removal checks,
and the figures a trusted flagger publishes.

A referral moves new → confirmed | rejected → referred → removed | online (a re-crawl) |
restricted | declined (a platform's answer, `outcomes`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, insert, or_, select, update

from vigie.errors import StoreError
from vigie.store.portable import upsert
from vigie.store.schema import analysis, posts, referral_batches, referrals, removal_checks, reviews

if TYPE_CHECKING:
    from vigie.store.core import Store

# Referred items are not reviewed again, whatever became of them.
LOCKED = ("referred", "removed", "online", "restricted", "declined")

_FLAGGED = or_(analysis.c.is_advert == 1, analysis.c.needs_review == 1)
_ANALYSED_POSTS = analysis.join(posts, posts.c.key == analysis.c.post_key).outerjoin(
    referrals, referrals.c.post_key == analysis.c.post_key
)


def flagged_posts(store: Store) -> list[dict[str, Any]]:
    """Sure adverts and the review band with their post and referral status: sure adverts
    first, each band by score, highest first."""
    a, p = analysis.c, posts.c
    query = (
        select(
            a.post_key, a.cluster_id, a.score, a.lang, a.cues, a.entities, a.is_advert,
            p.url, p.channel, p.platform, p.text, p.ocr_text, p.published_at, referrals.c.status,
        )
        .select_from(_ANALYSED_POSTS)
        .where(_FLAGGED)
        .order_by(a.is_advert.desc(), a.score.desc())
    )  # fmt: skip
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def flagged_in(store: Store, target: str) -> list[dict[str, Any]]:
    """The flagged posts a review target names: a post key, or a repost cluster id."""
    a = analysis.c
    query = (
        select(a.post_key, a.cluster_id, a.cues, posts.c.platform, referrals.c.status)
        .select_from(_ANALYSED_POSTS)
        .where(_FLAGGED, or_(a.post_key == target, a.cluster_id == target))
        .order_by(a.post_key)
    )
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def record_decision(
    store: Store,
    post_key: str,
    cluster_id: str | None,
    platform: str,
    content_type: str,
    decision: str,
    reason: str,
    reviewer: str,
    now: str,
) -> None:
    """An analyst's decision on a post: audited in `reviews`, and its referral's new state.
    Refused, with nothing written, when the post was referred meanwhile (an export between
    reading the queue and deciding): the referral's state is checked under a row lock."""
    with store.transaction() as connection:
        current = connection.scalar(
            select(referrals.c.status).where(referrals.c.post_key == post_key).with_for_update()
        )
        if current in LOCKED:
            raise StoreError(f"{post_key}: already {current}; a referred item is not re-reviewed")
        connection.execute(
            insert(reviews).values(
                post_key=post_key,
                cluster_id=cluster_id,
                decision=decision,
                reason=reason,
                reviewer=reviewer,
                decided_at=now,
            )
        )
        row = {
            "post_key": post_key,
            "status": decision,
            "cluster_id": cluster_id,
            "platform": platform,
            "content_type": content_type,
            "updated_at": now,
        }
        upsert(connection, referrals, row, keys=["post_key"], update=["status", "updated_at"])


def latest_decisions(store: Store) -> list[dict[str, Any]]:
    """Each reviewed post's latest decision, with its text, language and cues (posts whose
    text was minimised away are left out)."""
    latest = select(func.max(reviews.c.id)).group_by(reviews.c.post_key)
    query = (
        select(reviews.c.decision, posts.c.text, analysis.c.lang, analysis.c.cues)
        .select_from(
            reviews.join(posts, posts.c.key == reviews.c.post_key).join(
                analysis, analysis.c.post_key == reviews.c.post_key
            )
        )
        .where(reviews.c.id.in_(latest), posts.c.text != "")
        .order_by(reviews.c.id)
    )
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def detection_of_referred(store: Store, period: str | None) -> dict[str, int]:
    """How the referred items of a period (YYYY or YYYY-MM of the referral) were found: flagged
    as adverts by the classifier, put in its review band, or neither (an analyst's own find)."""
    r, a = referrals.c, analysis.c
    found = case(
        (a.is_advert == 1, "classifier"),
        (a.needs_review == 1, "review_band"),
        else_="analyst",
    )
    query = (
        select(found.label("found"), func.count())
        .select_from(referrals.outerjoin(analysis, a.post_key == r.post_key))
        .where(r.referred_at.is_not(None))
        .group_by(found)
    )
    if period:
        query = query.where(r.referred_at.startswith(period, autoescape=True))
    counts = {"classifier": 0, "review_band": 0, "analyst": 0}
    with store.reading() as connection:
        for kind, n in connection.execute(query):
            counts[kind] = int(n)
    return counts


def count_rejected_in(store: Store, period: str | None) -> int:
    """Posts whose latest review (of a period: YYYY or YYYY-MM of the decision) rejected them."""
    latest = select(func.max(reviews.c.id)).group_by(reviews.c.post_key)
    query = select(func.count()).where(reviews.c.id.in_(latest), reviews.c.decision == "rejected")
    if period:
        query = query.where(reviews.c.decided_at.startswith(period, autoescape=True))
    with store.reading() as connection:
        return int(connection.execute(query).scalar() or 0)


def review_log(store: Store, limit: int) -> list[dict[str, Any]]:
    """The latest decisions first."""
    with store.reading() as connection:
        rows = connection.execute(select(reviews).order_by(reviews.c.id.desc()).limit(limit)).mappings()
        return [dict(row) for row in rows]


# -- referrals ---------------------------------------------------------------------------


def confirmed_for(store: Store, platform: str) -> list[dict[str, Any]]:
    """Confirmed posts of a platform not referred yet, with their evidence, by cluster and date."""
    p, a, r = posts.c, analysis.c, referrals.c
    query = (
        select(
            r.post_key, r.cluster_id, r.content_type, p.url, p.platform, p.channel, p.post_id,
            p.author_name, p.text, p.payload_sha256,
            p.captured_at, p.crawler_version, p.published_at, a.entities, a.score, a.lang,
        )
        .select_from(
            referrals.join(posts, p.key == r.post_key).join(analysis, a.post_key == r.post_key)
        )
        .where(r.status == "confirmed", r.platform == platform)
        .order_by(r.cluster_id, p.published_at)
    )  # fmt: skip
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def mark_referred(
    store: Store, post_key: str, batch_id: str, notice_id: str, evidence: dict[str, Any], now: str
) -> bool:
    """A confirmed post went out in notice `notice_id`: its evidence is frozen as sent.
    False when it is no longer confirmed (a decision or another export came first)."""
    with store.transaction() as connection:
        result = connection.execute(
            update(referrals)
            .where(referrals.c.post_key == post_key, referrals.c.status == "confirmed")
            .values(
                status="referred",
                batch_id=batch_id,
                notice_id=notice_id,
                referred_at=now,
                evidence_text=evidence["text"],
                evidence_sha256=evidence["payload_sha256"],
                evidence_captured_at=evidence["captured_at"],
                evidence_crawler_version=evidence["crawler_version"],
                updated_at=now,
            )
        )
        return bool(result.rowcount == 1)


def record_batch(
    store: Store, batch_id: str, platform: str, fmt: str, notices: int, items: int, path: str, now: str
) -> None:
    with store.transaction() as connection:
        connection.execute(
            insert(referral_batches).values(
                batch_id=batch_id,
                platform=platform,
                format=fmt,
                created_at=now,
                notices=notices,
                items=items,
                path=path,
            )
        )


def frozen_evidence(store: Store, post_key: str) -> dict[str, Any] | None:
    """The evidence of a referred post as it was sent: text, page hash, capture time."""
    r = referrals.c
    query = select(
        r.evidence_text.label("text"),
        r.evidence_sha256.label("sha256"),
        r.evidence_captured_at.label("captured_at"),
        r.evidence_crawler_version.label("crawler_version"),
    ).where(r.post_key == post_key, r.referred_at.is_not(None))
    with store.reading() as connection:
        row = connection.execute(query).mappings().first()
    return dict(row) if row else None


def referred_posts(store: Store) -> list[dict[str, Any]]:
    """Referred posts whose removal is not established yet (referred, or seen online)."""
    r, p = referrals.c, posts.c
    query = (
        select(r.post_key, r.referred_at, r.last_checked_at, p.channel, p.post_id, p.platform)
        .select_from(referrals.join(posts, p.key == r.post_key))
        .where(r.status.in_(("referred", "online")))
    )
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def record_removal_check(store: Store, post_key: str, outcome: str, detail: str, now: str) -> None:
    """What a re-crawl found: `removed` or `online` settles the referral's state until the
    next check; an `error` only counts as a check."""
    with store.transaction() as connection:
        connection.execute(
            insert(removal_checks).values(post_key=post_key, checked_at=now, outcome=outcome, detail=detail)
        )
        this = update(referrals).where(referrals.c.post_key == post_key)
        checked = {"last_checked_at": now, "checks": referrals.c.checks + 1}
        if outcome == "error":
            connection.execute(this.values(**checked))
        else:
            removed_at = now if outcome == "removed" else None
            connection.execute(this.values(**checked, status=outcome, removed_at=removed_at, updated_at=now))


def referred_in(store: Store, period: str | None) -> list[dict[str, Any]]:
    """Every referred item (of a period: YYYY or YYYY-MM of its referral date), with the
    platform's latest answer."""
    r = referrals.c
    query = select(
        r.platform, r.content_type, r.status, r.notice_id, r.post_key, r.referred_at, r.removed_at,
        r.outcome, r.outcome_at,
    ).where(r.referred_at.is_not(None))  # fmt: skip
    if period:
        query = query.where(r.referred_at.startswith(period, autoescape=True))
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
