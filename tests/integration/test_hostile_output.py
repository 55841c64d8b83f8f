"""Posts written to attack their readers: formulas for the trust team's spreadsheet, escape
sequences and bidi overrides for the analyst's terminal, `javascript:` links for whatever
renders the store, the index or an export."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from crawlers.telegram.export import read_export
from crawlers.telegram.mirror import render_page
from crawlers.telegram.preview import parse_page
from pipeline.index.documents import _actions_to_send
from pipeline.refer.notices import export
from pipeline.refer.review import decide
from tests.conftest import make_channel, read_jsonl, run_vigie
from tests.support.hostile import (
    CLEAR,
    ESC,
    HANDLE_FORMULA,
    HOSTILE_TEXTS,
    RLO,
    TITLE,
    UNSAFE_FOR_TERMINAL,
    fill_store,
)
from vigie.cli.main import cli
from vigie.config import ElasticsearchConfig, ReferralsConfig
from vigie.sanitize import for_terminal, is_formula, spreadsheet_cell, strip_controls, terminal_json, web_url
from vigie.store import Store

NOTIFIER = ReferralsConfig(notifier_name="Ana Analyst", notifier_email="ana@observatory.example")
WEB = ("http://", "https://")


# -- spreadsheets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("+90 536 741 22 90", "'+90 536 741 22 90"),
        (HANDLE_FORMULA, "'" + HANDLE_FORMULA),
        ("=1+1", "'=1+1"),
        ("-2+3", "'-2+3"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\n=1"),  # a CR is a line break in the store, and still a formula prefix
        ("  =1", "'  =1"),  # LibreOffice can trim leading spaces on import
        ("\x00@x", "'@x"),  # a control hiding the prefix goes, and the prefix is still seen
        ("Izmir → Italy", "Izmir → Italy"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (True, "True"),
    ],
)
def test_spreadsheet_cell(value, cell):
    assert spreadsheet_cell(value) == cell


def _notices_json(tmp_path: Path) -> dict:
    store_path = tmp_path / "json.db"
    fill_store(store_path, HOSTILE_TEXTS)
    with Store(store_path) as store:
        result = export(store, NOTIFIER, "telegram", "json", tmp_path / "json")
    return json.loads(result.files[0].read_text(encoding="utf-8"))


def _check_cell(value: str) -> None:
    """A cell is text that no spreadsheet evaluates: either it would not be read as a
    formula anyway, or it starts with the apostrophe and the rest is what was found."""
    if value.startswith("'"):
        assert is_formula(value[1:]), value
    else:
        assert not is_formula(value), value
    assert strip_controls(value) == value, value  # xlsx cannot hold them; a CR can hide a prefix


def test_xlsx_export_has_no_formula_and_json_keeps_the_raw_value(tmp_path):
    store_path = tmp_path / "xlsx.db"
    flagged = fill_store(store_path, HOSTILE_TEXTS)
    assert len(flagged) == len(HOSTILE_TEXTS)
    with Store(store_path) as store:
        result = export(store, NOTIFIER, "telegram", "xlsx", tmp_path / "out")
    [path] = result.files
    assert path.suffix == ".xlsx"

    sheet = load_workbook(path).active
    assert sheet is not None
    rows = list(sheet.iter_rows())
    header = [c.value for c in rows[0]]
    assert len(rows) - 1 == len(HOSTILE_TEXTS)  # a row per URL
    for row in rows:
        for c in row:
            assert c.data_type != "f", (c.coordinate, c.value)
            if c.value is not None:
                _check_cell(str(c.value))
    contacts = [str(r[header.index("contacts")].value) for r in rows[1:]]
    assert all(v.startswith(("'+", "'@")) for v in contacts), contacts
    assert any(HANDLE_FORMULA.split(";")[0] in v and "=HYPERLINK" in v for v in contacts), contacts

    # The JSON export of the same posts keeps what was found, unchanged.
    notices = _notices_json(tmp_path)["notices"]
    raw = sorted("; ".join(n["cues"]["contacts"]) for n in notices for _ in n["evidence"])
    assert sorted(v[1:] for v in contacts) == raw
    assert "@passage_master" in raw and any("@smuggler_boss" in v and "=HYPERLINK" in v for v in raw)


def test_csv_export_cells_start_with_an_apostrophe_where_a_formula_would(tmp_path):
    store_path = tmp_path / "csv.db"
    fill_store(store_path, HOSTILE_TEXTS)
    with Store(store_path) as store:
        result = export(store, NOTIFIER, "telegram", "csv", tmp_path / "out")
    with result.files[0].open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(HOSTILE_TEXTS)
    for row in rows:
        for value in row.values():
            _check_cell(value)
        assert row["contacts"].startswith(("'+", "'@"))
        assert row["url"].startswith("https://t.me/")


# -- the terminal -----------------------------------------------------------------------


def test_printable_text_and_json():
    raw = f"a{TITLE}b{CLEAR}c \x9b31m {RLO}gnp.exe\u202c\r\nnext\ttab \x7f"
    shown = for_terminal(raw)
    assert not UNSAFE_FOR_TERMINAL.search(shown)
    assert shown == "a]0;pwnedb[2Jc 31m \\u202egnp.exe\\u202c\nnext\ttab "
    dumped = terminal_json({"text": raw})
    assert not UNSAFE_FOR_TERMINAL.search(dumped)
    assert json.loads(dumped) == {"text": raw}  # the same value: only the writing differs


@pytest.fixture
def hostile_config(tmp_path, config_file):
    config = config_file(referrals={"notifier_name": "Ana", "notifier_email": "ana@example.org"})
    store_path = tmp_path / "data" / "vigie.db"
    store_path.parent.mkdir(parents=True)
    # As an older Vigie stored them: the terminal must be safe whatever the store holds.
    fill_store(store_path, HOSTILE_TEXTS, confirm=False, clean=False)
    with Store(store_path) as store:
        store.record_source_error(
            "telegram", "hostile_1", f"HTTP 500: {TITLE}{CLEAR}[/red] server says {RLO}ih\x9b2J"
        )
        # The third post is decided (and so leaves the queue): `review log` shows the decision.
        decide(store, "telegram:hostile_1:3", "confirmed", f"offer {CLEAR}{RLO}[/i]", f"ana{ESC}[8m")
    return config


@pytest.mark.parametrize(
    "args",
    [
        ["review"],
        ["review", "--json"],
        ["review", "log"],
        ["links"],
        ["links", "--json"],
        ["status"],
        ["status", "--json"],
        ["referrals", "export", "--platform", "telegram", "--dry-run"],
        ["daemon", "status"],
        ["daemon", "status", "--json"],
    ],
    ids=" ".join,
)
def test_commands_print_no_control_characters(hostile_config, args):
    result = CliRunner().invoke(cli, ["--config", str(hostile_config), *args])
    assert result.exit_code == 0, result.output
    assert result.output.strip()
    assert not UNSAFE_FOR_TERMINAL.search(result.output), repr(result.output)
    if "--json" in args:
        json.loads(result.output)


def test_review_shows_post_text_literally(hostile_config):
    result = CliRunner().invoke(cli, ["--config", str(hostile_config), "review"])
    assert result.exit_code == 0, result.output
    # The last column, "example", as one string: the table wraps it over several lines.
    rows = [line.split("│") for line in result.output.splitlines() if line.count("│") == 10]
    example = "".join(cells[-2].strip() for cells in rows)
    assert "[/b][link=javascript:alert(1)]book[/link]" in example  # text, not rich markup
    assert "\\u202egnp.exe" in example  # the override is shown, not obeyed
    queue = json.loads(CliRunner().invoke(cli, ["--config", str(hostile_config), "review", "--json"]).output)
    # JSON keeps the stored text exactly: only the escapes differ.
    assert any(TITLE in g["example"] for g in queue)


def test_import_cleans_text_and_keeps_only_web_links(tmp_path, config_file):
    export_file = tmp_path / "result.json"
    export_file.write_text(
        json.dumps(
            {
                "name": "Hostile",
                "type": "public_channel",
                "id": 77,
                "messages": [
                    {
                        "id": 5,
                        "type": "message",
                        "date": "2026-09-01T10:00:00",
                        "photo": "javascript:alert(1)",
                        "file": "files/timetable.pdf",
                        "text_entities": [
                            {"type": "plain", "text": f"Game {TITLE}{CLEAR}to UK "},
                            {
                                "type": "text_link",
                                "text": "book",
                                "href": "javascript:alert(document.cookie)",
                            },
                            {"type": "plain", "text": " or "},
                            {"type": "text_link", "text": "here", "href": "https://wa.me/447700900123"},
                            {"type": "link", "text": "data:text/html,<script>alert(1)</script>"},
                        ],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    [post] = read_export(export_file, "hostile").posts
    assert post.links == ["https://wa.me/447700900123"]
    assert post.media == ["files/timetable.pdf"]

    config = config_file()
    result = CliRunner().invoke(
        cli, ["--config", str(config), "import", "telegram-export", str(export_file), "--channel", "hostile"]
    )
    assert result.exit_code == 0, result.output
    with Store(tmp_path / "data" / "vigie.db") as store:
        [row] = list(store.posts())
    assert row["text"] == "Game ]0;pwned[2Jto UK book or heredata:text/html,<script>alert(1)</script>"
    assert json.loads(row["links"]) == ["https://wa.me/447700900123"]


# -- the HTML report --------------------------------------------------------------------


def test_report_shows_hostile_posts_as_inert_text(tmp_path):
    from pipeline.report import collect, render

    store_path = tmp_path / "report.db"
    # As an older Vigie stored them: with their control characters.
    # The second text posted again in another channel: a repost cluster shows it as its example.
    flagged = fill_store(store_path, [*HOSTILE_TEXTS, HOSTILE_TEXTS[1]], confirm=False, clean=False)
    with Store(store_path) as store:
        figures = collect(store)
    assert figures.totals.flagged == len(flagged) > 0 and figures.contacts and figures.clusters
    page = render(figures, f"Report {TITLE}{RLO}")
    # Nothing a browser would act on: no script, no link but to the web, no control character,
    # no bidi override reordering what the analyst reads, in the tables or in the SVG charts.
    assert "<script" not in page.lower() and "javascript:alert" not in page.split("</style>")[0]
    assert 'href="javascript' not in page.lower() and "<a href=" not in page.replace('<a href="https://', "")
    assert not UNSAFE_FOR_TERMINAL.search(page), repr(UNSAFE_FOR_TERMINAL.findall(page))
    assert "\\u202egnp.exe" in page  # the override is shown, not obeyed
    assert "[link=javascript:alert(1)]book[/link]" in page  # text from the post, not markup
    assert "<svg" in page and page.count("<svg") == page.count("</svg>")


# -- links ------------------------------------------------------------------------------


def test_parser_keeps_only_web_urls_in_link_fields():
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<section class="tgme_channel_history">
<div class="tgme_widget_message js-widget_message" data-post="hostile_chan/7">
 <div class="tgme_widget_message_forwarded_from">Forwarded from
  <a class="tgme_widget_message_forwarded_from_name" href="javascript:alert('fwd')">Boss</a></div>
 <a class="tgme_widget_message_reply" href="vbscript:msgbox(1)"><div class="tgme_widget_message_text js-message_reply_text">quoted</div></a>
 <a class="tgme_widget_message_photo_wrap" style="background-image:url('javascript:alert(1)')"></a>
 <a class="tgme_widget_message_photo_wrap" style="background-image:url('https://cdn4.telesco.pe/file/ok.jpg')"></a>
 <video src="data:video/mp4;base64,AAAA"></video>
 <video src="  java&#9;script:alert(2)"></video>
 <div class="tgme_widget_message_text js-message_text">Call <a href="javascript:alert(3)">@boss</a>
  or <a href="https://wa.me/447700900123">wa.me/447700900123</a> {ESC}[2J</div>
 <a class="tgme_widget_message_link_preview" href="javascript:alert(4)">preview</a>
 <div class="tgme_widget_message_footer"><a class="tgme_widget_message_date" href="https://t.me/hostile_chan/7">
  <time datetime="2026-09-01T10:00:00+00:00">10:00</time></a></div>
</div></section></body></html>"""
    [post] = parse_page(page, "https://t.me/s/hostile_chan").posts
    assert post.forwarded_from is None and post.reply_to is None
    assert post.media == ["https://cdn4.telesco.pe/file/ok.jpg"]
    assert post.links == ["https://wa.me/447700900123"]
    assert "Call @boss" in post.text  # the text around a dropped link stays


