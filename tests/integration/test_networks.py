"""Networks on the sample channels through the real pipeline (`vigie demo`: the local
mirror, the crawler, the trained classifier, extraction and reposts), the `vigie networks`
command, and indexing into a real Elasticsearch node.

What the samples say, at the default bar (0.5): kurd_game_dunkirk and uk_boat_express share
a WhatsApp number, a handle, the office "Sarafi Azadi" and a USDT wallet (4.0);
uk_boat_express and vip_yacht_tickets share a flyer (PDQ), its repost cluster and the number
in it (3.0). The other group is rebaz_safar_uk with bahr_zuwara_express (two numbers, two
repost clusters), dichvu_sang_anh_uk (+44 7700 900412, @rebaz_game_uk, a cluster) and
safar_omid_van (a number and a cluster); dichvu_sang_anh_uk and safar_omid_van share six
members. Nothing links the two groups but the Alarm Phone hotline, in kurd_game_dunkirk and
safar_omid_van (1.0): listed, it links nothing; unlisted, it glues the seven sources."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run_vigie

PLANTED = {"telegram:kurd_game_dunkirk", "telegram:uk_boat_express", "telegram:vip_yacht_tickets"}
OTHER = {
    "telegram:rebaz_safar_uk",
    "telegram:bahr_zuwara_express",
    "telegram:dichvu_sang_anh_uk",
    "telegram:safar_omid_van",
}
HOTLINE = "+33 4 86 51 71 61"


@pytest.fixture(scope="module")
def demo(tmp_path_factory, shipped) -> Path:
    data = tmp_path_factory.mktemp("networks-demo")
    run_vigie("demo", "--data-dir", str(data), check=True, timeout=900, env={"VIGIE_ES_URL": ""})
    return data


def configured(demo: Path, tmp_path: Path, **networks: Any) -> Path:
    """A copy of the demo's store, without the networks its run stored, and its
    configuration with `networks` settings."""
    shutil.copy(demo / "vigie.db", tmp_path / "vigie.db")
    with sqlite3.connect(tmp_path / "vigie.db") as db:
        db.execute("DELETE FROM network_members")
        db.execute("DELETE FROM networks")
    settings = yaml.safe_load((demo / "vigie.yaml").read_text(encoding="utf-8"))
    settings["data_dir"] = str(tmp_path)
    settings["networks"] = networks
    path = tmp_path / "vigie.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def listed(config: Path, *args: str) -> dict[str, Any]:
    result = run_vigie("networks", "--json", *args, config=config, check=True, env={"VIGIE_ES_URL": ""})
    return json.loads(result.stdout)


def planted(found: dict[str, Any]) -> dict[str, Any]:
    return next(n for n in found["networks"] if "telegram:kurd_game_dunkirk" in n["sources"])


def test_planted_network_with_the_hotline_listed(demo, tmp_path):
    config = configured(demo, tmp_path, hotlines=[HOTLINE])
    found = listed(config, "--refresh")
    assert found["note"].startswith("refreshed:")
    assert [set(n["sources"]) for n in found["networks"]] == [PLANTED, OTHER]
    network = planted(found)
    contacts = set(network["contacts"])
    assert {
        "+33758214693",
        "@dunkirk_taxi_game",
        "sarafi azadi",
        "TNv8kQ3xWm5RzL2pYc7HdJ4fG9sBtE6uAq",
    } <= contacts
    assert "+33486517161" not in contacts
    links = {(link["a"], link["b"]): link for link in network["links"]}
    assert set(links) == {
        ("telegram:kurd_game_dunkirk", "telegram:uk_boat_express"),
        ("telegram:uk_boat_express", "telegram:vip_yacht_tickets"),
    }
    core = links[("telegram:kurd_game_dunkirk", "telegram:uk_boat_express")]
    assert core["weight"] == 4.0 and core["via"] == [
        "handle:@dunkirk_taxi_game",
        "payment:sarafi azadi",
        "phone:+33758214693",
        "wallet:TNv8kQ3xWm5RzL2pYc7HdJ4fG9sBtE6uAq",
    ]
    flyer = links[("telegram:uk_boat_express", "telegram:vip_yacht_tickets")]
    assert flyer["weight"] == 3.0 and sorted(v.split(":", 1)[0] for v in flyer["via"]) == [
        "cluster",
        "image",
        "phone",
    ]
    # The planted prices, per month on France → United Kingdom, in pounds.
    medians = {
        p["month"]: p["median"]
        for p in network["prices"]
        if p["route"] == "France → United Kingdom" and p["currency"] == "GBP"
    }
    assert medians == {"2026-07": 1200, "2026-08": 1300, "2026-09": 2200, "2026-10": 2500, "2026-11": 2500}
    assert {p["route"] for p in network["prices"] if p["month"] == "2026-11"} >= {"Belgium → Ireland"}
    assert (network["routes"][0]["origin"], network["routes"][0]["destination"]) == ("fr", "gb")
    assert network["network_id"].startswith("net-") and len(network["network_id"]) == 16
    other = next(n for n in found["networks"] if "telegram:rebaz_safar_uk" in n["sources"])
    assert {(link["a"], link["b"]) for link in other["links"]} == {
        ("telegram:bahr_zuwara_express", "telegram:rebaz_safar_uk"),
        ("telegram:dichvu_sang_anh_uk", "telegram:rebaz_safar_uk"),
        ("telegram:dichvu_sang_anh_uk", "telegram:safar_omid_van"),
        ("telegram:rebaz_safar_uk", "telegram:safar_omid_van"),
    }

    # Stored: the same ids shown without recomputing; a second refresh finds nothing new.
    again = listed(config, "--refresh")
    assert "0 new, 0 members joined, 0 merged" in again["note"]
    stored = listed(config)
    assert [n["network_id"] for n in stored["networks"]] == [n["network_id"] for n in found["networks"]]

    # The table, a profile and a bad id.
    table = run_vigie("networks", config=config, check=True).stdout
    assert network["network_id"] in table and "telegram:kurd_game_dunkirk" in table
    profile = run_vigie("networks", network["network_id"], config=config, check=True).stdout
    assert "sarafi azadi" in profile and "Prices per month" in profile and "2026-09" in profile
    one = json.loads(run_vigie("networks", network["network_id"], "--json", config=config, check=True).stdout)
    assert one["network_id"] == network["network_id"] and set(one["sources"]) == PLANTED
    bad = run_vigie("networks", "net-000000000000", config=config)
    assert bad.returncode == 1 and bad.stderr.strip() == (
        "vigie: no network 'net-000000000000'; `vigie networks` lists them"
    )


def test_without_the_hotline_it_glues_the_two_groups(demo, tmp_path):
    config = configured(demo, tmp_path)
    found = listed(config)  # nothing stored: computed, not stored
    assert "not stored" in found["note"]
    (network,) = found["networks"]
    assert set(network["sources"]) == PLANTED | OTHER
    glue = [link for link in network["links"] if link["via"] == ["phone:+33486517161"]]
    assert [(link["a"], link["b"], link["weight"]) for link in glue] == [
        ("telegram:kurd_game_dunkirk", "telegram:safar_omid_van", 1.0)
    ]
    assert "+33486517161" in network["contacts"]


@pytest.mark.elasticsearch
def test_index_networks_ids_stable_and_merged_removed(demo, tmp_path, es_url):
    from elasticsearch import Elasticsearch

    from pipeline.index.networks import index_networks, networks_index
    from pipeline.intel.networks import refresh
    from vigie.config_file import load_config
    from vigie.store import Store

    config = load_config(configured(demo, tmp_path, hotlines=[HOTLINE]))
    config = config.model_copy(
        update={
            "elasticsearch": config.elasticsearch.model_copy(
                update={"url": es_url, "index_prefix": "vigie-posts"}
            )
        }
    )
    with Store(config.store_url()) as store:
        networks = refresh(store, config).networks
    assert networks_index(config.elasticsearch) == "vigie-networks"
    # Beside the demo's posts (vigie-demo-YYYY-MM, alias vigie-demo), never one of their names.
    other = config.elasticsearch.model_copy(update={"index_prefix": "vigie-demo"})
    assert networks_index(other) == "vigie-demo_networks"
    assert index_networks(config, networks) == len(networks) == 2
    es = Elasticsearch(es_url)
    docs = {h["_id"]: h["_source"] for h in es.search(index="vigie-networks", size=50)["hits"]["hits"]}
    assert set(docs) == {n.network_id for n in networks}
    doc = next(d for d in docs.values() if "telegram:kurd_game_dunkirk" in d["sources"])
    assert doc["source_count"] == 3 and "sarafi azadi" in doc["payments"] and doc["prices"]
    # Again: the same ids, nothing added. Then one network absorbed by the other: its document goes.
    assert index_networks(config, networks) == 2
    networks[1].merged_into = networks[0].network_id
    assert index_networks(config, networks) == 1
    es.indices.refresh(index="vigie-networks")
    left = [h["_id"] for h in es.search(index="vigie-networks", size=50)["hits"]["hits"]]
    assert left == [networks[0].network_id]


def _undated_and_dated(store: Any) -> None:
    """Four flagged posts, two without a date (their time is when they were first stored)."""
    import hashlib

    from sqlalchemy import update

    from pipeline.enrich.entities import extract
    from tests.support.rows import advert_analysis
    from vigie.records import Post, post_key
    from vigie.store.analysis import save_analysis
    from vigie.store.schema import posts

    times = {1: ("2026-07-03T10:00:00+00:00", None), 2: (None, "2026-07-02T09:00:00+00:00")}
    times |= {3: ("2026-07-01T10:00:00+00:00", None), 4: (None, "2026-07-04T09:00:00+00:00")}
    for post_id, (published, _) in times.items():
        store.upsert_posts(
            [
                Post(
                    platform="telegram",
                    channel="alpha",
                    post_id=post_id,
                    url=f"https://t.me/alpha/{post_id}",
                    text="Boat to UK +44 7700 900111",
                    published_at=published,
                    payload_sha256=hashlib.sha256(str(post_id).encode()).hexdigest(),
                    captured_at="2026-12-01T00:00:00+00:00",
                )
            ]
        )
        key = post_key("telegram", "alpha", post_id)
        row = advert_analysis(key, None, "2026-12-01T00:00:00+00:00")
        row["entities"] = json.dumps(extract("Boat to UK +44 7700 900111", "en").to_json())
        save_analysis(store, row)
    with store.transaction() as connection:
        for post_id, (_, first_seen) in times.items():
            if first_seen:
                key = post_key("telegram", "alpha", post_id)
                connection.execute(update(posts).where(posts.c.key == key).values(first_seen=first_seen))


def _check_flagged_order(store: Any) -> None:
    from vigie.store import DECIDED
    from vigie.store.networks import flagged_posts

    _undated_and_dated(store)
    rows = flagged_posts(store, DECIDED)
    assert [(r["key"].rsplit(":", 1)[1], r["published_at"], r["seen_at"]) for r in rows] == [
        ("3", "2026-07-01T10:00:00+00:00", "2026-07-01T10:00:00+00:00"),
        ("2", None, "2026-07-02T09:00:00+00:00"),
        ("1", "2026-07-03T10:00:00+00:00", "2026-07-03T10:00:00+00:00"),
        ("4", None, "2026-07-04T09:00:00+00:00"),
    ]


def test_flagged_posts_in_time_order_with_undated_ones_on_sqlite(tmp_path):
    from vigie.store import Store

    with Store(tmp_path / "vigie.db") as store:
        _check_flagged_order(store)


@pytest.mark.postgres
def test_flagged_posts_in_time_order_with_undated_ones_on_postgresql(fresh_pg_url):
    from vigie.store import Store

    with Store(fresh_pg_url) as store:
        _check_flagged_order(store)


def _check_merge_map(store: Any) -> None:
    from vigie.store import networks as stored

    profile = {"network_id": "", "sources": []}
    rows = [
        {"network_id": net, "first_seen": "2026-07-01T00:00:00+00:00", "profile": profile, "members": {}}
        for net in ("net-a", "net-b", "net-c")
    ]
    stored.save_networks(store, rows, {}, [], "2026-07-02T00:00:00+00:00")
    assert stored.merged_map(store) == {} and stored.count_networks(store) == 3
    stored.save_networks(
        store, rows[:1], {"net-b": "net-a", "net-c": "net-a"}, [], "2026-07-03T00:00:00+00:00"
    )
    assert stored.merged_map(store) == {"net-b": "net-a", "net-c": "net-a"}
    assert stored.count_networks(store) == 3  # those merged are still stored, pointing on
    stored.save_networks(store, [], {}, ["net-a"], "2026-07-04T00:00:00+00:00")
    assert stored.merged_map(store) == {} and stored.count_networks(store) == 0


def test_merge_map_and_count_on_sqlite(tmp_path):
    from vigie.store import Store

    with Store(tmp_path / "vigie.db") as store:
        _check_merge_map(store)


@pytest.mark.postgres
def test_merge_map_and_count_on_postgresql(fresh_pg_url):
    from vigie.store import Store

    with Store(fresh_pg_url) as store:
        _check_merge_map(store)
