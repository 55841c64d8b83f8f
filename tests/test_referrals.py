"""The analyst's path from the CLI: run → review → export → (removal on the mirror) →
verified removal → statistics, with the audit log and the evidence kept."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import run_vigie


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


def db(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "data" / "vigie.db")
    conn.row_factory = sqlite3.Row
    return conn


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
    with db(tmp_path) as conn:
        audit = conn.execute("SELECT reviewer, decision, reason FROM reviews ORDER BY id").fetchall()
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
    with db(tmp_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM referrals WHERE status = 'referred'").fetchone()[0] == 0

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
    with db(tmp_path) as conn:
        statuses = dict(
            conn.execute("SELECT post_key, status FROM referrals WHERE status != 'rejected'").fetchall()
        )
        evidence = conn.execute(
            "SELECT evidence_sha256, evidence_text FROM referrals WHERE status = 'removed'"
        ).fetchone()
    assert list(statuses.values()).count("removed") == 1 and evidence[0] and evidence[1]

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
