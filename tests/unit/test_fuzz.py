"""Generated hostile posts through everything that reads them: the page parser, the
normaliser, the entity extractor, the store, the printed commands and every export.

Nothing may crash (a parser's documented `VigieError` is an answer, not a crash), nothing
printed may hold a control character or a bidi override, and no spreadsheet cell may start
like a formula. Examples are bounded so the whole file runs in well under a minute.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from classifier.normalize import normalize
from crawlers.pipelines import clean_text
from crawlers.telegram.preview import parse_page
from pipeline.enrich.entities import extract
from pipeline.refer.notices import export
from pipeline.refer.review import decide
from pipeline.refer.spreadsheets import to_csv
from tests.support.hostile import HANDLE_FORMULA, PHONE, UNSAFE_FOR_TERMINAL, fill_store
from vigie.cli.main import cli
from vigie.config import ReferralsConfig
from vigie.errors import VigieError
from vigie.records import MAX_INTEGER
from vigie.sanitize import for_terminal, is_formula, spreadsheet_cell, strip_controls, terminal_json
from vigie.store import Store

# $VIGIE_FUZZ_EXAMPLES runs longer searches locally; CI keeps the default.
EXAMPLES = int(os.environ.get("VIGIE_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOTIFIER = ReferralsConfig(notifier_name="Ana", notifier_email="ana@example.org")

PIECES = [
    "\x1b[2J",
    "\x1b]0;title\x07",
    "\x1b[31m",
    "\x9b2J",
    "\x85",
    "\x7f",
    "\x00",
    "\x08",
    "\r",
    "\r\n",
    "\t",
    "\n",
    "\u202e",
    "\u202a",
    "\u2066",
    "\u2069",
    "\u200f",
    "\ufeff",
    "\u2028",
    "=",
    "+",
    "-",
    "@",
    '=HYPERLINK("http://evil")',
    "=cmd|' /C calc'!A0",
    HANDLE_FORMULA,
    PHONE,
    "00447700900123",
    "wa.me/905367412290",
    "t.me/=1+1",
    "@passage_master",
    "2500€",
    "٢٥٠٠ یورو",
    "Izmir → Italy",
    "[/b]",
    "[link=javascript:alert(1)]x[/link]",
    "javascript:alert(1)",
    "<script>",
    "&amp;",
    "%s",
    "ئیزمیر",
    "😀",
    "\u200d",
    "w h a t s a p p",
]
hostile_text = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=6)), min_size=0, max_size=25).map(
    "".join
)
hostile_url = st.one_of(
    st.sampled_from(
        [
            "javascript:alert(1)",
            " JaVaScRiPt:alert(1)",
            "java\tscript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "tg://resolve?domain=x",
            "//evil.example/x",
            "https://wa.me/905367412290",
            "/relative/path",
            "http://[broken",
            "",
        ]
    ),
    st.text(max_size=20),
)
# Ids as a page may carry them: mostly ordinary; sometimes zero, enormous, or not ASCII
# digits at all (which makes the whole page a MarkupChangedError, so it stays rare).
_UNUSUAL_IDS = {
    0: st.sampled_from(["²", "１２", "1e3", "-5", "12 "]),
    1: st.integers(MAX_INTEGER - 2, 10**30),
    2: st.just(0),
}
post_id = st.integers(0, 15).flatmap(lambda n: _UNUSUAL_IDS.get(n, st.integers(1, 10_000)))


def _message(pid: object, text: str, href: str, depth: int) -> str:
    from html import escape

    body = "<b>" * depth + escape(text).replace("\n", "<br/>") + "</b>" * depth
    h = escape(href, quote=True)
    return (
        f'<div class="tgme_widget_message js-widget_message" data-post="fuzz_chan/{pid}">'
        f'<div class="tgme_widget_message_forwarded_from"><a href="{h}">fwd</a></div>'
        f'<a class="tgme_widget_message_reply" href="{h}"><div class="js-message_reply_text">q</div></a>'
        f'<a class="tgme_widget_message_photo_wrap" style="background-image:url(\'{h}\')"></a>'
        f'<video src="{h}"></video>'
        f'<div class="tgme_widget_message_text js-message_text">{body} <a href="{h}">link</a></div>'
        f'<a class="tgme_widget_message_link_preview" href="{h}">preview</a>'
        f'<span class="tgme_widget_message_views">{escape(text[:5])}</span>'
        '<a class="tgme_widget_message_date" href="#"><time datetime="2026-09-01T10:00:00+00:00">x</time></a>'
        "</div>"
    )


@st.composite
def pages(draw: st.DrawFn) -> bytes:
    messages = draw(
        st.lists(
            st.tuples(post_id, hostile_text, hostile_url, st.sampled_from([0, 1, 40, 3000])),
            min_size=1,
            max_size=4,
        )
    )
    html = (
        '<!DOCTYPE html><html><head><meta charset="{charset}"></head><body><section>'
        + "".join(_message(*m) for m in messages)
        + "</section></body></html>"
    )
    charset = draw(st.sampled_from(["utf-8", "utf-16", "windows-1251", "iso-8859-1", "shift_jis"]))
    # Characters the encoding lacks become character references, as a server would send them.
    encoded = html.replace("{charset}", charset).encode(charset, errors="xmlcharrefreplace")
    if draw(st.booleans()):
        encoded = encoded.replace(b"\x00", b"")  # a mangled UTF-16 page: still no crash
    return encoded


@FUZZ
@given(pages())
def test_parser_never_crashes_and_keeps_only_web_links(body):
    try:
        page = parse_page(body, "https://t.me/s/fuzz_chan")
    except VigieError:
        return  # MarkupChangedError and friends: documented answers
    for post in page.posts:
        assert isinstance(post.post_id, int) and 0 < post.post_id <= MAX_INTEGER
        for url in [*post.links, *post.media, post.forwarded_from, post.reply_to]:
            assert url is None or url.startswith(("http://", "https://")), url
        stored = clean_text(post.text)
        assert stored == strip_controls(stored)
        assert not UNSAFE_FOR_TERMINAL.search(for_terminal(post.text))


@FUZZ
@given(hostile_text, st.sampled_from([None, "en", "ar", "fa", "tr", "und"]))
@example("A" * 300_000 + " +90 536 741 22 90 " + "w h a t s a p p " * 2_000, "en")  # an enormous post
def test_normaliser_and_entities_never_crash(text, lang):
    normalize(text)
    entities = extract(text, lang).to_json()
    json.dumps(entities, ensure_ascii=False)
    for contact in entities["contacts"]:
        cell = spreadsheet_cell(contact)
        assert not is_formula(cell) or cell.startswith("'")
        assert not UNSAFE_FOR_TERMINAL.search(for_terminal(contact))


@FUZZ
@given(hostile_text)
def test_printed_text_is_safe(text):
    shown = for_terminal(text)
    assert not UNSAFE_FOR_TERMINAL.search(shown)
    dumped = terminal_json({"text": text, "nested": [text]})
    assert not UNSAFE_FOR_TERMINAL.search(dumped)
    assert json.loads(dumped) == {"text": text, "nested": [text]}


def _assert_cells(cells: list[str]) -> None:
    for value in cells:
        assert not is_formula(value) or (value.startswith("'") and is_formula(value[1:])), value


@settings(max_examples=max(EXAMPLES // 3, 5), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hostile_text, min_size=1, max_size=3), st.booleans())
def test_store_commands_and_exports_of_hostile_posts(texts, cleaned):
    # The first post gives a contact, so at least one is flagged and exported.
    texts = [f"{texts[0]} {PHONE}", *texts[1:]]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = root / "vigie.yaml"
        config.write_text(
            json.dumps({"data_dir": str(root), "referrals": NOTIFIER.model_dump()}), encoding="utf-8"
        )
        # `cleaned` off: the store as an older Vigie left it, raw controls and all.
        flagged = fill_store(root / "vigie.db", texts, confirm=False, clean=cleaned)
        assert flagged
        runner = CliRunner()
        for args in (["review"], ["review", "--json"], ["links"], ["links", "--json"], ["status"]):
            result = runner.invoke(cli, ["--config", str(config), *args])
            assert result.exit_code == 0, (args, result.output)
            assert not UNSAFE_FOR_TERMINAL.search(result.output), (args, result.output)

        with Store(root / "vigie.db") as store:
            for key in flagged:
                decide(store, key, "confirmed", "offer", "ana")
            preview = export(store, NOTIFIER, "telegram", "xlsx", root / "out", dry_run=True)
            rows = list(csv.reader(io.StringIO(to_csv(preview.notices))))
            _assert_cells([value for row in rows for value in row])
            result = runner.invoke(
                cli, ["--config", str(config), "referrals", "export", "--platform", "telegram", "--dry-run"]
            )
            assert result.exit_code == 0 and not UNSAFE_FOR_TERMINAL.search(result.output), result.output
            written = export(store, NOTIFIER, "telegram", "xlsx", root / "out")
        sheet = load_workbook(written.files[0]).active
        assert sheet is not None
        cells = [c for row in sheet.iter_rows() for c in row if c.value is not None]
        assert all(c.data_type != "f" for c in cells)
        _assert_cells([str(c.value) for c in cells])
        # Each contacts cell is the raw value the JSON notices keep, neutralised.
        header = [c.value for c in next(sheet.iter_rows())]
        contacts = {str(row[header.index("contacts")].value or "") for row in sheet.iter_rows(min_row=2)}
        assert contacts == {spreadsheet_cell("; ".join(n["cues"]["contacts"])) for n in preview.notices}
