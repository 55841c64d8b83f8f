"""Elasticsearch: index template, monthly indices behind an alias, bulk indexing of
flagged posts with deterministic ids, and a local spool so that nothing is lost while the
cluster is down or rejects documents.

Documents are written as partial updates (`doc_as_upsert` with a separate upsert body), so
re-indexing a post never overwrites review or referral fields set on it later.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from vigie.config import ElasticsearchConfig, secret
from vigie.errors import VigieError
from vigie.sanitize import strip_controls, web_url_or_path
from vigie.store import DECIDED, Store, utcnow

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

log = logging.getLogger(__name__)

# Built-in analyzers for the languages Elasticsearch has one for; others use "text" only.
LANGUAGE_FIELDS = {
    "ar": "arabic",
    "ckb": "sorani",
    "fa": "persian",
    "tr": "turkish",
    "fr": "french",
    "en": "english",
}
# Approximate rates, only to rank and compare prices across currencies on dashboards.
EUR_PER_UNIT = {
    "EUR": 1.0,
    "GBP": 1.17,
    "USD": 0.92,
    "TRY": 0.027,
    "IQD": 0.0007,
    "IRR": 0.000017,
    "AFN": 0.013,
    "PKR": 0.0033,
    "ETB": 0.0075,
    "ERN": 0.061,
    "SAR": 0.245,
    "AED": 0.25,
    "ALL": 0.0099,
    "VND": 0.000036,
}


def es_url(config: ElasticsearchConfig) -> str:
    return (os.environ.get("VIGIE_ES_URL") or config.url).rstrip("/")


def connect(config: ElasticsearchConfig) -> Elasticsearch:
    """A client from the URL plus credentials from the environment: VIGIE_ES_API_KEY, or
    VIGIE_ES_USERNAME and VIGIE_ES_PASSWORD; VIGIE_ES_CA_FILE for a private CA."""
    from elasticsearch import Elasticsearch

    url = es_url(config)
    if not url:
        raise VigieError("no Elasticsearch URL: set elasticsearch.url in the configuration or $VIGIE_ES_URL")
    kwargs: dict[str, Any] = {
        "request_timeout": config.timeout,
        "verify_certs": config.verify_certs,
        "retry_on_timeout": True,
        "max_retries": 2,
    }
    if api_key := secret("VIGIE_ES_API_KEY"):
        kwargs["api_key"] = api_key
    elif (user := secret("VIGIE_ES_USERNAME")) and (password := secret("VIGIE_ES_PASSWORD")):
        kwargs["basic_auth"] = (user, password)
    if ca := secret("VIGIE_ES_CA_FILE"):
        kwargs["ca_certs"] = ca
    return Elasticsearch(url, **kwargs)


def without_credentials(url: str) -> str:
    """The URL as it may be shown: any user and password in it replaced by `***`."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def describe_es_error(exc: Exception, url: str | None = None) -> str:
    """One line for a client error: what the cluster answered, or why there was no answer
    (the innermost "[Errno 111] Connection refused" of the transport's chained message)."""
    where = f" at {without_credentials(url)}" if url else ""
    status = getattr(getattr(exc, "meta", None), "status", None)
    if isinstance(status, int) and hasattr(exc, "body"):
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error")
        reason = (isinstance(error, dict) and error.get("reason")) or getattr(exc, "message", "") or ""
        return " ".join(f"Elasticsearch{where} answered HTTP {status}: {reason}".split())
    text = " ".join([str(exc), str(getattr(exc, "message", "")), *map(str, getattr(exc, "errors", ()))])
    causes = re.findall(r"\[Errno -?\d+\] ([^)\]'\"]+)", text)
    cause = causes[-1].strip() if causes else " ".join(str(exc).split())
    return f"Elasticsearch{where} unavailable: {cause or type(exc).__name__} ({type(exc).__name__})"


@cache
def _places() -> dict[str, dict[str, Any]]:
    from classifier.cues import lexicon_files

    path = lexicon_files()[1]
    if not path.is_file():
        return {}
    return {p["id"]: p for p in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("places", [])}


