"""Every import format end to end, as an analyst goes: import the sample files, run, review,
confirm, and export a notice for the platform the posts came from. A re-import adds nothing,
and a repost cluster spans TikTok and Telegram."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_vigie
from vigie.platforms import NOTICE_PLATFORM
from vigie.store import Store

DATA = Path(__file__).parent.parent / "data" / "imports"
# The columns of tests/data/imports/csv/posts.csv (its README), given on the command line.
CSV_COLUMNS = {
    "platform": "Platform", "channel": "Account", "post_id": "Post ID", "url": "Link", "text": "Message",
    "published_at": "Posted", "author_name": "Author", "views": "Views", "likes": "Likes", "shares": "Shares",
    "comments": "Comments", "hashtags": "Tags", "mentions": "Mentioned", "links": "URLs", "media": "Media URLs",
}  # fmt: skip
CSV_MAP = [arg for field, column in CSV_COLUMNS.items() for arg in ("--map", f"{field}={column}")]
# format -> (its sample files, extra options)
FORMATS: dict[str, tuple[list[str], list[str]]] = {
    "zeeschuimer": (["zeeschuimer/capture.ndjson"], []),
    "4cat": (["4cat/tiktok.csv"], []),
    "meta-content-library": (
        ["meta-content-library/facebook.csv", "meta-content-library/instagram.jsonl"],
        [],
    ),
    "tiktok-research": (["tiktok-research/videos.json", "tiktok-research/pages.jsonl"], []),
    "x-api": (["x-api/search.json"], []),
    "csv": (["csv/posts.csv"], ["--timezone", "Europe/Istanbul", *CSV_MAP]),
}


def _config(config_file: Any) -> Path:
    # Sample media URLs name the platforms' CDNs, unreachable here: the text is what is tested.
    return config_file(
        media={"fetch": False}, referrals={"notifier_name": "Test Unit", "notifier_email": "unit@example.org"}
    )


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """The records of a sample file that parse (its malformed lines are there on purpose)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return [r for r in out if isinstance(r, dict)]


def _stored(config: Path) -> list[dict[str, Any]]:
    data_dir = config.parent / "data"
    with Store(data_dir / "vigie.db", read_only=True) as store:
        return list(store.posts())


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_each_format_imports_runs_reviews_and_exports_a_notice(fmt, config_file, shipped, tmp_path):
    files, options = FORMATS[fmt]
    paths = [str(DATA / f) for f in files]
    config = _config(config_file)

    first = run_vigie("import", fmt, *paths, *options, config=config)
    assert first.returncode == 0, first.stderr
    # Each sample has malformed records: named by file and line (a record inside one JSON
    # document, by its place: "search.json tweet 7"), and the rest imported.
    assert re.search(r"skipped \S+(:\d+| \w+ \d+): \S+", first.stderr), first.stderr
    stored = _stored(config)
    assert stored and any(p["platform"] != "telegram" for p in stored)
    assert all(isinstance(p["post_id"], str) and p["url"].startswith("https://") for p in stored)
    assert all(len(p["payload_sha256"]) == 64 for p in stored)

    again = run_vigie("import", fmt, *paths, *options, config=config)
    assert again.returncode == 0, again.stderr
    assert f"{len(stored)} unchanged" in again.stdout and " 0 new, 0 updated" in again.stdout
    assert len(_stored(config)) == len(stored)

    run = run_vigie("run", "--no-crawl", "--json", config=config, timeout=600)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["process"]["flagged"] >= 1

    queue = json.loads(run_vigie("review", "--json", "--limit", "100", config=config, check=True).stdout)
    adverts = [g for g in queue if g["band"] == "advert"]
    assert adverts, queue
    target = adverts[0]
    platform = NOTICE_PLATFORM[target["posts"][0]["platform"]]
    run_vigie("review", "confirm", target["target"], "--reason", "crossing offer with price and contact",
              "--reviewer", "ana", config=config, check=True)  # fmt: skip

    out = tmp_path / "notices"
    exported = run_vigie(
        "referrals", "export", "--platform", platform, "--format", "json", "--out", str(out), config=config
    )
    assert exported.returncode == 0, exported.stderr
    notices = [json.loads(p.read_text(encoding="utf-8")) for p in out.glob("*/notices.json")]
    assert len(notices) == 1 and notices[0]["platform"] == platform
    sent = {u for batch in notices for n in batch["notices"] for u in n["urls"]}
    assert {p["url"] for p in target["posts"]} <= sent
    stats = json.loads(run_vigie("referrals", "stats", "--json", config=config, check=True).stdout)
    assert stats["by_platform"][platform]["items"] == len(target["posts"])


def test_a_repost_cluster_spans_tiktok_and_telegram(config_file, shipped, mirror_factory, sample_channels):
    """The capture sample has a TikTok caption that is word for word a Telegram sample advert:
    once both are stored and run, they are one cluster, reviewed together, and each is
    referred to its own platform."""
    captions = {
        (item["data"].get("desc") or "").strip()
        for item in _json_lines(DATA / "zeeschuimer" / "capture.ndjson")
        if item.get("source_platform") == "tiktok.com"
    }
    name = next(
        name
        for name, ch in sample_channels.items()
        if any(p["text"].strip() in captions for p in ch["posts"])
    )
    mirror = mirror_factory({name: sample_channels[name]})
    config = _config(config_file)
    run_vigie("crawl", "telegram", name, "--base-url", mirror.url, config=config, check=True, timeout=300)
    run_vigie(
        "import", "zeeschuimer", str(DATA / "zeeschuimer" / "capture.ndjson"), config=config, check=True
    )
    run_vigie("run", "--no-crawl", "--json", config=config, check=True, timeout=600)

    queue = json.loads(run_vigie("review", "--json", "--limit", "100", config=config, check=True).stdout)
    (spanning,) = [g for g in queue if {p["platform"] for p in g["posts"]} >= {"telegram", "tiktok"}]
    run_vigie("review", "confirm", spanning["target"], "--reason", "same advert on two platforms",
              "--reviewer", "ana", config=config, check=True)  # fmt: skip
    for platform in ("telegram", "tiktok"):
        run_vigie(
            "referrals", "export", "--platform", platform, "--format", "json", config=config, check=True
        )
    stats = json.loads(run_vigie("referrals", "stats", "--json", config=config, check=True).stdout)
    by_platform = {p: v["items"] for p, v in stats["by_platform"].items()}
    assert by_platform["tiktok"] == sum(p["platform"] == "tiktok" for p in spanning["posts"])
    assert by_platform["telegram"] == sum(p["platform"] == "telegram" for p in spanning["posts"])
