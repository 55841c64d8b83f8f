"""The analyst's path from the CLI: run → review → export → (removal on the mirror) →
verified removal → statistics, with the audit log and the evidence kept."""

from __future__ import annotations

import csv
import json
import subprocess
from itertools import pairwise
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import run_vigie
from tests.support.rows import advert_analysis
from vigie.store import Store, cases


@pytest.fixture
def analyst(tmp_path, mirror_factory, config_file, sample_channels, shipped, es_url):
    mirror = mirror_factory(sample_channels)
    config = config_file(
        telegram={"base_url": mirror.url},
        elasticsearch={"url": es_url},
        sources=[{"platform": "telegram", "channel": name} for name in sample_channels],
        referrals={
            "notifier_name": "Ana Analyst",
            "notifier_email": "ana@observatory.example",
            "organisation": "Border Observatory",
            "trusted_flagger": True,
        },
    )
    run_vigie("run", config=config, check=True, timeout=600)
    return mirror, config, tmp_path, es_url


def export_csv(out: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return run_vigie(
        "referrals",
        "export",
        "--platform",
        "telegram",
        "--format",
        "csv",
        "--out",
        str(out),
        config=config,
        check=True,
    )


def db(tmp_path: Path) -> Store:
    """The store the commands wrote, opened as an analyst's read-only command does."""
    return Store(tmp_path / "data" / "vigie.db", read_only=True)


def test_run_review_export_remove_verify_stats(analyst):
    mirror, config, tmp_path, es_url = analyst
    queue = json.loads(run_vigie("review", "--json", "--limit", "100", config=config, check=True).stdout)
    assert queue and queue == sorted(queue, key=lambda g: (g["band"] != "advert", -g["score"]))
    clustered = next(g for g in queue if len(g["posts"]) > 1)  # a repost cluster
    single = next(g for g in queue if g is not clustered)
    rejected = next(g for g in queue if g not in (clustered, single))

    run_vigie(
        "review",
        "confirm",
        clustered["target"],
        "--reason",
        "yacht route, price and WhatsApp",
        "--reviewer",
        "ana",
        config=config,
        check=True,
    )
    run_vigie(
        "review",
        "confirm",
        single["target"],
        "--reason",
        "offers the crossing",
        "--reviewer",
        "ana",
        config=config,
        check=True,
    )
    run_vigie(
        "review",
        "reject",
        rejected["target"],
        "--reason",
        "a warning, not an offer",
        "--reviewer",
        "bo",
        config=config,
        check=True,
    )
    again = run_vigie("review", "confirm", rejected["target"], "--reason", "", config=config)
    assert again.returncode == 1 and "a reason is required" in again.stderr
    with db(tmp_path) as store:
        audit = cases.review_log(store, 1000)
    assert {(r["reviewer"], r["decision"]) for r in audit} == {("ana", "confirmed"), ("bo", "rejected")}
    assert len(audit) == len(clustered["posts"]) + len(single["posts"]) + len(rejected["posts"])

    dry = run_vigie(
        "referrals",
        "export",
        "--platform",
        "telegram",
        "--format",
        "dsa",
        "--dry-run",
        config=config,
        check=True,
    )
    assert "would export 2 notice(s)" in dry.stdout
    with db(tmp_path) as store:
        assert cases.referred_posts(store) == []

    out = tmp_path / "exports"
    result = run_vigie(
        "referrals",
        "export",
        "--platform",
        "telegram",
        "--format",
        "dsa",
        "--out",
        str(out),
        config=config,
        check=True,
    )
    assert "exported 2 notice(s)" in result.stdout
    manifest = json.loads(next(out.glob("*/notices.json")).read_text(encoding="utf-8"))
    notice = next(n for n in manifest["notices"] if n["cluster_id"] == clustered["target"])
    assert sorted(notice["urls"]) == sorted(p["url"] for p in clustered["posts"])
    assert "smuggling" in notice["explanation"] and "2002/90/EC" in notice["legal_basis"]
    assert notice["notifier"] == {
        "name": "Ana Analyst",
        "email": "ana@observatory.example",
        "organisation": "Border Observatory",
    }
    assert notice["trusted_flagger"] is True and "good faith" in notice["good_faith_statement"]
    assert all(len(e["payload_sha256"]) == 64 and e["captured_at"] and e["text"] for e in notice["evidence"])
    email = next(out.glob(f"*/{notice['notice_id']}.txt")).read_text(encoding="utf-8")
    assert (
        email.startswith("Subject: [") and all(u in email for u in notice["urls"]) and "Article 16" in email
    )
    # Nothing is exported twice.
    second = export_csv(out, config)
    assert "exported 0 notice(s)" in second.stdout

    # The platform takes one URL down; the next check sees it.
    gone = single["posts"][0]["url"].split("/")
    mirror.delete_post(gone[-2], int(gone[-1]))
    check = run_vigie("referrals", "check", "--force", config=config, check=True)
    referred = len(clustered["posts"]) + len(single["posts"])
    assert f"checked {referred}: 1 removed, {referred - 1} still online" in check.stdout
    with db(tmp_path) as store:
        statuses = {r["post_key"]: r["status"] for r in cases.referred_in(store, None)}
        (removed,) = [r["post_key"] for r in cases.referred_in(store, None) if r["status"] == "removed"]
        evidence = cases.frozen_evidence(store, removed)
    assert evidence is not None
    assert list(statuses.values()).count("removed") == 1 and evidence["sha256"] and evidence["text"]

    stats = json.loads(
        run_vigie("referrals", "stats", "--period", "2026", "--json", config=config, check=True).stdout
    )
    telegram = stats["by_platform"]["telegram"]
    assert stats["notices"] == 2 and telegram["items"] == referred
    assert telegram["outcomes"] == {"removed": 1, "online": referred - 1, "pending": 0}
    assert telegram["median_hours_to_removal"] is not None and telegram["median_hours_to_removal"] >= 0
    assert (
        json.loads(
            run_vigie("referrals", "stats", "--period", "2025", "--json", config=config, check=True).stdout
        )["notices"]
        == 0
    )
    # The index follows: referral state and time to removal, next to the classifier's fields.
    es = Elasticsearch(es_url)
    es.indices.refresh(index="vigie-posts")
    removed = es.search(index="vigie-posts", query={"term": {"url": single["posts"][0]["url"]}})["hits"][
        "hits"
    ]
    assert removed[0]["_source"]["referral_status"] == "removed"
    assert removed[0]["_source"]["hours_to_removal"] is not None
    indexed = {
        h["_source"]["referral_status"] for h in es.search(index="vigie-posts", size=500)["hits"]["hits"]
    }
    assert {"new", "online", "removed", "rejected"} <= indexed


def test_export_needs_a_notifier_and_csv_has_a_row_per_url(
    tmp_path, mirror_factory, config_file, sample_channels, shipped
):
    mirror = mirror_factory(sample_channels)
    config = config_file(
        telegram={"base_url": mirror.url}, sources=[{"platform": "telegram", "channel": "rebaz_safar_uk"}]
    )
    run_vigie("run", config=config, check=True, timeout=600)
    target = json.loads(run_vigie("review", "--json", config=config, check=True).stdout)[0]["target"]
    run_vigie(
        "review", "confirm", target, "--reason", "offer", "--reviewer", "ana", config=config, check=True
    )
    missing = run_vigie("referrals", "export", "--platform", "telegram", config=config)
    assert (
        missing.returncode == 1 and "notifier_name and referrals.notifier_email must be set" in missing.stderr
    )
    config = config_file(
        telegram={"base_url": mirror.url},
        referrals={"notifier_name": "Ana", "notifier_email": "ana@example.org"},
    )
    out = tmp_path / "csv"
    export_csv(out, config)
    with next(out.glob("*/notices.csv")).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(
        r["url"].startswith("https://t.me/") and r["notifier_email"] == "ana@example.org" for r in rows
    )


def test_bad_period_is_a_usage_error(tmp_path, config_file):
    result = run_vigie("referrals", "stats", "--period", "last-year", config=config_file())
    assert result.returncode == 2 and "expected YYYY or YYYY-MM" in result.stderr


# --- removal checks over HTTP: the crawler's manners, without the model -------------------

CHECK_UA = "VigieCheck/1.0 (removal checks)"


def referred(tmp_path: Path, mirror, **crawl):
    """A store whose posts of the mirror's channel were confirmed and exported (the way an
    analyst does it, minus the classifier), and the configuration to check them."""
    from crawlers.telegram.mirror import render_page
    from crawlers.telegram.preview import parse_page
    from pipeline.refer.notices import export
    from pipeline.refer.review import decide
    from vigie.config_file import parse_config
    from vigie.store import Store
    from vigie.store.analysis import save_analysis

    config = parse_config(
        {
            "data_dir": str(tmp_path / "data"),
            "telegram": {"base_url": mirror.url},
            "crawl": {"user_agent": CHECK_UA, "download_delay": 0, "backoff_base": 0, **crawl},
            "referrals": {"notifier_name": "Ana", "notifier_email": "ana@example.org"},
        }
    )
    (name,) = mirror.channels
    page = parse_page(render_page(mirror.channels[name], None, 20), f"https://t.me/s/{name}")
    store = Store(config.store_path())
    store.upsert_posts(page.posts)
    for post in page.posts:
        key = f"telegram:{name}:{post.post_id}"
        save_analysis(store, advert_analysis(key, None, "2026-09-25T00:00:00+00:00"))
        decide(store, key, "confirmed", "smuggling offer", "ana")
    export(store, config.referrals, "telegram", "json", tmp_path / "out")
    return store, config, [p.post_id for p in page.posts]


@pytest.fixture
def channel():
    from tests.conftest import make_channel

    return {"boats_izmir": make_channel("boats_izmir", [11, 12, 13])}


def pages(mirror) -> list[tuple[float, str, str]]:
    return [entry for entry in mirror.log if entry[1].startswith("/s/")]


def test_removal_check_honours_retry_after_the_delay_and_robots(tmp_path, mirror_factory, channel):
    from crawlers.telegram.mirror import Faults
    from pipeline.refer.removals import check_removals

    mirror = mirror_factory(channel, faults=Faults(throttle={"boats_izmir": 1}, retry_after="1"))
    store, config, ids = referred(tmp_path, mirror, download_delay=0.3)
    mirror.delete_post("boats_izmir", ids[1])
    with store:
        report = check_removals(store, config, force=True)
    assert (report.checked, report.removed, report.online, report.errors) == (3, 1, 2, [])
    assert mirror.requests[0] == "/robots.txt" and mirror.requests.count("/robots.txt") == 1
    assert {ua for _, _, ua in mirror.log} == {CHECK_UA}
    checks = pages(mirror)
    assert len(checks) == 4  # the first answered 429 and was asked again
    assert checks[0][1] == checks[1][1] and checks[1][0] - checks[0][0] >= 0.95  # Retry-After: 1
    assert all(later[0] - earlier[0] >= 0.3 for earlier, later in pairwise(checks[1:]))


def test_removal_check_does_not_fetch_what_robots_txt_disallows(tmp_path, mirror_factory, channel):
    from pipeline.refer.removals import check_removals
    from pipeline.refer.stats import stats

    mirror = mirror_factory(channel, robots="User-agent: *\nDisallow: /s/\n")
    store, config, _ = referred(tmp_path, mirror)
    with store:
        report = check_removals(store, config, force=True)
        outcomes = stats(store)["by_platform"]["telegram"]["outcomes"]
    assert mirror.requests == ["/robots.txt"]
    assert report.checked == 3 and report.removed == report.online == 0
    assert len(report.errors) == 3
    assert report.errors[0].endswith(f"not checked: robots.txt of {mirror.url} disallows it for {CHECK_UA}")
    assert outcomes == {"removed": 0, "online": 0, "pending": 3}


def test_removal_check_stops_in_one_line_when_the_host_fails(tmp_path, mirror_factory, channel):
    from crawlers.telegram.mirror import Faults
    from pipeline.refer import ReferralError
    from pipeline.refer.removals import check_removals
    from pipeline.refer.stats import stats

    mirror = mirror_factory(channel, faults=Faults(throttle={"boats_izmir": 100}, retry_after="0"))
    store, config, _ = referred(tmp_path, mirror, retry_times=1, backoff_base=0.05)
    with pytest.raises(ReferralError) as caught:
        check_removals(store, config, force=True)
    assert str(caught.value) == (
        f"cannot reach {mirror.url} to check removals (HTTP 429 after 1 retries); 0 checked, the others "
        f"are left for the next check; `vigie mirror --port {mirror.server.server_address[1]}` serves the "
        "sample channels there"
    )
    assert len(pages(mirror)) == 2

    mirror.stop()
    with store:
        with pytest.raises(ReferralError) as caught:
            check_removals(store, config, force=True)
        assert stats(store)["by_platform"]["telegram"]["outcomes"]["pending"] == 3  # nothing recorded
    assert "(connection refused); 0 checked" in str(caught.value) and "\n" not in str(caught.value)
