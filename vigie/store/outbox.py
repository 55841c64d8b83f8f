"""The index outbox: which analysed posts the search index must hear about, what it
acknowledged (`analysis.indexed_sha256`), and the spool of actions it refused or never
answered, sent again by the next sync."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, update

from vigie.errors import StoreError
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


def mark_indexed(store: Store, acknowledged: Sequence[tuple[str, str | None]]) -> None:
    """The index holds each (document id, digest) as hashed (None: deleted from it); none of
    them is spooled any more."""
    if not acknowledged:
        return
    set_digest = (
        update(analysis)
        .where(analysis.c.post_key == bindparam("doc_id"))
        .values(indexed_sha256=bindparam("digest"))
    )
    unspool = delete(spool).where(spool.c.doc_id.in_(bindparam("ids", expanding=True)))
    with store.transaction() as connection:
        connection.execute(set_digest, [{"doc_id": d, "digest": h} for d, h in acknowledged])
        ids = [d for d, _ in acknowledged]
        for start in range(0, len(ids), KEYS_PER_QUERY):
            connection.execute(unspool, {"ids": ids[start : start + KEYS_PER_QUERY]})


INDEX_LOCK = "vigie:index"
INDEX_LOCK_WAIT_SECONDS = 300.0  # a chunk's bulk request, retries and backoff included


@contextmanager
def index_lock(store: Store, timeout_seconds: float = INDEX_LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Wait until no other process sends documents to the index (or migrates it), and hold
    that until the block ends; a chunk sent and marked under it leaves `indexed_sha256`
    describing what the index holds last, whichever sync wrote it. On PostgreSQL a
    transaction-level advisory lock, the block being one transaction; on a SQLite file an
    exclusive lock on `FILE.index-lock` beside it (the daemon and a `vigie es migrate` run
    side by side); nothing for a store in memory. After `timeout_seconds`,
    `vigie.store.cluster.LockWaitTimeout`."""
    if store.backend == "postgresql":
        from vigie.store.cluster import hold_xact_lock

        with store.transaction():
            hold_xact_lock(store, INDEX_LOCK, timeout_seconds)
            yield
        return
    if store.path is None:
        yield
        return
    with _file_lock(_lock_file(store.path), timeout_seconds):
        yield


@contextmanager
def index_lock_for_long_job(store: Store, timeout_seconds: float) -> Iterator[Callable[[], None]]:
    """The index lock for as long as a migration takes: on PostgreSQL at session level on a
    connection of its own (no transaction held open for minutes). Yields a check that raises
    StoreError when the lock was lost (the store's session ended)."""
    if store.backend == "postgresql":
        from vigie.store.cluster import hold_session_lock

        with hold_session_lock(store, INDEX_LOCK, timeout_seconds) as still_held:
            yield still_held
        return
    with index_lock(store, timeout_seconds):  # a file lock holds no transaction open
        yield lambda: None


def _lock_file(database: Path) -> Path:
    database = database.resolve()
    return database.with_name(database.name + ".index-lock")


_held = threading.local()  # lock files this thread holds, and how many times


@contextmanager
def _file_lock(path: Path, timeout_seconds: float) -> Iterator[None]:
    """An exclusive flock on `path`, re-entrant within a thread; other threads and processes
    wait. A file another user created (the daemon and an operator's command may run as
    different users) is opened read-only: flock works on such a descriptor too."""
    import fcntl

    from vigie.store.cluster import LockWaitTimeout

    counts: dict[Path, int] = _held.__dict__.setdefault("counts", {})
    if counts.get(path):
        counts[path] += 1
        try:
            yield
        finally:
            counts[path] -= 1
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise StoreError(f"cannot open the index lock {path}: {exc.strerror}") from None
    except OSError as exc:
        raise StoreError(f"cannot open the index lock {path}: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockWaitTimeout(
                        f"the index lock {path} is still held by another process after "
                        f"{timeout_seconds:g} s; giving up"
                    ) from None
                time.sleep(0.2)
        counts[path] = 1
        try:
            yield
        finally:
            counts.pop(path, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


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
