"""What is shared with intelligence partners: flagged posts only (sure adverts an analyst has
not rejected, and posts an analyst's confirmation keeps flagged), with their analysis, their
referral's state and evidence, and the analyst's latest reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, true

from vigie.store.schema import analysis, posts, referrals, reviews

if TYPE_CHECKING:
    from vigie.store.core import Store


def shareable_posts(store: Store, decided: Sequence[str], period: str | None = None) -> list[dict[str, Any]]:
    """Flagged posts published in `period` (a year, month or day prefix of the ISO date) or
    all, in publication order: never a post an analyst rejected, never an unflagged one."""
    p, a, r = posts.c, analysis.c, referrals.c
    flagged = or_(
        and_(a.is_advert == 1, or_(r.status.is_(None), r.status != "rejected")),
        r.status.in_(list(decided)),
    )
    latest = select(reviews.c.post_key, func.max(reviews.c.id).label("id")).group_by(reviews.c.post_key)
    latest_review = latest.subquery("latest_review")
    review = reviews.alias("review")
    in_period = p.published_at.startswith(period, autoescape=True) if period else true()
    query = (
        select(
            p.key, p.platform, p.channel, p.post_id, p.url, p.text, p.ocr_text, p.published_at,
            p.captured_at, p.first_seen, p.updated_at, p.payload_sha256, p.content_sha256,
            p.author_name, p.minimised,
            a.lang, a.score, a.is_advert, a.entities, a.cluster_id,
            r.status.label("referral_status"), r.notice_id, r.referred_at, r.evidence_sha256,
            r.evidence_captured_at, r.outcome,
            review.c.decision.label("review_decision"), review.c.reason.label("review_reason"),
            review.c.reviewer, review.c.decided_at,
        )
        .select_from(
            posts.join(analysis, a.post_key == p.key)
            .outerjoin(referrals, r.post_key == p.key)
            .outerjoin(latest_review, latest_review.c.post_key == p.key)
            .outerjoin(review, review.c.id == latest_review.c.id)
        )
        .where(flagged, in_period)
        .order_by(p.published_at, p.key)
    )  # fmt: skip
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
