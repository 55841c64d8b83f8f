"""Platforms' answers to referrals, from the CLI: recorded by an analyst, imported from a
CSV, matched in DSA Transparency Database dumps, and shown in the statistics and the
report, on a real store of TikTok, Instagram and Facebook posts that were flagged,
confirmed and exported."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run_vigie
from tests.support.rows import advert_analysis
from vigie.platforms import post_url
from vigie.records import Post, post_key
from vigie.store import Store, cases, outcomes

DATA = Path(__file__).resolve().parents[1] / "data" / "dsa-tdb"
REFERRED_AT = "2026-09-01T00:00:00+00:00"
# platform, account, post id, repost cluster
POSTS = [
    ("tiktok", "someone", "7301234567890123456", "c-tiktok"),
    ("tiktok", "someone", "7301234567890123457", "c-tiktok"),
    ("tiktok", "other.one", "7309999999999999999", None),
    ("instagram", "someone", "Cx1AbCdEfGh", None),
    ("instagram", "someone", "Cy2ZyXwVuTs", None),
    ("facebook", "somepage", "104123456789_998877665544", None),
]
TT1, TT2, TT3, IG1, IG2, FB1 = (post_key(p, a, i) for p, a, i, _ in POSTS)


@pytest.fixture
def referred(tmp_path: Path) -> dict[str, Any]:
    """A store whose posts were flagged, confirmed by an analyst and exported as notices to
    TikTok and Meta, their referral dated REFERRED_AT; and a configuration naming it."""
    from pipeline.refer.notices import export
    from pipeline.refer.review import decide
    from vigie.config_file import parse_config
    from vigie.store.analysis import save_analysis

    settings = {
        "data_dir": str(tmp_path / "data"),
        "referrals": {"notifier_name": "Ana", "notifier_email": "ana@example.org"},
    }
    config_path = tmp_path / "vigie.yaml"
    config_path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    config = parse_config(settings)
    with Store(config.store_path()) as store:
        store.upsert_posts(
            [
                Post(
                    platform=platform,
                    channel=account,
                    post_id=post_id,
                    url=post_url(platform, account, post_id),
                    text=f"Boat to Italy, 2500€, WhatsApp +90 555 000 00 0{n}",
                    published_at=f"2026-08-2{n}T10:00:00+00:00",
                    payload_sha256=f"{n:064d}",
                    captured_at="2026-08-30T00:00:00+00:00",
                )
                for n, (platform, account, post_id, _) in enumerate(POSTS)
            ]
        )
        for platform, account, post_id, cluster in POSTS:
            key = post_key(platform, account, post_id)
            save_analysis(store, advert_analysis(key, cluster, "2026-08-30T00:00:00+00:00"))
        decide(store, "c-tiktok", "confirmed", "smuggling offer", "ana")
        for key in (TT3, IG1, IG2, FB1):
            decide(store, key, "confirmed", "smuggling offer", "ana")
        notices = {}
        for platform in ("tiktok", "meta"):
            result = export(store, config.referrals, platform, "json", tmp_path / "out")
            for notice in result.notices:
                for item in notice["evidence"]:
                    notices[item["post_key"]] = notice["notice_id"]
        store.db.execute("UPDATE referrals SET referred_at = ?", (REFERRED_AT,))
    return {"config": config_path, "db": config.store_path(), "notices": notices, "tmp": tmp_path}


def vigie(referred: dict[str, Any], *args: str, check: bool = True) -> Any:
    return run_vigie(*args, config=referred["config"], check=check)


def stats(referred: dict[str, Any]) -> dict[str, Any]:
    return json.loads(vigie(referred, "referrals", "stats", "--json").stdout)


def trail(referred: dict[str, Any], key: str) -> list[dict[str, Any]]:
    with Store(referred["db"], read_only=True) as store:
        return outcomes.outcomes_of(store, key)


def referral(referred: dict[str, Any], key: str) -> dict[str, Any]:
    with Store(referred["db"], read_only=True) as store:
        return next(r for r in cases.referred_in(store, None) if r["post_key"] == key)


def test_instagram_and_facebook_posts_are_referred_to_meta(referred):
    with Store(referred["db"], read_only=True) as store:
        platforms = {r["post_key"]: r["platform"] for r in cases.referred_in(store, None)}
    assert platforms == {TT1: "tiktok", TT2: "tiktok", TT3: "tiktok", IG1: "meta", IG2: "meta", FB1: "meta"}
    notices = referred["notices"]
    assert notices[TT1] == notices[TT2] != notices[TT3]  # a repost cluster is one notice


def test_analyst_records_answers_and_stats_show_them(referred):
    notices = referred["notices"]
    done = vigie(
        referred,
        "referrals",
        "outcome",
        notices[TT1],
        "--removed",
        "--at",
        "2026-09-01T14:00:00+02:00",
        "--by",
        "ana",
    )
    assert done.stdout.strip() == f"{notices[TT1]}: removed recorded for 2 item(s)"
    vigie(
        referred,
        "referrals",
        "outcome",
        notices[TT3],
        "--rejected",
        "no violation of our guidelines",
        "--at",
        "2026-09-02T00:00:00",  # no offset: UTC
        "--url",
        post_url("tiktok", "other.one", "7309999999999999999") + "?lang=en",
        "--note",
        "ticket 4471",
        "--by",
        "bo",
    )
    (answer,) = trail(referred, TT3)
    assert answer["outcome"] == "rejected" and answer["source"] == "analyst"
    assert (
        answer["decided_at"] == "2026-09-02T00:00:00+00:00"
        and answer["reason"] == "no violation of our guidelines"
    )
    assert answer["note"] == "ticket 4471" and answer["recorded_by"] == "bo"
    assert trail(referred, TT1)[0]["recorded_by"] == "ana"
    assert referral(referred, TT3)["status"] == "declined"
    assert referral(referred, TT1)["removed_at"] == "2026-09-01T12:00:00+00:00"

    # The same answer again adds nothing; an older answer is kept but moves nothing.
    again = vigie(referred, "referrals", "outcome", notices[TT1], "--removed", "--at", "2026-09-01T12:00:00Z")
    assert "removed recorded for 0 item(s)" in again.stdout and again.stdout.count("already recorded") == 2
    vigie(referred, "referrals", "outcome", notices[TT1], "--restricted", "--at", "2026-09-01T06:00:00Z")
    assert [a["outcome"] for a in trail(referred, TT1)] == ["removed", "restricted"]
    assert referral(referred, TT1)["status"] == "removed" and referral(referred, TT1)["outcome"] == "removed"
    # A newer one does.
    vigie(referred, "referrals", "outcome", notices[IG1], "--restricted", "--at", "2026-09-01T03:00:00Z")
    vigie(
        referred, "referrals", "outcome", notices[IG1], "--account-suspended", "--at", "2026-09-01T09:00:00Z"
    )
    assert (
        referral(referred, IG1)["status"] == "removed"
        and referral(referred, IG1)["outcome"] == "account_suspended"
    )

    figures = stats(referred)
    tiktok, meta = figures["by_platform"]["tiktok"], figures["by_platform"]["meta"]
    assert tiktok["outcomes"] == {"removed": 2, "rejected": 1, "online": 0, "pending": 0}
    assert tiktok["median_hours"] == {"removed": 12.0, "rejected": 24.0}
    assert tiktok["median_hours_to_removal"] == 12.0 and tiktok["removal_rate"] == round(2 / 3, 4)
    assert meta["outcomes"] == {"removed": 0, "account_suspended": 1, "online": 0, "pending": 2}
    assert meta["median_hours"] == {"account_suspended": 9.0}
    assert figures["outcomes"]["pending"] == 2 and figures["median_hours_to_removal"] == 12.0
    table = vigie(referred, "referrals", "stats").stdout
    assert "account suspended" in table and "2 (12.0 h)" in table


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["NOPE-1", "--removed"], 1, "vigie: NOPE-1: no referral notice with this id"),
        (["{tt1}", "--removed", "--restricted"], 2, "give one outcome: --removed, --rejected, --restricted"),
        (["{tt1}"], 2, "give one outcome"),
        (["{tt1}", "--removed", "--at", "2099-01-01T00:00:00Z"], 2, "is in the future"),
        (["{tt1}", "--removed", "--at", "last tuesday"], 2, "is not an ISO 8601 time"),
        (["{tt1}", "--removed", "--at", "2026-08-31T23:00:00Z"], 1, "is before tiktok:730123456789012345"),
        (["{tt1}", "--removed", "--url", "https://www.tiktok.com/@x/video/1"], 1, "not an item of notice"),
        (["{tt1}", "--rejected", " "], 1, "a rejection needs its reason"),
    ],
)
def test_refused_answers_write_nothing(referred, args, code, message):
    args = [a.format(tt1=referred["notices"][TT1]) for a in args]
    result = vigie(referred, "referrals", "outcome", *args, check=False)
    assert result.returncode == code, result.stderr
    assert [line for line in result.stderr.splitlines() if message in line]  # one line says it
    assert "Traceback" not in result.stderr
    assert trail(referred, TT1) == [] and referral(referred, TT1)["status"] == "referred"


def test_csv_of_answers_with_a_bad_row(referred):
    notices = referred["notices"]
    answers = referred["tmp"] / "answers.csv"
    answers.write_text(
        "notice_id,url,outcome,at,reason,note\n"
        f"{notices[IG1]},{post_url('instagram', 'someone', 'Cx1AbCdEfGh')},restricted,2026-09-01T06:00:00Z,,label added\n"
        f"{notices[IG2]},{post_url('instagram', 'someone', 'Cy2ZyXwVuTs')},deleted,2026-09-01T06:00:00Z,,\n"
        f"{notices[IG2]},{post_url('instagram', 'someone', 'Cy2ZyXwVuTs')},removed,yesterday,,\n"
        f"{notices[IG2]},https://www.instagram.com/p/Cy2ZyXwVuTs,removed,2026-09-03T02:00:00+02:00,,\n"
        f",{post_url('facebook', 'somepage', '104123456789_998877665544')},rejected,2026-09-02T00:00:00Z,,\n"
        f"{notices[TT3]},,removed,2026-09-01T01:30:00Z,,\n",
        encoding="utf-8",
    )
    first = vigie(referred, "referrals", "outcomes-import", str(answers), check=False)
    assert first.returncode == 1
    assert f"{answers}: 6 row(s), 3 answer(s) recorded, 0 already recorded, 3 bad row(s)" in first.stdout
    errors = [line.strip() for line in first.stderr.splitlines()]
    assert errors == [
        f"{answers}:3: outcome: 'deleted': expected one of removed, account_suspended, restricted, rejected",
        f"{answers}:4: at: 'yesterday' is not an ISO 8601 time (e.g. 2026-10-02T14:30:00+02:00)",
        f"{answers}:6: reason: a rejection needs its reason, what the platform said",
    ]
    (kept,) = trail(referred, IG2)
    assert (kept["source"], kept["decided_at"], kept["reference"]) == (
        "csv",
        "2026-09-03T00:00:00+00:00",
        "answers.csv:5",
    )
    meta = stats(referred)["by_platform"]["meta"]
    assert meta["outcomes"] == {"removed": 1, "restricted": 1, "online": 0, "pending": 1}
    assert meta["median_hours"] == {"removed": 48.0, "restricted": 6.0}
    tiktok = stats(referred)["by_platform"]["tiktok"]
    assert tiktok["outcomes"]["removed"] == 1 and tiktok["median_hours"] == {"removed": 1.5}

    second = vigie(referred, "referrals", "outcomes-import", str(answers), check=False)
    assert "6 row(s), 0 answer(s) recorded, 3 already recorded, 3 bad row(s)" in second.stdout
    assert len(trail(referred, IG1)) == len(trail(referred, IG2)) == len(trail(referred, TT3)) == 1

    headless = referred["tmp"] / "headless.csv"
    headless.write_text("post,when\nx,y\n", encoding="utf-8")
    refused = vigie(referred, "referrals", "outcomes-import", str(headless), check=False)
    assert refused.returncode == 1 and f"{headless}:1: the header needs outcome, at" in refused.stderr


def _zipped(referred: dict[str, Any], nested: bool) -> Path:
    """The sample's rows as a daily dump: a zip of the CSV, or a zip of a zipped CSV part."""
    out = referred["tmp"] / ("nested.zip" if nested else "dump.zip")
    if not nested:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(DATA / "sample.csv", "sor-global-2026-09-02-full-00000.csv")
        return out
    part = referred["tmp"] / "sor-global-2026-09-02-full-00000.csv.zip"
    with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(DATA / "sample.csv", "sor-global-2026-09-02-full-00000.csv")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.write(part, part.name)
        archive.writestr("README.txt", "not a statement")
    return out


