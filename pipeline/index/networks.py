"""Smuggling networks in Elasticsearch: one document per network (`_id` = its network id)
in an index of its own beside the posts' (`vigie-networks` beside `vigie-posts`,
`PREFIX_networks` beside another prefix). Networks absorbed by another, or gone, are
deleted from it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pipeline.index.template import connect, describe_es_error, es_url
from vigie.errors import VigieError
from vigie.sanitize import strip_controls

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from pipeline.intel.networks import Network
    from vigie.config import ElasticsearchConfig, VigieConfig


def networks_index(config: ElasticsearchConfig) -> str:
    """`vigie-networks` beside `vigie-posts`; beside another prefix, PREFIX_networks: never
    a name the posts' `PREFIX-*` template and alias would take for a month of posts."""
    prefix = config.index_prefix
    if prefix.endswith("-posts"):
        return prefix[: -len("-posts")] + "-networks"
    return f"{prefix}_networks"


def networks_mapping() -> dict[str, Any]:
    keyword = {"type": "keyword"}
    count = {"type": "integer"}
    return {
        "dynamic": "strict",
        "properties": {
            "network_id": keyword,
            "first_seen": {"type": "date"},
            "last_seen": {"type": "date"},
            "sources": keyword,
            "platforms": keyword,
            "source_count": count,
            "contact_count": count,
            "flagged_posts": count,
            "phones": keyword,
            "handles": keyword,
            "links": keyword,
            "payments": keyword,
            "wallets": keyword,
            "clusters": keyword,
            "images": keyword,
            "contacts": keyword,
            "languages": keyword,
            "routes": keyword,
            "transport": keyword,
            "guarantees": keyword,
            "payment_terms": keyword,
            "referral_outcomes": keyword,
            "price_min_eur": {"type": "double"},
            "price_max_eur": {"type": "double"},
            "prices": {
                "type": "nested",
                "properties": {
                    "month": keyword,
                    "route": keyword,
                    "currency": keyword,
                    "min": {"type": "double"},
                    "max": {"type": "double"},
                    "median": {"type": "double"},
                    "median_eur": {"type": "double"},
                    "posts": count,
                },
            },
            "shared": {
                "type": "nested",
                "properties": {"a": keyword, "b": keyword, "via": keyword, "weight": {"type": "float"}},
            },
        },
    }


def network_doc(network: Network) -> dict[str, Any]:
    from pipeline.intel.networks import route_words

    def clean(values: Sequence[str]) -> list[str]:
        return [strip_controls(str(v)) for v in values]

    members = network.members
    prices = network.price_range_eur()
    return {
        "network_id": network.network_id,
        "first_seen": network.first_seen or None,
        "last_seen": network.last_seen or None,
        "sources": clean(network.sources),
        "platforms": clean(network.platforms),
        "source_count": len(network.sources),
        "contact_count": len(network.contacts),
        "flagged_posts": network.flagged_posts,
        "phones": clean(members.get("phone", [])),
        "handles": clean(members.get("handle", [])),
        "links": clean(members.get("link", [])),
        "payments": clean(members.get("payment", [])),
        "wallets": clean(members.get("wallet", [])),
        "clusters": clean(members.get("cluster", [])),
        "images": clean(members.get("image", [])),
        "contacts": clean(network.contacts),
        "languages": list(network.languages),
        "routes": clean([route_words(r) for r in network.routes]),
        "transport": list(network.transport),
        "guarantees": clean(list(network.guarantees)),
        "payment_terms": clean(list(network.payment_terms)),
        "referral_outcomes": list(network.referral_outcomes),
        "price_min_eur": prices[0] if prices else None,
        "price_max_eur": prices[1] if prices else None,
        "prices": [{**p, "route": strip_controls(p["route"])} for p in network.prices],
        "shared": [
            {"a": link.a, "b": link.b, "via": clean(link.via), "weight": link.weight}
            for link in network.links
        ],
    }


def _actions(index: str, networks: Sequence[Network], stale: Sequence[str]) -> Iterator[dict[str, Any]]:
    for network in networks:
        if network.merged_into:
            yield {"_op_type": "delete", "_index": index, "_id": network.network_id}
        else:
            yield {
                "_op_type": "index",
                "_index": index,
                "_id": network.network_id,
                "_source": network_doc(network),
            }
    for network_id in stale:
        yield {"_op_type": "delete", "_index": index, "_id": network_id}


def _indexed_ids(es: Elasticsearch, index: str) -> list[str]:
    from elasticsearch.helpers import scan

    return [hit["_id"] for hit in scan(es, index=index, query={"query": {"match_all": {}}}, _source=False)]


def ensure_index(es: Elasticsearch, config: ElasticsearchConfig) -> str:
    index = networks_index(config)
    if not es.indices.exists(index=index):
        es.indices.create(
            index=index,
            settings={"number_of_shards": 1, "number_of_replicas": config.replicas},
            mappings=networks_mapping(),
        )
    return index


def index_networks(config: VigieConfig, networks: Sequence[Network]) -> int:
    """Index `networks` (every live network: documents of any other network, such as one
    merged into another since, are deleted) and return how many were indexed."""
    from elasticsearch import ApiError, TransportError
    from elasticsearch.helpers import streaming_bulk

    es_config = config.elasticsearch
    url = es_url(es_config)
    es = connect(es_config)
    try:
        index = ensure_index(es, es_config)
        named = {n.network_id for n in networks}
        stale = sorted(set(_indexed_ids(es, index)) - named)
        indexed = 0
        failed: list[str] = []
        for ok, item in streaming_bulk(
            es,
            _actions(index, networks, stale),
            chunk_size=es_config.chunk_size,
            max_retries=es_config.max_retries,
            initial_backoff=1,
            max_backoff=30,
            raise_on_error=False,
        ):
            op, info = next(iter(item.items()))
            if ok:
                indexed += op == "index"
            elif not (op == "delete" and info.get("status") == 404):
                failed.append(f"{info.get('_id')}: {info.get('error')}")
        es.indices.refresh(index=index)
    except (ApiError, TransportError) as exc:
        raise VigieError(f"{describe_es_error(exc, url)}; networks not indexed") from None
    finally:
        es.close()
    if failed:
        raise VigieError(f"{len(failed)} networks not indexed in {index}: {failed[0]}")
    return indexed
