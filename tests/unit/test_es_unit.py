"""Index template and documents, without a cluster."""

from __future__ import annotations

import json

from pipeline.index.documents import build_doc, doc_hash
from pipeline.index.template import index_for, mapping, setup, template_body
from vigie.config import ElasticsearchConfig
from vigie.records import Post
from vigie.store import Store, analysis, outbox


def test_mapping_uses_language_analyzers_and_is_strict():
    props = mapping()["properties"]
    assert mapping()["dynamic"] == "strict"
    assert {props[f"text_{lang}"]["analyzer"] for lang in ("ar", "ckb", "fa", "tr", "fr", "en")} == {
        "arabic",
        "sorani",
        "persian",
        "turkish",
        "french",
        "english",
    }
    assert props["contacts"]["type"] == "keyword" and props["published_at"]["type"] == "date"
    assert props["origin_geo"]["type"] == "geo_point" and props["price_eur"]["type"] == "double"
    # A cluster without a language analyzer gets the standard one for that field only.
    fallback = mapping({"ar": "standard"})["properties"]
    assert fallback["text_ar"]["analyzer"] == "standard" and fallback["text_ckb"]["analyzer"] == "standard"


def test_template_aliases_monthly_indices():
    body = template_body(ElasticsearchConfig(index_prefix="vigie-x", shards=2))
    assert body["index_patterns"] == ["vigie-x-*"] and body["template"]["aliases"] == {"vigie-x": {}}
    assert body["template"]["settings"]["number_of_shards"] == 2
    assert index_for(ElasticsearchConfig(), "2026-10-02T06:15:09+00:00") == "vigie-posts-2026.10"


def test_dry_run_without_a_cluster_lists_the_steps():
    steps = setup(None, ElasticsearchConfig(), dry_run=True)
    assert steps[0].action == "put index template" and "ar=arabic" in steps[0].detail


def test_document_carries_entities_cluster_and_language_field(tmp_path):
    with Store(tmp_path / "v.db") as store:
        store.upsert_posts(
            [Post("telegram", "chan", 7, "https://t.me/chan/7", "بلم من ليبيا", "2026-10-02T06:15:09+00:00")]
        )
        entities = {
            "phones": ["+218914473620"],
            "contacts": ["+218914473620"],
            "places": ["ly", "it"],
            "origin": "ly",
            "destination": "it",
            "prices": [{"amount": 3000.0, "currency": "USD", "text": "3000$"}],
            "transport": ["boat"],
        }
        analysis.save_analysis(
            store,
            {
                "post_key": "telegram:chan:7",
                "content_sha256": "",
                "model_id": "m",
                "lang": "ar",
                "lang_confidence": 0.9,
                "score": 0.97,
                "is_advert": 1,
                "needs_review": 0,
                "cues": json.dumps([{"cue": "price", "text": "3000$", "weight": 1.0}]),
                "entities": json.dumps(entities),
                "cluster_id": "cl-1",
                "processed_at": "now",
            },
        )
        (row,) = outbox.index_candidates(store)
    places = {
        "ly": {"name": "Libya", "lat": 27.0, "lon": 17.0},
        "it": {"name": "Italy", "lat": 42.8, "lon": 12.8},
    }
    doc = build_doc(row, places)
    assert doc["text_ar"] == "بلم من ليبيا" and "text_en" not in doc
    assert doc["route"] == "Libya → Italy" and doc["origin_geo"] == {"lat": 27.0, "lon": 17.0}
    assert doc["price_eur"] == 2760.0 and doc["price_currency"] == "USD"
    assert doc["cluster_id"] == "cl-1" and doc["contacts"] == ["+218914473620"] and doc["cues"] == ["price"]
    assert set(doc) - {"text_ar"} <= set(mapping()["properties"])
    assert "referral_status" not in doc  # no review yet: the index keeps what it holds
    assert doc_hash(doc) == doc_hash(dict(reversed(list(doc.items()))))


def test_error_lines_never_show_credentials_from_the_url():
    from pipeline.index.template import describe_es_error, without_credentials

    assert (
        without_credentials("https://elastic:s3cret@es.example.org:9200/x")
        == "https://***@es.example.org:9200/x"
    )
    assert without_credentials("http://127.0.0.1:9200") == "http://127.0.0.1:9200"
    line = describe_es_error(
        ConnectionError("[Errno 111] Connection refused"), "https://elastic:s3cret@127.0.0.1:9"
    )
    assert "s3cret" not in line and "elastic:" not in line and "https://***@127.0.0.1:9" in line


def test_generations_name_their_months_and_others_are_left_alone():
    from pipeline.index.template import WriteTargets, index_name, parse_index_name

    config = ElasticsearchConfig()
    assert index_name(config, 1, "2026.10") == "vigie-posts-2026.10"
    assert index_name(config, 3, "2026.10") == "vigie-posts-g3-2026.10"
    assert index_for(config, "2026-11-05T00:00:00+00:00", generation=2) == "vigie-posts-g2-2026.11"
    assert parse_index_name(config, "vigie-posts-g12-2026.01") == (12, "2026.01")
    assert parse_index_name(config, "vigie-posts-2026.01") == (1, "2026.01")
    for other in (
        "vigie-posts",
        "vigie-networks",
        "vigie-posts-g0-2026.01",
        "vigie-posts-2026.1",
        "x-2026.01",
    ):
        assert parse_index_name(config, other) is None
    assert WriteTargets(4, {}).retarget(config, "vigie-posts-2026.10") == "vigie-posts-g4-2026.10"
    assert WriteTargets(1, {}).retarget(config, "vigie-posts-g4-2026.10") == "vigie-posts-2026.10"
    assert WriteTargets(4, {}).retarget(config, "elsewhere") == "elsewhere"


def test_only_changes_an_index_cannot_take_in_place_need_a_generation():
    from pipeline.index.template import incompatibilities

    config = ElasticsearchConfig(shards=1)
    current = mapping({"ar": "standard"})
    index = {"mappings": current, "settings": {"index": {"number_of_shards": "1"}}}
    assert incompatibilities({"i": index}, config, {"ar": "standard"}) == []
    fewer = {"mappings": {"properties": {"key": {"type": "keyword"}}}, "settings": index["settings"]}
    assert incompatibilities({"i": fewer}, config, {}) == []  # missing fields are added in place
    reasons = incompatibilities({"i": index}, ElasticsearchConfig(shards=3), {"ar": "arabic"})
    assert reasons == [
        "i: field text_ar is text (standard analyzer), the mapping wants text (arabic analyzer)",
        "i: 1 primary shard(s), the configuration wants 3",
    ]


def test_a_month_goes_to_the_index_the_alias_holds_for_it():
    from pipeline.index.template import WriteTargets

    config = ElasticsearchConfig()
    targets = WriteTargets(2, {"2026.10": "vigie-posts-2026.10", "2026.11": "vigie-posts-g2-2026.11"})
    assert targets.retarget(config, "vigie-posts-2026.10") == "vigie-posts-2026.10"
    assert targets.retarget(config, "vigie-posts-2026.11") == "vigie-posts-g2-2026.11"
    assert targets.retarget(config, "vigie-posts-2026.12") == "vigie-posts-g2-2026.12"