def test_dsa_dump_matches_referred_posts(referred):
    sample = referred["tmp"] / "sample.csv"
    shutil.copy(DATA / "sample.csv", sample)
    first = vigie(referred, "referrals", "match-dsa", str(sample))
    assert first.stdout.strip() == (
        "read 7 statement(s), matched 4, recorded 2 (0 already recorded, 1 applied before the referral, 1 unusable)"
    )
    assert f"{sample}:7: application_date: '02/09/2026' is not a date" in first.stderr
    (removed,) = trail(referred, TT1)
    assert (removed["outcome"], removed["source"], removed["reference"]) == (
        "removed",
        "dsa-tdb",
        "7301234567890123456-sor-1",
    )
    assert (
        removed["decided_at"] == "2026-09-02T06:00:00+00:00" and "SOURCE_TRUSTED_FLAGGER" in removed["note"]
    )
    (suspended,) = trail(referred, IG1)
    assert suspended["outcome"] == "account_suspended" and suspended["notice_id"] == referred["notices"][IG1]
    assert trail(referred, IG2) == [] and trail(referred, TT2) == []

    # The same rows zipped, as the database publishes its dumps: nothing new.
    for nested in (False, True):
        again = vigie(referred, "referrals", "match-dsa", str(_zipped(referred, nested)))
        assert "read 7 statement(s), matched 4, recorded 0 (2 already recorded" in again.stdout
        assert "sor-global-2026-09-02-full-00000.csv:7: application_date" in again.stderr

    figures = stats(referred)
    tiktok, meta = figures["by_platform"]["tiktok"], figures["by_platform"]["meta"]
    assert tiktok["outcomes"] == {"removed": 1, "online": 0, "pending": 2}
    assert tiktok["median_hours"] == {"removed": 30.0}
    assert meta["outcomes"] == {"removed": 0, "account_suspended": 1, "online": 0, "pending": 2}
    assert meta["median_hours"] == {"account_suspended": 18.0}


