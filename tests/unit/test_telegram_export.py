"""Telegram Desktop JSON export importer."""

from __future__ import annotations

import json

import pytest

from crawlers.telegram.export import read_export
from tests.conftest import DATA, run_vigie
from vigie.errors import InputFormatError

EXPORT = DATA / "telegram" / "result.json"


def test_messages_become_posts_with_utc_dates_and_links():
    result = read_export(EXPORT)
    assert result.chats == 1
    assert [p.post_id for p in result.posts] == [2, 3, 4]  # service message and id-less one skipped
    assert result.skipped == ["messages[4]: no positive integer id"]
    first, second, third = result.posts
    assert first.key == "telegram:c1987654321:2"
    assert first.url == "https://t.me/c/1987654321/2"
    assert (
        first.text
        == "Yat ji Bodrumê ber bi Îtalyayê 🚤 7000€\nWhatsApp: +90 532 000 11 22 https://wa.me/905320001122"
    )
    assert first.published_at == "2026-09-01T12:30:00+00:00"
    assert first.links == ["https://wa.me/905320001122"]
    assert first.media == ["photos/photo_1@01-09-2026_12-30-00.jpg"]
    assert second.edited is True and second.forwarded_from == "Game UK Express"
    assert second.reply_to == "https://t.me/c/1987654321/2"
    assert second.text == "Kî dizane rê ewle ye? <not html> &amp;"  # exports are plain text already
    assert third.links == ["https://example.org/info"]
    assert len({p.payload_sha256 for p in result.posts}) == 3


def test_channel_name_option(tmp_path):
    result = read_export(EXPORT, channel="reya_ewropa")
    assert result.posts[0].url == "https://t.me/reya_ewropa/2"


def test_full_account_export_with_chat_list(tmp_path):
    chat = json.loads(EXPORT.read_text(encoding="utf-8"))
    path = tmp_path / "full.json"
    path.write_text(
        json.dumps({"about": "x", "chats": {"about": "y", "list": [chat, {**chat, "id": 5, "messages": []}]}})
    )
    result = read_export(path)
    assert result.chats == 2 and len(result.posts) == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"name": "x", "messages": [\n{"id": 1,,}]}', "invalid JSON at line 2, column 10"),
        ("[1, 2]", "expected a JSON object with 'messages'"),
        ('{"name": "x"}', "not a Telegram Desktop export"),
        ('{"name": "x", "messages": 5}', "field 'messages' is missing or not a list"),
    ],
)
def test_bad_exports_name_file_and_place(tmp_path, content, message):
    path = tmp_path / "result.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputFormatError) as info:
        read_export(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_cli_import_is_idempotent(tmp_path, config_file):
    config = config_file()
    first = run_vigie("import", "telegram-export", str(EXPORT), config=config, check=True)
    assert "3 new" in first.stdout and "1 skipped" in first.stdout
    again = run_vigie("import", "telegram-export", str(EXPORT), config=config, check=True)
    assert "0 new, 0 updated, 3 unchanged" in again.stdout


def test_cli_import_bad_file_is_one_line(tmp_path, config_file):
    path = tmp_path / "result.json"
    path.write_text("{oops", encoding="utf-8")
    result = run_vigie("import", "telegram-export", str(path), config=config_file())
    assert result.returncode == 1
    assert result.stderr.strip().startswith("vigie: ") and "invalid JSON at line 1" in result.stderr
    assert "Traceback" not in result.stderr
