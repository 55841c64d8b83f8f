"""The index outbox: which analysed posts the search index must hear about, what it
acknowledged (`analysis.indexed_sha256`), and the spool of actions it refused or never
answered, sent again by the next sync."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, or_, select, update

from vigie.store.core import utcnow
from vigie.store.schema import analysis, posts, referrals, spool

if TYPE_CHECKING:
    from vigie.store.core import Store


def index_candidates(store: Store) -> Iterator[dict[str, Any]]:
    """Every post flagged, in the review band, or indexed once, with its analysis and
    referral state: the index may need to add, update or delete it."""
    a, r = analysis.c, referrals.c
    query = (
        select(
            posts,
            a.lang,
            a.lang_confidence,
            a.score,
            a.is_advert,
            a.needs_review,
            a.image_score,
            a.cues,
            a.entities,
            a.cluster_id,
            a.model_id,
            a.processed_at,
            a.indexed_sha256,
            r.status.label("referral_status"),
            r.notice_id.label("referral_batch"),
            r.referred_at,
            r.removed_at,
        )
        .select_from(
            analysis.join(posts, posts.c.key == a.post_key).outerjoin(referrals, r.post_key == a.post_key)
        )
        .where(or_(a.is_advert == 1, a.needs_review == 1, a.indexed_sha256.is_not(None)))
    )
    with store.reading() as connection:
        for row in connection.execute(query).mappings():
            yield dict(row)


def mark_indexed(store: Store, doc_id: str, digest: str | None) -> None:
    """The index holds `doc_id` as hashed (None: deleted from it); nothing of it is spooled."""
    with store.transaction() as connection:
        connection.execute(
            update(analysis).where(analysis.c.post_key == doc_id).values(indexed_sha256=digest)
        )
        connection.execute(delete(spool).where(spool.c.doc_id == doc_id))


def spool_action(store: Store, doc_id: str, op: str, body: dict[str, Any], error: str) -> None:
    """Keep an action the index did not take, replacing any older one for the same document."""
    with store.transaction() as connection:
        connection.execute(delete(spool).where(spool.c.doc_id == doc_id))
        connection.execute(
            insert(spool).values(
                doc_id=doc_id,
                action=op,
                body=json.dumps(body, ensure_ascii=False),
                error=error,
                created_at=utcnow(),
            )
        )


def spooled_actions(store: Store) -> list[dict[str, Any]]:
    """The spooled actions' bodies, oldest first."""
    with store.reading() as connection:
        return [json.loads(body) for body in connection.scalars(select(spool.c.body).order_by(spool.c.id))]


def count_spooled(store: Store) -> int:
    with store.reading() as connection:
        return int(connection.scalar(select(func.count()).select_from(spool)) or 0)


def posts_missing(store: Store, keys: list[str]) -> set[str]:
    """Those of `keys` that name no stored post (it was deleted since)."""
    with store.reading() as connection:
        found = set(connection.scalars(select(posts.c.key).where(posts.c.key.in_(keys)))) if keys else set()
    return set(keys) - found


def drop_spooled(store: Store, doc_ids: set[str]) -> None:
    """Forget spooled actions the index no longer needs."""
    if doc_ids:
        with store.transaction() as connection:
            connection.execute(delete(spool).where(spool.c.doc_id.in_(sorted(doc_ids))))
