"""Telegram Desktop JSON export importer."""

from __future__ import annotations

import json

import pytest

from crawlers.telegram.export import read_export
from tests.conftest import DATA, run_vigie
from vigie.errors import InputFormatError

EXPORT = DATA / "telegram" / "result.json"
TYPES = DATA / "telegram" / "result_types.json"
LOCAL = DATA / "telegram" / "result_local_times.json"


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


# -- every message type of an export ----------------------------------------------------------


def attachments(path=TYPES):
    return {p.post_id: [a.to_json() for a in p.attachments] for p in read_export(path).posts}


def test_placeholders_are_not_files():
    result = read_export(TYPES)
    posts = {p.post_id: p for p in result.posts}
    assert attachments()[10] == [{"type": "photo", "size": 183402, "unavailable": "not_included"}]
    assert attachments()[11] == [
        {"type": "video", "name": "tekne.mp4", "size": 734003200, "duration": 292, "unavailable": "too_big"}
    ]
    assert posts[10].media == [] and posts[11].media == []
    assert posts[10].text == "Yeni ilan"


@pytest.mark.parametrize(
    ("post_id", "expected"),
    [
        (
            12,
            {
                "type": "voice",
                "url": "voice_messages/audio_1@01-10-2026_09-10-00.ogg",
                "name": "audio_1@01-10-2026_09-10-00.ogg",
                "size": 91234,
                "duration": 35,
            },
        ),
        (
            13,
            {
                "type": "round_video",
                "url": "round_video_messages/file_2@01-10-2026_09-15-00.mp4",
                "name": "file_2@01-10-2026_09-15-00.mp4",
                "size": 812345,
                "duration": 12,
                "thumbnail_url": "round_video_messages/file_2@01-10-2026_09-15-00.mp4_thumb.jpg",
            },
        ),
        (
            14,
            {
                "type": "sticker",
                "url": "stickers/sticker.webp",
                "name": "sticker.webp",
                "size": 23456,
                "thumbnail_url": "stickers/sticker.webp_thumb.jpg",
            },
        ),
        (
            15,
            {
                "type": "document",
                "url": "files/fiyat_listesi_ekim.pdf",
                "name": "fiyat_listesi_ekim.pdf",
                "size": 1258291,
            },
        ),
        (
            16,
            {
                "type": "audio",
                "url": "files/yol.mp3",
                "name": "yol.mp3",
                "size": 4718592,
                "duration": 187,
                "title": "Yol Türküsü – Kaptan Ali",
            },
        ),
        (
            17,
            {
                "type": "poll",
                "question": "Hangi rota? Which route this week?",
                "options": ["Bodrum → Kos", "İzmir → Sakız"],
            },
        ),
        (18, {"type": "contact", "title": "Mehmet Kaptan", "name": "+90 532 000 44 55"}),
        (19, {"type": "location", "title": "37.03441,27.4305"}),
        (20, {"type": "location", "title": "Bodrum Marina, Neyzen Tevfik Cd., Bodrum"}),
    ],
)
def test_each_export_type(post_id, expected):
    assert attachments()[post_id] == [expected]


def test_animation_is_a_video_and_files_are_media():
    [gif] = attachments()[21]
    assert gif["type"] == "video" and gif["duration"] == 4
    posts = {p.post_id: p for p in read_export(TYPES).posts}
    assert posts[15].media == ["files/fiyat_listesi_ekim.pdf"]
    assert posts[17].media == [] and posts[18].media == []  # a poll or contact is not a file


def test_odd_attachment_fields_are_dropped_not_fatal(tmp_path):
    path = tmp_path / "result.json"
    message = {
        "id": 1,
        "type": "message",
        "date_unixtime": "1790845200",
        "file": "files/x.bin",
        "file_size": "huge",
        "duration_seconds": -3,
        "media_type": ["not", "a", "string"],
        "poll": {"question": 7, "answers": "none"},
        "contact_information": {"first_name": None},
        "location_information": {"latitude": "north", "longitude": True},
        "text": "",
    }
    path.write_text(json.dumps({"name": "x", "id": 1, "messages": [message]}), encoding="utf-8")
    [post] = read_export(path).posts
    assert [a.to_json() for a in post.attachments] == [
        {"type": "document", "url": "files/x.bin"},
        {"type": "poll"},
        {"type": "contact"},
        {"type": "location"},
    ]


# -- older exports: local times without an offset ---------------------------------------------


def test_local_times_without_a_time_zone_keep_no_offset_and_warn_once():
    result = read_export(LOCAL)
    assert [p.published_at for p in result.posts] == [
        "2019-05-01T10:00:00",
        "2019-11-20T23:30:00",
        "2019-11-21T06:00:00+00:00",  # date_unixtime wins
    ]
    [warning] = result.warnings
    assert "2 message(s)" in warning and "--timezone" in warning and str(LOCAL) in warning


def test_local_times_with_a_time_zone_become_utc():
    result = read_export(LOCAL, timezone="Europe/Istanbul")
    assert [p.published_at for p in result.posts] == [
        "2019-05-01T07:00:00+00:00",
        "2019-11-20T20:30:00+00:00",
        "2019-11-21T06:00:00+00:00",
    ]
    assert result.warnings == []
    assert (
        read_export(LOCAL, timezone="America/New_York").posts[0].published_at == "2019-05-01T14:00:00+00:00"
    )


@pytest.mark.parametrize("zone", ["Europe/Atlantis", "../../etc/passwd", "Not a zone at all"])
def test_a_bad_time_zone_is_one_line(zone):
    with pytest.raises(InputFormatError, match="unknown time zone") as info:
        read_export(LOCAL, timezone=zone)
    assert "\n" not in str(info.value)


def test_cli_timezone_option_and_config(tmp_path, config_file):
    warned = run_vigie("import", "telegram-export", str(LOCAL), config=config_file(), check=True)
    assert "warning:" in warned.stderr and "2 message(s)" in warned.stderr
    converted = run_vigie(
        "import",
        "telegram-export",
        str(LOCAL),
        "--timezone",
        "Europe/Istanbul",
        config=config_file(data_dir=str(tmp_path / "other")),
        check=True,
    )
    assert "warning:" not in converted.stderr and "3 new" in converted.stdout
    from_config = run_vigie(
        "import",
        "telegram-export",
        str(LOCAL),
        config=config_file(data_dir=str(tmp_path / "third"), telegram={"export_timezone": "Europe/Istanbul"}),
        check=True,
    )
    assert "warning:" not in from_config.stderr


def test_cli_bad_timezone_is_a_usage_error(tmp_path, config_file):
    bad = run_vigie(
        "import", "telegram-export", str(LOCAL), "--timezone", "Mars/Olympus", config=config_file()
    )
    assert bad.returncode == 2 and "--timezone" in bad.stderr and "unknown time zone" in bad.stderr
    assert "Traceback" not in bad.stderr
    configured = run_vigie(
        "import",
        "telegram-export",
        str(LOCAL),
        config=config_file(telegram={"export_timezone": "Mars/Olympus"}),
    )
    assert configured.returncode == 1 and "telegram.export_timezone" in configured.stderr
    assert "Traceback" not in configured.stderr and len(configured.stderr.strip().splitlines()) == 1
