"""`vigie crawl telegram` against a local mirror of t.me: a real HTTP server, real Scrapy."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from crawlers.telegram.mirror import Faults
from tests.conftest import make_channel, read_jsonl, run_vigie
from vigie.store import Store

GAPPY = [i for i in range(1, 61) if i not in (7, 8, 30, 44, 45, 46)]  # deleted posts leave gaps


def pages(mirror) -> list[str]:
    return [r for r in mirror.requests if r.startswith("/s/")]


def stored(config_dir: Path) -> dict[str, dict[str, Any]]:
    with Store(config_dir / "data" / "vigie.db", read_only=True) as store:
        return {r["key"]: r for r in store.posts()}


def source_row(config_dir: Path, channel: str) -> dict[str, Any]:
    with Store(config_dir / "data" / "vigie.db", read_only=True) as store:
        return asdict(store.source_state("telegram", channel))


def test_crawl_yields_exactly_the_posts_and_fields(tmp_path, mirror_factory, config_file):
    channel = make_channel("gappy_chan", GAPPY)
    mirror = mirror_factory({"gappy_chan": channel})
    out = tmp_path / "out.jsonl"
    result = run_vigie(
        "crawl",
        "telegram",
        "@gappy_chan",
        "--base-url",
        mirror.url,
        "--out",
        str(out),
        config=config_file(),
        check=True,
    )
    assert "complete" in result.stdout
    posts = read_jsonl(out)
    assert sorted(p["post_id"] for p in posts) == GAPPY
    by_id = {p["post_id"]: p for p in posts}
    for source in channel["posts"]:
        post = by_id[source["id"]]
        assert post["platform"] == "telegram" and post["channel"] == "gappy_chan"
        assert post["url"] == f"https://t.me/gappy_chan/{source['id']}"  # canonical, not the mirror
        assert post["text"] == source["text"]
        assert post["published_at"] == source["date"]
        assert isinstance(post["views"], int) and abs(post["views"] - source["views"]) <= max(
            1, source["views"] // 100
        )
        assert post["edited"] is source["edited"]
        assert post["forwarded_from"] == source["forwarded_from"]
        assert post["reply_to"] == (
            f"https://t.me/gappy_chan/{source['reply_to']}" if source["reply_to"] else None
        )
        assert len(post["media"]) == source["photos"] + int(source["video"])
        assert f"https://example.com/gappy_chan/{source['id']}" in post["links"]
    assert len(stored(tmp_path)) == len(GAPPY)
    # Pages of 20, newest first, then ?before=<lowest id of the page>.
    fetched = pages(mirror)
    assert fetched[0] == "/s/gappy_chan" and all("before=" in r for r in fetched[1:])
    assert "Vigie/" in mirror.log[-1][2]


def test_bundled_sample_channels_crawl_completely(tmp_path, mirror_factory, config_file, sample_channels):
    mirror = mirror_factory(sample_channels)
    out = tmp_path / "out.jsonl"
    run_vigie(
        "crawl",
        "telegram",
        *sample_channels,
        "--base-url",
        mirror.url,
        "--out",
        str(out),
        config=config_file(),
        check=True,
    )
    posts = read_jsonl(out)
    expected = {(name, p["id"]): p for name, ch in sample_channels.items() for p in ch["posts"]}
    assert {(p["channel"], p["post_id"]) for p in posts} == set(expected)
    for post in posts:
        assert post["text"] == expected[(post["channel"], post["post_id"])]["text"]
    assert len(stored(tmp_path)) == len(expected)


def test_missing_more_link_still_reaches_older_posts(tmp_path, mirror_factory, config_file):
    channel = make_channel("nomore_chan", GAPPY)
    mirror = mirror_factory({"nomore_chan": channel}, faults=Faults(no_more_link={("nomore_chan", None)}))
    run_vigie("crawl", "telegram", "nomore_chan", "--base-url", mirror.url, config=config_file(), check=True)
    assert len(stored(tmp_path)) == len(GAPPY)


def test_unavailable_sources_are_reported_and_the_run_goes_on(tmp_path, mirror_factory, config_file):
    channels = {
        "good_chan": make_channel("good_chan", list(range(1, 26))),
        "broken_chan": make_channel("broken_chan", [1, 2]),
    }
    faults = Faults(hidden={"hidden_chan"}, not_found={"gone_chan"}, broken={"broken_chan"})
    mirror = mirror_factory(channels, faults=faults)
    result = run_vigie(
        "crawl",
        "telegram",
        "good_chan",
        "hidden_chan",
        "gone_chan",
        "broken_chan",
        "--base-url",
        mirror.url,
        "--json",
        config=config_file(),
    )
    assert result.returncode == 0, result.stderr
    report = {s["channel"]: s for s in json.loads(result.stdout)["sources"]}
    assert report["good_chan"]["new"] == 25 and report["good_chan"]["error"] is None
    assert "no public preview for @hidden_chan" in report["hidden_chan"]["error"]
    assert "not found (HTTP 404" in report["gone_chan"]["error"]
    assert "markup changed" in report["broken_chan"]["error"]
    assert source_row(tmp_path, "hidden_chan")["last_error"].startswith("no public preview")
    assert source_row(tmp_path, "broken_chan")["cursor"] is None


def test_every_source_failing_exits_non_zero(tmp_path, mirror_factory, config_file):
    mirror = mirror_factory({}, faults=Faults(hidden={"hidden_chan"}))
    result = run_vigie("crawl", "telegram", "hidden_chan", "--base-url", mirror.url, config=config_file())
    assert result.returncode == 1
    assert "every source failed" in result.stderr


def test_429_is_retried_after_the_servers_delay(tmp_path, mirror_factory, config_file):
    channel = make_channel("busy_chan", list(range(1, 31)))
    mirror = mirror_factory({"busy_chan": channel}, faults=Faults(throttle={"busy_chan": 2}, retry_after="1"))
    run_vigie("crawl", "telegram", "busy_chan", "--base-url", mirror.url, config=config_file(), check=True)
    assert len(stored(tmp_path)) == 30
    first_pages = [t for t, target, _ in mirror.log if target == "/s/busy_chan"]
    assert len(first_pages) == 3  # two 429s, then the page
    assert first_pages[1] - first_pages[0] >= 0.95 and first_pages[2] - first_pages[1] >= 0.95


def test_persistent_5xx_gives_up_with_a_clear_error(tmp_path, mirror_factory, config_file):
    mirror = mirror_factory(
        {"down_chan": make_channel("down_chan", [1, 2])},
        faults=Faults(throttle={"down_chan": 100}, retry_after="0"),
    )
    result = run_vigie(
        "crawl",
        "telegram",
        "down_chan",
        "--base-url",
        mirror.url,
        "--json",
        config=config_file(crawl={"retry_times": 2}),
    )
    assert result.returncode == 1
    assert "HTTP 429" in result.stdout and "after retries" in result.stdout
    assert len(pages(mirror)) == 3


def test_robots_txt_is_obeyed(tmp_path, mirror_factory, config_file):
    mirror = mirror_factory(
        {"robo_chan": make_channel("robo_chan", [1, 2])}, robots="User-agent: *\nDisallow: /\n"
    )
    result = run_vigie(
        "crawl", "telegram", "robo_chan", "--base-url", mirror.url, "--json", config=config_file()
    )
    assert "robots.txt" in result.stdout
    assert not pages(mirror)


def test_incremental_crawl_fetches_only_new_posts_and_catches_recent_edits(
    tmp_path, mirror_factory, config_file
):
    channel = make_channel("inc_chan", list(range(1, 101)))
    mirror = mirror_factory({"inc_chan": channel})
    config = config_file()
    run_vigie("crawl", "telegram", "inc_chan", "--base-url", mirror.url, config=config, check=True)
    assert source_row(tmp_path, "inc_chan")["cursor"] == 100
    first = stored(tmp_path)

    posts = mirror.channels["inc_chan"]["posts"]
    posts.extend(make_channel("inc_chan", list(range(101, 111)))["posts"])
    posts[97]["text"] = "edited within the look-back"  # id 98
    posts[9]["text"] = "edited long ago"  # id 10: below the look-back, not re-read
    mirror.requests.clear()
    result = run_vigie(
        "crawl", "telegram", "inc_chan", "--base-url", mirror.url, "--json", config=config, check=True
    )
    report = json.loads(result.stdout)["sources"][0]
    assert report["new"] == 10 and report["updated"] == 1
    assert pages(mirror) == ["/s/inc_chan"]  # ids 91..110 cover the cursor less the look-back
    rows = stored(tmp_path)
    assert len(rows) == 110
    assert rows["telegram:inc_chan:98"]["text"] == "edited within the look-back"
    assert rows["telegram:inc_chan:10"]["text"] == first["telegram:inc_chan:10"]["text"]
    assert source_row(tmp_path, "inc_chan")["cursor"] == 110

    # A third run with nothing new adds nothing.
    result = run_vigie(
        "crawl", "telegram", "inc_chan", "--base-url", mirror.url, "--json", config=config, check=True
    )
    assert json.loads(result.stdout)["totals"]["new"] == 0


def test_page_limit_resumes_where_it_stopped(tmp_path, mirror_factory, config_file):
    channel = make_channel("deep_chan", list(range(1, 101)))
    mirror = mirror_factory({"deep_chan": channel})
    config = config_file()
    run_vigie(
        "crawl",
        "telegram",
        "deep_chan",
        "--base-url",
        mirror.url,
        "--max-pages",
        "2",
        config=config,
        check=True,
    )
    row = source_row(tmp_path, "deep_chan")
    assert row["cursor"] is None and (row["pending_before"], row["pending_top"]) == (61, 100)
    assert len(stored(tmp_path)) == 40

    # New posts arrive before the next run; the walk takes them, then jumps below 61.
    mirror.channels["deep_chan"]["posts"].extend(make_channel("deep_chan", list(range(101, 106)))["posts"])
    mirror.requests.clear()
    run_vigie(
        "crawl",
        "telegram",
        "deep_chan",
        "--base-url",
        mirror.url,
        "--max-pages",
        "3",
        config=config,
        check=True,
    )
    assert pages(mirror) == ["/s/deep_chan", "/s/deep_chan?before=61", "/s/deep_chan?before=41"]
    assert len(stored(tmp_path)) == 85
    run_vigie(
        "crawl",
        "telegram",
        "deep_chan",
        "--base-url",
        mirror.url,
        "--max-pages",
        "3",
        config=config,
        check=True,
    )
    assert len(stored(tmp_path)) == 105
    assert source_row(tmp_path, "deep_chan")["cursor"] == 105
    assert source_row(tmp_path, "deep_chan")["pending_before"] is None


def test_sigkill_mid_crawl_loses_and_duplicates_nothing(tmp_path, mirror_factory, config_file):
    ids = list(range(1, 201))
    channel = make_channel("kill_chan", ids)
    mirror = mirror_factory({"kill_chan": channel}, faults=Faults(delay=0.4))
    config = config_file()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vigie",
            "--config",
            str(config),
            "crawl",
            "telegram",
            "kill_chan",
            "--base-url",
            mirror.url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while len(pages(mirror)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    partial = stored(tmp_path)
    assert 0 < len(partial) < len(ids)
    assert source_row(tmp_path, "kill_chan")["cursor"] is None  # the walk never finished

    mirror.faults.delay = 0
    run_vigie("crawl", "telegram", "kill_chan", "--base-url", mirror.url, config=config, check=True)
    rows = stored(tmp_path)
    assert sorted(int(r["post_id"]) for r in rows.values()) == ids
    for key, row in partial.items():  # what was stored before the kill is unchanged
        assert rows[key]["first_seen"] == row["first_seen"] and rows[key]["text"] == row["text"]
    assert source_row(tmp_path, "kill_chan")["cursor"] == 200


def test_bad_arguments_are_usage_errors(tmp_path, config_file):
    result = run_vigie("crawl", "telegram", "a b", "--base-url", "http://127.0.0.1:9", config=config_file())
    assert result.returncode == 2
    assert "Invalid value for CHANNELS: 'a b': expected a Telegram channel username" in result.stderr
    result = run_vigie("crawl", "telegram", "okay_chan", "--max-pages", "0", config=config_file())
    assert result.returncode == 2 and "--max-pages" in result.stderr
