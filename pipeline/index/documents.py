"""Flagged posts into Elasticsearch: one deterministic document per post, sent in bulk once
each: created whole the first time, then as partial updates (re-indexing never overwrites
review or referral fields set later in the index), and a spool in the store for what the
cluster refused or could not take."""

from __future__ import annotations

import gc
import logging
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from classifier.cues import gazetteer, route_text
from pipeline.index.json_codec import canonical, loads
from pipeline.index.template import EUR_PER_UNIT, LANGUAGE_FIELDS, index_for, write_targets
from vigie.config import ElasticsearchConfig
from vigie.sanitize import strip_controls, web_url_or_path
from vigie.store import DECIDED, Store, outbox
from vigie.store import media as stored_media

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


log = logging.getLogger(__name__)


def build_doc(
    row: Mapping[str, Any], places: dict[str, dict[str, Any]], media: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The index document of an analysed post; `media`: its attachments' outcomes and files."""
    from pipeline.media.pdq import segments

    entities = loads(row["entities"], {})
    files = [m for m in media or [] if m["status"] == "fetched" and m["sha256"]]
    pdqs = list(dict.fromkeys(m["pdq"] for m in files if m.get("pdq")))
    cues = loads(row["cues"], [])
    # An amount past what a float holds (hostile digits) reads as infinite: no price then.
    prices = [p for p in entities.get("prices") or [] if _finite(p.get("amount"))]
    first = prices[0] if prices else None
    origin, destination = entities.get("origin"), entities.get("destination")

    def geo(place_id: str | None) -> dict[str, float] | None:
        place = places.get(place_id or "")
        return {"lat": float(place["lat"]), "lon": float(place["lon"])} if place else None

    def name(place_id: str | None) -> str | None:
        return places.get(place_id or "", {}).get("name") if place_id else None

    text = strip_controls(row["text"])  # as the crawler stores it, whatever an older one did
    doc: dict[str, Any] = {
        "key": row["key"],
        "platform": row["platform"],
        "channel": row["channel"],
        # A number where the platform's ids are (Telegram, X, TikTok), for range queries;
        # `post_ref` holds every id as written (Instagram shortcodes too).
        "post_id": _numeric_id(str(row["post_id"])),
        "post_ref": str(row["post_id"]),
        "url": row["url"],
        "text": text,
        "lang": row["lang"],
        "lang_confidence": row["lang_confidence"],
        "score": row["score"],
        "is_advert": bool(row["is_advert"]),
        "published_at": row["published_at"],
        "captured_at": row["captured_at"],
        "processed_at": row["processed_at"],
        "views": row["views"],
        "forwarded_from": row["forwarded_from"],
        "reply_to": web_url_or_path(row["reply_to"]),
        "edited": bool(row["edited"]),
        "partial": bool(row.get("partial")),
        "forwarded_from_name": row.get("forwarded_from_name"),
        "author_name": row.get("author_name"),
        "hashtags": loads(row.get("hashtags"), []),
        "mentions": loads(row.get("mentions"), []),
        "likes": row.get("likes"),
        "shares": row.get("shares"),
        "comments": row.get("comments"),
        "attachment_types": sorted({a.get("type", "") for a in loads(row.get("attachments"), [])} - {""}),
        "ocr_text": strip_controls(row.get("ocr_text") or "") or None,
        "image_score": row.get("image_score"),
        "image_contacts": (entities.get("image") or {}).get("contacts", []),
        "media_sha256": list(dict.fromkeys(m["sha256"] for m in files)),
        "pdq": pdqs,
        "pdq_segments": sorted({s for pdq in pdqs for s in segments(pdq)}),
        # Link fields hold links only, whatever an older crawler stored.
        "media": [m for m in loads(row["media"], []) if web_url_or_path(str(m))],
        "links": [u for u in loads(row["links"], []) if web_url_or_path(str(u))],
        "cues": sorted({c["cue"] for c in cues}),
        "cue_texts": sorted({c["text"] for c in cues}),
        "phones": entities.get("phones", []),
        "handles": entities.get("handles", []),
        "messenger_links": entities.get("links", []),
        "contacts": entities.get("contacts", []),
        "price_amount": first["amount"] if first else None,
        "price_currency": first["currency"] if first else None,
        "price_eur": round(first["amount"] * EUR_PER_UNIT.get(first["currency"], 0), 2) if first else None,
        "prices_text": [p["text"] for p in prices],
        "places": entities.get("places", []),
        "origin": origin,
        "destination": destination,
        "origin_name": name(origin),
        "destination_name": name(destination),
        "route": route_text(name(origin), name(destination)),
        "origin_geo": geo(origin),
        "destination_geo": geo(destination),
        "transport": entities.get("transport", []),
        "guarantees": entities.get("guarantees", []),
        "payment_terms": entities.get("payment_terms", []),
        "cluster_id": row["cluster_id"],
        "model_id": row["model_id"],
        "crawler_version": row["crawler_version"],
        "payload_sha256": row["payload_sha256"],
    }
    if row["lang"] in LANGUAGE_FIELDS:
        doc[f"text_{row['lang']}"] = text
    # Review and referral state goes only once the store has some; until then the index
    # keeps whatever it holds (partial updates never touch absent fields).
    if row.get("referral_status"):
        from pipeline.refer.stats import hours_between

        doc |= {
            "referral_status": row["referral_status"],
            "referral_batch": row["referral_batch"],
            "referred_at": row["referred_at"],
            "removed_at": row["removed_at"],
            "hours_to_removal": hours_between(row["referred_at"], row["removed_at"]),
        }
    return doc


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def doc_hash(doc: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(canonical(doc)).hexdigest()


def _standard_library_hash(doc: dict[str, Any]) -> str:
    """The digest as stores indexed before orjson recorded it: a document they hold
    unchanged is not sent again only because its digest is written differently now."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass
class IndexReport:
    indexed: int = 0
    deleted: int = 0
    spooled: int = 0
    replayed: int = 0
    errors: list[str] = field(default_factory=list)


def _actions_to_send(
    store: Store, config: ElasticsearchConfig, keys: Sequence[str] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(doc hash or '', bulk action) for every flagged post (or those of `keys`) whose indexed
    copy is out of date, and a delete for every indexed post that is no longer flagged."""
    places = gazetteer()
    candidates = list(outbox.index_candidates(store, keys))
    media = stored_media.media_of(store, [row["key"] for row in candidates])
    rehashed: list[tuple[str, str | None]] = []
    for row in candidates:
        # The month a post is filed under never changes: its date, else when it was first seen.
        index = index_for(config, row["published_at"] or row["first_seen"])
        # Sure adverts, and posts of the review band once an analyst confirmed them.
        confirmed = row["referral_status"] in DECIDED
        if not (row["is_advert"] or (row["needs_review"] and confirmed)):
            if row["indexed_sha256"] is None:
                continue
            yield "", {"_op_type": "delete", "_index": index, "_id": row["key"]}
            continue
        doc = build_doc(row, places, media.get(row["key"]))
        digest = doc_hash(doc)
        if digest == row["indexed_sha256"]:
            continue
        if row["indexed_sha256"] is not None and row["indexed_sha256"] == _standard_library_hash(doc):
            rehashed.append((row["key"], digest))  # the index holds it: only the digest is older
            continue
        # Each document goes once: whole to an index that never acknowledged it, as a partial
        # update to one that did (fields set later in the index, such as a review state,
        # stay). The rare miss of either is sent again the other way (see _fallback).
        if row["indexed_sha256"] is None:
            yield digest, _create(index, row["key"], doc)
        else:
            yield digest, {"_op_type": "update", "_index": index, "_id": row["key"], "doc": doc}
    outbox.mark_indexed(store, rehashed)


NEW = "new"  # the referral status of a document nobody has reviewed: the store has no row then


def _create(index: str, key: str, doc: dict[str, Any]) -> dict[str, Any]:
    return {"_op_type": "create", "_index": index, "_id": key, "_source": {"referral_status": NEW, **doc}}


def _fallback(action: dict[str, Any], info: dict[str, Any]) -> dict[str, Any] | None:
    """The other way to send a document the cluster refused for being (or not being) there:
    a create that found the document (the store had forgotten it, or a sync died between
    the cluster's answer and the store's record) becomes a partial update; an update that
    found none (its index was deleted) becomes a create."""
    error = info.get("error")
    kind = error.get("type") if isinstance(error, dict) else None
    if action["_op_type"] == "create" and kind == "version_conflict_engine_exception":
        doc = dict(action["_source"])
        if doc.get("referral_status") == NEW:
            del doc["referral_status"]
        return {"_op_type": "update", "_index": action["_index"], "_id": action["_id"], "doc": doc}
    if action["_op_type"] == "update" and kind == "document_missing_exception":
        return _create(action["_index"], action["_id"], action["doc"])
    return None


def _send(
    es: Elasticsearch,
    store: Store,
    config: ElasticsearchConfig,
    actions: list[tuple[str, dict[str, Any]]],
    report: IndexReport,
    from_spool: dict[str, int],
) -> None:
    """Send `actions` and record what the cluster said. Each chunk is sent and marked under
    the store's index lock (several processes index at once on PostgreSQL: a full sync beside
    a batch's; a migration moves the alias): the last mark of a document is then that of the
    last copy sent, so a copy older than the store is always seen as out of date by the next
    sync; and the chunk goes to the generation current while the lock is held."""
    from elasticsearch import ApiError, TransportError

    size = max(1, config.chunk_size) if store.backend == "postgresql" else max(1, len(actions))
    for start in range(0, len(actions), size):
        chunk = actions[start : start + size]
        with outbox.index_lock(store):
            try:
                targets = write_targets(es, config)
            except (TransportError, ApiError) as exc:
                _spool_unsent(store, actions[start:], f"{type(exc).__name__}: {exc}", report)
                return
            for _, action in chunk:
                action["_index"] = targets.retarget(config, action["_index"])
            gone = _send_chunk(es, store, config, chunk, report, from_spool)
        if gone is not None:  # the rest waits in the spool rather than for the cluster's timeouts
            _spool_unsent(store, actions[start + size :], gone, report)
            return


def _send_chunk(
    es: Elasticsearch,
    store: Store,
    config: ElasticsearchConfig,
    actions: list[tuple[str, dict[str, Any]]],
    report: IndexReport,
    from_spool: dict[str, int],
) -> str | None:
    """Send `actions` in bulk and record the outcomes; why, when the cluster went away."""
    if not actions:
        return None
    by_id = {action["_id"]: (digest, action) for digest, action in actions}
    return _bulk_round(es, store, config, by_id, report, from_spool, allow_fallback=True)


def _bulk_round(
    es: Elasticsearch,
    store: Store,
    config: ElasticsearchConfig,
    by_id: dict[str, tuple[str, dict[str, Any]]],
    report: IndexReport,
    from_spool: dict[str, int],
    allow_fallback: bool,
) -> str | None:
    """One bulk pass over `by_id`; the documents refused for being (or not being) in the
    index go again, the other way, in a second pass."""
    from elasticsearch import TransportError
    from elasticsearch.helpers import streaming_bulk

    results = streaming_bulk(
        es,
        (action for _, action in by_id.values()),
        chunk_size=config.chunk_size,
        max_retries=config.max_retries,
        initial_backoff=1,
        max_backoff=30,
        raise_on_error=False,
        raise_on_exception=False,
    )
    answered: set[str] = set()
    outcomes: list[tuple[str, dict[str, Any], bool]] = []
    retry: dict[str, tuple[str, dict[str, Any]]] = {}
    gone: str | None = None

    def flush() -> None:
        # A chunk of outcomes per short transaction (the store is not locked while the
        # cluster works); if the process dies first, those documents are sent again.
        acknowledged: list[tuple[str, str | None]] = []
        with store.transaction():
            for op, info, ok in outcomes:
                done = _record(store, by_id, op, info, ok, report, from_spool)
                if done is not None:
                    acknowledged.append(done)
            outbox.mark_indexed(store, acknowledged)
        outcomes.clear()

    try:
        for ok, item in results:
            op, info = next(iter(item.items()))
            doc_id = info.get("_id")
            answered.add(doc_id)
            digest, action = by_id.get(doc_id, ("", {}))
            other = _fallback(action, info) if allow_fallback and not ok and action else None
            if other is not None:
                retry[doc_id] = (digest, other)
                continue
            outcomes.append((op, info, ok))
            if len(outcomes) >= config.chunk_size:
                flush()
    except TransportError as exc:
        # The cluster went away mid-run: everything it did not acknowledge waits in the spool.
        reason = gone = f"{type(exc).__name__}: {exc}"
        for doc_id, (_, action) in by_id.items():
            if doc_id not in answered:
                outcomes.append(
                    (action["_op_type"], {"_id": doc_id, "status": 0, "error": {"reason": reason}}, False)
                )
    flush()
    if retry and gone is None:
        return _bulk_round(es, store, config, retry, report, from_spool, allow_fallback=False)
    if retry:  # the cluster went away before the second way could be tried
        _spool_unsent(store, list(retry.values()), gone or "", report)
    return gone


def _spool_unsent(
    store: Store, actions: list[tuple[str, dict[str, Any]]], reason: str, report: IndexReport
) -> None:
    by_id = {action["_id"]: (digest, action) for digest, action in actions}
    with store.transaction():
        for doc_id, (_, action) in by_id.items():
            info = {"_id": doc_id, "status": 0, "error": {"reason": reason}}
            _record(store, by_id, action["_op_type"], info, False, report, {})


def _record(
    store: Store,
    by_id: dict[str, tuple[str, dict[str, Any]]],
    op: str,
    info: dict[str, Any],
    ok: bool,
    report: IndexReport,
    from_spool: dict[str, int],
) -> tuple[str, str | None] | None:
    """Count what the cluster said about one document; spool it if refused. Returns
    (document id, digest or None for deleted) when acknowledged, for the caller to mark."""
    doc_id = info.get("_id", "")
    digest, action = by_id[doc_id]
    status = info.get("status", 0)
    if ok or (op == "delete" and status == 404):
        if doc_id in from_spool:
            report.replayed += 1
        elif op == "delete":
            report.deleted += 1
        else:
            report.indexed += 1
        return doc_id, digest or None
    error = info.get("error") or info.get("exception") or f"HTTP {status}"
    reason = error.get("reason", str(error)) if isinstance(error, dict) else str(error)
    outbox.spool_action(store, doc_id, op, {"digest": digest, "action": action}, reason[:500])
    report.spooled += 1
    if len(report.errors) < 20:
        report.errors.append(f"{doc_id}: {reason[:200]}")
    return None


def spooled(store: Store) -> list[tuple[str, dict[str, Any]]]:
    return [(body["digest"], body["action"]) for body in outbox.spooled_actions(store)]


_pausing = threading.Lock()
_paused = 0
_was_enabled = False


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """A sync holds every document it sends, all plain dicts and lists without cycles; the
    cyclic collector scanning them again and again as they pile up took a quarter of its
    time. Reference counting still frees them; cycles made meanwhile wait for the end."""
    global _paused, _was_enabled
    with _pausing:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _pausing:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.enable()


def sync(
    store: Store, es: Elasticsearch, config: ElasticsearchConfig, keys: Sequence[str] | None = None
) -> IndexReport:
    """Send every out-of-date document, the spooled ones first (rebuilt from the store, so
    the newest content goes). Items that fail go to the spool with their error; the store
    records what the cluster acknowledged, so nothing is sent twice or lost. With `keys`,
    only those posts' documents (a classification batch's); the spool waits for a full sync
    or `vigie es replay`."""
    with _cyclic_gc_paused():
        return _sync(store, es, config, keys)


def _sync(
    store: Store, es: Elasticsearch, config: ElasticsearchConfig, keys: Sequence[str] | None
) -> IndexReport:
    report = IndexReport()
    if keys is not None:
        _send(es, store, config, list(_actions_to_send(store, config, keys)), report, {})
        return report
    spool = spooled(store)
    spool_ids = {action["_id"]: 1 for _, action in spool}
    fresh = list(_actions_to_send(store, config))
    fresh_ids = {a["_id"] for _, a in fresh}
    # A spooled action the store no longer produces: for a post deleted since, the index
    # must drop its copy; for a post still stored, the index already holds what it should
    # (e.g. a refused update for a post no longer flagged and never indexed), so it goes.
    stale = [a for _, a in spool if a["_id"] not in fresh_ids]
    gone = outbox.posts_missing(store, [a["_id"] for a in stale])
    outbox.drop_spooled(store, {a["_id"] for a in stale} - gone)
    leftovers = [
        ("", {"_op_type": "delete", "_index": a["_index"], "_id": a["_id"]})
        for a in stale
        if a["_id"] in gone
    ]
    fresh.sort(key=lambda item: item[1]["_id"] not in spool_ids)
    _send(es, store, config, leftovers + fresh, report, spool_ids)
    return report


def count_indexed(es: Elasticsearch, config: ElasticsearchConfig) -> int:
    """Documents behind the alias; 0 while no monthly index exists (a new or emptied cluster)."""
    es.indices.refresh(index=config.index_prefix, allow_no_indices=True, ignore_unavailable=True)
    return int(es.count(index=config.index_prefix, allow_no_indices=True, ignore_unavailable=True)["count"])


def _numeric_id(value: str) -> int | None:
    """A post id as a long where it is one (X and TikTok ids have 19 digits)."""
    return int(value) if value.isascii() and value.isdigit() and int(value) < 2**63 else None
