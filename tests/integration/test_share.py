"""`vigie share misp` and `vigie share stix` on a store: flagged posts only, the hotline
left out, the configured marking, atomic files, the same ids on a second export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pymisp import MISPEvent
from stix2validator import ValidationOptions, validate_file

from pipeline.share.selection import select
from tests.support.rows import advert_analysis
from vigie.cli.main import cli
from vigie.config_file import load_config
from vigie.records import Post
from vigie.store import DECIDED, Store
from vigie.store.analysis import save_analysis
from vigie.store.cases import record_decision
from vigie.store.sharing import shareable_posts

UNFLAGGED = "Zorbalith quince weather notice"
REJECTED = "Quarvelian ferry timetable"
HOTLINE = "+33486517161"


def post(channel: str, post_id: int, text: str, day: str) -> Post:
    return Post(
        platform="telegram",
        channel=channel,
        post_id=post_id,
        url=f"https://t.me/{channel}/{post_id}",
        text=text,
        published_at=f"{day}T18:00:00+00:00",
        payload_sha256=f"{post_id:064x}",
        captured_at="2026-11-30T10:00:00+00:00",
    )


def analysis(key: str, *, is_advert: int = 1, needs_review: int = 0, **entities: object) -> dict:
    row = advert_analysis(key, None, "2026-11-30T10:05:00+00:00")
    row.update(is_advert=is_advert, needs_review=needs_review, score=0.97 if is_advert else 0.6)
    row["entities"] = json.dumps(
        {"phones": [], "handles": [], "links": [], "payments": [], "wallets": [], **entities}
    )
    return row


def fill(store: Store) -> None:
    posts = [
        post(
            "uk_boat_express",
            503,
            "UK game £1,300 WhatsApp +33 7 58 21 46 93, Alarm Phone +33 4 86 51 71 61",
            "2026-08-06",
        ),
        post(
            "kurd_game_dunkirk",
            15,
            "Geyma nû 1300 £ WhatsApp +33 7 58 21 46 93 @dunkirk_taxi_game",
            "2026-08-03",
        ),
        post("kurd_game_dunkirk", 16, "Qeyik ji Gravelines, +44 7700 900412", "2026-09-14"),
        post("kurd_game_dunkirk", 13, UNFLAGGED, "2026-07-19"),
        post("uk_boat_express", 504, REJECTED, "2026-08-19"),
    ]
    store.upsert_posts(posts)
    phone = "+33758214693"
    save_analysis(store, analysis(posts[0].key, phones=[phone, HOTLINE], payments=["sarafi azadi"]))
    save_analysis(store, analysis(posts[1].key, phones=[phone], handles=["dunkirk_taxi_game"]))
    # The review band: flagged once an analyst confirms it.
    save_analysis(store, analysis(posts[2].key, is_advert=0, needs_review=1, phones=["+447700900412"]))
    save_analysis(store, analysis(posts[3].key, is_advert=0))
    save_analysis(store, analysis(posts[4].key, phones=["+33700000000"]))
    now = "2026-11-30T11:00:00+00:00"
    record_decision(store, posts[2].key, None, "telegram", "", "confirmed", "price and phone", "ana", now)
    record_decision(
        store, posts[4].key, None, "telegram", "", "rejected", "a timetable, not an advert", "ana", now
    )


@pytest.fixture
def shared(tmp_path: Path, config_file):
    def make(**sharing: object) -> Path:
        config = config_file(sharing={"organisation": "Unit 7", **sharing}, networks={"hotlines": [HOTLINE]})
        return config

    config = make()
    with Store(load_config(config).store_url()) as store:
        fill(store)
    return make


def share(config: Path, *args: str) -> dict:
    result = CliRunner().invoke(cli, ["--config", str(config), "share", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_misp_and_stix_share_flagged_posts_only(shared, tmp_path):
    config = shared()
    misp = share(config, "misp")
    stix = share(config, "stix")
    data = tmp_path / "data" / "share"
    assert Path(misp["path"]) == data / "vigie-all.misp.json"
    assert Path(stix["path"]) == data / "vigie-all.stix.json"
    assert misp["posts"] == stix["posts"] == 3 and misp["marking"] == "TLP:AMBER, PAP:AMBER"
    assert sorted(p.name for p in data.iterdir()) == [
        "vigie-all.misp.json",
        "vigie-all.stix.json",
    ]  # no temp left

    for path in (misp["path"], stix["path"]):
        text = Path(path).read_text(encoding="utf-8")
        assert UNFLAGGED not in text and REJECTED not in text and "+33700000000" not in text
        assert HOTLINE not in text  # an NGO's hotline is nobody's contact
        assert "+33758214693" in text and "+447700900412" in text and "dunkirk_taxi_game" in text

    event = MISPEvent()
    event.load_file(misp["path"])
    assert [t.name for t in event.tags][:2] == ["tlp:amber", "PAP:AMBER"]
    urls = sorted(
        a.value
        for o in event.objects
        if o.name == "microblog"
        for a in o.attributes
        if a.object_relation == "url"
    )
    assert urls == [
        "https://t.me/kurd_game_dunkirk/15",
        "https://t.me/kurd_game_dunkirk/16",
        "https://t.me/uk_boat_express/503",
    ]
    result = validate_file(stix["path"], ValidationOptions(version="2.1"))
    assert result.is_valid and not any(r.errors for r in result.object_results)
    bundle = json.loads(Path(stix["path"]).read_text(encoding="utf-8"))
    logins = {o["account_login"] for o in bundle["objects"] if o["type"] == "user-account"}
    assert logins == {"uk_boat_express", "kurd_game_dunkirk", "dunkirk_taxi_game"}


def test_a_second_export_keeps_the_ids_and_the_marking_follows_the_config(shared, tmp_path):
    config = shared()
    first_misp = json.loads(Path(share(config, "misp")["path"]).read_text(encoding="utf-8"))
    first_stix = json.loads(Path(share(config, "stix")["path"]).read_text(encoding="utf-8"))
    config = shared(tlp="amber+strict", pap="red", include_text=False)
    out = tmp_path / "again.json"
    second = share(config, "misp", "--out", str(out))
    assert second["marking"] == "TLP:AMBER+STRICT, PAP:RED" and Path(second["path"]) == out
    again = json.loads(out.read_text(encoding="utf-8"))

    def uuids(event: dict) -> set[str]:
        return {event["Event"]["uuid"]} | {o["uuid"] for o in event["Event"]["Object"]}

    # Without texts, the objects are the same ones, with the same ids.
    assert uuids(again) == uuids(first_misp)
    assert [t["name"] for t in again["Event"]["Tag"]][:2] == ["tlp:amber+strict", "PAP:RED"]
    assert "UK game" not in out.read_text(encoding="utf-8")
    stix = json.loads(Path(share(config, "stix")["path"]).read_text(encoding="utf-8"))
    kept = {o["id"] for o in stix["objects"]}
    assert {o["id"] for o in first_stix["objects"] if o["type"] == "observed-data"} <= kept
    assert "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003" in kept


def test_period_and_bad_arguments(shared):
    config = shared()
    assert share(config, "stix", "--period", "2026-09")["posts"] == 1
    # Quarters as trends take them; a month's bounds are its own, not a prefix.
    assert share(config, "stix", "--period", "2026-Q3")["posts"] == 3
    assert share(config, "misp", "--period", "2026-q4")["posts"] == 0
    assert share(config, "stix", "--period", "2026-08")["posts"] == 2
    quarter = CliRunner().invoke(cli, ["--config", str(config), "share", "stix", "--period", "2026-Q5"])
    assert quarter.exit_code == 2 and "2026-Q3" in quarter.output
    bad = CliRunner().invoke(cli, ["--config", str(config), "share", "misp", "--period", "2026-13"])
    assert bad.exit_code == 2 and "--period" in bad.output
    unknown = CliRunner().invoke(
        cli, ["--config", str(config), "share", "stix", "--network", "net-000000000000"]
    )
    assert unknown.exit_code == 2 and "net-000000000000" in unknown.output


def test_shareable_posts_on_postgresql(fresh_pg_url, config_file):
    with Store(fresh_pg_url) as store:
        fill(store)
        keys = [row["key"] for row in shareable_posts(store, DECIDED)]
        assert keys == [
            "telegram:kurd_game_dunkirk:15",
            "telegram:uk_boat_express:503",
            "telegram:kurd_game_dunkirk:16",
        ]
        wanted = ["telegram:kurd_game_dunkirk:16", "telegram:kurd_game_dunkirk:15", "telegram:nobody:1"]
        some = shareable_posts(store, DECIDED, keys=wanted)
        assert [row["key"] for row in some] == [
            "telegram:kurd_game_dunkirk:15",
            "telegram:kurd_game_dunkirk:16",
        ]
        assert all(isinstance(row["entities"], dict) for row in some)
        assert shareable_posts(store, DECIDED, keys=[]) == []
        september = shareable_posts(store, DECIDED, "2026-09-01", "2026-10-01")
        reviewed = {row["key"]: row["review_reason"] for row in september}
        assert reviewed == {"telegram:kurd_game_dunkirk:16": "price and phone"}
        selection = select(store, load_config(config_file(networks={"hotlines": [HOTLINE]})))
        assert HOTLINE not in selection.phones and "+33758214693" in selection.phones


def test_a_merged_network_id_follows_to_the_network_that_absorbed_it(shared):
    from pipeline.intel.networks import refresh
    from vigie.store.networks import save_networks

    config = shared()
    loaded = load_config(config)
    old = "net-0123456789ab"
    with Store(loaded.store_url()) as store:
        (network,) = refresh(store, loaded).networks
        now = "2026-11-30T12:00:00+00:00"
        save_networks(
            store, [{"network_id": old, "first_seen": now, "profile": {}, "members": {}}], {}, [], now
        )
        save_networks(store, [], {old: network.network_id}, [], now)
    followed = share(config, "stix", "--network", old)
    direct = share(config, "stix", "--network", network.network_id)
    assert followed["posts"] == direct["posts"] == 3 and followed["networks"] == 1
    assert Path(followed["path"]).name == f"vigie-all-{network.network_id}.stix.json"


def test_a_hotline_however_written_is_left_out_and_links_match_exactly(shared, config_file):
    config = shared()
    with Store(load_config(config).store_url()) as store:
        key = "telegram:uk_boat_express:503"
        links = ["wa.me/33486517161", "wa.me/3348651716199", "t.me/AlarmPhone"]
        save_analysis(store, analysis(key, phones=["+33758214693", HOTLINE], links=links))
        listed = ["0033 4 86 51 71 61", "https://t.me/alarmphone/"]
        selection = select(store, load_config(config_file(networks={"hotlines": listed})))
    (shared_post,) = [p for p in selection.posts if p.key == key]
    assert shared_post.phones == ["+33758214693"]
    # The hotline's own WhatsApp link and its channel go; another number that merely contains its digits stays.
    assert shared_post.links == ["wa.me/3348651716199"]
