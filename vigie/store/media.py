"""Media: the files posts carry (stored once by content), what became of each attachment,
the text read in images and their PDQ hashes.

A post stored new or edited with media waits (`posts.media_pending`) until `save_post_media`
records its attachments' outcomes and OCR text in one transaction; classification reads
it after that. Files are kept on disk while a post that is flagged, in review or under
referral points to them; `unreferenced_files` and `expired_files` say which to delete."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, delete, exists, func, or_, select, update

from vigie.store.core import utcnow
from vigie.store.portable import insert_missing, upsert
from vigie.store.schema import analysis, media_files, post_media, posts, referrals

if TYPE_CHECKING:
    from vigie.store.core import Store

# Below this PDQ quality an image is too flat to match on (a blank, a gradient, a logo):
# such hashes are kept, never compared (the threshold the PDQ authors suggest).
MIN_PDQ_QUALITY = 50


@dataclass(slots=True)
class MediaFile:
    """A file's facts, as the media stage found them."""

    sha256: str
    content_type: str | None
    size: int
    width: int | None = None
    height: int | None = None
    pdq: str | None = None
    pdq_quality: int | None = None
    ocr_text: str | None = None
    ocr_models: str | None = None
    ocr_confidence: float | None = None


@dataclass(slots=True)
class AttachmentOutcome:
    """What became of one attachment: `status` fetched (then `sha256`), too_big, failed,
    refused (robots.txt) or unavailable (the platform gave no file)."""

    position: int
    type: str
    url: str | None
    status: str
    sha256: str | None = None
    error: str | None = None


def pending_media(store: Store, limit: int, tried_before: str) -> list[dict[str, Any]]:
    """Posts whose media wait to be fetched and read, oldest first, with their attachments,
    leaving out those tried since `tried_before` (this run's start)."""
    query = (
        select(
            posts.c.key,
            posts.c.platform,
            posts.c.channel,
            posts.c.text,
            posts.c.attachments,
            posts.c.media_attempts,
        )
        .where(
            posts.c.media_pending == 1,
            or_(posts.c.media_tried_at.is_(None), posts.c.media_tried_at < tried_before),
        )
        .order_by(posts.c.media_attempts, posts.c.first_seen, posts.c.key)  # the least tried first
        .limit(limit)
    )
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def count_pending_media(store: Store) -> int:
    with store.reading() as connection:
        query = select(func.count()).select_from(posts).where(posts.c.media_pending == 1)
        return int(connection.scalar(query) or 0)


def known_file(store: Store, sha256: str) -> MediaFile | None:
    """A file already stored (and read) for another post: not read again."""
    with store.reading() as connection:
        row = connection.execute(select(media_files).where(media_files.c.sha256 == sha256)).mappings().first()
    if row is None or not row["kept"]:
        return None
    return MediaFile(**{k: row[k] for k in MediaFile.__slots__})


def save_post_media(
    store: Store,
    post_key: str,
    outcomes: Sequence[AttachmentOutcome],
    files: Iterable[MediaFile],
    ocr_text: str | None,
) -> None:
    """One post's media done: its files, each attachment's outcome and the OCR text, in one
    transaction; the post is then ready to classify."""
    now = utcnow()
    with store.transaction() as connection:
        for f in files:
            row = {k: getattr(f, k) for k in MediaFile.__slots__}
            # A file held before keeps when it was first stored (retention counts from then);
            # one deleted since starts again.
            held = connection.scalar(select(media_files.c.kept).where(media_files.c.sha256 == f.sha256))
            fresh = {"first_seen": now} if not held else {}
            upsert(
                connection,
                media_files,
                {**row, "first_seen": now, "kept": 1},
                keys=["sha256"],
                update=[*row, "kept", *fresh][1:],
            )
        connection.execute(delete(post_media).where(post_media.c.post_key == post_key))
        rows = [
            {
                "post_key": post_key,
                "position": o.position,
                "type": o.type,
                "url": o.url,
                "status": o.status,
                "sha256": o.sha256,
                "error": (o.error or None) and o.error[:500],
                "fetched_at": now,
            }
            for o in outcomes
        ]
        if rows:
            insert_missing(connection, post_media, rows)
        connection.execute(
            update(posts)
            .where(posts.c.key == post_key)
            .values(media_pending=0, ocr_text=ocr_text or None, media_tried_at=precise_now())
        )


