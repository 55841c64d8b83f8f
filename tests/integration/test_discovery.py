"""Source discovery on a small graph of channels served by the local mirror of t.me
(tests/data/discovery/), classified by the classifier the suite trains.

watch_alpha and watch_beta are configured. Their adverts forward from planted_one (twice,
once also @mentioning it), link to planted_two (one advert each), to a TikTok, an Instagram
and an X account, to a watched channel's post and to invite links; watch_alpha's news posts
@mention and link unrelated_news, and a migrant's warning on watch_beta @mentions planted_one
(not flagged, so it does not count). planted_one's own adverts point to planted_deep (hop 2)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crawlers.telegram.mirror import load_channels
from pipeline.discovery import account_of_url, decide, find_candidates, follow, pointers
from tests.conftest import DATA, run_vigie
from tests.integration.test_daemon import Daemons, daemon_config, post_count, query, status_json, wait_for
from vigie.config import DiscoveryConfig
from vigie.config_file import load_config
from vigie.store import Store

GRAPH = DATA / "discovery"
WATCHED = ["watch_alpha", "watch_beta"]


@pytest.fixture
def daemons(tmp_path: Path) -> Any:
    d = Daemons(tmp_path)
    yield d
    d.cleanup()


def graph_config(config_file: Any, mirror_url: str, **overrides: Any) -> Path:
    return config_file(
        telegram={"base_url": mirror_url},
        sources=[{"platform": "telegram", "channel": c} for c in WATCHED],
        media={"fetch": False},
        # Unflagged posts keep their text: their mentions are there, and still do not count.
        pipeline={"keep_text_below_threshold": True},
        **overrides,
    )


def candidates(config: Path, *args: str) -> dict[str, dict[str, Any]]:
    result = run_vigie("sources", "candidates", "--json", *args, config=config, check=True)
    return {f"{c['platform']}:{c['handle']}": c for c in json.loads(result.stdout)["candidates"]}


def ways(candidate: dict[str, Any]) -> dict[str, list[str]]:
    return {e["post"]: e["how"] for e in candidate["evidence"]}


@pytest.mark.usefixtures("shipped")  # classified by the trained classifier; fails clearly without one
def test_candidates_scores_evidence_and_decisions(tmp_path, mirror_factory, config_file):
    mirror = mirror_factory(load_channels(GRAPH))
    config = graph_config(config_file, mirror.url)
    run_vigie("run", config=config, check=True, timeout=180)

    found = candidates(config)
    # Score = flagged posts + 2 x distinct watched sources.
    two = found["telegram:planted_two"]
    assert (two["score"], two["flagged_posts"], two["sources"], two["hops"]) == (
        6,
        2,
        ["telegram:watch_alpha", "telegram:watch_beta"],
        1,
    )
    assert ways(two) == {"https://t.me/watch_alpha/3": ["link"], "https://t.me/watch_beta/1": ["link"]}
    one = found["telegram:planted_one"]
    # watch_beta's warning against it mentions it too, but is not flagged: it does not count.
    assert (one["score"], one["flagged_posts"], one["sources"]) == (4, 2, ["telegram:watch_alpha"])
    assert ways(one) == {
        "https://t.me/watch_alpha/1": ["forward", "mention"],
        "https://t.me/watch_alpha/2": ["forward"],
    }
    for account in ("tiktok:smuggler_trips", "instagram:boat_trips_eu", "x:lorry_guy_uk"):
        assert found[account]["score"] == 3 and found[account]["hops"] == 1, account
    assert found["tiktok:smuggler_trips"]["url"] == "https://www.tiktok.com/@smuggler_trips"
    # Not: the unrelated channel of the news posts, invite links, a watched channel's post.
    assert set(found) == {
        "telegram:planted_one",
        "telegram:planted_two",
        "tiktok:smuggler_trips",
        "instagram:boat_trips_eu",
        "x:lorry_guy_uk",
    }
    assert next(iter(found)) == "telegram:planted_two"  # best first
    assert set(candidates(config, "--min-score", "4")) == {"telegram:planted_one", "telegram:planted_two"}
    assert list(candidates(config, "--limit", "1")) == ["telegram:planted_two"]

    table = run_vigie("sources", "candidates", config=config, check=True).stdout
    assert "planted_two" in table and "https://t.me/watch_alpha/1 (forward, mention)" in table

    # An analyst's decision outranks the score: a sure advert an analyst rejects no longer counts.
    rejected = ("review", "reject", "telegram:watch_alpha:2", "--reason", "a sample forwarded, not an offer")
    run_vigie(*rejected, config=config, check=True)
    one = candidates(config)["telegram:planted_one"]
    assert (one["score"], one["flagged_posts"]) == (3, 1)
    assert ways(one) == {"https://t.me/watch_alpha/1": ["forward", "mention"]}

    added = run_vigie("sources", "add", "t.me/planted_one", "--by", "Ana", config=config, check=True)
    assert "telegram:planted_one approved by Ana (score 3" in added.stdout
    again = run_vigie("sources", "add", "@Planted_One", "--by", "Bo", config=config, check=True)
    assert "already approved (by Ana" in again.stdout
    tiktok = run_vigie("sources", "add", "https://www.tiktok.com/@smuggler_trips", config=config, check=True)
    assert "does not crawl tiktok" in tiktok.stdout and "vigie import" in tiktok.stdout
    run_vigie("sources", "dismiss", "x:lorry_guy_uk", "--by", "Ana", config=config, check=True)
    assert set(candidates(config)) == {"telegram:planted_two", "instagram:boat_trips_eu"}

    with Store(tmp_path / "data" / "vigie.db", read_only=True) as store:
        rows = {
            (r["platform"], r["channel"]): r
            for r in store.db.execute("SELECT * FROM discovered_sources").fetchall()
        }
    evidence = json.loads(rows[("telegram", "planted_one")]["evidence"])
    assert evidence["flagged_posts"] == 1 and {p["post"] for p in evidence["posts"]} == {
        "https://t.me/watch_alpha/1"
    }
    assert rows[("x", "lorry_guy_uk")]["status"] == "dismissed"

    listed = json.loads(run_vigie("sources", "list", "--json", config=config, check=True).stdout)["sources"]
    assert [(r["platform"], r["handle"], r["status"], r["decided_by"]) for r in listed] == [
        ("telegram", "watch_alpha", "configured", None),
        ("telegram", "watch_beta", "configured", None),
        ("telegram", "planted_one", "approved", "Ana"),
        ("tiktok", "smuggler_trips", "approved", listed[3]["decided_by"]),
    ]
    assert listed[2]["crawled"] and not listed[3]["crawled"] and listed[2]["decided_at"]
    assert "lorry_guy_uk" in run_vigie("sources", "list", "--all", config=config, check=True).stdout

    # The approved channel is crawled with the configured ones; its adverts lead one hop further.
    assert post_count(tmp_path, "planted_one") == 0
    run_vigie("run", config=config, check=True, timeout=180)
    assert post_count(tmp_path, "planted_one") == 3
    assert post_count(tmp_path, "planted_two") == 0  # a candidate is not crawled
    deep = candidates(config)["telegram:planted_deep"]
    assert (deep["score"], deep["hops"], deep["sources"]) == (4, 2, ["telegram:planted_one"])
    assert ways(deep) == {
        "https://t.me/planted_one/12": ["forward"],
        "https://t.me/planted_one/15": ["mention"],
    }

    # A dismissed approval is no longer crawled.
    run_vigie("sources", "dismiss", "@planted_one", config=config, check=True)
    with Store(tmp_path / "data" / "vigie.db", read_only=True) as store:
        assert "telegram:planted_deep" not in {c.key for c in find_candidates(load_config(config), store)}


def test_bad_sources_are_named(tmp_path, config_file):
    config = config_file(sources=[{"platform": "telegram", "channel": "watch_alpha"}])
    for value, message in (
        ("t.me/+AbCdEf", "not an account link"),
        ("myspace:someone", "platform 'myspace'"),
        ("@ab", "4-32 letters"),
    ):
        result = run_vigie("sources", "add", value, config=config)
        assert result.returncode == 2 and message in result.stderr, (value, result.stderr)
    result = run_vigie("sources", "dismiss", "@watch_alpha", config=config)
    assert result.returncode == 2 and "is a configured source" in result.stderr


@pytest.mark.usefixtures("shipped")  # classified by the trained classifier; fails clearly without one
def test_automatic_following_respects_min_score_hops_and_the_daily_cap(tmp_path, mirror_factory, config_file):
    mirror = mirror_factory(load_channels(GRAPH))
    path = graph_config(config_file, mirror.url)
    run_vigie("run", config=path, check=True, timeout=180)
    base = load_config(path)

    def with_discovery(**settings: Any) -> Any:
        return base.model_copy(update={"discovery": DiscoveryConfig(follow=True, **settings)})

    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with Store(tmp_path / "data" / "vigie.db") as store:
        off = base.model_copy(update={"discovery": DiscoveryConfig(follow=False, min_score=0)})
        assert follow(off, store, now) == []
        # planted_two (6) and planted_one (4) reach min_score 4; the accounts (3) do not; cap 1.
        capped = with_discovery(min_score=4, max_hops=1, daily_cap=1)
        assert [c.key for c in follow(capped, store, now)] == ["telegram:planted_two"]
        assert follow(capped, store, now + timedelta(hours=3)) == []  # counted in the store, per UTC day
        # An analyst dismissing the followed source does not give its slot back that day.
        decide(capped, store, "telegram", "planted_two", "dismissed", "ana")
        assert follow(capped, store, now + timedelta(hours=4)) == []
        decide(capped, store, "telegram", "planted_two", "approved", "ana")
        # The next UTC day has room again.
        tomorrow = now + timedelta(days=1)
        assert [c.key for c in follow(capped, store, tomorrow)] == ["telegram:planted_one"]
        decided = {
            (d["platform"], d["channel"]): d for d in store.db.execute("SELECT * FROM discovered_sources")
        }
        assert decided[("telegram", "planted_one")]["decided_by"] == "automatic"
        assert json.loads(decided[("telegram", "planted_one")]["evidence"])["flagged_posts"] == 2

    # Both followed channels are crawled; planted_one's adverts lead to planted_deep, hop 2.
    run_vigie("run", config=path, check=True, timeout=180)
    assert post_count(tmp_path, "planted_one") == 3 and post_count(tmp_path, "planted_two") == 2
    later = tomorrow + timedelta(days=1)
    with Store(tmp_path / "data" / "vigie.db") as store:
        assert [
            c.key for c in follow(with_discovery(min_score=4, max_hops=1, daily_cap=5), store, later)
        ] == []
        low = with_discovery(min_score=3, max_hops=2, daily_cap=2)
        assert [c.key for c in follow(low, store, later)] == [
            "telegram:planted_deep",
            "instagram:boat_trips_eu",
        ]
        assert [c.key for c in follow(low, store, later)] == []  # the cap of 2 is used up for that day


@pytest.mark.usefixtures("shipped")  # classified by the trained classifier; fails clearly without one
def test_a_running_daemon_follows_and_crawls_approved_sources_without_a_restart(
    tmp_path, mirror_factory, config_file, daemons
):
    mirror = mirror_factory(load_channels(GRAPH))
    config = daemon_config(
        config_file,
        mirror.url,
        ["watch_alpha", "watch_beta"],
        media={"fetch": False},
        discovery={"follow": True, "min_score": 5, "max_hops": 1, "daily_cap": 5},
    )
    proc = daemons.start(config)

    # The classification after a crawl follows planted_two (score 6), and its crawl job is added.
    wait_for(
        "planted_two followed and crawled", lambda: post_count(tmp_path, "planted_two") == 2, timeout=120
    )
    row = query(tmp_path, "SELECT * FROM discovered_sources WHERE channel = 'planted_two'")[0]
    assert row["decided_by"] == "automatic" and row["status"] == "approved"
    assert query(tmp_path, "SELECT COUNT(*) FROM discovered_sources")[0][0] == 1  # nothing else scores 5

    # An analyst approves planted_one while the daemon runs: it is crawled without a restart.
    began = time.monotonic()
    run_vigie("sources", "add", "@planted_one", "--by", "Ana", config=config, check=True)
    wait_for("planted_one crawled", lambda: post_count(tmp_path, "planted_one") == 3, timeout=60)
    assert time.monotonic() - began < 45
    assert proc.poll() is None

    status = status_json(config)
    jobs = {job["id"]: job for job in status["jobs"]}
    for channel in ("planted_one", "planted_two"):
        job = jobs[f"crawl:telegram:{channel}"]
        assert job["name"] == f"crawl telegram:{channel} (approved)" and job["next_run_time"], job
    sources = {s["channel"]: s for s in status["sources"]}
    assert sources["planted_one"]["approved"] and not sources["planted_one"]["configured"]

    # Dismissed, it leaves the schedule.
    run_vigie("sources", "dismiss", "@planted_one", "--by", "Ana", config=config, check=True)
    wait_for(
        "planted_one's crawl job removed",
        lambda: "crawl:telegram:planted_one" not in {j["id"] for j in status_json(config)["jobs"]},
        timeout=30,
        every=1,
    )
    code, _ = daemons.stop(proc)
    assert code == 0
    log = (tmp_path / "data" / "logs" / "daemon.log").read_text("utf-8")
    assert "job crawl:telegram:planted_one: added (approved source)" in log
    assert "following telegram:planted_two automatically" in (
        tmp_path / "data" / "logs" / "jobs" / "classify.log"
    ).read_text("utf-8")


@pytest.mark.parametrize(
    ("url", "account"),
    [
        ("https://t.me/planted_one", ("telegram", "planted_one")),
        ("https://t.me/Planted_One/12", ("telegram", "planted_one")),
        ("https://t.me/s/planted_one?before=40", ("telegram", "planted_one")),
        ("telegram.me/planted_one", ("telegram", "planted_one")),
        ("https://t.me/+AbCdEfGhIjKl", None),
        ("https://t.me/joinchat/AAAAAEk1234abcd", None),
        ("https://t.me/addstickers/boats", None),
        ("https://t.me/abc", None),  # too short for a username
        ("https://www.tiktok.com/@smuggler_trips/video/7301", ("tiktok", "smuggler_trips")),
        ("https://www.tiktok.com/smuggler_trips", None),
        ("https://www.instagram.com/boat_trips_eu/", ("instagram", "boat_trips_eu")),
        ("https://www.instagram.com/p/Cz1AbC/", None),
        ("https://m.facebook.com/some.page", ("facebook", "some.page")),
        ("https://www.facebook.com/profile.php?id=100", None),
        ("https://twitter.com/lorry_guy_uk/status/1", ("x", "lorry_guy_uk")),
        ("https://x.com/intent/tweet?text=hi", None),
        ("https://www.youtube.com/@crossings", ("youtube", "crossings")),
        ("https://www.youtube.com/watch?v=abc", None),
        ("https://example.com/planted_one", None),
    ],
)
def test_account_links(url, account):
    assert account_of_url(url) == account


def test_how_a_post_points():
    row = {
        "platform": "telegram",
        "text": "Book with @planted_one (mail ana@example.org), t.me/planted_two. Videos tiktok.com/@trips_tt.",
        "forwarded_from": "https://t.me/planted_deep/7",
        # The preview's links: the @mention's own, the written one, and a link preview's.
        "links": [
            "https://t.me/planted_one",
            "https://t.me/planted_two",
            "https://www.instagram.com/boats_ig/",
        ],
        "mentions": [],
    }
    assert pointers(row) == {
        ("telegram", "planted_deep"): {"forward"},
        ("telegram", "planted_one"): {"mention"},
        ("telegram", "planted_two"): {"link"},
        ("tiktok", "trips_tt"): {"link"},
        ("instagram", "boats_ig"): {"link"},
    }
    # Another platform's mentions are accounts on that platform.
    tiktok = {"platform": "tiktok", "text": "", "forwarded_from": None, "links": [], "mentions": ["Boat.Guy"]}
    assert pointers(tiktok) == {("tiktok", "boat.guy"): {"mention"}}