def test_dsa_nested_zip_and_content_id_columns(referred):
    first = vigie(referred, "referrals", "match-dsa", str(_zipped(referred, nested=True)))
    assert "read 7 statement(s), matched 4, recorded 2" in first.stdout
    # A file with the content's id (here Facebook's post part of PAGEID_POSTID) or its URL.
    api = referred["tmp"] / "api.csv"
    api.write_text(
        "platform_name,puid,content_id,url,decision_visibility,decision_account,source_type,application_date\n"
        'Facebook,FB-1,998877665544,,"[""DECISION_VISIBILITY_CONTENT_DISABLED""]",,SOURCE_ARTICLE_16,2026-09-04 00:00:00\n'
        "TikTok,TT-2,,https://www.tiktok.com/@someone/video/7301234567890123457?is_from_webapp=1,"
        '"[""DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED""]",,SOURCE_TRUSTED_FLAGGER,2026-09-01T02:00:00Z\n'
        'Instagram,IG-9,998877665544,,"[""DECISION_VISIBILITY_CONTENT_REMOVED""]",,SOURCE_ARTICLE_16,2026-09-04 00:00:00\n',
        encoding="utf-8",
    )
    second = vigie(referred, "referrals", "match-dsa", str(api))
    assert second.stdout.startswith("read 3 statement(s), matched 2, recorded 2")
    assert [a["outcome"] for a in trail(referred, FB1)] == ["removed"]
    assert [(a["outcome"], a["reference"]) for a in trail(referred, TT2)] == [("restricted", "TT-2")]
    figures = stats(referred)
    assert figures["by_platform"]["meta"]["median_hours"] == {"removed": 72.0, "account_suspended": 18.0}
    assert figures["by_platform"]["tiktok"]["outcomes"] == {
        "removed": 1,
        "restricted": 1,
        "online": 0,
        "pending": 1,
    }
    assert vigie(referred, "referrals", "match-dsa", str(api)).stdout.startswith(
        "read 3 statement(s), matched 2, recorded 0 (2 already recorded"
    )


