"""The linking rule, ids across refreshes, and profiles, on store rows written as the
pipeline writes them (entities from the real extraction)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from pipeline.enrich.entities import extract
from pipeline.intel import networks as intel
from tests.support.rows import advert_analysis
from vigie.config_file import parse_config
from vigie.records import Post, post_key
from vigie.store import Store
from vigie.store.analysis import save_analysis


def config(tmp_path, **networks: Any) -> Any:
    return parse_config({"data_dir": str(tmp_path), "networks": networks})


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "vigie.db") as s:
        yield s


def add(
    store: Store, channel: str, post_id: int, text: str, day: str, advert: bool = True, review: bool = False
) -> str:
    store.upsert_posts(
        [
            Post(
                platform="telegram",
                channel=channel,
                post_id=post_id,
                url=f"https://t.me/{channel}/{post_id}",
                text=text,
                published_at=f"{day}T10:00:00+00:00",
                payload_sha256=hashlib.sha256(f"{channel}{post_id}".encode()).hexdigest(),
                captured_at="2026-12-01T00:00:00+00:00",
            )
        ]
    )
    key = post_key("telegram", channel, post_id)
    row = advert_analysis(key, None, "2026-12-01T00:00:00+00:00")
    row["is_advert"] = int(advert)
    row["needs_review"] = int(review)
    row["entities"] = json.dumps(extract(text, "en").to_json())
    save_analysis(store, row)
    return key


def sources(networks: list[intel.Network]) -> list[list[str]]:
    return [[s.split(":", 1)[1] for s in n.sources] for n in networks]


def test_a_member_of_two_sources_links_them_one_of_three_does_not(store, tmp_path):
    add(store, "alpha", 1, "Boat to UK £1,200 WhatsApp +44 7700 900111", "2026-07-01")
    add(store, "beta", 1, "UK game £1,300 call +44 7700 900111", "2026-07-02")
    # +44 7700 900222 is in three sources: 1/(3-1) = 0.5 between each two, below min_weight 1.
    add(store, "gamma", 1, "Lorry to UK +44 7700 900222", "2026-07-03")
    add(store, "delta", 1, "Lorry to UK +44 7700 900222", "2026-07-04")
    add(store, "alpha", 2, "Lorry +44 7700 900222", "2026-07-05")
    found = intel.find_networks(store, config(tmp_path))
    assert sources(found) == [["alpha", "beta"]]
    (link,) = found[0].links
    assert (link.a, link.b, link.via, link.weight) == (
        "telegram:alpha",
        "telegram:beta",
        ["phone:+447700900111"],
        1.0,
    )
    # Two members of three sources each weigh 0.5 + 0.5 between gamma and delta: enough;
    # alpha and beta share one of them each with gamma and delta (0.5): not enough.
    add(store, "gamma", 2, "Contact @lorry_delta_uk", "2026-07-06")
    add(store, "delta", 2, "Contact @lorry_delta_uk", "2026-07-07")
    add(store, "beta", 2, "Contact @lorry_delta_uk", "2026-07-08")
    found = intel.find_networks(store, config(tmp_path))
    assert sources(found) == [["alpha", "beta"], ["delta", "gamma"]]
    (link,) = found[1].links
    assert (link.weight, link.via) == (1.0, ["handle:@lorry_delta_uk", "phone:+447700900222"])
    assert found[1].members["handle"] == ["@lorry_delta_uk"]
    # A lower bar joins them all.
    assert sources(intel.find_networks(store, config(tmp_path, min_weight=0.5))) == [
        ["alpha", "beta", "delta", "gamma"]
    ]
    # A higher bar cuts them all: each pair shares 1.0.
    assert intel.find_networks(store, config(tmp_path, min_weight=1.5)) == []


def test_five_sources_weigh_a_quarter_each(store, tmp_path):
    for n, channel in enumerate(["s1", "s2", "s3", "s4", "s5"]):
        add(store, channel, 1, "Boat to Italy +90 555 000 0001", f"2026-07-0{n + 1}")
    assert intel.find_networks(store, config(tmp_path)) == []
    (network,) = intel.find_networks(store, config(tmp_path, min_weight=0.25))
    assert len(network.sources) == 5 and {link.weight for link in network.links} == {0.25}


def test_hotlines_and_too_common_contacts_never_link(store, tmp_path):
    add(store, "alpha", 1, "Boat to UK, in danger call Alarm Phone +33 4 86 51 71 61", "2026-07-01")
    add(store, "beta", 1, "Boat to Greece, Alarm Phone: +33486517161", "2026-07-02")
    assert sources(intel.find_networks(store, config(tmp_path))) == [["alpha", "beta"]]
    assert intel.find_networks(store, config(tmp_path, hotlines=["+33 4 86 51 71 61"])) == []
    # The same number shared by three sources, when two is the most a contact may be in.
    add(store, "gamma", 1, "Boat +33 4 86 51 71 61", "2026-07-03")
    assert intel.find_networks(store, config(tmp_path, max_sources_per_contact=2)) == []


def test_only_flagged_posts_count(store, tmp_path):
    from pipeline.refer.review import decide

    add(store, "alpha", 1, "Boat to UK +44 7700 900111", "2026-07-01")
    unsure = add(store, "beta", 1, "Boat soon, ask +44 7700 900111", "2026-07-02", advert=False, review=True)
    assert intel.find_networks(store, config(tmp_path)) == []
    decide(store, unsure, "confirmed", "an advert after all", "ana")
    assert sources(intel.find_networks(store, config(tmp_path))) == [["alpha", "beta"]]
    rejected = add(store, "gamma", 1, "Boat +44 7700 900111", "2026-07-03")
    decide(store, rejected, "rejected", "an NGO post", "ana")
    assert sources(intel.find_networks(store, config(tmp_path))) == [["alpha", "beta"]]


def test_ids_are_stable_joins_and_merges(store, tmp_path):
    cfg = config(tmp_path)
    add(store, "beta", 1, "Boat to UK +44 7700 900111", "2026-07-02")
    add(store, "alpha", 1, "UK game +44 7700 900111", "2026-07-01")
    first = intel.refresh(store, cfg)
    (network,) = first.networks
    # The id comes from the earliest source by first flagged post, not by name.
    assert network.network_id == "net-" + hashlib.sha256(b"telegram:alpha").hexdigest()[:12]
    assert [n.network_id for n in first.new] == [network.network_id] and first.joined == []
    again = intel.refresh(store, cfg)
    assert (again.new, again.joined, again.merged) == ([], [], [])
    assert [n.to_json() for n in intel.stored_networks(store)] == [n.to_json() for n in again.networks]

    # A second network, elsewhere; then a source bridging both: the elder keeps its id.
    add(store, "delta", 1, "Lorry to Germany @lorry_de_ok", "2026-08-01")
    add(store, "gamma", 1, "Lorry @lorry_de_ok", "2026-08-02")
    second = intel.refresh(store, cfg)
    younger = next(n.network_id for n in second.new)
    assert second.joined == [] and len(second.networks) == 2
    add(store, "epsilon", 1, "Boat +44 7700 900111 or lorry @lorry_de_ok", "2026-09-01")
    # +44 7700 900111 and @lorry_de_ok are now in three sources each: 0.5 per pair. A second
    # shared number makes epsilon a full member of the first network, and of the second.
    add(store, "epsilon", 2, "Call +44 7700 900333 or +49 1512 3456789", "2026-09-02")
    add(store, "alpha", 2, "Call +44 7700 900333", "2026-09-03")
    add(store, "gamma", 2, "Call +49 1512 3456789", "2026-09-04")
    merged = intel.refresh(store, cfg)
    (survivor,) = merged.networks
    assert survivor.network_id == network.network_id
    assert merged.merged == [(younger, network.network_id)] and merged.new == []
    joined = {(kind, value) for _, kind, value in merged.joined}
    assert ("source", "telegram:epsilon") in joined and ("phone", "+4915123456789") in joined
    assert ("source", "telegram:gamma") not in joined  # it came with the absorbed network
    assert survivor.joined_at["source:telegram:alpha"] == "2026-07-01T10:00:00+00:00"
    assert intel.merged_ids(store) == {younger: network.network_id}
    assert [n.network_id for n in intel.stored_networks(store)] == [network.network_id]


def test_profile_prices_routes_and_rates(store, tmp_path):
    cfg = parse_config(
        {
            "data_dir": str(tmp_path),
            "trends": {
                "eur_rates": [
                    {"currency": "GBP", "since": "2026-01-01", "eur": 1.10},
                    {"currency": "GBP", "since": "2026-09-01", "eur": 1.20},
                ]
            },
        }
    )
    add(
        store,
        "alpha",
        1,
        "Boat from Dunkirk to UK £1,200, money with Sarafi Azadi +44 7700 900111",
        "2026-08-10",
    )
    add(store, "beta", 1, "Boat from Calais to UK £2,200 pay at sarafi azadi", "2026-09-10")
    add(store, "beta", 2, "Boat from Calais to UK £2,000 +44 7700 900111", "2026-09-11")
    (network,) = intel.find_networks(store, cfg)
    assert network.members["payment"] == ["sarafi azadi"]
    assert {link.weight for link in network.links} == {2.0}
    assert network.routes[0]["origin"] == "fr" and network.routes[0]["destination"] == "gb"
    assert network.routes[0]["destination_name"] == "United Kingdom"
    prices = {(p["month"], p["route"]): p for p in network.prices}
    august, september = prices[("2026-08", "fr → gb")], prices[("2026-09", "fr → gb")]
    assert (august["median"], august["median_eur"]) == (1200, 1320.0)
    assert (september["min"], september["max"], september["median_eur"], september["posts"]) == (
        2000,
        2200,
        2520.0,
        2,
    )
    assert network.first_seen == "2026-08-10T10:00:00+00:00" and network.last_seen.startswith("2026-09-11")
    assert network.flagged_posts == 3 and network.languages == {"en": 3}


def test_hotline_forms_are_normalised():
    assert intel.hotline_members(["+33 4 86 51 71 61", "@Alarm_Phone", "https://t.me/AlarmPhone"]) == {
        ("phone", "+33486517161"),
        ("handle", "@alarm_phone"),
        ("link", "t.me/AlarmPhone"),
        ("handle", "@alarmphone"),
    }


def test_hostile_member_values_print_safely(store, tmp_path):
    from click.testing import CliRunner

    from vigie.cli.main import cli

    evil = "@x\x1b[2J\u202eevil"
    for channel, day in (("alpha", "2026-07-01"), ("beta", "2026-07-02")):
        key = add(store, channel, 1, "Boat to UK +44 7700 900111", day)
        row = advert_analysis(key, None, "2026-12-01T00:00:00+00:00")
        row["entities"] = json.dumps(
            {"phones": ["+447700900111"], "handles": [evil], "payments": ["sarafi \x07\u202eazadi"]}
        )
        save_analysis(store, row)
    path = tmp_path / "vigie.yaml"
    path.write_text(json.dumps({"data_dir": str(tmp_path)}), encoding="utf-8")
    (network,) = intel.find_networks(store, config(tmp_path))
    for args in ([], [network.network_id], ["--json"]):
        result = CliRunner().invoke(cli, ["--config", str(path), "networks", *args])
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\u202e" not in result.output and "\x07" not in result.output
    assert "evil" in result.output
