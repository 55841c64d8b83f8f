"""The pipeline end to end against a real Elasticsearch node: demo run, counts, review state
kept across re-indexing, the spool when the node dies mid-run or rejects items."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from pipeline.enrich.process import process
from pipeline.index.documents import count_indexed, spooled, sync
from pipeline.index.template import mapping, setup
from tests.conftest import run_vigie
from vigie.config import ElasticsearchConfig
from vigie.records import Post
from vigie.store import Store, outbox

pytestmark = pytest.mark.elasticsearch
HARD_NEGATIVE_CHANNELS = {"migration_watch_news", "safe_routes_info", "bogazici_turizm_vize"}


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory, shipped) -> Path:
    """The demo's store after one run without Elasticsearch (classified, clustered)."""
    data = tmp_path_factory.mktemp("demo")
    run_vigie("demo", "--data-dir", str(data), check=True, timeout=600, env={"VIGIE_ES_URL": ""})
    return data / "vigie.db"


def copy_store(demo_store: Path, tmp_path: Path) -> Path:
    target = tmp_path / "vigie.db"
    with sqlite3.connect(demo_store) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def flagged(store_path: Path) -> int:
    with Store(store_path) as store:
        return int(store.db.execute("SELECT COUNT(*) FROM analysis WHERE is_advert = 1").fetchone()[0])


def test_demo_indexes_every_flagged_post_with_entities_and_clusters(tmp_path, es_url, shipped):
    result = run_vigie(
        "demo", "--data-dir", str(tmp_path), timeout=600, env={"VIGIE_ES_URL": es_url}, check=True
    )
    assert "referral candidates:" in result.stdout and "(equal)" in result.stdout
    links = json.loads(run_vigie("links", "--json", config=tmp_path / "vigie.yaml", check=True).stdout)
    assert any("telegram:rebaz_safar_uk" in link["channels"] for link in links)
    store_path = tmp_path / "vigie.db"
    es = Elasticsearch(es_url)
    # Sample data has indices of its own: never the real ones' alias.
    demo_index = ElasticsearchConfig(index_prefix="vigie-demo")
    assert not es.indices.exists_alias(name="vigie-posts")
    assert count_indexed(es, demo_index) == flagged(store_path) > 40
    docs = [h["_source"] for h in es.search(index="vigie-demo", size=500)["hits"]["hits"]]
    assert all(
        d["cluster_id"] and d["referral_status"] == "new" and d["url"].startswith("https://t.me/")
        for d in docs
    )
    assert sum(bool(d["contacts"]) for d in docs) / len(docs) > 0.8
    assert sum(bool(d["route"]) for d in docs) / len(docs) > 0.5
    assert any(d["price_eur"] for d in docs)
    # The bundled reposts: each pair shares one cluster in the index.
    by_url = {d["url"]: d["cluster_id"] for d in docs}
    pair = ("https://t.me/rebaz_safar_uk/144", "https://t.me/dichvu_sang_anh_uk/39")
    assert by_url[pair[0]] == by_url[pair[1]]
    # News, NGO and travel-agency channels hold no adverts: almost nothing from them is flagged.
    assert sum(d["channel"] in HARD_NEGATIVE_CHANNELS for d in docs) <= 2
    candidates = json.loads((tmp_path / "referral-candidates.json").read_text(encoding="utf-8"))["clusters"]
    assert sum(len(c["urls"]) for c in candidates) == len(docs)
    # Data minimisation: posts below the review band keep key, score and times only; the
    # review band keeps its text for the analyst.
    with Store(store_path) as store:
        kept = store.db.execute(
            "SELECT COUNT(*) FROM posts p JOIN analysis a ON a.post_key = p.key"
            " WHERE a.is_advert = 0 AND a.needs_review = 0 AND p.text != ''"
        ).fetchone()[0]
        assert kept == 0
        wiped = store.db.execute(
            "SELECT COUNT(*) FROM posts p JOIN analysis a ON a.post_key = p.key"
            " WHERE a.needs_review = 1 AND p.text = ''"
        ).fetchone()[0]
        assert wiped == 0
    again = run_vigie(
        "demo", "--data-dir", str(tmp_path), timeout=600, env={"VIGIE_ES_URL": es_url}, check=True
    )
    assert "0 indexed" in again.stdout and count_indexed(es, demo_index) == len(docs)


