"""Hostile input: what a crawled page, an export, a store file or a configuration can do.

Each ends in one clear line, an exit status that tells the truth, and nothing lost: crawl
state and run records move only after the data they stand for is stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from crawlers.telegram.mirror import render_page
from crawlers.telegram.preview import parse_page
from tests.conftest import make_channel, run_vigie
from vigie.store import Store

HUGE_ID = "9" * 23  # well past 2**63 - 1, the largest INTEGER SQLite stores


class PageServer:
    """A local HTTP server answering `/s/<channel>` (and `/s/<channel>?before=<id>` when
    given one) with exactly the bytes and Content-Type it was given: what a hostile or odd
    host sends."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, bytes]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                path = self.path if self.path in server.pages else self.path.split("?")[0].rstrip("/")
                if path == "/robots.txt":
                    content_type, body = "text/plain", b"User-agent: *\nAllow: /\n"
                elif path in server.pages:
                    content_type, body = server.pages[path]
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def page(
        self,
        channel: str,
        html: str | bytes,
        content_type: str = "text/html; charset=utf-8",
        before: int | None = None,
    ) -> None:
        body = html.encode("utf-8") if isinstance(html, str) else html
        self.pages[f"/s/{channel}" + (f"?before={before}" if before else "")] = (content_type, body)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def pages() -> Iterator[PageServer]:
    server = PageServer()
    yield server
    server.stop()


def store_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "vigie.db"


def stored_posts(path: Path) -> list[dict[str, Any]]:
    """What the store holds, read as a read-only command does: posts by id, sources, runs
    oldest first."""
    with Store(path, read_only=True) as store:
        return sorted(
            ({**p, "post_id": int(p["post_id"])} for p in store.posts()), key=lambda p: p["post_id"]
        )


def stored_sources(path: Path) -> list[dict[str, Any]]:
    with Store(path, read_only=True) as store:
        return [asdict(s) for s in store.sources()]


def stored_runs(path: Path) -> list[dict[str, Any]]:
    with Store(path, read_only=True) as store:
        return store.runs(1000)[::-1]


def crawl(server: PageServer, config: Path, *channels: str) -> subprocess.CompletedProcess[str]:
    return run_vigie("crawl", "telegram", *channels, "--base-url", server.url, "--json", config=config)


# -- 1. ids the store cannot hold ---------------------------------------------------------


def huge_id_page(channel: dict[str, Any]) -> str:
    html = render_page(channel, None, 40)
    name = channel["username"]
    return html.replace(f'data-post="{name}/3"', f'data-post="{name}/{HUGE_ID}"')


def test_a_post_id_beyond_64_bits_is_skipped_with_a_warning_and_the_source_goes_on(
    tmp_path, pages, config_file
):
    channel = make_channel("huge_ids", [1, 2, 3])
    pages.page("huge_ids", huge_id_page(channel))
    config = config_file()
    for outcome in ("new", "unchanged"):  # the second crawl is not stuck on the same page
        result = crawl(pages, config, "huge_ids")
        assert result.returncode == 0, result.stderr
        source = json.loads(result.stdout)["sources"][0]
        assert source[outcome] == 2 and source["dropped"] == 1 and source["error"] is None
        assert source["warnings"] == [
            f"skipped message 'huge_ids/{HUGE_ID}': id out of range (1 to 9223372036854775807) "
            f"({pages.url}/s/huge_ids)"
        ]
        assert f"@huge_ids: skipped message 'huge_ids/{HUGE_ID}'" in result.stderr

    channel["posts"].extend(make_channel("huge_ids", [4])["posts"])
    pages.page("huge_ids", huge_id_page(channel))
    result = crawl(pages, config, "huge_ids")
    assert result.returncode == 0 and json.loads(result.stdout)["sources"][0]["new"] == 1

    db = store_path(tmp_path)
    assert [r["post_id"] for r in stored_posts(db)] == [1, 2, 4]
    (source_row,) = stored_sources(db)
    assert (source_row["cursor"], source_row["last_error"]) == (4, None)
    runs = stored_runs(db)
    assert [r["status"] for r in runs] == ["ok", "ok", "ok"]
    assert all(json.loads(r["stats"])["totals"]["dropped"] == 1 for r in runs)


