"""Parsing saved preview pages: every field, and malformed input never crashes."""

from __future__ import annotations

import random
import urllib.error
import urllib.request
from typing import Any

import pytest

from crawlers.telegram.attachments import parse_duration, parse_size
from crawlers.telegram.mirror import Mirror, render_page
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
            assert post.channel and isinstance(post.post_id, int) and post.post_id > 0


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


# -- every post type, from a saved page in Telegram's markup -------------------------------

TYPES_URL = "https://t.me/s/kargo_yolu"


@pytest.fixture(scope="module")
def types_page():
    return parse_page((DATA / "telegram" / "post_types.html").read_bytes(), TYPES_URL)


def only(page, post_id):
    [attachment] = by_id(page, post_id).attachments
    return attachment.to_json()


def test_every_message_of_the_page_is_a_post(types_page):
    ids = [p.post_id for p in types_page.posts]
    assert ids == [2001, 2002, 2003, 2004, 2005, 2006, 2007, 2008, 2009, 2010, 2011, 2014, 2015, 2016, 2017]
    # Fallbacks that show only when a player or sticker fails are not withheld content.
    assert [p.post_id for p in types_page.posts if p.partial] == [2014]


@pytest.mark.parametrize(
    ("post_id", "expected"),
    [
        (
            2001,
            {
                "type": "poll",
                "question": "Hangi rota? Which route this week?",
                "options": ["Bodrum → Kos", "İzmir → Sakız 🚤"],
            },
        ),
        (2002, {"type": "sticker", "url": "https://cdn4.telesco.pe/file/sticker_2002.webp?token=st1"}),
        (
            2003,
            {
                "type": "sticker",
                "url": "https://cdn4.telesco.pe/file/sticker_2003.tgs",
                "thumbnail_url": "https://cdn4.telesco.pe/file/sticker_2003_thumb.webp",
            },
        ),
        (
            2004,
            {"type": "voice", "url": "https://cdn4.telesco.pe/file/voice_2004.ogg?token=vo1", "duration": 35},
        ),
        (2005, {"type": "document", "name": "fiyat_listesi_ekim.pdf", "size": round(1.2 * 1024**2)}),
        (2006, {"type": "audio", "title": "Yol Türküsü – Kaptan Ali"}),
        (
            2007,
            {
                "type": "round_video",
                "url": "https://cdn4.telesco.pe/file/round_2007.mp4?token=rv1",
                "duration": 12,
                "thumbnail_url": "https://cdn4.telesco.pe/file/round_2007_thumb.jpg",
            },
        ),
        (
            2008,
            {
                "type": "location",
                "url": "https://maps.google.com/maps?q=37.034410,27.430500&ll=37.034410,27.430500&z=16",
                "title": "37.034410,27.430500",
                "thumbnail_url": "https://static-maps.yandex.ru/1.x/?l=map&ll=27.430500,37.034410&z=15"
                "&size=600,300&scale=1.5&pt=27.430500,37.034410,comma&lang=en_US",
            },
        ),
        (2009, {"type": "contact", "title": "Mehmet Kaptan", "name": "+90 532 000 44 55"}),
        (
            2010,
            {
                "type": "video",
                "duration": 4 * 60 + 52,
                "thumbnail_url": "https://cdn4.telesco.pe/file/thumb_2010.jpg",
                "unavailable": "too_big",
            },
        ),
        (
            2017,
            {
                "type": "location",
                "url": "https://foursquare.com/v/4c2b5a1b7ce3b7136d5d3c5e",
                "title": "Bodrum Marina, Neyzen Tevfik Cd., Bodrum",
                "thumbnail_url": "https://static-maps.yandex.ru/1.x/?l=map&ll=27.4241,37.0344&z=15",
            },
        ),
    ],
)
def test_each_attachment_type(types_page, post_id, expected):
    assert only(types_page, post_id) == expected


def test_too_big_video_keeps_the_post_text_and_only_its_thumbnail(types_page):
    post = by_id(types_page, 2010)
    assert post.text == "Tekne videosu, yarın kalkış"
    assert post.media == ["https://cdn4.telesco.pe/file/thumb_2010.jpg"]
    assert post.partial is False