def mapping(analyzers: dict[str, str] | None = None) -> dict[str, Any]:
    """The explicit mapping. `analyzers` maps a language to the analyzer the cluster has
    for it (default: the built-in language analyzers)."""
    keyword = {"type": "keyword"}
    chosen = analyzers or LANGUAGE_FIELDS
    text_fields: dict[str, Any] = {
        f"text_{lang}": {"type": "text", "analyzer": chosen.get(lang, "standard")} for lang in LANGUAGE_FIELDS
    }
    return {
        "dynamic": "strict",
        "properties": {
            "key": keyword,
            "platform": keyword,
            "channel": keyword,
            "post_id": {"type": "long"},
            "url": keyword,
            "text": {"type": "text"},
            **text_fields,
            "lang": keyword,
            "lang_confidence": {"type": "float"},
            "score": {"type": "float"},
            "is_advert": {"type": "boolean"},
            "published_at": {"type": "date"},
            "captured_at": {"type": "date"},
            "processed_at": {"type": "date"},
            "views": {"type": "long"},
            "forwarded_from": keyword,
            "reply_to": keyword,
            "edited": {"type": "boolean"},
            "media": keyword,
            "links": keyword,
            "cues": keyword,
            "cue_texts": keyword,
            "phones": keyword,
            "handles": keyword,
            "messenger_links": keyword,
            "contacts": keyword,
            "price_amount": {"type": "double"},
            "price_currency": keyword,
            "price_eur": {"type": "double"},
            "prices_text": keyword,
            "places": keyword,
            "origin": keyword,
            "destination": keyword,
            "origin_name": keyword,
            "destination_name": keyword,
            "route": keyword,
            "origin_geo": {"type": "geo_point"},
            "destination_geo": {"type": "geo_point"},
            "transport": keyword,
            "guarantees": keyword,
            "payment_terms": keyword,
            "cluster_id": keyword,
            "model_id": keyword,
            "crawler_version": keyword,
            "payload_sha256": keyword,
            "referral_status": keyword,
            "referral_batch": keyword,
            "referred_at": {"type": "date"},
            "removed_at": {"type": "date"},
            "hours_to_removal": {"type": "float"},
        },
    }


def template_body(config: ElasticsearchConfig, analyzers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "index_patterns": [f"{config.index_prefix}-*"],
        "priority": 200,
        "template": {
            "settings": {
                "number_of_shards": config.shards,
                "number_of_replicas": config.replicas,
                "refresh_interval": "5s",
            },
            "mappings": mapping(analyzers),
            "aliases": {config.index_prefix: {}},
        },
        "_meta": {"managed_by": "vigie", "version": 1},
    }


def index_for(config: ElasticsearchConfig, published_at: str | None) -> str:
    month = (published_at or utcnow())[:7].replace("-", ".")
    return f"{config.index_prefix}-{month}"


@dataclass
class SetupStep:
    action: str
    target: str
    detail: str = ""


def available_analyzers(es: Elasticsearch) -> dict[str, str]:
    """The built-in language analyzer per language where the cluster has it (minimal
    distributions ship without analysis-common), else "standard"."""
    from elasticsearch import ApiError

    chosen = {}
    for lang, analyzer in LANGUAGE_FIELDS.items():
        try:
            es.indices.analyze(analyzer=analyzer, text="test")
            chosen[lang] = analyzer
        except ApiError:
            chosen[lang] = "standard"
    return chosen


def setup(es: Elasticsearch | None, config: ElasticsearchConfig, dry_run: bool = False) -> list[SetupStep]:
    """Install or upgrade the index template (and so the alias of every monthly index).
    Existing indices keep their fields; fields added since are added to them too."""
    name = f"{config.index_prefix}-template"
    analyzers = available_analyzers(es) if es is not None else dict(LANGUAGE_FIELDS)
    missing = sorted(lang for lang, a in analyzers.items() if a != LANGUAGE_FIELDS[lang])
    detail = (
        f"patterns {config.index_prefix}-*, alias {config.index_prefix}, language analyzers: "
        + ", ".join(f"{lang}={a}" for lang, a in analyzers.items())
    )
    steps = [SetupStep("put index template", name, detail)]
    if missing:
        steps.append(
            SetupStep(
                "note",
                "analyzers",
                f"the cluster lacks the built-in analyzers for {', '.join(missing)}; "
                "those fields use the standard analyzer",
            )
        )
    additions: dict[str, dict[str, Any]] = {}
    if es is not None:
        wanted = mapping(analyzers)["properties"]
        for idx, body in _existing_indices(es, config).items():
            have = body.get("mappings", {}).get("properties", {})
            if new := {k: v for k, v in wanted.items() if k not in have}:
                additions[idx] = new
                steps.append(SetupStep("add fields", idx, ", ".join(sorted(new))))
    if dry_run or es is None:
        return steps
    es.indices.put_index_template(name=name, **template_body(config, analyzers))
    for idx, new in additions.items():
        es.indices.put_mapping(index=idx, properties=new)
    return steps