def test_a_newest_page_of_unreadable_posts_neither_stops_nor_completes_the_walk(tmp_path, pages, config_file):
    channel = make_channel("bad_top", [1, 2, 3])
    newest = render_page(channel, None, 1).replace('data-post="bad_top/3"', f'data-post="bad_top/{HUGE_ID}"')
    assert 'data-before="3"' in newest
    pages.page("bad_top", newest)
    pages.page("bad_top", render_page(channel, 3, 40), before=3)
    result = crawl(pages, config_file(), "bad_top")
    assert result.returncode == 0, result.stderr
    source = json.loads(result.stdout)["sources"][0]
    assert (source["new"], source["dropped"], source["complete"]) == (2, 1, True)
    assert pages.requests[-1] == "/s/bad_top?before=3"
    (row,) = stored_sources(store_path(tmp_path))
    assert row["cursor"] == 2

    # Without a way below it, the walk stops there, failed, and claims nothing.
    pages.page("bad_only", newest.replace("bad_top", "bad_only").replace('data-before="3"', ""))
    result = crawl(pages, config_file(), "bad_only")
    assert result.returncode == 1
    source = json.loads(result.stdout)["sources"][0]
    assert source["error"].startswith(f"no readable post on {pages.url}/s/bad_only: message 'bad_only/999")
    (row,) = [s for s in stored_sources(store_path(tmp_path)) if s["channel"] == "bad_only"]
    assert row["cursor"] is None and row["last_error"] == source["error"]


def test_an_export_with_out_of_range_values_imports_the_rest_and_closes_its_run(tmp_path, config_file):
    export = tmp_path / "result.json"
    message = {"type": "message", "date": "2026-03-01T10:00:00", "from": "x"}
    export.write_text(
        '{"name": "Big", "type": "public_channel", "id": 77, "messages": ['
        + json.dumps({**message, "id": 1, "date_unixtime": "1772359200", "text": "first"})
        + ', {"id": '
        + HUGE_ID
        + ', "type": "message", "date": "2026-03-01T10:00:00", "text": "huge id"}, '
        # A timestamp past the years datetime holds: the local `date` is used instead.
        + json.dumps({**message, "id": 3, "date_unixtime": "999999999999", "text": "far future"})
        + "]}",
        encoding="utf-8",
    )
    result = run_vigie(
        "import", "telegram-export", str(export), "--channel", "big_export", config=config_file()
    )
    assert result.returncode == 0, result.stderr
    assert f"skipped messages[1]: id out of range (1 to {2**63 - 1})" in result.stderr
    assert "imported 2 messages" in result.stdout
    db = store_path(tmp_path)
    rows = stored_posts(db)
    assert [(r["post_id"], r["published_at"]) for r in rows] == [
        (1, "2026-03-01T10:00:00+00:00"),
        (3, "2026-03-01T10:00:00"),  # local wall-clock time: no offset is claimed
    ]
    (run,) = stored_runs(db)
    assert run["status"] == "ok" and json.loads(run["stats"])["skipped"] == 1


# A fault where nothing expects one: the run must end `failed` and the command non-zero.
FAULT = """
import sys
from vigie.store import Store

def fail(self, *args, **kwargs):
    raise RuntimeError("disk says no")

setattr(Store, sys.argv.pop(1), fail)
from vigie.cli.main import main

main()
"""


