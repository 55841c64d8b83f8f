"""Elasticsearch: the connection, the index template and mappings (per-language analyzers),
and monthly indices behind an alias. Documents are written by `pipeline.index.documents`."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from vigie.config import ElasticsearchConfig, secret
from vigie.errors import VigieError
from vigie.store import utcnow

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
            "post_ref": keyword,
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
            "partial": {"type": "boolean"},
            "forwarded_from_name": keyword,
            "author_name": keyword,
            "hashtags": keyword,
            "mentions": keyword,
            "likes": {"type": "long"},
            "shares": {"type": "long"},
            "comments": {"type": "long"},
            "attachment_types": keyword,
            "media": keyword,
            # What the images say and hold: OCR text, files by SHA-256, PDQ hashes (whole, and
            # in 16 segments of 16 bits: a hash within 15 bits of another shares a segment).
            "ocr_text": {"type": "text"},
            "image_score": {"type": "float"},
            "image_contacts": keyword,
            "media_sha256": keyword,
            "pdq": keyword,
            "pdq_segments": keyword,
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
