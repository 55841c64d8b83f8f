"""What trends are computed from: the flagged posts published in a span of time, with their
language, entities, cues and text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select

from vigie.store.schema import analysis, posts, referrals

if TYPE_CHECKING:
    from vigie.store.core import Store


def flagged_posts_between(store: Store, start: str, end: str, decided: Sequence[str]) -> list[dict[str, Any]]:
    """Flagged posts (sure adverts, and review-band posts an analyst's decision keeps
    flagged) published from `start` (included) to `end` (excluded), ISO dates or times, in
    publication order: key, platform, channel, url, text, published_at, lang, entities and
    cues (JSON text, as stored)."""
    flagged = or_(
        analysis.c.is_advert == 1, and_(analysis.c.needs_review == 1, referrals.c.status.in_(decided))
    )
    query = (
        select(
            posts.c.key,
            posts.c.platform,
            posts.c.channel,
            posts.c.url,
            posts.c.text,
            posts.c.published_at,
            analysis.c.lang,
            analysis.c.entities,
            analysis.c.cues,
        )
        .select_from(
            analysis.join(posts, posts.c.key == analysis.c.post_key).outerjoin(
                referrals, referrals.c.post_key == analysis.c.post_key
            )
        )
        .where(flagged, posts.c.published_at >= start, posts.c.published_at < end)
        .order_by(posts.c.published_at, posts.c.key)
    )
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
