"""The trusted flagger's Art. 22(3) report from the CLI, on a real store of posts that were
flagged, confirmed, referred and answered: the counts by provider, content type and action
are right, and nothing in it identifies a person, an account, a post or a contact."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run_vigie
from tests.support.rows import advert_analysis
from vigie.platforms import post_url
from vigie.records import Post, post_key
from vigie.store import Store

INDEPENDENCE = (
    "The unit receives no funding from any provider; notices are decided by sworn analysts under the "
    "unit's own procedure, and the yearly accounts are audited."
)
NOTIFIER = "Ana Example-Notifier"
EMAIL = "ana.notifier@unit.example.org"
# platform, account, post id, cluster, content type of its text
POSTS = [
    ("tiktok", "smuggler.one", "7301234567890123456", "c-a", "crossing"),
    ("tiktok", "smuggler.one", "7301234567890123457", "c-a", "crossing"),
    ("tiktok", "docs.seller", "7309999999999999999", None, "documents"),
    ("instagram", "ig_agent_x", "Cx1AbCdEfGh", None, "crossing"),
    ("telegram", "rebaz_safar_uk", "144", None, "crossing"),
]
TEXTS = {
    "crossing": "Boat to Italy 2500€ WhatsApp +90 555 123 45 6{n}, ask for Kawa Hamid",
    "documents": "Forged passport + visa 3000€ call +44 7700 900 11{n}, Serwan Aziz",
}
REJECTED = ("telegram", "news_channel_ab", "77")


@pytest.fixture
def answered(tmp_path: Path) -> dict[str, Any]:
    from pipeline.refer.notices import export
    from pipeline.refer.review import decide
    from vigie.config_file import parse_config
    from vigie.store.analysis import save_analysis

    settings = {
        "data_dir": str(tmp_path / "data"),
        "referrals": {
            "notifier_name": NOTIFIER,
            "notifier_email": EMAIL,
            "organisation": "Referral Unit of Example",
            "trusted_flagger": True,
            "independence": INDEPENDENCE,
        },
    }
    config_path = tmp_path / "vigie.yaml"
    config_path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    config = parse_config(settings)
    everything = [*POSTS, (*REJECTED, None, "crossing")]
    with Store(config.store_path()) as store:
        store.upsert_posts(
            [
                Post(
                    platform=platform,
                    channel=account,
                    post_id=post_id,
                    url=post_url(platform, account, post_id),
                    text=TEXTS[kind].format(n=n),
                    published_at=f"2026-03-2{n}T10:00:00+00:00",
                    captured_at="2026-03-30T00:00:00+00:00",
                )
                for n, (platform, account, post_id, _, kind) in enumerate(everything)
            ]
        )
        for platform, account, post_id, cluster, kind in everything:
            row = advert_analysis(post_key(platform, account, post_id), cluster, "2026-03-30T00:00:00+00:00")
            if kind == "documents":
                row["cues"] = json.dumps([{"cue": "documents", "text": "passport", "weight": 1.0}])
            save_analysis(store, row)
        decide(store, "c-a", "confirmed", "smuggling offer", NOTIFIER)
        for platform, account, post_id, _, _ in POSTS[2:]:
            decide(store, post_key(platform, account, post_id), "confirmed", "smuggling offer", NOTIFIER)
        decide(store, post_key(*REJECTED), "rejected", "news report", NOTIFIER)
        notices: dict[str, str] = {}
        for platform in ("tiktok", "meta", "telegram"):
            result = export(store, config.referrals, platform, "json", tmp_path / "out")
            for notice in result.notices:
                for item in notice["evidence"]:
                    notices[item["post_key"]] = notice["notice_id"]
        store.db.execute(
            "UPDATE referrals SET referred_at = ? WHERE notice_id IS NOT NULL", ("2026-04-01T00:00:00+00:00",)
        )
    return {"config": config_path, "notices": notices, "tmp": tmp_path}


def vigie(answered: dict[str, Any], *args: str, check: bool = True) -> Any:
    return run_vigie(*args, config=answered["config"], check=check)


def test_the_art22_report_counts_notices_by_provider_type_and_action(answered):
    notices = answered["notices"]
    keys = [post_key(p, a, i) for p, a, i, _, _ in POSTS]
    tiktok_a, _, tiktok_docs, instagram, telegram = keys
    vigie(answered, "referrals", "outcome", notices[tiktok_a], "--removed", "--at", "2026-04-01T06:00:00")
    vigie(answered, "referrals", "outcome", notices[instagram], "--rejected", "not a violation")
    figures = json.loads(
        vigie(answered, "referrals", "stats", "--format", "art22", "--period", "2026", "--json").stdout
    )

    by_provider = {row["platform"]: row for row in figures["by_provider"]}
    assert figures["notices"] == len(set(notices.values())) == 4  # the cluster is one notice
    assert figures["items"] == len(POSTS)
    assert {p: (r["notices"], r["items"]) for p, r in by_provider.items()} == {
        "tiktok": (2, 3),
        "meta": (1, 1),
        "telegram": (1, 1),
    }
    assert by_provider["tiktok"]["actions"] == {"removed": 2, "pending": 1}
    by_type = {row["content_type"]: (row["notices"], row["items"]) for row in figures["by_content_type"]}
    assert by_type == {"crossing": (3, 4), "documents": (1, 1)}
    by_action = {row["action"]: row for row in figures["by_action"]}
    assert (by_action["removed"]["notices"], by_action["removed"]["items"]) == (1, 2)
    assert by_action["removed"]["median_hours"] == 6.0
    assert (by_action["rejected"]["notices"], by_action["rejected"]["items"]) == (1, 1)
    assert (by_action["pending"]["notices"], by_action["pending"]["items"]) == (2, 2)
    assert figures["rejected_by_analysts"] == 1
    assert figures["found"] == {"classifier": len(POSTS), "review_band": 0, "analyst": 0}
    assert tiktok_docs in notices and telegram in notices

    # Another year has none of these notices.
    other = json.loads(
        vigie(answered, "referrals", "stats", "--format", "art22", "--period", "2025", "--json").stdout
    )
    assert other["notices"] == 0 and other["by_provider"] == []


def test_the_art22_report_has_no_personal_data(answered):
    out = answered["tmp"] / "art22.md"
    done = vigie(answered, "referrals", "stats", "--format", "art22", "--period", "2026", "--out", str(out))
    assert "wrote the Art. 22 report (4 notices, 5 items)" in done.stdout
    text = out.read_text(encoding="utf-8")
    assert "Article 22(3)" in text and INDEPENDENCE in text
    assert "Trusted flagger: Referral Unit of Example." in text
    assert "| TikTok Technology Limited | 2 | 3 |" in text  # notices, items
    assert "| No answer or action yet | 4 | 5 | - |" in text
    assert "1 flagged\nitem was rejected by analysts" in text
    assert "of these,\n5 had been flagged as adverts by automated detection, 0 put in its review band" in text
    # Nothing that names a person, an account, a post, a URL or a contact.
    named = [NOTIFIER, EMAIL, "Kawa", "Serwan", "Hamid"]
    for platform, account, post_id, _, _ in [*POSTS, (*REJECTED, None, "")]:
        named += [account, post_id, post_url(platform, account, post_id)]
    assert [value for value in named if value.lower() in text.lower()] == []
    assert re.findall(r"\+?\d[\d ]{7,}\d", text) == []  # phone numbers
    assert re.findall(r"https?://|www\.|t\.me/|\w@\w|@[a-z_]{3,}", text) == []
    assert [line for line in text.splitlines() if "notice_id" in line or "VIG-" in line] == []


def test_the_art22_report_needs_the_independence_statement(answered):
    settings = yaml.safe_load(answered["config"].read_text(encoding="utf-8"))
    settings["referrals"]["independence"] = "   "
    answered["config"].write_text(yaml.safe_dump(settings), encoding="utf-8")
    failed = vigie(answered, "referrals", "stats", "--format", "art22", check=False)
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.strip().splitlines() == [
        "vigie: referrals.independence is empty: the Art. 22 report must explain how the flagger keeps its "
        "independence from the providers; write it in the configuration"
    ]
