"""Trends from flagged posts: prices by route and month in EUR at dated rates, each leg of a
price list on its own route, rising terms against a baseline, new routes; the periods they
take; and the report's networks table from a network built here."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from pipeline.enrich.entities import extract
from pipeline.intel.networks import Link, Network
from pipeline.intel.trend_terms import TermCounts, rising_terms, terms_of
from pipeline.intel.trends import Post, country_routes, posts_from_rows, route_months, trends_of
from pipeline.report import collect, render
from pipeline.report.period import bounds, check_span, months_before
from pipeline.report.trend_figures import network_rows
from vigie.config import VigieConfig
from vigie.records import Post as StoredPost
from vigie.store import DECIDED, Store
from vigie.store.analysis import save_analysis
from vigie.store.trends import flagged_posts_between

HOSTILE = '<img src=x onerror="alert(1)">'


def post(key: str, day: str, text: str, source: str = "telegram:a") -> Post:
    return Post(
        key=key,
        source=source,
        published=datetime.fromisoformat(day + "T12:00:00+00:00"),
        lang="en",
        text=text,
        entities=extract(text, "en").to_json(),
    )


def config(**trends: object) -> VigieConfig:
    return VigieConfig.model_validate({"trends": trends}) if trends else VigieConfig()


def test_medians_per_route_and_month_in_eur_with_changes():
    posts = [
        post("a", "2026-07-03", "Boat from Dunkirk to UK £1,200"),
        post("b", "2026-07-09", "Game from Calais to UK £1,000"),
        post("c", "2026-07-20", "Game from Calais to UK £1,400"),
        post("d", "2026-09-02", "Game from Calais to UK £2,200"),
        post("e", "2026-09-05", "Lorry from Calais to UK, price on request"),
    ]
    rows = {r.month: r for r in route_months(posts, config())}
    assert set(rows) == {"2026-07", "2026-09"} and rows["2026-07"].route == "France → United Kingdom"
    july, september = rows["2026-07"], rows["2026-09"]
    assert (july.posts, july.priced, july.median_in_currency, july.currency) == (3, 3, 1200.0, "GBP")
    assert july.median_eur == pytest.approx(1200 * 1.17) and july.min_eur == pytest.approx(1000 * 1.17)
    assert (september.posts, september.priced) == (2, 1)
    assert september.change_vs_previous == pytest.approx(2200 / 1200 - 1, abs=1e-4)
    assert september.change_vs_first == september.change_vs_previous
    assert july.transport.get("boat") == 1
    assert september.transport.get("truck") == 1


def test_a_rate_applies_from_its_date_on():
    rates = [
        {"currency": "GBP", "since": "2026-01-01", "eur": 1.10},
        {"currency": "GBP", "since": "2026-08-01", "eur": 1.20},
    ]
    posts = [
        post("a", "2026-07-31", "Game from Calais to UK £1,000"),
        post("b", "2026-08-01", "Game from Calais to UK £1,000"),
    ]
    rows = {r.month: r for r in route_months(posts, config(eur_rates=rates))}
    assert rows["2026-07"].median_eur == pytest.approx(1100) and rows["2026-08"].median_eur == pytest.approx(
        1200
    )


def test_a_currency_without_a_rate_is_counted_but_not_priced():
    rows = route_months(
        [post("a", "2026-07-01", "Boat from Libya to Italy 3000 nakfa")], config(eur_rates=[])
    )
    assert (rows[0].posts, rows[0].priced, rows[0].median_eur) == (1, 0, None)


def test_each_leg_of_a_price_list_prices_its_own_route():
    p = post("a", "2026-11-21", "🛥️ Izmir → Italy: 6000€ | 🚤 Bodrum → Greece: 2500€ | 🇬🇧 Dunkirk → UK: 2000£")
    routes = {key: prices[0]["amount"] for key, prices in country_routes(p)}
    assert routes == {("tr", "it"): 6000.0, ("tr", "gr"): 2500.0, ("fr", "gb"): 2000.0}
    medians = {r.route: r.median_in_currency for r in route_months([p], config())}
    assert medians == {"Turkey → Italy": 6000.0, "Turkey → Greece": 2500.0, "France → United Kingdom": 2000.0}


def test_rows_stored_before_legs_are_read_from_origin_and_destination():
    rows = posts_from_rows(
        [
            {
                "key": "k",
                "platform": "telegram",
                "channel": "a",
                "published_at": "2026-09-01T10:00:00Z",
                "lang": "ar",
                "text": "",
                "entities": json.dumps(
                    {
                        "origin": "ly-zuwara",
                        "destination": "it",
                        "prices": [{"amount": 2500, "currency": "EUR"}],
                    }
                ),
            },
            {
                "key": "undated",
                "platform": "telegram",
                "channel": "a",
                "published_at": None,
                "entities": "{}",
            },
        ]
    )
    assert [p.key for p in rows] == ["k"]
    assert country_routes(rows[0]) == [(("ly", "it"), [{"amount": 2500, "currency": "EUR"}])]


def test_a_trip_inside_one_country_is_no_route():
    assert country_routes(post("a", "2026-09-01", "From Calais to Dunkirk by car")) == []


BASELINE_TEXTS = [
    "UK game from Dunkirk, new boat, £1,300 WhatsApp +33 7 58 21 46 93",
    "Game to UK this week, boat from Calais £1,300 @dunkirk_game",
    "Boat game UK, pay after arrival, £1,200",
    "New boat from Gravelines, UK game tonight",
]
PERIOD_TEXTS = [
    "🚕 TAXI GAME to UK, the boat picks you up, £2,500 https://t.me/x",
    "Taxi game from Gravelines this week £2,500",
    "Taxi game Sunday 🚕 £2,500, boat game UK",
    "UK game from Dunkirk, boat £2,500 +44 7700 900412",
]


def test_a_new_phrase_rises_and_generic_words_do_not():
    baseline = TermCounts.of([(f"b{i}", f"s{i % 2}", t) for i, t in enumerate(BASELINE_TEXTS)])
    period = TermCounts.of([(f"p{i}", f"s{i % 2}", t) for i, t in enumerate(PERIOD_TEXTS)])
    found = rising_terms(period, baseline, min_posts=3)
    assert [t.term for t in found] == ["taxi game"]  # "taxi" alone is in the same posts
    taxi = found[0]
    assert (taxi.posts, taxi.baseline_posts, taxi.sources, taxi.example_key) == (3, 0, 2, "p0")
    assert rising_terms(period, baseline, min_posts=4) == []


def test_terms_leave_out_numbers_contacts_links_stop_words_and_places():
    terms = terms_of(
        "Taxi game to UK from Dunkirk 2500 £ +33 7 58 21 46 93 @dunkirk_taxi_game https://t.me/a/1"
    )
    assert terms == {"taxi", "game", "taxi game"}


def test_new_terms_and_routes_need_a_baseline():
    period = [post("p", "2026-11-18", "NEW ROUTE lorry from Belgium to Ireland €4,000")]
    baseline = [post("b", "2026-10-01", "Boat from Calais to UK £2,500")]
    found = trends_of("2026-11", period, baseline, config(min_route_posts=1))
    assert [(r.route, r.posts, r.median_eur) for r in found.new_routes] == [("Belgium → Ireland", 1, 4000.0)]
    # By default a route needs two posts to be listed as new.
    assert trends_of("2026-11", period, baseline, config()).new_routes == []
    twice = [*period, post("q", "2026-11-20", "Lorry Belgium → Ireland, €4,200", source="telegram:b")]
    (route,) = trends_of("2026-11", twice, baseline, config()).new_routes
    assert (route.route, route.posts, route.sources, route.median_eur) == ("Belgium → Ireland", 2, 2, 4100.0)
    assert found.baseline_start == "2026-08-01" and (found.start, found.end) == ("2026-11-01", "2026-12-01")
    alone = trends_of("2026-11", period, [], config())
    assert alone.new_routes == [] and alone.new_terms == [] and len(alone.routes) == 1
    known = trends_of("2026-11", period, [post("b", "2026-09-01", "Belgium to Ireland by lorry")], config())
    assert known.new_routes == []


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("2026", date(2026, 1, 1), date(2027, 1, 1)),
        ("2026-Q3", date(2026, 7, 1), date(2026, 10, 1)),
        ("2026-q4", date(2026, 10, 1), date(2027, 1, 1)),
        ("2026-12", date(2026, 12, 1), date(2027, 1, 1)),
        ("2026-02-28", date(2026, 2, 28), date(2026, 3, 1)),
    ],
)
def test_periods(period, start, end):
    assert bounds(period) == (start, end)


@pytest.mark.parametrize(
    ("period", "message"),
    [
        ("2026-Q5", "period must look like 2026, 2026-Q3, 2026-09 or 2026-09-05, not '2026-Q5'"),
        ("2026-13", "period must look like 2026, 2026-Q3, 2026-09 or 2026-09-05, not '2026-13'"),
        ("2026-02-30", "period '2026-02-30': no such day"),
        ("", "a period is needed: 2026, 2026-Q3, 2026-09 or 2026-09-05"),
    ],
)
def test_bad_periods(period, message):
    with pytest.raises(ValueError) as excinfo:
        check_span(period)
    assert str(excinfo.value) == message


def test_months_before_crosses_years():
    assert months_before(date(2026, 2, 1), 3) == date(2025, 11, 1)


def _network(network_id: str, source: str) -> Network:
    return Network(
        network_id=network_id,
        first_seen="2026-07-04T18:20:00+00:00",
        last_seen="2026-11-29T20:15:00+00:00",
        sources=[source, "telegram:uk_boat_express"],
        members={"phone": ["+33758214693"], "handle": ["dunkirk_taxi_game"], "payment": ["sarafi azadi"]},
        links=[Link(a=source, b="telegram:uk_boat_express", via=["phone:+33758214693"], weight=1.0)],
        post_keys=["telegram:kurd_game_dunkirk:11"],
        flagged_posts=29,
        languages={"kmr": 15, "en": 12},
        routes=[
            {
                "origin": "fr",
                "destination": "gb",
                "origin_name": "France",
                "destination_name": "United Kingdom",
                "posts": 20,
            },
            {
                "origin": "be",
                "destination": "ie",
                "origin_name": "Belgium",
                "destination_name": "Ireland",
                "posts": 2,
            },
        ],
        prices=[{"month": "2026-07", "median_eur": 1404.0}, {"month": "2026-10", "median_eur": 2925.0}],
        transport={"boat": 20},
        guarantees={},
        payment_terms={},
        referral_outcomes={},
    )


def test_the_networks_table_lists_a_network_escaped(tmp_path):
    rows = network_rows([_network("net-0123456789ab", "telegram:" + HOSTILE)])
    assert rows[0].routes == ["France → United Kingdom", "Belgium → Ireland"]
    assert rows[0].price_range_eur == (1404.0, 2925.0) and rows[0].first_seen == "2026-07-04"
    with Store(tmp_path / "empty.db") as store:
        figures = collect(store)
    page = render(replace(figures, networks=rows), "Networks")
    assert "net-0123456789ab" in page and "France → United Kingdom; Belgium → Ireland" in page
    assert HOSTILE not in page and "&lt;img src=x" in page
    assert "No networks" in render(replace(figures, networks=[]), "None")
    merged = replace(_network("net-aaaaaaaaaaaa", "telegram:b"), merged_into="net-0123456789ab")
    assert network_rows([merged]) == []


def test_the_store_gives_flagged_posts_of_a_span_in_order(tmp_path):
    with Store(tmp_path / "vigie.db") as store:
        fill_span(store)
        rows = flagged_posts_between(store, "2026-09-01", "2026-10-01", DECIDED)
    assert [r["key"] for r in rows] == ["telegram:a:2", "telegram:a:3"]
    assert json.loads(rows[0]["entities"])["origin"] == "fr-calais" and rows[0]["lang"] == "en"


def fill_span(store: Store) -> None:
    """Four posts: August, two in September (one at the last second), October; one September
    post is no advert."""
    days = {
        1: "2026-08-31T23:59:59+00:00",
        2: "2026-09-01T00:00:00+00:00",
        3: "2026-09-30T23:59:59+00:00",
        4: "2026-10-01T00:00:00+00:00",
        5: "2026-09-10T00:00:00+00:00",
    }
    store.upsert_posts(
        [
            StoredPost("telegram", "a", i, f"https://t.me/a/{i}", "Boat from Calais to UK", day)
            for i, day in days.items()
        ]
    )
    now = datetime.now(UTC).isoformat()
    for i in days:
        save_analysis(
            store,
            {
                "post_key": f"telegram:a:{i}",
                "content_sha256": "",
                "model_id": "test",
                "lang": "en",
                "lang_confidence": 0.9,
                "score": 0.9 if i != 5 else 0.1,
                "is_advert": int(i != 5),
                "needs_review": 0,
                "cues": "[]",
                "entities": json.dumps(extract("Boat from Calais to UK", "en").to_json()),
                "cluster_id": None,
                "processed_at": now,
            },
        )


def test_routes_naming_one_end_are_rows_of_their_own_and_tiny_prices_are_not_prices():
    posts = [
        post("a", "2026-11-03", "Taxi game to UK £2,500"),
        post("b", "2026-11-05", "Boat from Calais to UK £2,200"),
        post("c", "2026-11-07", "Tunisia to Italy, deposit 3000 IQD, WhatsApp only"),
    ]
    rows = {r.route: r for r in route_months(posts, config())}
    assert set(rows) == {"unknown → United Kingdom", "France → United Kingdom", "Tunisia → Italy"}
    assert rows["unknown → United Kingdom"].median_in_currency == 2500.0
    assert rows["France → United Kingdom"].median_in_currency == 2200.0
    assert rows["Tunisia → Italy"].median_eur is None and rows["Tunisia → Italy"].posts == 1


def test_the_first_month_of_a_period_is_compared_with_the_baseline():
    baseline = [post("b", "2026-10-10", "Boat from Calais to UK £2,000")]
    period = [post("p", "2026-11-10", "Boat from Calais to UK £2,500")]
    (row,) = trends_of("2026-11", period, baseline, config()).routes
    assert row.change_vs_previous == 0.25 and row.change_vs_first is None
