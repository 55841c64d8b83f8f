"""`vigie trends` and the report's trend sections on the sample channels of the planted
network, through the real pipeline: the price rise France → United Kingdom, the new code
word "taxi game" and the new route Belgium → Ireland."""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from crawlers.telegram.mirror import Mirror, load_channels
from tests.conftest import run_vigie
from vigie.store import Store

CHANNELS = ("kurd_game_dunkirk", "uk_boat_express", "rebaz_safar_uk")
# Read independently of the extraction under test: a French departure point, the UK, and a
# price in pounds, as these channels write them.
FRENCH = re.compile(r"dunkirk|calais|gravelines|fransa|france|دنكيرك|كاليه|🇫🇷", re.IGNORECASE)
BRITISH = re.compile(r"\buk\b|brîtanya|îngilîstan|britain|بريطانيا|بەریتانیا|🇬🇧", re.IGNORECASE)
POUNDS = re.compile(r"£\s?(\d[\d,]*)|(\d[\d,]*)\s?(?:£|باوند|پاوەند)")
GBP_EUR = 1.17  # the default configuration's rate


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory, shipped: Any) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("trends")
    channels = {name: channel for name, channel in load_channels().items() if name in CHANNELS}
    mirror = Mirror(channels).start()
    try:
        config = root / "vigie.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "data_dir": str(root / "data"),
                    "crawl": {"download_delay": 0, "autothrottle": False, "backoff_base": 0.2},
                    "telegram": {"base_url": mirror.url},
                    "sources": [{"platform": "telegram", "channel": name} for name in CHANNELS],
                }
            ),
            encoding="utf-8",
        )
        run_vigie("run", config=config, check=True, timeout=900)
        yield config, root / "data" / "vigie.db"
    finally:
        mirror.stop()


def _flagged_keys(db: Path) -> set[str]:
    with Store(db, read_only=True) as store, store.reading() as c:
        return {row[0] for row in c.exec_driver_sql("SELECT post_key FROM analysis WHERE is_advert = 1")}


def expected_medians(flagged: set[str]) -> dict[str, float]:
    """Median pound price of flagged France → UK adverts per month, from the sample files."""
    by_month: dict[str, list[float]] = defaultdict(list)
    for name, channel in load_channels().items():
        if name not in CHANNELS:
            continue
        for post in channel["posts"]:
            text = post["text"]
            if f"telegram:{name}:{post['id']}" not in flagged or not (
                FRENCH.search(text) and BRITISH.search(text)
            ):
                continue
            price = POUNDS.search(text)
            if price:
                by_month[post["date"][:7]].append(float((price.group(1) or price.group(2)).replace(",", "")))
    return {month: statistics.median(values) for month, values in by_month.items()}


def trends_json(config: Path, period: str) -> dict[str, Any]:
    return json.loads(run_vigie("trends", "--period", period, "--json", config=config, check=True).stdout)


@pytest.mark.slow
def test_prices_by_route_show_the_planted_rise(planted):
    config, db = planted
    expected = expected_medians(_flagged_keys(db))
    assert expected["2026-07"] == 1200 and expected["2026-09"] > expected["2026-07"]
    result = trends_json(config, "2026-Q3")
    france_uk = {r["month"]: r for r in result["routes"] if r["route"] == "France → United Kingdom"}
    assert set(france_uk) == {"2026-07", "2026-08", "2026-09"}
    for month, median in expected.items():
        if month in france_uk:
            row = france_uk[month]
            assert row["currency"] == "GBP" and row["median_in_currency"] == median, month
            assert row["median_eur"] == pytest.approx(median * GBP_EUR), month
    july, september = france_uk["2026-07"], france_uk["2026-09"]
    assert september["change_vs_first"] == pytest.approx(
        (september["median_eur"] - july["median_eur"]) / july["median_eur"], abs=1e-4
    )
    assert july["change_vs_previous"] is None and "boat" in september["transport"]
    assert september["payment_terms"] >= 1 and france_uk["2026-08"]["payment_offices"]  # Sarafi Azadi
    # The quarter has no flagged month before it: nothing to call new.
    assert result["baseline_posts"] == 0 and result["new_terms"] == [] and result["new_routes"] == []