def test_sample_channels_are_classified_well(demo_store):
    from crawlers.telegram.mirror import load_channels

    truth = {
        f"telegram:{name}:{p['id']}": p["label"] for name, ch in load_channels().items() for p in ch["posts"]
    }
    with Store(demo_store) as store:
        got = {r[0]: r[1] for r in store.db.execute("SELECT post_key, is_advert FROM analysis")}
    tp = sum(1 for k, y in truth.items() if y == 1 and got[k] == 1)
    fp = sum(1 for k, y in truth.items() if y == 0 and got[k] == 1)
    fn = sum(1 for k, y in truth.items() if y == 1 and got[k] == 0)
    assert tp / (tp + fp) >= 0.9 and tp / (tp + fn) >= 0.75, (tp, fp, fn)
    # The channel whose adverts are pictures captioned "DM 📩": flagged from their images.
    pictured = {k: y for k, y in truth.items() if k.startswith("telegram:vip_yacht_tickets:")}
    assert pictured and all(got[k] == y for k, y in pictured.items()), {k: got[k] for k in pictured}
    with Store(demo_store, read_only=True) as store:
        phones = {
            r[0]: json.loads(r[1]).get("image", {}).get("contacts", [])
            for r in store.db.execute(
                "SELECT post_key, entities FROM analysis WHERE post_key LIKE 'telegram:vip_yacht_tickets:%'"
                " AND is_advert = 1"
            )
        }
    assert all(phones.values()) and len(phones) == sum(pictured.values()), phones


def test_reindexing_keeps_review_state(tmp_path, es_url, demo_store, shipped):
    store_path = copy_store(demo_store, tmp_path)
    config = ElasticsearchConfig()
    es = Elasticsearch(es_url)
    setup(es, config)
    with Store(store_path) as store:
        sync(store, es, config)
        es.indices.refresh(index="vigie-posts")
        key, url, text, channel, post_id, published = store.db.execute(
            "SELECT p.key, p.url, p.text, p.channel, p.post_id, p.published_at FROM posts p"
            " JOIN analysis a ON a.post_key = p.key"
            " WHERE a.is_advert = 1 ORDER BY p.key LIMIT 1"
        ).fetchone()
        index = es.search(index="vigie-posts", query={"ids": {"values": [key]}})["hits"]["hits"][0]["_index"]
        es.update(index=index, id=key, doc={"referral_status": "confirmed"}, refresh=True)
        edited = text + "\n📞 new number +44 7700 900777"
        store.upsert_posts([Post("telegram", channel, post_id, url, edited, published, edited=True)])
        process(store, shipped)
        result = sync(store, es, config)
    es.indices.refresh(index="vigie-posts")
    assert result.indexed >= 1
    doc = es.get(index=index, id=key)["_source"]
    assert doc["referral_status"] == "confirmed" and "+447700900777" in doc["phones"]


def test_a_document_goes_the_other_way_when_the_index_and_the_store_disagree(tmp_path, es_url, demo_store):
    store_path = copy_store(demo_store, tmp_path)
    config = ElasticsearchConfig()
    es = Elasticsearch(es_url)
    setup(es, config)
    with Store(store_path) as store:
        first = sync(store, es, config)
        assert first.indexed == flagged(store_path) and first.spooled == 0
        es.indices.refresh(index="vigie-posts")
        hits = es.search(index="vigie-posts", size=2, sort=[{"key": "asc"}])["hits"]["hits"]
        (reviewed, lost) = [(h["_index"], h["_id"]) for h in hits]
        es.update(index=reviewed[0], id=reviewed[1], doc={"referral_status": "confirmed"}, refresh=True)
        # The store forgets what the index holds: every create finds its document there and
        # becomes a partial update, which keeps the review state set in the index.
        outbox.forget_indexed(store)
        again = sync(store, es, config)
        assert again.indexed == first.indexed and again.spooled == 0
        assert es.get(index=reviewed[0], id=reviewed[1])["_source"]["referral_status"] == "confirmed"
        # The index lost a document the store believes it holds in an older version: the
        # update finds nothing and the document is created whole.
        es.delete(index=lost[0], id=lost[1], refresh=True)
        store.db.execute("UPDATE analysis SET indexed_sha256 = 'older' WHERE post_key = ?", (lost[1],))
        restored = sync(store, es, config)
        assert restored.indexed == 1 and restored.spooled == 0
        assert es.get(index=lost[0], id=lost[1])["_source"]["referral_status"] == "new"
        assert sync(store, es, config).indexed == 0  # and the store knows it now
    assert count_indexed(es, config) == flagged(store_path)


