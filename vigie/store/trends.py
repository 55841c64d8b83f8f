"""What trends are computed from: the flagged posts published in a span of time, with their
language, entities, cues and text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vigie.store.analysis import flagged_posts_query
from vigie.store.schema import analysis, posts

if TYPE_CHECKING:
    from vigie.store.core import Store


def flagged_posts_between(store: Store, start: str, end: str, decided: Sequence[str]) -> list[dict[str, Any]]:
    """Flagged posts (`flagged_clause`: never one an analyst rejected) published from
    `start` (included) to `end` (excluded), ISO dates or times, in
    publication order: key, platform, channel, url, text, published_at, lang, entities and
    cues (JSON text, as stored)."""
    query = flagged_posts_query(decided, analysis.c.entities, analysis.c.cues).where(
        posts.c.published_at >= start, posts.c.published_at < end
    )
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