def test_album_with_a_video_too_big_keeps_every_item_in_order(types_page):
    album = by_id(types_page, 2011)
    assert [(a.type, a.url, a.unavailable) for a in album.attachments] == [
        ("photo", "https://cdn4.telesco.pe/file/album_2011_a.jpg", None),
        ("video", "https://cdn4.telesco.pe/file/video_2012.mp4?token=gv1", None),
        ("video", None, "too_big"),
    ]
    assert album.attachments[2].duration == 3725 and album.attachments[2].thumbnail_url.endswith(
        "thumb_2013.jpg"
    )
    assert album.text == "Geçen haftaki yolculuk"  # the nested text div, whitespace collapsed
    assert album.media == [
        "https://cdn4.telesco.pe/file/album_2011_a.jpg",
        "https://cdn4.telesco.pe/file/video_2012.mp4?token=gv1",
        "https://cdn4.telesco.pe/file/thumb_2013.jpg",
    ]


def test_post_the_preview_withholds_is_partial(types_page):
    post = by_id(types_page, 2014)
    assert post.partial is True and post.text == "" and post.attachments == []


def test_forward_without_a_public_link_keeps_the_name(types_page):
    post = by_id(types_page, 2015)
    assert post.forwarded_from is None and post.forwarded_from_name == "Hasan Usta"


def test_forward_with_a_link_keeps_both(types_page):
    post = by_id(types_page, 2016)
    assert post.forwarded_from == "https://t.me/ege_transfer/310"
    assert post.forwarded_from_name == "Ege Transfer"


def test_source_line_breaks_and_indentation_collapse_like_a_browser(types_page):
    # Only <br> breaks a line; the page source's newlines and runs of spaces are one space.
    assert by_id(types_page, 2015).text == "Yer sınırlı, erken yazın\nWhatsApp: +90 532 000 44 55"


def test_video_player_counted_once_with_its_link_preview(types_page):
    post = by_id(types_page, 2016)
    assert post.media == ["https://cdn4.telesco.pe/file/video_2016.mp4?token=v16"]  # two <video>s, one file
    video, preview = post.attachments
    assert (video.type, video.duration, video.thumbnail_url) == (
        "video",
        6,
        "https://cdn4.telesco.pe/file/thumb_2016.jpg",
    )
    assert preview.to_json() == {
        "type": "link_preview",
        "url": "https://example.org/ferry-times",
        "title": "Ferry timetable",
        "thumbnail_url": "https://cdn4.telesco.pe/file/preview_2016.jpg",
    }
    assert "https://example.org/ferry-times" in post.links


def test_existing_page_posts_carry_attachments(page):
    assert [a.type for a in by_id(page, 1180).attachments] == ["photo"]
    video = by_id(page, 1184).attachments
    assert [(a.type, a.duration) for a in video] == [("video", 42)]  # the quoted reply adds nothing
    assert [a.type for a in by_id(page, 1187).attachments] == ["link_preview"]
    assert [a.type for a in by_id(page, 1188).attachments] == ["photo", "photo"]


def test_a_too_big_notice_outside_a_player_is_still_a_video():
    body = (
        '<div class="tgme_widget_message js-widget_message" data-post="kargo_yolu/9">'
        '<div class="message_media_not_supported_wrap"><div class="message_media_not_supported">'
        '<div class="message_media_not_supported_label">Media is too big</div></div></div>'
        '<div class="tgme_widget_message_text">bak</div></div>'
    )
    [post] = parse_page(body, TYPES_URL).posts
    assert [a.to_json() for a in post.attachments] == [{"type": "video", "unavailable": "too_big"}]
    assert post.partial is False and post.text == "bak"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.2 MB", round(1.2 * 1024**2)),
        ("113.9 KB", round(113.9 * 1024)),
        ("512 B", 512),
        ("4,5 GB", round(4.5 * 1024**3)),
        ("4.5 MB · 5 Jan 2024", round(4.5 * 1024**2)),
        ("Kaptan Ali", None),
        ("", None),
        (None, None),
    ],
)
def test_sizes(raw, expected):
    assert parse_size(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0:35", 35),
        ("4:52", 292),
        ("1:02:05", 3725),
        (" 0:08\n ", 8),
        ("0:61", None),
        ("soon", None),
        (None, None),
    ],
)
def test_durations(raw, expected):
    assert parse_duration(raw) == expected


