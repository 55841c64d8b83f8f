"""Mapping changes the indices cannot take in place, against a real Elasticsearch node: the
months are copied into a new generation, the alias moves in one step, writers wait on the
index lock meanwhile and then write to the new generation; a copy that fails leaves the
alias where it was."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk
from sqlalchemy import text

from pipeline.index.documents import count_indexed, sync
from pipeline.index.generations import migrate, plan, staging_template_name
from pipeline.index.template import available_analyzers, current_generation, mapping, setup
from tests.conftest import run_vigie
from tests.support.waiting import wait_for
from vigie.config import ElasticsearchConfig
from vigie.errors import VigieError
from vigie.records import Post
from vigie.store import Store, analysis

pytestmark = pytest.mark.elasticsearch

ADVERT = "Boat Dunkirk to UK 1,300 GBP, WhatsApp +33 7 58 21 46 93"


def _adverts(store: Store, ids: range, month: str, score: float = 0.97) -> list[str]:
    store.upsert_posts(
        Post(
            "telegram",
            "chan",
            i,
            f"https://t.me/chan/{i}",
            f"{ADVERT} #{i}",
            f"2026-{month}-03T00:00:00+00:00",
        )
        for i in ids
    )
    keys = [f"telegram:chan:{i}" for i in ids]
    for post in store.posts():
        if post["key"] in keys:
            analysis.save_analysis(
                store,
                {
                    "post_key": post["key"], "content_sha256": post["content_sha256"], "model_id": "m",
                    "lang": "en", "lang_confidence": 0.9, "score": score, "is_advert": 1, "needs_review": 0,
                    "cues": "[]", "entities": "{}", "cluster_id": None,
                    "processed_at": "2026-12-01T00:00:00+00:00",
                },
            )  # fmt: skip
    return keys


def _aliased(es: Elasticsearch, config: ElasticsearchConfig) -> list[str]:
    return sorted(es.indices.get_alias(name=config.index_prefix).body)


def _shards(es: Elasticsearch, index: str) -> int:
    return int(es.indices.get_settings(index=index).body[index]["settings"]["index"]["number_of_shards"])


def test_a_shard_change_moves_every_month_to_a_new_generation(es_url, tmp_path, config_file):
    es = Elasticsearch(es_url)
    before = ElasticsearchConfig(index_prefix="vigie-gen", shards=1)
    with Store(tmp_path / "vigie.db") as store:
        _adverts(store, range(1, 21), "10")
        _adverts(store, range(21, 31), "11")
        setup(es, before)
        assert sync(store, es, before).indexed == 30
        assert _aliased(es, before) == ["vigie-gen-2026.10", "vigie-gen-2026.11"]
        # Two shards a month now: existing indices cannot be resharded in place.
        after = before.model_copy(update={"shards": 2})
        notes = [s.detail for s in setup(es, after, dry_run=True) if s.target == "mapping"]
        assert notes and "1 primary shard(s), the configuration wants 2" in notes[0]
        assert "generation 2" in notes[0]
        migration = migrate(store, es, after)
        assert [(c.source, c.target, c.documents) for c in migration.copies] == [
            ("vigie-gen-2026.10", "vigie-gen-g2-2026.10", 20),
            ("vigie-gen-2026.11", "vigie-gen-g2-2026.11", 10),
        ]
        assert _aliased(es, after) == ["vigie-gen-g2-2026.10", "vigie-gen-g2-2026.11"]
        assert all(_shards(es, index) == 2 for index in _aliased(es, after))
        assert count_indexed(es, after) == 30
        hits = es.search(index="vigie-gen", size=100, query={"match_all": {}})["hits"]["hits"]
        assert sorted(h["_id"] for h in hits) == sorted(f"telegram:chan:{i}" for i in range(1, 31))
        # The store's marks describe the copies: nothing is sent again.
        assert sync(store, es, after).indexed == 0
        # New and changed documents go to the new generation, a new month with the alias.
        _adverts(store, range(31, 36), "12")
        _adverts(store, range(1, 3), "10", score=0.99)
        assert sync(store, es, after).indexed == 7
        assert _aliased(es, after) == [f"vigie-gen-g2-2026.{m}" for m in (10, 11, 12)]
        assert _shards(es, "vigie-gen-g2-2026.12") == 2
        es.indices.refresh(index="vigie-gen-*")
        assert es.get(index="vigie-gen-g2-2026.10", id="telegram:chan:1")["_source"]["score"] == 0.99
        assert es.get(index="vigie-gen-2026.10", id="telegram:chan:1")["_source"]["score"] == 0.97
        assert count_indexed(es, after) == 35
        # The old generation is kept, read-only.
        settings = es.indices.get_settings(index="vigie-gen-2026.10").body["vigie-gen-2026.10"]["settings"]
        assert settings["index"]["blocks"]["write"] == "true"
        # Nothing more to change: a second migration does nothing.
        again = migrate(store, es, after)
        assert not again.reasons and _aliased(es, after)[0] == "vigie-gen-g2-2026.10"
    # The command line: a dry run names the copies, a forced run makes generation 3.
    config = config_file(elasticsearch={"url": es_url, "index_prefix": "vigie-gen", "shards": 2})
    (tmp_path / "data").mkdir()
    (tmp_path / "vigie.db").rename(tmp_path / "data" / "vigie.db")
    dry = run_vigie("es", "migrate", "--dry-run", config=config, check=True)
    assert "already matches" in dry.stdout
    forced = run_vigie("es", "migrate", "--force", "--delete-old", config=config, check=True)
    assert "copied vigie-gen-g2-2026.12 -> vigie-gen-g3-2026.12 (5 documents)" in forced.stdout
    assert "moved to generation 3; generation 2 deleted" in forced.stdout
    assert not es.indices.exists(index="vigie-gen-g2-2026.10")
    assert _aliased(es, before) == [f"vigie-gen-g3-2026.{m}" for m in (10, 11, 12)]
    assert count_indexed(es, before) == 35
    # Every month deleted: the template still names the generation new months go to.
    es.indices.delete(index="vigie-gen-*")
    assert current_generation(es, before) == 3


def _plant(
    es: Elasticsearch, config: ElasticsearchConfig, properties: dict[str, Any], docs: list[dict]
) -> None:
    """Indices written by an older mapping: `properties` replace the current ones' fields."""
    old = mapping(available_analyzers(es))
    old["properties"].update(properties)
    es.indices.create(index=f"{config.index_prefix}-2026.10", mappings=old, aliases={config.index_prefix: {}})
    bulk(es, [{"_index": f"{config.index_prefix}-2026.10", "_id": d["key"], "_source": d} for d in docs])
    es.indices.refresh(index=f"{config.index_prefix}-2026.10")


