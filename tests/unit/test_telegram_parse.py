"""Parsing saved preview pages: every field, and malformed input never crashes."""

from __future__ import annotations

import random

import pytest

from crawlers.telegram.mirror import render_page
from crawlers.telegram.preview import parse_page, parse_views
from tests.conftest import DATA, make_channel
from vigie.errors import MarkupChangedError, SourceUnavailableError, VigieError

PAGE_URL = "https://t.me/s/rahat_travel"


@pytest.fixture(scope="module")
def page():
    return parse_page(
        (DATA / "telegram" / "channel_page.html").read_bytes(), PAGE_URL, "2026-11-01T00:00:00+00:00"
    )


def by_id(page, post_id):
    return next(p for p in page.posts if p.post_id == post_id)


def test_page_header_and_more_link(page):
    assert page.channel == "rahat_travel"
    assert page.title == "Rahat Travel 🚤"
    assert page.before == 1180
    # The service message (1185) is not a post; 1181, 1182, 1186 were deleted.
    assert [p.post_id for p in page.posts] == [1180, 1183, 1184, 1187, 1188]


def test_text_keeps_line_breaks_decodes_entities_and_emoji(page):
    post = by_id(page, 1180)
    assert post.text == (
        "رحلات مضمونة 🇬🇧\nمن دنكيرك الى بريطانيا & الدفع بعد الوصول\n\nواتساب: wa.me/447700900123 #UK"
    )
    assert post.url == "https://t.me/rahat_travel/1180"
    assert post.published_at == "2026-10-02T06:15:09+00:00"
    assert post.views == 845
    assert post.media == ["https://cdn4.telesco.pe/file/AbC123_photo1.jpg"]
    # Hashtag search links are not links out of the post.
    assert post.links == ["https://wa.me/447700900123"]
    assert post.forwarded_from is None and post.reply_to is None and post.edited is False
    assert len(post.payload_sha256) == 64 and post.captured_at == "2026-11-01T00:00:00+00:00"


def test_emoji_drawn_only_as_image_is_recovered(page):
    assert by_id(page, 1183).text == "یاتی ئیزمیر ⬅️ ئیتالیا\nنرخ: 7500€ ✅"


def test_forward_and_edited(page):
    post = by_id(page, 1183)
    assert post.forwarded_from == "https://t.me/kurd_game_uk/77"
    assert post.edited is True
    assert post.views == 1200


def test_reply_quote_is_not_part_of_the_text(page):
    post = by_id(page, 1184)
    assert post.text == "Arrived safe last night 💯 next boat Friday, ask @rahat_office"
    assert post.reply_to == "https://t.me/rahat_travel/1180"
    assert post.media == ["https://cdn4.telesco.pe/file/video_1184.mp4?token=abc"]
    assert post.views == 2050


def test_link_preview_and_album(page):
    post = by_id(page, 1187)
    assert post.links == ["https://example.org/warning?lang=en&src=tg"]
    assert post.views == 1_500_000
    album = by_id(page, 1188)
    assert album.text == ""
    assert album.media == [
        "https://cdn4.telesco.pe/file/album_a.jpg",
        "https://cdn4.telesco.pe/file/album_b.jpg",
    ]
    assert album.published_at == "2026-10-05T10:00:00+00:00"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("845", 845),
        ("1.2K", 1200),
        ("2.05K", 2050),
        ("1.5M", 1_500_000),
        ("12k", 12000),
        (" 7 ", 7),
        ("", None),
        (None, None),
        ("lots", None),
        ("1,5K", 1500),
    ],
)
def test_views(raw, expected):
    assert parse_views(raw) == expected


def test_channel_without_preview_is_a_clear_error():
    landing = (DATA / "telegram" / "landing_page.html").read_text(encoding="utf-8")
    with pytest.raises(SourceUnavailableError, match="no public preview"):
        parse_page(landing, "https://t.me/s/private_one")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("<html><body><p>Cloudflare says hi</p></body></html>", "no messages and no channel header"),
        (
            '<div class="tgme_widget_message"><div class="tgme_widget_message_text">x</div></div>',
            "no data-post",
        ),
        ('<div class="tgme_widget_message" data-post="chan/abc"></div>', "data-post 'chan/abc'"),
    ],
)
def test_markup_drift_raises_named_error(body, message):
    with pytest.raises(MarkupChangedError, match=message):
        parse_page(body, PAGE_URL)


def test_truncated_and_garbled_pages_never_crash():
    full = (DATA / "telegram" / "channel_page.html").read_bytes()
    rng = random.Random(7)
    for _ in range(1000):
        cut = full[: rng.randrange(len(full))]
        noisy = bytearray(cut)
        for _ in range(rng.randrange(5)):
            if noisy:
                noisy[rng.randrange(len(noisy))] = rng.randrange(256)
        try:
            result = parse_page(bytes(noisy), PAGE_URL)
        except VigieError:
            continue
        for post in result.posts:
            assert post.channel and post.post_id > 0


def test_mirror_pages_round_trip_every_field():
    channel = make_channel("roundtrip", [1, 2, 3, 5, 7, 9, 10, 14, 15, 20])
    page = parse_page(render_page(channel, None, 20), "http://127.0.0.1/s/roundtrip")
    assert [p.post_id for p in page.posts] == [1, 2, 3, 5, 7, 9, 10, 14, 15, 20]
    for post, source in zip(page.posts, channel["posts"], strict=True):
        assert post.text == source["text"]
        assert abs(post.views - source["views"]) <= max(1, 0.01 * source["views"])  # "1.2K" is lossy
        assert post.edited == source["edited"]
        assert post.forwarded_from == source["forwarded_from"]
        assert post.reply_to == (
            f"https://t.me/roundtrip/{source['reply_to']}" if source["reply_to"] else None
        )
        assert len(post.media) == source["photos"] + int(source["video"])
        assert post.links == ["https://t.me/roundtrip", f"https://example.com/roundtrip/{source['id']}"]
        assert post.published_at == source["date"]