def test_report_shows_answers_per_platform(referred):
    from pipeline.report.figures import collect

    notices = referred["notices"]
    vigie(referred, "referrals", "outcome", notices[TT1], "--removed", "--at", "2026-09-01T12:00:00Z")
    vigie(
        referred,
        "referrals",
        "outcome",
        notices[IG2],
        "--rejected",
        "legal in our view",
        "--at",
        "2026-09-03T00:00:00Z",
    )
    vigie(
        referred, "referrals", "outcome", notices[IG1], "--account-suspended", "--at", "2026-09-01T06:00:00Z"
    )
    with Store(referred["db"], read_only=True) as store:
        figures = collect(store)
    answered = {(a.platform, a.kind): (a.n, a.median_hours) for a in figures.answers}
    assert answered == {
        ("tiktok", "removed"): (2, 12.0),
        ("tiktok", "pending"): (1, None),
        ("meta", "account_suspended"): (1, 6.0),
        ("meta", "rejected"): (1, 48.0),
        ("meta", "pending"): (1, None),
    }
    assert figures.totals.sent == 6 and figures.totals.removed == 3
    page = referred["tmp"] / "report.html"
    vigie(referred, "report", "--out", str(page))
    html = page.read_text(encoding="utf-8")
    assert "Answers by platform" in html and "account suspended" in html and "2.0 days" in html