def test_node_dying_mid_run_loses_nothing(tmp_path, es_url, es_node, demo_store):
    store_path = copy_store(demo_store, tmp_path)
    config = ElasticsearchConfig(chunk_size=10, max_retries=0, timeout=5)
    calls = {"n": 0}

    class DyingElasticsearch(Elasticsearch):
        def bulk(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 2:  # the node goes down right after the first bulk request
                es_node.stop()
            return super().bulk(*args, **kwargs)

    es = DyingElasticsearch(es_url, request_timeout=5, max_retries=0)
    setup(es, config)
    with Store(store_path) as store:
        report = sync(store, es, config)
        assert report.indexed == 10 and report.spooled == flagged(store_path) - 10
        assert len(spooled(store)) == report.spooled
    es_node.start()
    config_file = tmp_path / "vigie.yaml"
    config_file.write_text(f"data_dir: {tmp_path}\n", encoding="utf-8")
    result = run_vigie("es", "replay", config=config_file, env={"VIGIE_ES_URL": es_url}, check=True)
    assert f"{report.spooled} before, 0 left" in result.stdout
    assert count_indexed(Elasticsearch(es_url), config) == flagged(store_path)


def test_replay_all_refills_an_index_that_lost_its_data(tmp_path, es_url, demo_store):
    store_path = copy_store(demo_store, tmp_path)
    config_file = tmp_path / "vigie.yaml"
    config_file.write_text(f"data_dir: {tmp_path}\n", encoding="utf-8")
    env = {"VIGIE_ES_URL": es_url}
    run_vigie("es", "replay", config=config_file, env=env, check=True)
    es = Elasticsearch(es_url)
    assert count_indexed(es, ElasticsearchConfig()) == flagged(store_path) > 0
    es.indices.delete(index="vigie-posts-*")  # the cluster lost its data
    plain = run_vigie("es", "replay", config=config_file, env=env, check=True)
    assert "sent 0 documents" in plain.stdout  # the store still believes the index holds them
    refill = run_vigie("es", "replay", "--all", config=config_file, env=env, check=True)
    assert f"sent {flagged(store_path)} documents" in refill.stdout
    assert count_indexed(es, ElasticsearchConfig()) == flagged(store_path)


def test_dead_cluster_at_start_is_a_warning_and_nothing_is_lost(tmp_path, es_url, demo_store, shipped):
    store_path = copy_store(demo_store, tmp_path)
    config_file = tmp_path / "vigie.yaml"
    config_file.write_text(f"data_dir: {tmp_path}\n", encoding="utf-8")
    result = run_vigie(
        "run", "--no-crawl", config=config_file, env={"VIGIE_ES_URL": "http://127.0.0.1:9"}, check=True
    )
    assert "unavailable" in result.stdout and "vigie es replay" in result.stdout
    replay = run_vigie("es", "replay", config=config_file, env={"VIGIE_ES_URL": es_url}, check=True)
    assert "0 left" in replay.stdout
    assert count_indexed(Elasticsearch(es_url), ElasticsearchConfig()) == flagged(store_path)


def test_rejected_items_wait_in_the_spool_with_their_error(tmp_path, es_url, demo_store):
    store_path = copy_store(demo_store, tmp_path)
    es = Elasticsearch(es_url)
    config = ElasticsearchConfig()
    setup(es, config)
    with Store(store_path) as store:
        months = {
            r[0][:7].replace("-", ".")
            for r in store.db.execute(
                "SELECT p.published_at FROM posts p JOIN analysis a ON a.post_key = p.key WHERE a.is_advert = 1"
            )
        }
        bad = f"vigie-posts-{sorted(months)[0]}"
        # An index made by hand with a conflicting mapping rejects our documents one by one.
        es.indices.create(index=bad, mappings={"properties": {"channel": {"type": "long"}}})
        report = sync(store, es, config)
        assert report.spooled > 0 and any("channel" in e for e in report.errors), report.errors
        rows = store.db.execute("SELECT error FROM spool").fetchall()
        assert len(rows) == report.spooled and all(r[0] for r in rows)
        es.indices.delete(index=bad)
        again = sync(store, es, config)
        assert again.spooled == 0 and spooled(store) == []
    assert count_indexed(es, config) == flagged(store_path)


def test_spooled_updates_for_posts_no_longer_flagged_or_deleted_are_not_sent(tmp_path, es_url, demo_store):
    store_path = copy_store(demo_store, tmp_path)
    es = Elasticsearch(es_url)
    config = ElasticsearchConfig(index_prefix="vigie-stale")
    setup(es, config)
    with Store(store_path) as store:
        month = (
            store.db.execute(
                "SELECT MIN(p.published_at) FROM posts p JOIN analysis a ON a.post_key = p.key WHERE a.is_advert = 1"
            )
            .fetchone()[0][:7]
            .replace("-", ".")
        )
        bad = f"vigie-stale-{month}"
        es.indices.create(index=bad, mappings={"properties": {"channel": {"type": "long"}}})
        assert sync(store, es, config).spooled >= 2
        es.indices.delete(index=bad)
        unflagged, deleted = sorted(action["_id"] for _, action in spooled(store))[:2]
        # An analyst's rule change unflags one before the index comes back; the other post is gone.
        store.db.execute(
            "UPDATE analysis SET is_advert = 0, needs_review = 0 WHERE post_key = ?", (unflagged,)
        )
        for table in ("analysis", "signatures", "contacts", "post_media", "referrals"):
            store.db.execute(f"DELETE FROM {table} WHERE post_key = ?", (deleted,))
        store.db.execute("DELETE FROM posts WHERE key = ?", (deleted,))
        again = sync(store, es, config)
        assert again.spooled == 0 and spooled(store) == []
        es.indices.refresh(index="vigie-stale-*")
        for key in (unflagged, deleted):
            assert not es.search(index="vigie-stale-*", query={"ids": {"values": [key]}})["hits"]["hits"], key
    assert count_indexed(es, config) == flagged(store_path)


def test_es_setup_dry_run_and_idempotent_install(tmp_path, es_url):
    config_file = tmp_path / "vigie.yaml"
    config_file.write_text(f"data_dir: {tmp_path}\n", encoding="utf-8")
    dry = run_vigie("es", "setup", "--dry-run", config=config_file, env={"VIGIE_ES_URL": es_url}, check=True)
    assert "would put index template: vigie-posts-template" in dry.stdout
    assert "ar=" in dry.stdout and "ckb=" in dry.stdout
    es = Elasticsearch(es_url)
    assert not es.indices.exists_index_template(name="vigie-posts-template")
    for _ in range(2):
        run_vigie("es", "setup", config=config_file, env={"VIGIE_ES_URL": es_url}, check=True)
    template = es.indices.get_index_template(name="vigie-posts-template")["index_templates"][0][
        "index_template"
    ]
    props = template["template"]["mappings"]["properties"]
    from pipeline.index.template import LANGUAGE_FIELDS, available_analyzers

    # The built-in language analyzer wherever the cluster has it (this minimal node may not).
    for lang, analyzer in available_analyzers(es).items():
        assert props[f"text_{lang}"]["analyzer"] == analyzer in (LANGUAGE_FIELDS[lang], "standard")
    assert props["contacts"]["type"] == "keyword" and props["origin_geo"]["type"] == "geo_point"
    assert set(props) == set(mapping()["properties"])
    es.index(index="vigie-posts-2026.01", id="x", document={"key": "x", "score": 0.9}, refresh=True)
    assert es.indices.get_alias(index="vigie-posts-2026.01")["vigie-posts-2026.01"]["aliases"] == {
        "vigie-posts": {}
    }


def test_es_unset_is_a_clear_error(tmp_path):
    config_file = tmp_path / "vigie.yaml"
    config_file.write_text(f"data_dir: {tmp_path}\n", encoding="utf-8")
    result = run_vigie("es", "replay", config=config_file, env={"VIGIE_ES_URL": ""})
    assert result.returncode == 1 and "no Elasticsearch URL" in result.stderr
