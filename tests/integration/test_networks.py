"""Networks on the sample channels through the real pipeline (`vigie demo`: the local
mirror, the crawler, the trained classifier, extraction and reposts), the `vigie networks`
command, and indexing into a real Elasticsearch node.

What the samples say: kurd_game_dunkirk and uk_boat_express share a WhatsApp number, a
handle, the office "Sarafi Azadi" and a USDT wallet; uk_boat_express and vip_yacht_tickets
share a flyer (PDQ), its repost cluster and the number in it. rebaz_safar_uk's
+44 7700 900412 is in kurd_game_dunkirk but also in dichvu_sang_anh_uk: three sources, 0.5
between each two, so it does not link them alone. The Alarm Phone hotline, in
kurd_game_dunkirk and safar_omid_van, glues the two groups unless it is listed."""

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
    network = planted(found)
    assert set(network["sources"]) == PLANTED
    assert "telegram:safar_omid_van" not in network["sources"]
    contacts = set(network["contacts"])
    assert {
        "+33758214693",
        "@dunkirk_taxi_game",
        "sarafi azadi",
        "TNv8kQ3xWm5RzL2pYc7HdJ4fG9sBtE6uAq",
    } <= contacts
    assert "+33486517161" not in contacts
    links = {(link["a"], link["b"]): link for link in network["links"]}
    core = links[("telegram:kurd_game_dunkirk", "telegram:uk_boat_express")]
    assert core["weight"] == 4.0 and "payment:sarafi azadi" in core["via"]
    flyer = links[("telegram:uk_boat_express", "telegram:vip_yacht_tickets")]
    assert any(v.startswith("image:") for v in flyer["via"]) and any(
        v.startswith("cluster:") for v in flyer["via"]
    )
    # The planted prices, per month on France → UK, in pounds and in euros.
    medians = {
        p["month"]: p["median"]
        for p in network["prices"]
        if p["route"] == "fr → gb" and p["currency"] == "GBP"
    }
    assert medians["2026-07"] == 1200 and medians["2026-08"] == 1300 and medians["2026-09"] == 2200
    assert medians["2026-10"] == 2500
    assert network["routes"][0]["destination"] in ("gb", "fr")
    assert network["network_id"].startswith("net-") and len(network["network_id"]) == 16
    # rebaz_safar_uk's side (bahr_zuwara_express, dichvu_sang_anh_uk, safar_omid_van) is a network of its own.
    other = next(n for n in found["networks"] if "telegram:rebaz_safar_uk" in n["sources"])
    assert (
        "telegram:bahr_zuwara_express" in other["sources"] and "telegram:safar_omid_van" in other["sources"]
    )

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
    network = planted(found)
    assert PLANTED | {"telegram:safar_omid_van", "telegram:rebaz_safar_uk"} <= set(network["sources"])
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
