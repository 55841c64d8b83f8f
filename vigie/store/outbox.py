"""The index outbox: which analysed posts the search index must hear about, what it
acknowledged (`analysis.indexed_sha256`), and the spool of actions it refused or never
answered, sent again by the next sync."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, update

from vigie.store.core import utcnow
from vigie.store.schema import analysis, posts, referrals, spool

if TYPE_CHECKING:
    from vigie.store.core import Store


def index_candidates(store: Store, keys: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every post flagged, in the review band, or indexed once (or those of `keys`), with its
    analysis and referral state: the index may need to add, update or delete it."""
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
    if keys is None:
        with store.reading() as connection:
            for row in connection.execute(query).mappings():
                yield dict(row)
        return
    keys = list(keys)
    query = query.where(a.post_key.in_(bindparam("keys", expanding=True)))
    with store.reading() as connection:
        for start in range(0, len(keys), KEYS_PER_QUERY):
            for row in connection.execute(query, {"keys": keys[start : start + KEYS_PER_QUERY]}).mappings():
                yield dict(row)


KEYS_PER_QUERY = 500  # SQLite's bound parameters are limited


def forget_indexed(store: Store) -> int:
    """Forget what the index acknowledged (it lost its data, or was restored from an older
    snapshot): the next sync sends every flagged post's document again. Returns how many
    posts it had acknowledged."""
    with store.transaction() as connection:
        result = connection.execute(
            update(analysis).where(analysis.c.indexed_sha256.is_not(None)).values(indexed_sha256=None)
        )
    return int(result.rowcount or 0)


def mark_indexed(store: Store, doc_id: str, digest: str | None) -> None:
    """The index holds `doc_id` as hashed (None: deleted from it); nothing of it is spooled."""
    with store.transaction() as connection:
        connection.execute(
            update(analysis).where(analysis.c.post_key == doc_id).values(indexed_sha256=digest)
        )
        connection.execute(delete(spool).where(spool.c.doc_id == doc_id))


INDEX_LOCK = "vigie:index"
INDEX_LOCK_WAIT_SECONDS = 300.0  # a chunk's bulk request, retries and backoff included


def hold_index_lock(store: Store, timeout_seconds: float = INDEX_LOCK_WAIT_SECONDS) -> None:
    """Inside a transaction: wait until no other process sends documents to the index, and
    hold that until this transaction ends; a chunk sent and marked under it leaves
    `indexed_sha256` describing what the index holds last, whichever sync wrote it. On
    PostgreSQL a transaction-level advisory lock (`vigie.store.cluster.LockWaitTimeout`
    after `timeout_seconds`); nothing on SQLite, where syncs are not run side by side."""
    if store.backend != "postgresql":
        return
    from vigie.store.cluster import hold_xact_lock

    hold_xact_lock(store, INDEX_LOCK, timeout_seconds)


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