@pytest.mark.slow
def test_november_brings_a_new_code_word_and_a_new_route(planted):
    config, _ = planted
    result = trends_json(config, "2026-11")
    assert result["baseline_start"] == "2026-08-01" and result["baseline_posts"] > 0
    terms = {t["term"]: t for t in result["new_terms"]}
    assert "taxi game" in terms
    taxi = terms["taxi game"]
    assert taxi["baseline_posts"] == 0 and taxi["sources"] == 2 and taxi["posts"] >= 3
    assert taxi["example_key"].startswith(("telegram:kurd_game_dunkirk:", "telegram:uk_boat_express:"))
    generic = {"game", "boat", "price", "whatsapp", "biha", "uk", "pere"}
    assert not generic & set(terms), terms
    routes = {r["route"]: r for r in result["new_routes"]}
    assert routes["Belgium → Ireland"]["posts"] == 2 and routes["Belgium → Ireland"]["median_eur"] == 4000
    assert "France → United Kingdom" not in routes

    table = run_vigie("trends", "--period", "2026-11", config=config, check=True).stdout
    assert "taxi game" in table and "Belgium → Ireland" in table and "New terms" in table


@pytest.mark.slow
def test_the_report_has_the_trend_sections(planted, tmp_path):
    config, _ = planted
    out = tmp_path / "report.html"
    run_vigie("report", "--out", str(out), "--period", "2026-11", config=config, check=True)
    page = out.read_text(encoding="utf-8")
    for heading in ("Prices by route", "Transport and terms", "New terms", "New routes", "Networks"):
        assert heading in page, heading
    assert 'data-chart="price_trends"' in page and "taxi game" in page and "Belgium → Ireland" in page


def test_a_bad_period_is_one_clear_line(tmp_path):
    config = tmp_path / "vigie.yaml"
    config.write_text(f"data_dir: {json.dumps(str(tmp_path))}\n", encoding="utf-8")
    result = run_vigie("trends", "--period", "2026-Q5", config=config)
    assert result.returncode == 2
    assert "2026, 2026-Q3, 2026-09 or 2026-09-05" in result.stderr and "Traceback" not in result.stderr


def test_help():
    result = run_vigie("trends", "--help", check=True)
    assert "--period" in result.stdout and "2026-Q3" in result.stdout and "--json" in result.stdout


@pytest.mark.postgres
def test_the_span_query_on_postgresql(fresh_pg_url):
    from tests.unit.test_trends import fill_span
    from vigie.store import DECIDED
    from vigie.store.trends import flagged_posts_between

    with Store(fresh_pg_url) as store:
        fill_span(store)
        rows = flagged_posts_between(store, "2026-09-01", "2026-10-01", DECIDED)
        everything = flagged_posts_between(store, "2026-01-01", "2027-01-01", DECIDED)
    assert [r["key"] for r in rows] == ["telegram:a:2", "telegram:a:3"]
    assert [r["key"] for r in everything] == [f"telegram:a:{i}" for i in (1, 2, 3, 4)]
    assert json.loads(rows[0]["entities"])["legs"][0]["destination"] == "gb"


@pytest.mark.slow
def test_posts_an_analyst_rejected_leave_the_trends(planted, tmp_path):
    import shutil

    from pipeline.refer.review import decide

    config, db = planted
    copy = tmp_path / "vigie.db"
    shutil.copy(db, copy)
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    settings["data_dir"] = str(tmp_path)
    rejecting = tmp_path / "vigie.yaml"
    rejecting.write_text(yaml.safe_dump(settings), encoding="utf-8")
    assert "taxi game" in {t["term"] for t in trends_json(rejecting, "2026-11")["new_terms"]}
    with Store(copy) as store, store.reading() as c:
        keys = [
            row[0]
            for row in c.exec_driver_sql(
                "SELECT posts.key FROM posts JOIN analysis ON analysis.post_key = posts.key"
                " WHERE analysis.is_advert = 1 AND lower(posts.text) LIKE '%taxi game%'"
            )
        ]
    assert len(keys) >= 3
    with Store(copy) as store:
        for key in keys:
            decide(store, key, "rejected", "a journalist quoting adverts", "ana")
    after = trends_json(rejecting, "2026-11")
    assert "taxi game" not in {t["term"] for t in after["new_terms"]}


def test_a_sure_advert_an_analyst_rejected_is_not_counted(tmp_path):
    from pipeline.refer.review import decide
    from tests.unit.test_trends import fill_span
    from vigie.store import DECIDED
    from vigie.store.cases import record_decision
    from vigie.store.trends import flagged_posts_between

    with Store(tmp_path / "vigie.db") as store:
        fill_span(store)
        decide(store, "telegram:a:2", "rejected", "a news report", "ana")
        rows = flagged_posts_between(store, "2026-09-01", "2026-10-01", DECIDED)
        assert [r["key"] for r in rows] == ["telegram:a:3"]
        # Confirmed, a post the classifier did not flag counts: the same rule as networks and sharing.
        now = "2026-11-30T11:00:00+00:00"
        record_decision(store, "telegram:a:5", None, "telegram", "", "confirmed", "an advert", "ana", now)
        rows = flagged_posts_between(store, "2026-09-01", "2026-10-01", DECIDED)
        assert [r["key"] for r in rows] == ["telegram:a:5", "telegram:a:3"]
