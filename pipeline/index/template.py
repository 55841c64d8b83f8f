"""Elasticsearch: the connection, the index template and mappings (per-language analyzers),
and monthly indices behind an alias, in generations: a mapping change the indices cannot take
in place goes into a new generation (`pipeline.index.generations`). Documents are written by
`pipeline.index.documents`."""

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
    from pipeline.index.client_json import SERIALIZERS

    kwargs: dict[str, Any] = {
        "serializers": SERIALIZERS,
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


def index_settings(config: ElasticsearchConfig) -> dict[str, Any]:
    return {
        "number_of_shards": config.shards,
        "number_of_replicas": config.replicas,
        "refresh_interval": "5s",
    }


def template_name(config: ElasticsearchConfig) -> str:
    return f"{config.index_prefix}-template"


def template_body(
    config: ElasticsearchConfig, analyzers: dict[str, str] | None = None, generation: int = 1
) -> dict[str, Any]:
    return {
        "index_patterns": [f"{config.index_prefix}-*"],
        "priority": 200,
        "template": {
            "settings": index_settings(config),
            "mappings": mapping(analyzers),
            "aliases": {config.index_prefix: {}},
        },
        "_meta": {"managed_by": "vigie", "version": 1, "generation": generation},
    }


# -- generations ------------------------------------------------------------------------
# Generation 1 is `PREFIX-YYYY.MM`, as before generations existed; generation N > 1 is
# `PREFIX-gN-YYYY.MM`. The alias holds one generation's indices: the current one.


def index_for(config: ElasticsearchConfig, published_at: str | None, generation: int = 1) -> str:
    return index_name(config, generation, (published_at or utcnow())[:7].replace("-", "."))


def index_name(config: ElasticsearchConfig, generation: int, month: str) -> str:
    if generation == 1:
        return f"{config.index_prefix}-{month}"
    return f"{config.index_prefix}-g{generation}-{month}"


def parse_index_name(config: ElasticsearchConfig, name: str) -> tuple[int, str] | None:
    """(generation, month `YYYY.MM`) of a monthly index of ours; None for any other name."""
    found = re.fullmatch(re.escape(config.index_prefix) + r"-(?:g([1-9][0-9]*)-)?([0-9]{4}\.[0-9]{2})", name)
    if not found or found.group(1) == "1":  # generation 1 has no `g1-`
        return None
    return int(found.group(1) or 1), found.group(2)


@dataclass
class WriteTargets:
    """Where documents go: each month behind the alias to the index that holds it there, a
    month not yet indexed to the current generation."""

    generation: int
    months: dict[str, str]

    def retarget(self, config: ElasticsearchConfig, index: str) -> str:
        parsed = parse_index_name(config, index)
        if parsed is None:
            return index
        return self.months.get(parsed[1]) or index_name(config, self.generation, parsed[1])


def write_targets(es: Elasticsearch, config: ElasticsearchConfig) -> WriteTargets:
    from elasticsearch import NotFoundError

    try:
        behind = sorted(es.indices.get_alias(name=config.index_prefix).body)
    except NotFoundError:
        behind = []
    monthly = sorted((parsed, name) for name in behind if (parsed := parse_index_name(config, name)))
    months = {month: name for (_, month), name in monthly}  # the newest generation of a month last
    generation = max(g for (g, _), _ in monthly) if monthly else template_generation(es, config)
    return WriteTargets(generation, months)


def current_indices(es: Elasticsearch, config: ElasticsearchConfig) -> dict[str, Any]:
    """The monthly indices behind the alias, with their mappings and settings: those documents
    are written to and read from. Older generations kept after a migration are not among them."""
    from elasticsearch import NotFoundError

    try:
        found = es.indices.get(index=config.index_prefix, expand_wildcards="open")
    except NotFoundError:
        return {}
    return {name: body for name, body in sorted(found.body.items()) if parse_index_name(config, name)}


def current_generation(es: Elasticsearch, config: ElasticsearchConfig) -> int:
    """The generation new months go to: the newest behind the alias; with none there (a new
    cluster, or every month deleted), the one the index template names; else 1."""
    return write_targets(es, config).generation


def template_generation(es: Elasticsearch, config: ElasticsearchConfig) -> int:
    from elasticsearch import NotFoundError

    try:
        templates = es.indices.get_index_template(name=template_name(config)).body["index_templates"]
    except NotFoundError:
        return 1
    meta = (templates[0]["index_template"].get("_meta") or {}) if templates else {}
    generation = meta.get("generation", 1)
    return generation if isinstance(generation, int) and generation >= 1 else 1


def incompatibilities(
    indices: dict[str, Any], config: ElasticsearchConfig, analyzers: dict[str, str]
) -> list[str]:
    """Why `indices` (as `current_indices` returns them) cannot take the configured mapping and
    shards in place: a field of another type or analyzer, another number of primary shards.
    Fields they lack are no reason: those are added in place."""
    wanted = mapping(analyzers)["properties"]
    reasons = []
    for name, body in indices.items():
        have = body.get("mappings", {}).get("properties", {})
        for field_name, want in wanted.items():
            if field_name in have and _field_shape(have[field_name]) != _field_shape(want):
                reasons.append(
                    f"{name}: field {field_name} is {_describe(have[field_name])}, "
                    f"the mapping wants {_describe(want)}"
                )
        shards = int(body.get("settings", {}).get("index", {}).get("number_of_shards", config.shards))
        if shards != config.shards:
            reasons.append(f"{name}: {shards} primary shard(s), the configuration wants {config.shards}")
    return reasons


def _field_shape(spec: dict[str, Any]) -> tuple[str, str]:
    kind = str(spec.get("type", "object"))
    return kind, str(spec.get("analyzer", "standard")) if kind == "text" else ""


def _describe(spec: dict[str, Any]) -> str:
    kind, analyzer = _field_shape(spec)
    return f"{kind} ({analyzer} analyzer)" if analyzer else kind


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
    The current generation's indices keep their fields; fields added since are added to them
    too, and a changed number of replicas is applied to them. A change they cannot take in
    place (a field's type or analyzer, the shards) is reported: `vigie es migrate` copies
    them into a new generation."""
    name = template_name(config)
    analyzers = available_analyzers(es) if es is not None else dict(LANGUAGE_FIELDS)
    missing = sorted(lang for lang, a in analyzers.items() if a != LANGUAGE_FIELDS[lang])
    indices = current_indices(es, config) if es is not None else {}
    # Never below what the template records: a migration may have moved the alias since.
    generation = max(current_generation(es, config), template_generation(es, config)) if es is not None else 1
    detail = (
        f"patterns {config.index_prefix}-*, alias {config.index_prefix}, generation {generation}, "
        "language analyzers: " + ", ".join(f"{lang}={a}" for lang, a in analyzers.items())
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
    replicas: list[str] = []
    wanted = mapping(analyzers)["properties"]
    for idx, body in indices.items():
        have = body.get("mappings", {}).get("properties", {})
        if new := {k: v for k, v in wanted.items() if k not in have}:
            additions[idx] = new
            steps.append(SetupStep("add fields", idx, ", ".join(sorted(new))))
        now = int(body.get("settings", {}).get("index", {}).get("number_of_replicas", config.replicas))
        if now != config.replicas:
            replicas.append(idx)
            steps.append(SetupStep("set replicas", idx, f"{now} -> {config.replicas}"))
    if reasons := incompatibilities(indices, config, analyzers):
        steps.append(
            SetupStep(
                "note",
                "mapping",
                f"{len(reasons)} change(s) the indices cannot take in place ({reasons[0]}"
                f"{'; ...' if len(reasons) > 1 else ''}); new months get them, and "
                f"`vigie es migrate` copies the existing months into generation {generation + 1}",
            )
        )
    if dry_run or es is None:
        return steps
    es.indices.put_index_template(name=name, **template_body(config, analyzers, generation))
    for idx, new in additions.items():
        es.indices.put_mapping(index=idx, properties=new)
    if replicas:
        es.indices.put_settings(index=",".join(replicas), settings={"number_of_replicas": config.replicas})
    return steps
