"""Classification claims: the pending posts given to queued classification batches, so that
no post is in two batches at once. A batch's claims are released when its job has ended."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select

from vigie.store.analysis import POSTS_AND_ANALYSIS, pending_clause
from vigie.store.core import utcnow
from vigie.store.portable import insert_missing_keys
from vigie.store.posts import in_id_order
from vigie.store.schema import classify_claims, posts

if TYPE_CHECKING:
    from vigie.store.core import Store


def claim_pending(store: Store, model_id: str, batch_size: int, max_batches: int) -> list[str]:
    """Put pending posts that no batch holds, in id order, into at most `max_batches` new
    batches of `batch_size`; returns the ids of the batches that got posts. A post another
    caller claimed meanwhile stays with that caller's batch."""
    if batch_size < 1 or max_batches < 1:
        return []
    claimed = select(classify_claims.c.post_key).where(classify_claims.c.post_key == posts.c.key)
    query = (
        select(posts.c.key)
        .select_from(POSTS_AND_ANALYSIS)
        .where(pending_clause(model_id), ~claimed.exists())
        .order_by(*in_id_order())
        .limit(batch_size * max_batches)
    )
    batch_ids: list[str] = []
    with store.transaction() as connection:
        keys = list(connection.scalars(query))
        now = utcnow()
        for start in range(0, len(keys), batch_size):
            batch_id = uuid.uuid4().hex
            rows = [
                {"post_key": k, "batch_id": batch_id, "claimed_at": now}
                for k in keys[start : start + batch_size]
            ]
            # The key is the post: a post claimed by a concurrent caller is skipped here.
            if insert_missing_keys(connection, classify_claims, rows):
                batch_ids.append(batch_id)
    return batch_ids


def batch_keys(store: Store, batch_id: str) -> list[str]:
    """The post keys a batch holds, sorted."""
    query = (
        select(classify_claims.c.post_key)
        .where(classify_claims.c.batch_id == batch_id)
        .order_by(classify_claims.c.post_key)
    )
    with store.reading() as connection:
        return list(connection.scalars(query))


def release_batch(store: Store, batch_id: str) -> None:
    with store.transaction() as connection:
        connection.execute(delete(classify_claims).where(classify_claims.c.batch_id == batch_id))


def release_finished(store: Store, active_batch_ids: set[str], claimed_before: str | None = None) -> int:
    """Release the claims of every batch not in `active_batch_ids` (those whose job is still
    to do or being done), only those claimed before `claimed_before` (a UTC ISO time) when
    given; returns how many claims were released."""
    statement = delete(classify_claims)
    if claimed_before is not None:
        statement = statement.where(classify_claims.c.claimed_at < claimed_before)
    if active_batch_ids:
        statement = statement.where(classify_claims.c.batch_id.not_in(sorted(active_batch_ids)))
    with store.transaction() as connection:
        return int(connection.execute(statement).rowcount or 0)


def active_batches(store: Store) -> dict[str, int]:
    """Every batch holding claims, with how many posts it holds."""
    query = select(classify_claims.c.batch_id, func.count()).group_by(classify_claims.c.batch_id)
    with store.reading() as connection:
        return {row[0]: int(row[1]) for row in connection.execute(query)}
