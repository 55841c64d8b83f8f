"""Classification results (`analysis`), repost signatures and the contacts adverts give."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update

from vigie.store.portable import insert_missing, upsert
from vigie.store.posts import in_id_order
from vigie.store.schema import analysis, contacts, posts, referrals, signatures

if TYPE_CHECKING:
    from vigie.store.core import Store


def pending_clause(current_model: str) -> Any:
    """The one rule for a post to (re)classify, over `POSTS_AND_ANALYSIS`: never analysed,
    changed since, or analysed by another model (while its text is kept), once its media are
    read."""
    return and_(
        posts.c.media_pending == 0,
        or_(
            analysis.c.post_key.is_(None),
            analysis.c.content_sha256 != posts.c.content_sha256,
            (analysis.c.model_id != current_model) & (posts.c.minimised == 0),
        ),
    )


def flagged_clause(decided: Sequence[str]) -> Any:
    """The one rule for a flagged post, for every reader: a sure advert an analyst has not
    rejected (its latest review sets its referral's status), or a post whose referral an
    analyst's confirmation led to (`decided` states), whatever it scored. The query joins
    `analysis` and outer-joins `referrals` on the post."""
    status = referrals.c.status
    return or_(
        and_(analysis.c.is_advert == 1, or_(status.is_(None), status != "rejected")),
        status.in_(list(decided)),
    )


def is_flagged(is_advert: bool, status: str | None, decided: Sequence[str]) -> bool:
    """`flagged_clause`'s rule for a post already read, with its referral's `status` (None
    when it has no referral)."""
    return (is_advert and status != "rejected") or status in decided


POSTS_AND_ANALYSIS = posts.outerjoin(analysis, analysis.c.post_key == posts.c.key)


# Flagged posts with their analysis and referral: what `flagged_clause` reads.
ANALYSED_POSTS = analysis.join(posts, posts.c.key == analysis.c.post_key).outerjoin(
    referrals, referrals.c.post_key == analysis.c.post_key
)


def flagged_posts_query(decided: Sequence[str], *columns: Any) -> Any:
    """SELECT of flagged posts' key, platform, channel, url, text, published_at and lang,
    plus `columns`, in publication order; the caller adds its own WHERE."""
    return (
        select(
            posts.c.key, posts.c.platform, posts.c.channel, posts.c.url, posts.c.text,
            posts.c.published_at, analysis.c.lang, *columns,
        )
        .select_from(ANALYSED_POSTS)
        .where(flagged_clause(decided))
        .order_by(posts.c.published_at, posts.c.key)
    )  # fmt: skip


def pending_posts(
    store: Store, current_model: str, limit: int, keys: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Posts to (re)classify, with their referral status, in channel and id order; with
    `keys`, only those of these posts that are still pending."""
    status = select(referrals.c.status).where(referrals.c.post_key == posts.c.key).scalar_subquery()
    query = (
        select(posts, status.label("referral_status"))
        .select_from(POSTS_AND_ANALYSIS)
        .where(pending_clause(current_model))
        .order_by(*in_id_order())
        .limit(limit)
    )
    if keys is not None:
        query = query.where(posts.c.key.in_(list(keys)))
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def still_pending(store: Store, current_model: str, keys: Sequence[str]) -> set[str]:
    """Those of `keys` that are still to (re)classify (inside a transaction: as it sees them)."""
    if not keys:
        return set()
    query = (
        select(posts.c.key)
        .select_from(POSTS_AND_ANALYSIS)
        .where(pending_clause(current_model), posts.c.key.in_(list(keys)))
    )
    with store.reading() as connection:
        return set(connection.scalars(query))


REPOST_LOCK = "vigie:reposts"
REPOST_LOCK_WAIT_SECONDS = 120.0  # grouping a batch's reposts takes seconds; longer is a stuck holder


def hold_repost_lock(store: Store, timeout_seconds: float = REPOST_LOCK_WAIT_SECONDS) -> None:
    """Inside a transaction: wait until no other transaction groups reposts, and hold that
    until this one ends, so that processes saving batches at once see each other's clusters.
    On PostgreSQL a transaction-level advisory lock, waited for at most `timeout_seconds`
    (then `vigie.store.cluster.LockWaitTimeout`); SQLite serialises writers itself."""
    if store.backend != "postgresql":
        return
    from vigie.store.cluster import hold_xact_lock

    hold_xact_lock(store, REPOST_LOCK, timeout_seconds)


def count_pending(store: Store, current_model: str) -> int:
    query = select(func.count()).select_from(POSTS_AND_ANALYSIS).where(pending_clause(current_model))
    with store.reading() as connection:
        return int(connection.scalar(query) or 0)


def save_analysis(store: Store, row: dict[str, Any]) -> None:
    """Store a post's analysis (a row of `analysis` without `indexed_sha256`), replacing
    the one it had."""
    with store.transaction() as connection:
        upsert(connection, analysis, row, keys=["post_key"])


def replace_contacts(store: Store, post_key: str, platform: str, channel: str, found: Iterable[str]) -> None:
    """The contacts a post gives, instead of those it gave before."""
    with store.transaction() as connection:
        connection.execute(delete(contacts).where(contacts.c.post_key == post_key))
        rows = [{"contact": c, "post_key": post_key, "platform": platform, "channel": channel} for c in found]
        insert_missing(connection, contacts, rows)


def contacts_of(store: Store, post_key: str) -> list[str]:
    """The contacts a post gives (sure adverts only), sorted."""
    query = select(contacts.c.contact).where(contacts.c.post_key == post_key).order_by(contacts.c.contact)
    with store.reading() as connection:
        return list(connection.scalars(query))


# -- repost signatures -------------------------------------------------------------------


def all_signatures(store: Store) -> list[tuple[str, str, bytes]]:
    """(post key, cluster id, MinHash bytes) of every signed post."""
    query = select(signatures.c.post_key, signatures.c.cluster_id, signatures.c.minhash)
    with store.reading() as connection:
        return [(row.post_key, row.cluster_id, bytes(row.minhash)) for row in connection.execute(query)]


def signature_clusters(store: Store) -> dict[str, str]:
    """The cluster id of every signed post (what changes when another process groups reposts)."""
    query = select(signatures.c.post_key, signatures.c.cluster_id)
    with store.reading() as connection:
        return {row.post_key: row.cluster_id for row in connection.execute(query)}


def signatures_of(store: Store, keys: Sequence[str]) -> list[tuple[str, str, bytes]]:
    """(post key, cluster id, MinHash bytes) of those of `keys` that are signed."""
    if not keys:
        return []
    query = select(signatures.c.post_key, signatures.c.cluster_id, signatures.c.minhash).where(
        signatures.c.post_key.in_(bindparam("keys", expanding=True))
    )
    out: list[tuple[str, str, bytes]] = []
    with store.reading() as connection:
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = list(keys[start : start + _KEYS_PER_QUERY])
            out += [
                (r.post_key, r.cluster_id, bytes(r.minhash))
                for r in connection.execute(query, {"keys": chunk})
            ]
    return out


_KEYS_PER_QUERY = 500  # SQLite's bound parameters are limited


def save_signature(store: Store, post_key: str, cluster_id: str, minhash: bytes) -> None:
    with store.transaction() as connection:
        upsert(
            connection,
            signatures,
            {"post_key": post_key, "cluster_id": cluster_id, "minhash": minhash},
            ["post_key"],
        )


def forget_signature(store: Store, post_key: str) -> None:
    with store.transaction() as connection:
        connection.execute(delete(signatures).where(signatures.c.post_key == post_key))


def merge_clusters(store: Store, into: str, other: str) -> None:
    """Every post of cluster `other` joins cluster `into`."""
    with store.transaction() as connection:
        connection.execute(update(signatures).where(signatures.c.cluster_id == other).values(cluster_id=into))
        connection.execute(update(analysis).where(analysis.c.cluster_id == other).values(cluster_id=into))


def cluster_first_seen(store: Store, cluster_id: str) -> str | None:
    """When the first post of a cluster was stored."""
    query = (
        select(func.min(posts.c.first_seen))
        .select_from(signatures.join(posts, posts.c.key == signatures.c.post_key))
        .where(signatures.c.cluster_id == cluster_id)
    )
    with store.reading() as connection:
        return connection.scalar(query)
