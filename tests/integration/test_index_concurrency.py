"""Indexing from several processes on a PostgreSQL store: a chunk is sent and marked under
the store's index lock, so a sync never marks a copy older than the one the index holds
last; a cluster lost mid-run leaves the unsent chunks in the spool."""

from __future__ import annotations

import threading
import time

import pytest
from elastic_transport import ConnectionError as TransportConnectionError
from elasticsearch import Elasticsearch
from sqlalchemy import text

from pipeline.index.documents import IndexReport, spooled, sync
from pipeline.index.template import setup
from vigie.config import ElasticsearchConfig
from vigie.records import Post
from vigie.store import Store, analysis, outbox
from vigie.store.cluster import advisory_key

pytestmark = [pytest.mark.elasticsearch, pytest.mark.postgres]

ADVERT = "Boat Dunkirk to UK 1,300 GBP, WhatsApp +33 7 58 21 46 93"


def _adverts(store: Store, n: int) -> list[str]:
    store.upsert_posts(
        Post("telegram", "chan", i, f"https://t.me/chan/{i}", f"{ADVERT} #{i}", "2026-10-01T00:00:00+00:00")
        for i in range(1, n + 1)
    )
    for post in store.posts():
        analysis.save_analysis(
            store,
            {
                "post_key": post["key"], "content_sha256": post["content_sha256"], "model_id": "m",
                "lang": "en", "lang_confidence": 0.9, "score": 0.97, "is_advert": 1, "needs_review": 0,
                "cues": "[]", "entities": "{}", "cluster_id": None,
                "processed_at": "2026-10-02T00:00:00+00:00",
            },
        )  # fmt: skip
    return sorted(p["key"] for p in store.posts())


def _marked(store: Store) -> int:
    with store.reading() as c:
        return int(
            c.execute(text("SELECT count(*) FROM analysis WHERE indexed_sha256 IS NOT NULL")).scalar_one()
        )


def _in_index(es: Elasticsearch, config: ElasticsearchConfig) -> int:
    pattern = f"{config.index_prefix}*"  # no monthly index before the first document
    es.indices.refresh(index=pattern)
    return int(es.count(index=pattern)["count"])


def test_a_sync_waits_for_the_index_lock_before_sending(es_url, fresh_pg_url):
    config = ElasticsearchConfig()
    es = Elasticsearch(es_url)
    setup(es, config)
    with Store(fresh_pg_url) as store, Store(fresh_pg_url) as other:
        keys = _adverts(store, 3)
        reports: list[IndexReport] = []
        with other.transaction() as c:  # another process is sending a chunk
            c.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_key(outbox.INDEX_LOCK)})
            thread = threading.Thread(target=lambda: reports.append(sync(store, es, config, keys)))
            thread.start()
            time.sleep(1.5)
            assert thread.is_alive()
            assert _in_index(es, config) == 0  # nothing sent meanwhile
        thread.join(timeout=60)
        assert reports and reports[0].indexed == 3
        assert _marked(store) == 3
        assert _in_index(es, config) == 3


def test_the_chunks_after_a_lost_cluster_wait_in_the_spool(es_url, fresh_pg_url):
    config = ElasticsearchConfig(chunk_size=10, max_retries=0, timeout=5)
    calls = {"n": 0}

    class DyingElasticsearch(Elasticsearch):
        def bulk(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] >= 2:
                raise TransportConnectionError("the node went away")
            return super().bulk(*args, **kwargs)

    es = DyingElasticsearch(es_url, request_timeout=5, max_retries=0)
    setup(es, config)
    with Store(fresh_pg_url) as store:
        _adverts(store, 25)
        report = sync(store, es, config)
        assert (report.indexed, report.spooled) == (10, 15)
        assert calls["n"] == 2  # the third chunk is not tried against a cluster that went away
        assert _marked(store) == 10
        assert len(spooled(store)) == 15
        again = sync(store, Elasticsearch(es_url), config)
        assert again.replayed == 15 and spooled(store) == []