def test_a_field_type_change_is_copied_and_a_refused_copy_leaves_the_alias(es_url, tmp_path):
    es = Elasticsearch(es_url)
    config = ElasticsearchConfig(index_prefix="vigie-typed")
    docs = [{"key": f"k{i}", "cluster_id": i, "score": 0.9} for i in range(5)]
    _plant(es, config, {"cluster_id": {"type": "long"}}, docs)
    with Store(tmp_path / "vigie.db") as store:
        migration = plan(es, config)
        assert migration.reasons == [
            "vigie-typed-2026.10: field cluster_id is long, the mapping wants keyword"
        ]
        migrate(store, es, config)
        fields = es.indices.get_mapping(index="vigie-typed-g2-2026.10").body
        assert fields["vigie-typed-g2-2026.10"]["mappings"]["properties"]["cluster_id"]["type"] == "keyword"
        assert count_indexed(es, config) == 5
        found = es.search(index="vigie-typed", query={"term": {"cluster_id": "3"}})["hits"]["hits"]
        assert [h["_id"] for h in found] == ["k3"]

    # A field the strict mapping no longer has: the copy is refused, nothing moves.
    bad = ElasticsearchConfig(index_prefix="vigie-legacy")
    _plant(es, bad, {"cluster_id": {"type": "long"}, "legacy_note": {"type": "keyword"}},
           [{"key": "a", "cluster_id": 1, "legacy_note": "x"}])  # fmt: skip
    refused = r"1 document\(s\) refused by the new mapping.*legacy_note"
    with Store(tmp_path / "other.db") as store, pytest.raises(VigieError, match=refused):
        migrate(store, es, bad)
    assert _aliased(es, bad) == ["vigie-legacy-2026.10"]
    assert not es.indices.exists(index="vigie-legacy-g2-2026.10")
    assert not es.indices.exists_index_template(name=staging_template_name(bad))
    assert es.count(index="vigie-legacy")["count"] == 1


def _waiting_for_an_advisory_lock(store: Store) -> bool:
    with store.engine.connect() as c:
        return bool(
            c.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            ).scalar()
        )


@pytest.mark.postgres
def test_a_sync_during_a_migration_waits_and_writes_to_the_new_generation(es_url, fresh_pg_url):
    es = Elasticsearch(es_url)
    before = ElasticsearchConfig(index_prefix="vigie-live", shards=1)
    after = before.model_copy(update={"shards": 2})
    with Store(fresh_pg_url) as store, Store(fresh_pg_url) as writer:
        _adverts(store, range(1, 11), "10")
        setup(es, before)
        assert sync(store, es, before).indexed == 10
        new_keys = _adverts(store, range(11, 16), "10")
        reports = []
        seen: dict[str, Any] = {}

        def during_copy(line: str) -> None:
            if "->" in line and "thread" not in seen:  # the lock is held and the copy runs
                seen["thread"] = threading.Thread(
                    target=lambda: reports.append(sync(writer, es, before, new_keys))
                )
                seen["thread"].start()
                seen["waited"] = wait_for(
                    "the sync to wait", lambda: _waiting_for_an_advisory_lock(store), 30
                )
                es.indices.refresh(index="vigie-live-*")
                seen["old_count"] = es.count(index="vigie-live-2026.10")["count"]

        migrate(store, es, after, progress=during_copy)
        seen["thread"].join(timeout=60)
        assert seen["waited"] and seen["old_count"] == 10
        assert reports and reports[0].indexed == 5 and not reports[0].spooled
        es.indices.refresh(index="vigie-live-*")
        assert es.count(index="vigie-live-g2-2026.10")["count"] == 15
        assert es.count(index="vigie-live-2026.10")["count"] == 10
        assert count_indexed(es, after) == 15
        assert sync(store, es, after).indexed == 0