@pytest.mark.parametrize(
    "value",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "\x01javascript:alert(1)",
        "data:text/html,x",
        "vbscript:x",
        "tg://resolve?domain=x",
        "//evil.example/x",
        "http:///nohost",
    ],
)
def test_web_url_refuses_other_schemes(value):
    assert web_url(value) is None


def test_crawl_stores_clean_text_and_no_script_links(tmp_path, mirror_factory, config_file):
    channel = make_channel("hostile_chan", [5, 6])
    first, second = channel["posts"]
    first["text"] = HOSTILE_TEXTS[0]
    first["forwarded_from"] = "javascript://t.me/%0Aalert(document.domain)//x/1"
    second["text"] = HOSTILE_TEXTS[1]
    second["link_preview"] = {"url": "javascript:alert(1)", "site": "s", "title": "t", "description": "d"}
    mirror = mirror_factory({"hostile_chan": channel})
    assert "javascript:alert(1)" in render_page(channel, None, 20)  # served as a link
    out = tmp_path / "posts.jsonl"
    config = config_file()
    run_vigie(
        "crawl",
        "telegram",
        "hostile_chan",
        "--base-url",
        mirror.url,
        "--out",
        str(out),
        config=config,
        check=True,
    )
    conn = sqlite3.connect(tmp_path / "data" / "vigie.db")
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT * FROM posts ORDER BY post_id").fetchall()
    assert [r["post_id"] for r in rows] == ["5", "6"]  # stored as text since schema 6
    for row, written in zip(rows, read_jsonl(out), strict=True):
        for record in (dict(row), written):
            assert record["text"] == strip_controls(record["text"]), repr(record["text"])
            assert ESC not in record["text"] and "\x9b" not in record["text"]
            links = record["links"] if isinstance(record["links"], list) else json.loads(record["links"])
            media = record["media"] if isinstance(record["media"], list) else json.loads(record["media"])
            for url in [*links, *media, record["forwarded_from"], record["reply_to"]]:
                assert url is None or url.startswith(WEB), url
        assert len(row["payload_sha256"]) == 64  # the raw markup's hash stays the evidence
    assert "Game to UK ]0;pwned[2J yacht" in rows[0]["text"]


