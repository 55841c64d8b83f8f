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
    store: Store,
    channel: str,
    post_id: int,
    text: str,
    day: str | None,
    advert: bool = True,
    review: bool = False,
) -> str:
    store.upsert_posts(
        [
            Post(
                platform="telegram",
                channel=channel,
                post_id=post_id,
                url=f"https://t.me/{channel}/{post_id}",
                text=text,
                published_at=f"{day}T10:00:00+00:00" if day else None,
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


def test_at_a_bar_of_one_a_member_of_two_sources_links_them_one_of_three_does_not(store, tmp_path):
    strict = config(tmp_path, min_weight=1.0)
    add(store, "alpha", 1, "Boat to UK £1,200 WhatsApp +44 7700 900111", "2026-07-01")
    add(store, "beta", 1, "UK game £1,300 call +44 7700 900111", "2026-07-02")
    # +44 7700 900222 is in three sources: 1/(3-1) = 0.5 between each two, below 1.
    add(store, "gamma", 1, "Lorry to UK +44 7700 900222", "2026-07-03")
    add(store, "delta", 1, "Lorry to UK +44 7700 900222", "2026-07-04")
    add(store, "alpha", 2, "Lorry +44 7700 900222", "2026-07-05")
    found = intel.find_networks(store, strict)
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
    found = intel.find_networks(store, strict)
    assert sources(found) == [["alpha", "beta"], ["delta", "gamma"]]
    (link,) = found[1].links
    assert (link.weight, link.via) == (1.0, ["handle:@lorry_delta_uk", "phone:+447700900222"])
    assert found[1].members["handle"] == ["@lorry_delta_uk"]
    # The default bar (0.5) joins them all.
    assert sources(intel.find_networks(store, config(tmp_path))) == [["alpha", "beta", "delta", "gamma"]]
    # A higher bar cuts them all: each pair shares 1.0.
    assert intel.find_networks(store, config(tmp_path, min_weight=1.5)) == []


def test_at_the_default_a_contact_of_three_sources_links_them_one_of_four_needs_more(store, tmp_path):
    assert config(tmp_path).networks.min_weight == 0.5
    for n, channel in enumerate(["alpha", "beta", "gamma"]):
        add(store, channel, 1, "Boat to UK +44 7700 900222", f"2026-07-0{n + 1}")
    (network,) = intel.find_networks(store, config(tmp_path))
    assert sources([network]) == [["alpha", "beta", "gamma"]] and {link.weight for link in network.links} == {
        0.5
    }
    assert intel.find_networks(store, config(tmp_path, min_weight=1.0)) == []
    # A fourth source: 1/3 between each two, below the bar, so nothing links any more.
    add(store, "delta", 1, "Boat to UK +44 7700 900222", "2026-07-04")
    assert intel.find_networks(store, config(tmp_path)) == []
    # A second member shared by two of them (1.0 more) links those two, and only those.
    add(store, "alpha", 2, "Lorry, ask @lorry_delta_uk", "2026-07-05")
    add(store, "delta", 2, "Lorry, ask @lorry_delta_uk", "2026-07-06")
    (network,) = intel.find_networks(store, config(tmp_path))
    assert sources([network]) == [["alpha", "delta"]]
    (link,) = network.links
    assert link.via == ["handle:@lorry_delta_uk", "phone:+447700900222"] and link.weight == 1.3333
    # Two members of the four sources each: 1/3 + 1/3 = 0.67 links all four.
    for n, channel in enumerate(["alpha", "beta", "gamma", "delta"]):
        add(store, channel, 3, "Pay Sarafi Azadi", f"2026-07-1{n}")
    assert sources(intel.find_networks(store, config(tmp_path))) == [["alpha", "beta", "delta", "gamma"]]


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


def test_profile_prices_per_leg_route_and_month(store, tmp_path):
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
    # A price list: each leg its own price, not every price under the first route.
    add(store, "alpha", 3, "🛥️ Izmir → Italy: 6000€ | 🚤 Bodrum → Greece: 2500€ +44 7700 900111", "2026-09-12")
    # No crossing named: its price is kept apart, out of the range.
    add(store, "beta", 3, "Price now £900, ask +44 7700 900111", "2026-09-13")
    # No date: no month to put its price in (not the month it was crawled).
    add(store, "beta", 4, "Boat from Calais to UK £9,000 +44 7700 900111", None)
    (network,) = intel.find_networks(store, cfg)
    assert network.members["payment"] == ["sarafi azadi"]
    assert {link.weight for link in network.links} == {2.0}
    assert network.routes[0] == {
        "origin": "fr",
        "destination": "gb",
        "origin_name": "France",
        "destination_name": "United Kingdom",
        "posts": 4,
    }
    assert {(r["origin"], r["destination"], r["posts"]) for r in network.routes[1:]} == {
        ("tr", "it", 1),
        ("tr", "gr", 1),
    }
    prices = {(p["month"], p["route"]): p for p in network.prices}
    assert set(prices) == {
        ("2026-08", "France → United Kingdom"),
        ("2026-09", "France → United Kingdom"),
        ("2026-09", "Turkey → Italy"),
        ("2026-09", "Turkey → Greece"),
        ("2026-09", intel.UNKNOWN_ROUTE),
    }
    august, september = (
        prices[("2026-08", "France → United Kingdom")],
        prices[("2026-09", "France → United Kingdom")],
    )
    assert (august["median"], august["median_eur"], august["currency"]) == (1200, 1320.0, "GBP")
    assert (september["min"], september["max"], september["median_eur"], september["posts"]) == (
        2000,
        2200,
        2520.0,
        2,
    )
    assert prices[("2026-09", "Turkey → Italy")]["median_eur"] == 6000
    assert prices[("2026-09", "Turkey → Greece")]["median_eur"] == 2500
    assert prices[("2026-09", intel.UNKNOWN_ROUTE)]["median_eur"] == 1080
    assert network.price_range_eur() == (1320.0, 6000.0)
    assert network.first_seen == "2026-08-10T10:00:00+00:00"
    assert network.flagged_posts == 6 and network.languages == {"en": 6}


def test_hotline_forms_are_normalised():
    assert intel.hotline_members(["+33 4 86 51 71 61", "@Alarm_Phone", "https://t.me/AlarmPhone/"]) == {
        ("phone", "+33486517161"),
        ("link", "wa.me/33486517161"),
        ("handle", "@alarm_phone"),
        ("link", "t.me/alarmphone"),
        ("handle", "@alarmphone"),
    }
    # However the configuration writes a number, it is the one posts carry.
    for written in ("0033 4 86 51 71 61", "+33 (0)4 86 51 71 61", "33486517161", "+33-4-86-51-71-61"):
        assert ("phone", "+33486517161") in intel.hotline_members([written]), written
    assert intel.hotline_members(["https://wa.me/33486517161"]) == {
        ("link", "wa.me/33486517161"),
        ("phone", "+33486517161"),
    }


def test_a_hotline_written_with_00_does_not_link(store, tmp_path):
    add(store, "alpha", 1, "Boat to UK, in danger call Alarm Phone +33 4 86 51 71 61", "2026-07-01")
    add(store, "beta", 1, "Boat to Greece, Alarm Phone wa.me/33486517161", "2026-07-02")
    assert sources(intel.find_networks(store, config(tmp_path))) == [["alpha", "beta"]]
    assert intel.find_networks(store, config(tmp_path, hotlines=["0033 4 86 51 71 61"])) == []


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


def test_when_networks_merge_the_elder_keeps_its_id_even_if_the_younger_brings_more(store, tmp_path):
    cfg = config(tmp_path)
    add(store, "alpha", 1, "Boat to UK +44 7700 900111", "2026-07-01")
    add(store, "beta", 1, "UK game +44 7700 900111", "2026-07-02")
    (elder,) = intel.refresh(store, cfg).networks
    for n, channel in enumerate(["gamma", "delta", "epsilon"]):
        add(store, channel, 1, "Lorry to Germany @lorry_de_ok", f"2026-08-0{n + 1}")
    younger = next(n for n in intel.refresh(store, cfg).networks if n.network_id != elder.network_id)
    assert sorted(younger.sources) == ["telegram:delta", "telegram:epsilon", "telegram:gamma"]
    # beta and gamma share a number: one network, with three sources of the younger, two of the elder.
    add(store, "beta", 2, "Call +44 7700 900333", "2026-09-01")
    add(store, "gamma", 2, "Call +44 7700 900333", "2026-09-02")
    merged = intel.refresh(store, cfg)
    (survivor,) = merged.networks
    assert len(survivor.sources) == 5
    assert survivor.network_id == elder.network_id
    assert merged.merged == [(younger.network_id, elder.network_id)] and merged.new == []
    assert intel.merged_ids(store) == {younger.network_id: elder.network_id}
    assert [n.network_id for n in intel.stored_networks(store)] == [elder.network_id]


def _pairwise_groups(images: list[dict[str, Any]], distance: int) -> dict[str, set[str]]:
    """Every pair compared: what `image_groups` must agree with."""
    parent = list(range(len(images)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    values = [int(i["pdq"], 16) for i in images]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            if bin(values[i] ^ values[j]).count("1") <= distance:
                a, b = root(i), root(j)
                parent[max(a, b)] = min(a, b)
    groups: dict[str, set[str]] = {}
    for i, image in enumerate(images):
        groups.setdefault(images[root(i)]["sha256"], set()).add(image["post_key"])
    return groups


@pytest.mark.parametrize("distance", [0, 5, 22, 31])
def test_image_groups_find_every_pair_within_the_distance(distance):
    import random

    rng = random.Random(distance)
    images: list[dict[str, Any]] = []

    def image(value: int) -> None:
        n = len(images)
        images.append({"post_key": f"telegram:c:{n}", "sha256": f"{n:064x}", "pdq": f"{value:064x}"})

    for _ in range(60):
        base = rng.getrandbits(256)
        image(base)
        for _ in range(rng.randrange(4)):
            # A copy exactly at the distance, or just beyond it, or a chain of small steps.
            flips = rng.choice([distance, distance + 1, max(distance // 2, 0)])
            value = base
            for bit in rng.sample(range(256), flips):
                value ^= 1 << bit
            image(value)
            if rng.random() < 0.3:
                base = value
    image(int(images[0]["pdq"], 16))  # a repost: the same hash
    rng.shuffle(images)
    found = intel.image_groups(images, distance)
    assert found == _pairwise_groups(images, distance)
    assert any(len(keys) > 2 for keys in found.values()) and any(len(keys) == 1 for keys in found.values())


def test_surviving_id_follows_a_chain_of_merges_and_stops_on_a_cycle():
    assert intel.surviving_id({}, "net-a") == "net-a"
    assert intel.surviving_id({"net-a": "net-b", "net-b": "net-c"}, "net-a") == "net-c"
    assert intel.surviving_id({"net-a": "net-b", "net-b": "net-c"}, "net-c") == "net-c"
    # Stored ids pointing round in a circle must not hang a reader.
    assert intel.surviving_id({"net-a": "net-b", "net-b": "net-a"}, "net-a") == "net-b"
    assert intel.surviving_id({"net-a": "net-a"}, "net-a") == "net-a"


def test_route_words_name_countries_else_give_codes():
    named = {
        "origin": "fr",
        "destination": "gb",
        "origin_name": "France",
        "destination_name": "United Kingdom",
    }
    assert intel.route_words(named) == "France → United Kingdom"
    assert intel.route_words({"origin": "xx", "destination": None}) == "xx → ?"
    assert intel.route_words({"destination": "gb"}, unknown="unknown") == "unknown → gb"