def precise_now() -> str:
    """Now, to the microsecond: when a media run starts and when it tried a post (runs a
    second apart must not see each other's tries as their own)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def try_again_later(store: Store, post_key: str, failed: bool) -> None:
    """The post's media could not be fetched this run (`failed`: a fetch was tried and
    failed; else not tried, its host being down): they stay pending for the next run."""
    values: dict[str, Any] = {"media_tried_at": precise_now()}
    if failed:
        values["media_attempts"] = posts.c.media_attempts + 1
    with store.transaction() as connection:
        connection.execute(update(posts).where(posts.c.key == post_key).values(**values))


def media_of(store: Store, post_keys: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Each post's attachments' outcomes with their files' facts, in attachment order."""
    if not post_keys:
        return {}
    m = media_files.c
    query = (
        select(
            post_media, m.content_type, m.size, m.width, m.height, m.pdq, m.pdq_quality, m.ocr_text, m.kept
        )
        .select_from(post_media.outerjoin(media_files, m.sha256 == post_media.c.sha256))
        .where(post_media.c.post_key.in_(bindparam("keys", expanding=True)))
        .order_by(post_media.c.post_key, post_media.c.position)
    )
    out: dict[str, list[dict[str, Any]]] = {}
    with store.reading() as connection:
        for chunk in chunks(post_keys):
            for row in connection.execute(query, {"keys": chunk}).mappings():
                out.setdefault(row["post_key"], []).append(dict(row))
    return out


def chunks(keys: Sequence[str], size: int = 500) -> Iterable[list[str]]:
    """A statement takes so many parameters: long key lists go in parts."""
    keys = list(keys)
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


def clustered_hashes(store: Store) -> list[tuple[str, str, str]]:
    """(post key, cluster id, PDQ hex) of every image worth matching of a post in a repost cluster."""
    query = (
        select(post_media.c.post_key, analysis.c.cluster_id, media_files.c.pdq)
        .select_from(
            post_media.join(media_files, media_files.c.sha256 == post_media.c.sha256).join(
                analysis, analysis.c.post_key == post_media.c.post_key
            )
        )
        .where(analysis.c.cluster_id.is_not(None), media_files.c.pdq_quality >= MIN_PDQ_QUALITY)
    )
    with store.reading() as connection:
        return [(r.post_key, r.cluster_id, r.pdq) for r in connection.execute(query)]


def _confirmed(post_key: Any) -> Any:
    """The post's referral is an analyst's confirmation or what followed it (not a rejection)."""
    from vigie.store import DECIDED

    return exists().where(referrals.c.post_key == post_key, referrals.c.status.in_(DECIDED))


def _needed() -> Any:
    """A file some post still needs: flagged, in the review band, confirmed, or not yet
    classified. An analyst's rejection releases it like any unflagged post's."""
    pm, a, r = post_media.c, analysis.c, referrals.c
    rejected = exists().where(r.post_key == pm.post_key, r.status == "rejected")
    return exists().where(
        pm.sha256 == media_files.c.sha256,
        or_(
            ~exists().where(a.post_key == pm.post_key),
            exists().where(a.post_key == pm.post_key, or_(a.is_advert == 1, a.needs_review == 1)) & ~rejected,
            _confirmed(pm.post_key),
        ),
    )


def unreferenced_files(store: Store, keep_unflagged: bool) -> list[str]:
    """Files on disk no post needs any more: no attachment points to them, or (unless
    `keep_unflagged`) only posts classified as neither advert nor review band do."""
    any_post = exists().where(post_media.c.sha256 == media_files.c.sha256)
    condition = ~any_post if keep_unflagged else ~_needed()
    query = select(media_files.c.sha256).where(media_files.c.kept == 1, condition)
    with store.reading() as connection:
        return list(connection.scalars(query))


def expired_files(store: Store, before: str) -> list[str]:
    """Files first stored before `before` that no referral holds as evidence."""
    under_referral = exists().where(
        post_media.c.sha256 == media_files.c.sha256, _confirmed(post_media.c.post_key)
    )
    query = select(media_files.c.sha256).where(
        and_(media_files.c.kept == 1, media_files.c.first_seen < before, ~under_referral)
    )
    with store.reading() as connection:
        return list(connection.scalars(query))


def mark_deleted(store: Store, shas: Iterable[str]) -> None:
    """The files are to be deleted from disk (mark them first: a crash then leaves a file
    on disk, never a row claiming one that is gone). What was read in them goes too; the
    SHA-256 stays, as the key of what the store once held."""
    shas = sorted(set(shas))
    for chunk in chunks(shas):
        with store.transaction() as connection:
            connection.execute(
                update(media_files)
                .where(media_files.c.sha256.in_(chunk))
                .values(
                    kept=0, ocr_text=None, ocr_models=None, ocr_confidence=None, pdq=None, pdq_quality=None
                )
            )


def image_hashes(store: Store, post_keys: Sequence[str]) -> dict[str, list[str]]:
    """Each post's images' PDQ hashes worth matching, in attachment order."""
    if not post_keys:
        return {}
    query = (
        select(post_media.c.post_key, media_files.c.pdq)
        .select_from(post_media.join(media_files, media_files.c.sha256 == post_media.c.sha256))
        .where(
            post_media.c.post_key.in_(bindparam("keys", expanding=True)),
            media_files.c.pdq_quality >= MIN_PDQ_QUALITY,
        )
        .order_by(post_media.c.post_key, post_media.c.position)
    )
    out: dict[str, list[str]] = {}
    with store.reading() as connection:
        for chunk in chunks(post_keys):
            for key, pdq in connection.execute(query, {"keys": chunk}):
                out.setdefault(key, []).append(pdq)
    return out