def _existing_indices(es: Elasticsearch, config: ElasticsearchConfig) -> dict[str, Any]:
    found = es.indices.get(index=f"{config.index_prefix}-*", allow_no_indices=True, expand_wildcards="open")
    return dict(sorted(found.body.items()))


def build_doc(row: sqlite3.Row, places: dict[str, dict[str, Any]]) -> dict[str, Any]:
    entities = json.loads(row["entities"] or "{}")
    cues = json.loads(row["cues"] or "[]")
    prices = entities.get("prices") or []
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
        "post_id": row["post_id"],
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
        # Link fields hold links only, whatever an older crawler stored.
        "media": [m for m in json.loads(row["media"]) if web_url_or_path(str(m))],
        "links": [u for u in json.loads(row["links"]) if web_url_or_path(str(u))],
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
        "route": f"{name(origin) or '?'} → {name(destination) or '?'}" if origin or destination else None,
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
    if "referral_status" in row.keys() and row["referral_status"]:  # noqa: SIM118 - sqlite3.Row
        from pipeline.referrals import hours_between

        doc |= {
            "referral_status": row["referral_status"],
            "referral_batch": row["referral_batch"],
            "referred_at": row["referred_at"],
            "removed_at": row["removed_at"],
            "hours_to_removal": hours_between(row["referred_at"], row["removed_at"]),
        }
    return doc