def test_index_documents_carry_only_web_links(tmp_path):
    store_path = tmp_path / "old.db"
    fill_store(store_path, HOSTILE_TEXTS[:1], confirm=False)
    with Store(store_path) as store:
        # What an older crawler stored: script links in the link fields.
        store.db.execute(
            "UPDATE posts SET links = ?, media = ?, reply_to = ?",
            (
                json.dumps(["javascript:alert(1)", "https://wa.me/905367412290"]),
                json.dumps(["data:text/html,x", "https://cdn4.telesco.pe/file/ok.jpg"]),
                "javascript:alert(2)",
            ),
        )
        [(_, action)] = list(_actions_to_send(store, ElasticsearchConfig()))
    assert action["_op_type"] == "create"  # never indexed yet: sent whole
    doc = action["_source"]
    assert doc["links"] == ["https://wa.me/905367412290"]
    assert doc["media"] == ["https://cdn4.telesco.pe/file/ok.jpg"]
    assert doc["reply_to"] is None


@pytest.mark.elasticsearch
def test_indexed_posts_are_clean_and_link_only_to_the_web(tmp_path, config_file, es_url):
    from elasticsearch import Elasticsearch

    config = config_file(elasticsearch={"url": es_url})
    store_path = tmp_path / "data" / "vigie.db"
    store_path.parent.mkdir(parents=True)
    fill_store(store_path, HOSTILE_TEXTS, confirm=False, clean=False)  # as an older Vigie stored them
    with Store(store_path) as store:
        store.db.execute(
            "UPDATE posts SET links = ?, media = ?",
            (json.dumps(["javascript:alert(1)", "https://wa.me/905367412290"]), json.dumps(["data:,x"])),
        )
    run_vigie("es", "replay", config=config, check=True)
    es = Elasticsearch(es_url)
    es.indices.refresh(index="vigie-posts")
    docs = [h["_source"] for h in es.search(index="vigie-posts", size=50)["hits"]["hits"]]
    assert len(docs) == len(HOSTILE_TEXTS)
    for doc in docs:
        assert doc["links"] == ["https://wa.me/905367412290"] and doc["media"] == []
        assert doc["text"] == strip_controls(doc["text"]) and ESC not in doc["text"]


def test_the_daemon_log_carries_no_control_characters(tmp_path):
    import logging

    from pipeline.daemon import TerminalSafeFormatter

    handler = logging.FileHandler(tmp_path / "daemon.log", encoding="utf-8")
    handler.setFormatter(TerminalSafeFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("vigie.daemon.hostile-test")
    logger.addHandler(handler)
    try:
        logger.warning("crawl failed: %s", HOSTILE_TEXTS[0])
    finally:
        logger.removeHandler(handler)
        handler.close()
    written = (tmp_path / "daemon.log").read_text(encoding="utf-8")
    assert "crawl failed: Game to UK" in written and not UNSAFE_FOR_TERMINAL.search(written)
