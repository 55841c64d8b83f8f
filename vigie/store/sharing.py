"""What is shared with intelligence partners: flagged posts only (sure adverts an analyst has
not rejected, and posts an analyst's confirmation keeps flagged), with their analysis, their
referral's state and evidence, and the analyst's latest reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, func, select, true

from vigie.store.analysis import ANALYSED_POSTS, flagged_clause
from vigie.store.core import json_object
from vigie.store.media import chunks
from vigie.store.schema import analysis, posts, referrals, reviews

if TYPE_CHECKING:
    from vigie.store.core import Store


def shareable_posts(
    store: Store,
    decided: Sequence[str],
    start: str | None = None,
    end: str | None = None,
    keys: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Flagged posts (`flagged_clause`) published from `start` (included) to `end`
    (excluded), ISO dates or times, or all (a post without a date only then), and only
    those of `keys` if given, in publication order, entities decoded: never a post an
    analyst rejected, never an unflagged one."""
    p, a, r = posts.c, analysis.c, referrals.c
    latest = select(reviews.c.post_key, func.max(reviews.c.id).label("id")).group_by(reviews.c.post_key)
    latest_review = latest.subquery("latest_review")
    review = reviews.alias("review")
    in_period = and_(
        p.published_at >= start if start else true(),
        p.published_at < end if end else true(),
    )
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
            ANALYSED_POSTS.outerjoin(latest_review, latest_review.c.post_key == p.key)
            .outerjoin(review, review.c.id == latest_review.c.id)
        )
        .where(flagged_clause(decided), in_period)
        .order_by(p.published_at, p.key)
    )  # fmt: skip
    with store.reading() as connection:
        if keys is None:
            rows = [dict(row) for row in connection.execute(query).mappings()]
        else:
            query = query.where(p.key.in_(bindparam("keys", expanding=True)))
            rows = [
                dict(row)
                for chunk in chunks(keys)
                for row in connection.execute(query, {"keys": chunk}).mappings()
            ]
            # Parts come back one after another: put them back in publication order.
            rows.sort(
                key=lambda row: (row["published_at"] is not None, row["published_at"] or "", row["key"])
            )
    for row in rows:
        row["entities"] = json_object(row["entities"])
    return rows