def doc_hash(doc: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass
class IndexReport:
    indexed: int = 0
    deleted: int = 0
    spooled: int = 0
    replayed: int = 0
    errors: list[str] = field(default_factory=list)


def _actions_to_send(store: Store, config: ElasticsearchConfig) -> Iterator[tuple[str, dict[str, Any]]]:
    """(doc hash or '', bulk action) for every flagged post whose indexed copy is out of date,
    and a delete for every indexed post that is no longer flagged."""
    places = _places()
    rows = store.db.execute(
        "SELECT p.*, a.lang, a.lang_confidence, a.score, a.is_advert, a.needs_review, a.cues, a.entities,"
        " a.cluster_id,"
        " a.model_id, a.processed_at, a.indexed_sha256, r.status AS referral_status, r.notice_id AS referral_batch,"
        " r.referred_at, r.removed_at FROM analysis a JOIN posts p ON p.key = a.post_key"
        " LEFT JOIN referrals r ON r.post_key = a.post_key"
        " WHERE a.is_advert = 1 OR a.needs_review = 1 OR a.indexed_sha256 IS NOT NULL"
    )
    for row in rows:
        # The month a post is filed under never changes: its date, else when it was first seen.
        index = index_for(config, row["published_at"] or row["first_seen"])
        # Sure adverts, and posts of the review band once an analyst confirmed them.
        confirmed = row["referral_status"] in DECIDED
        if not (row["is_advert"] or (row["needs_review"] and confirmed)):
            if row["indexed_sha256"] is None:
                continue
            yield "", {"_op_type": "delete", "_index": index, "_id": row["key"]}
            continue
        doc = build_doc(row, places)
        digest = doc_hash(doc)
        if digest == row["indexed_sha256"]:
            continue
        yield (
            digest,
            {
                "_op_type": "update",
                "_index": index,
                "_id": row["key"],
                "doc": doc,
                "upsert": {**doc, "referral_status": "new"},
            },
        )


def _send(
    es: Elasticsearch,
    store: Store,
    config: ElasticsearchConfig,
    actions: list[tuple[str, dict[str, Any]]],
    report: IndexReport,
    from_spool: dict[str, int],
) -> None:
    from elasticsearch import TransportError
    from elasticsearch.helpers import streaming_bulk

    by_id = {action["_id"]: (digest, action) for digest, action in actions}
    results = streaming_bulk(
        es,
        (action for _, action in actions),
        chunk_size=config.chunk_size,
        max_retries=config.max_retries,
        initial_backoff=1,
        max_backoff=30,
        raise_on_error=False,
        raise_on_exception=False,
    )
    answered: set[str] = set()
    outcomes: list[tuple[str, dict[str, Any], bool]] = []

    def flush() -> None:
        # A chunk of outcomes per short transaction (the store is not locked while the
        # cluster works); if the process dies first, those documents are sent again.
        with store.transaction():
            for op, info, ok in outcomes:
                _record(store, by_id, op, info, ok, report, from_spool)
        outcomes.clear()

    try:
        for ok, item in results:
            op, info = next(iter(item.items()))
            answered.add(info.get("_id"))
            outcomes.append((op, info, ok))
            if len(outcomes) >= config.chunk_size:
                flush()
    except TransportError as exc:
        # The cluster went away mid-run: everything it did not acknowledge waits in the spool.
        reason = f"{type(exc).__name__}: {exc}"
        for doc_id, (_, action) in by_id.items():
            if doc_id not in answered:
                outcomes.append(
                    (action["_op_type"], {"_id": doc_id, "status": 0, "error": {"reason": reason}}, False)
                )
    flush()


def _record(
    store: Store,
    by_id: dict[str, tuple[str, dict[str, Any]]],
    op: str,
    info: dict[str, Any],
    ok: bool,
    report: IndexReport,
    from_spool: dict[str, int],
) -> None:
    """Write down what the cluster said about one document: acknowledged, or spooled."""
    doc_id = info.get("_id", "")
    digest, action = by_id[doc_id]
    status = info.get("status", 0)
    if ok or (op == "delete" and status == 404):
        store.db.execute(
            "UPDATE analysis SET indexed_sha256 = ? WHERE post_key = ?", (digest or None, doc_id)
        )
        store.db.execute("DELETE FROM spool WHERE doc_id = ?", (doc_id,))
        if doc_id in from_spool:
            report.replayed += 1
        elif op == "delete":
            report.deleted += 1
        else:
            report.indexed += 1
    else:
        error = info.get("error") or info.get("exception") or f"HTTP {status}"
        reason = error.get("reason", str(error)) if isinstance(error, dict) else str(error)
        store.db.execute("DELETE FROM spool WHERE doc_id = ?", (doc_id,))
        store.db.execute(
            "INSERT INTO spool (doc_id, action, body, error, created_at) VALUES (?, ?, ?, ?, ?)",
            (
                doc_id,
                op,
                json.dumps({"digest": digest, "action": action}, ensure_ascii=False),
                reason[:500],
                utcnow(),
            ),
        )
        report.spooled += 1
        if len(report.errors) < 20:
            report.errors.append(f"{doc_id}: {reason[:200]}")


def spooled(store: Store) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for row in store.db.execute("SELECT body FROM spool ORDER BY id"):
        body = json.loads(row["body"])
        out.append((body["digest"], body["action"]))
    return out


def sync(store: Store, es: Elasticsearch, config: ElasticsearchConfig) -> IndexReport:
    """Send every out-of-date document, the spooled ones first (rebuilt from the store, so
    the newest content goes). Items that fail go to the spool with their error; the store
    records what the cluster acknowledged, so nothing is sent twice or lost."""
    report = IndexReport()
    spool = spooled(store)
    spool_ids = {action["_id"]: 1 for _, action in spool}
    fresh = list(_actions_to_send(store, config))
    fresh_ids = {a["_id"] for _, a in fresh}
    # A spooled action the store no longer produces (its post was deleted) is sent as it was.
    leftovers = [(d, a) for d, a in spool if a["_id"] not in fresh_ids]
    fresh.sort(key=lambda item: item[1]["_id"] not in spool_ids)
    _send(es, store, config, leftovers + fresh, report, spool_ids)
    return report


def count_indexed(es: Elasticsearch, config: ElasticsearchConfig) -> int:
    es.indices.refresh(index=config.index_prefix)
    return int(es.count(index=config.index_prefix)["count"])