# -- the mirror renders the same types --------------------------------------------------------


def test_mirror_renders_every_new_type_and_parses_back():
    channel = make_channel("types_chan", [1, 2, 3, 4, 5, 6, 7, 8])
    extra: dict[int, dict[str, Any]] = {
        1: {"poll": {"question": "Which route?", "options": ["Kos", "Sakız"]}},
        2: {"document": {"name": "prices.pdf", "size": 3 * 1024**2}},
        3: {"voice": 35},
        4: {"sticker": True},
        5: {"too_big_video": 125, "partial": True},
        6: {"forwarded_from_name": "Hasan Usta", "text": "two  spaces\n  and an indent"},
        7: {
            "location": {"latitude": 37.03, "longitude": 27.43},
            "contact": {"name": "Mehmet", "phone": "+90 5"},
        },
        8: {"round_video": 12, "audio": {"title": "Song", "performer": "Ali"}},
    }
    for post in channel["posts"]:
        post.update(photos=0, video=False, forwarded_from=None, **extra[post["id"]])
    page = parse_page(render_page(channel, None, 20), "http://127.0.0.1/s/types_chan")
    got = {p.post_id: p for p in page.posts}
    assert [(a.question, a.options) for a in got[1].attachments] == [("Which route?", ["Kos", "Sakız"])]
    assert [(a.type, a.name, a.size) for a in got[2].attachments] == [("document", "prices.pdf", 3 * 1024**2)]
    assert [(a.type, a.duration) for a in got[3].attachments] == [("voice", 35)]
    assert [a.type for a in got[4].attachments] == ["sticker"] and not got[4].partial
    assert [(a.type, a.url, a.duration, a.unavailable) for a in got[5].attachments] == [
        ("video", None, 125, "too_big")
    ]
    assert got[5].partial is True
    assert (got[6].forwarded_from, got[6].forwarded_from_name) == (None, "Hasan Usta")
    assert (
        got[6].text == "two  spaces\n  and an indent"
    )  # rendered with no-break spaces, as browsers keep them
    assert [(a.type, a.title) for a in got[7].attachments] == [
        ("location", "37.03,27.43"),
        ("contact", "Mehmet"),
    ]
    assert [(a.type, a.duration or a.title) for a in got[8].attachments] == [
        ("round_video", 12),
        ("audio", "Song – Ali"),
    ]


def test_mirror_serves_its_images_and_the_preview_points_at_them():
    flyer = b"\xff\xd8\xff\xe0 a small jpeg"
    channel = make_channel("flyer_chan", [1])
    channel["posts"][0].update(photos=0, video=False, images=["flyer-1.jpg", "flyer 2.png"])
    with Mirror({"flyer_chan": channel}, media={"flyer-1.jpg": flyer, "flyer 2.png": b"\x89PNG"}) as mirror:
        page_url = f"{mirror.url}/s/flyer_chan"
        with urllib.request.urlopen(page_url) as response:
            [post] = parse_page(
                response.read(), page_url, content_type=response.headers["Content-Type"]
            ).posts
        assert [(a.type, a.url) for a in post.attachments] == [
            ("photo", f"{mirror.url}/media/flyer-1.jpg"),
            ("photo", f"{mirror.url}/media/flyer%202.png"),
        ]
        flyer_url, png_url = (str(a.url) for a in post.attachments)
        with urllib.request.urlopen(flyer_url) as response:
            assert response.headers["Content-Type"] == "image/jpeg"
            assert response.read() == flyer
        with urllib.request.urlopen(png_url) as response:
            assert response.headers["Content-Type"] == "image/png"
        for missing in ("/media/nothing.jpg", "/media/..%2F..%2Fpyproject.toml"):
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(mirror.url + missing)
            assert info.value.code == 404