def vigie_with_fault(method: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`vigie ARGS` with `Store.<method>` raising."""
    cmd = [sys.executable, "-c", FAULT, method, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_an_unexpected_error_in_the_crawl_fails_the_run_and_the_command(tmp_path, pages, config_file):
    pages.page("fault_chan", render_page(make_channel("fault_chan", [1, 2, 3]), None, 40))
    config = config_file()
    result = vigie_with_fault(
        "store_page", "--config", str(config), "crawl", "telegram", "fault_chan", "--base-url", pages.url
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "vigie: the crawl failed, recorded as a failed run: telegram:fault_chan: "
        "crawler error storing a page: RuntimeError: disk says no"
    )
    db = store_path(tmp_path)
    (run,) = stored_runs(db)
    assert run["status"] == "failed" and run["finished_at"]
    (source,) = stored_sources(db)
    assert source["cursor"] is None
    assert source["last_error"] == "crawler error storing a page: RuntimeError: disk says no"


def test_an_unexpected_error_in_an_import_fails_its_run(tmp_path, config_file):
    export = tmp_path / "result.json"
    export.write_text(
        json.dumps({"name": "G", "id": 5, "messages": [{"id": 1, "type": "message", "text": "hello"}]}),
        encoding="utf-8",
    )
    result = vigie_with_fault(
        "upsert_posts",
        "--config",
        str(config_file()),
        "import",
        "telegram-export",
        str(export),
        "--channel",
        "g_chan",
    )
    assert result.returncode == 1
    (run,) = stored_runs(store_path(tmp_path))
    assert run["status"] == "failed" and run["finished_at"]
    assert json.loads(run["stats"])["error"] == "RuntimeError: disk says no"


# -- 2. nesting deeper than libxml2 builds ----------------------------------------------------


def nested(text: str, depth: int) -> str:
    return "<span><b>" * (depth // 2) + text + "</b></span>" * (depth // 2)


def test_text_nested_past_libxml2s_limits_survives_the_crawl(tmp_path, pages, config_file):
    channel = make_channel("deep_chan", [1, 2, 3, 4])
    texts = {2: "past the default limit of 256", 3: "past the huge_tree limit of 2048"}
    for post in channel["posts"]:
        if post["id"] in texts:
            post["text"] = f"MARK{post['id']}"
    html = render_page(channel, None, 40)
    html = html.replace("MARK2", nested(texts[2], 300)).replace("MARK3", nested(texts[3], 5000))
    pages.page("deep_chan", html)
    result = crawl(pages, config_file(), "deep_chan")
    assert result.returncode == 0, result.stderr
    rows = {r["post_id"]: r["text"] for r in stored_posts(store_path(tmp_path))}
    assert rows == {p["id"]: texts.get(p["id"], p["text"]) for p in channel["posts"]}


@pytest.mark.parametrize("depth", [300, 3000, 40_000])
def test_parser_keeps_deep_text_and_every_post_after_it(depth):
    channel = make_channel("deep_parse", [1, 2, 3])
    channel["posts"][1]["text"] = "MARK"
    html = render_page(channel, None, 40).replace("MARK", nested("deep text survives", depth))
    started = time.monotonic()
    page = parse_page(html.encode("utf-8"), "http://127.0.0.1/s/deep_parse")
    assert time.monotonic() - started < 5
    expected = [post["text"] for post in channel["posts"]]
    expected[1] = "deep text survives"
    assert [p.text for p in page.posts] == expected


# -- 3. pages in another encoding ---------------------------------------------------------------

ARABIC = "رحلة مضمونة من إزمير إلى إيطاليا، السعر 2500€، واتساب فقط"
PERSIAN = "قاچاق نه، سفر قانوني با ويزا: پرسش و پاسخ گروه"  # Arabic yeh: windows-1256 has no Persian one


@pytest.mark.parametrize(
    ("content_type", "meta"),
    [
        ("text/html; charset=windows-1256", '<meta charset="windows-1256">'),  # both say it
        ("text/html", '<meta charset="windows-1256">'),  # only the page says it
        ("text/html; charset=windows-1256", ""),  # only the header says it
    ],
    ids=["header-and-meta", "meta-only", "header-only"],
)
def test_a_page_in_its_declared_encoding_is_read_as_such(tmp_path, pages, config_file, content_type, meta):
    channel = make_channel("cp_chan", [1, 2])
    channel["title"] = "Safar"
    channel["posts"][0]["text"], channel["posts"][1]["text"] = ARABIC, PERSIAN
    html = render_page(channel, None, 40).replace('<meta charset="utf-8">', meta)
    pages.page("cp_chan", html.encode("cp1256"), content_type)
    result = crawl(pages, config_file(), "cp_chan")
    assert result.returncode == 0, result.stderr
    rows = stored_posts(store_path(tmp_path))
    assert [r["text"] for r in rows] == [ARABIC, PERSIAN]


# -- 4. bad arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--base-url", "http://127.0.0.1:99999"],
            "Error: Invalid value for --base-url: 'http://127.0.0.1:99999': expected an http(s) URL such "
            "as https://t.me, with a host and a port from 1 to 65535",
        ),
        (
            ["--out", "/nonexistent/dir/x.jsonl"],
            "Error: Invalid value for --out: /nonexistent/dir/x.jsonl: the directory /nonexistent/dir "
            "does not exist",
        ),
    ],
    ids=["port-out-of-range", "out-in-missing-directory"],
)
def test_bad_crawl_arguments_fail_before_anything_runs(tmp_path, pages, config_file, args, message):
    pages.page("args_chan", render_page(make_channel("args_chan", [1, 2]), None, 40))
    result = run_vigie("crawl", "telegram", "args_chan", "--base-url", pages.url, *args, config=config_file())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == message
    assert "Traceback" not in result.stderr and "Unhandled error" not in result.stderr
    assert pages.requests == []
    db = store_path(tmp_path)
    assert not db.exists() or stored_runs(db) == []


# -- 5. a damaged store -------------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_damaged_store_is_refused_with_the_way_to_recover(tmp_path, pages, config_file):
    pages.page("dmg_chan", render_page(make_channel("dmg_chan", list(range(1, 41))), None, 40))
    config = config_file()
    assert crawl(pages, config, "dmg_chan").returncode == 0
    db = store_path(tmp_path)
    conn = sqlite3.connect(db)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'posts'").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with open(db, "r+b") as file:  # one page of the posts table overwritten with garbage
        file.seek((root - 1) * page_size)
        file.write(bytes(range(256)) * (page_size // 256))
    damaged = sha256(db)
    fetched = len(pages.requests)
    export = tmp_path / "result.json"
    export.write_text(json.dumps({"name": "G", "id": 5, "messages": [{"id": 1, "text": "x"}]}), "utf-8")

    for args in (
        ["status"],
        ["review"],
        ["crawl", "telegram", "dmg_chan", "--base-url", pages.url],
        ["import", "telegram-export", str(export), "--channel", "some_group"],
    ):
        result = run_vigie(*args, config=config)
        assert result.returncode == 1, args
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"vigie: {db}: cannot open the store: the file is damaged ("), line
        assert line.endswith(
            "nothing was written to it. Restore it from a backup, or copy what is readable into a new "
            f"file with `sqlite3 {db} .recover | sqlite3 {db.with_name('vigie-recovered.db')}` and point "
            "store.path at that file"
        ), line
    assert sha256(db) == damaged
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert len(pages.requests) == fetched  # the crawl stopped before fetching anything


# -- 6. a store Vigie may only read ----------------------------------------------------------


def reader() -> list[str]:
    """How to run a command that file permissions apply to. Root ignores them, so as root
    the command runs without the capabilities that let it (it stays root, so it can still
    run this interpreter)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot drop the capability to ignore permissions")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def test_commands_that_only_read_work_on_a_store_they_cannot_write(tmp_path, pages, config_file):
    pages.page("ro_chan", render_page(make_channel("ro_chan", [1, 2, 3]), None, 40))
    config = config_file()
    assert crawl(pages, config, "ro_chan").returncode == 0
    db = store_path(tmp_path)
    folder = db.parent
    db.chmod(0o444)
    folder.chmod(0o555)
    prefix = reader()
    try:
        probe = subprocess.run([*prefix, sys.executable, "-c", f"open({str(folder / 'probe')!r}, 'w')"])
        if probe.returncode == 0:
            pytest.skip("this process can write a 0555 directory: cannot make the store read-only here")
        before = (sha256(db), sorted(p.name for p in folder.iterdir()))

        def vigie(*args: str) -> subprocess.CompletedProcess[str]:
            cmd = [*prefix, sys.executable, "-m", "vigie", "--config", str(config), *args]
            return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

        for args in (
            ["status"],
            ["review"],
            ["review", "log"],
            ["links"],
            ["referrals", "stats"],
            ["report", "--out", str(tmp_path / "report.html")],
        ):
            result = vigie(*args)
            assert result.returncode == 0, (args, result.stderr)
        status = json.loads(vigie("status", "--json").stdout)
        assert [(s["channel"], s["posts"], s["cursor"]) for s in status["sources"]] == [("ro_chan", 3, 3)]
        assert (tmp_path / "report.html").is_file()

        # Writing is still refused, in one line.
        result = vigie("crawl", "telegram", "ro_chan", "--base-url", pages.url)
        assert result.returncode == 1
        assert result.stderr.strip() == (
            f"vigie: {db}: cannot open the store: attempt to write a readonly database"
        )
        assert (sha256(db), sorted(p.name for p in folder.iterdir())) == before
    finally:
        folder.chmod(stat.S_IRWXU)
        db.chmod(0o644)


# -- 7. hostile configuration files -------------------------------------------------------------

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("text", "messages"),
    [
        (
            "elasticsearch:\n  passwd: hunter2-pw\n  auth: Basic aHVudGVyMg==\n  api_key_value: sk-live-123456\n",
            [  # the file named once, each field after it
                "{path}: "
                + "; ".join(
                    f"elasticsearch.{key}: no such field (check the spelling against config/example.yaml)"
                    for key in ("passwd", "auth", "api_key_value")
                )
            ],
        ),
        (
            "crawl: &crawl\n  download_delay: 1\n  again: *crawl\n",
            [
                "{path}: line 1, column 8: an alias refers to a value that contains it; a configuration "
                "cannot be recursive"
            ],
        ),
        (
            LAUGHS,
            [
                "{path}: line 5, column 4: aliases expand this value to more than 10000 values; write the "
                "values out instead"
            ],
        ),
        ("sources: " + "[" * 5000 + "]" * 5000 + "\n", ["{path}: values are nested too deeply"]),
    ],
    ids=["secret-under-another-name", "self-reference", "billion-laughs", "deep-nesting"],
)
def test_a_hostile_configuration_is_one_line_fast_and_echoes_no_value(tmp_path, text, messages):
    from vigie.config_file import load_config
    from vigie.errors import ConfigurationError

    path = tmp_path / "vigie.yaml"
    path.write_text(text, encoding="utf-8")
    started = time.monotonic()
    result = run_vigie("status", config=path, timeout=60)
    assert time.monotonic() - started < 10  # the interpreter's start included
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"vigie: {path}: ")
    for message in messages:
        assert message.format(path=path) in line
    for secret in ("hunter2", "aHVudGVy", "sk-live"):
        assert secret not in line

    started = time.monotonic()
    with pytest.raises(ConfigurationError):
        load_config(path)
    assert time.monotonic() - started < 5  # unbounded, a billion laughs takes minutes
