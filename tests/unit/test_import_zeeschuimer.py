"""Zeeschuimer NDJSON importer: each platform's captured objects become posts."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from crawlers.imports.zeeschuimer import read_zeeschuimer
from tests.conftest import DATA
from vigie.errors import InputFormatError
from vigie.records import Attachment

CAPTURE = DATA / "imports" / "zeeschuimer" / "capture.ndjson"
TELEGRAM = (
    Path(__file__).parents[2] / "crawlers" / "telegram" / "samples" / "channels" / "rebaz_safar_uk.json"
)


def _lines() -> list[bytes]:
    return CAPTURE.read_bytes().splitlines()


def _item(number: int) -> dict[str, Any]:
    """The capture's item on line `number` (1-based), to vary in a test."""
    return dict(json.loads(_lines()[number - 1]))


def _write(tmp_path: Path, *items: Any) -> Path:
    path = tmp_path / "capture.ndjson"
    path.write_text(
        "\n".join(i if isinstance(i, str) else json.dumps(i, ensure_ascii=False) for i in items) + "\n"
    )
    return path


@pytest.fixture(scope="module")
def capture() -> Any:
    result = read_zeeschuimer([CAPTURE])
    return result, {p.key: p for p in result.posts}


def test_every_platform_read_and_bad_lines_named(capture):
    result, _ = capture
    assert result.records == 12
    assert [p.key for p in result.posts] == [
        "tiktok:7412345678901234567",
        "tiktok:7413000000000000011",
        "instagram:C9xYz_AbCdE",
        "instagram:C8aBcDeFgHi",
        "x:1834567890123456789",
        "x:1835000000000000042",
        "threads:DA1b2C3d4E5",
    ]
    assert result.skipped == [
        "capture.ndjson:5: line: not JSON: Unterminated string starting at column 144",
        "capture.ndjson:9: source_platform: 'linkedin.com' is not a platform Vigie keeps",
        "capture.ndjson:10: data.id: missing",
        "capture.ndjson:11: data.taken_at: 'yesterday' is not a time",
        "capture.ndjson:12: data.legacy.favorite_count: 'lots' is not a count",
    ]
    assert result.warnings == [
        "1 'linkedin.com' record(s) left out: Vigie reads instagram, threads, tiktok, x captures"
    ]


def test_tiktok_video(capture):
    _, posts = capture
    post = posts["tiktok:7412345678901234567"]
    telegram = next(p for p in json.loads(TELEGRAM.read_text(encoding="utf-8"))["posts"] if p["id"] == 144)
    # The same advert as on Telegram, word for word: one repost cluster across platforms.
    assert post.text == telegram["text"]
    assert post.post_id == "7412345678901234567"
    assert post.url == "https://www.tiktok.com/@rebaz.game.uk/video/7412345678901234567"
    assert post.author_name == "Rebaz Safar 🇬🇧"
    assert post.published_at == "2026-09-09T06:02:00+00:00"  # createTime, Unix seconds
    assert post.captured_at == "2026-09-14T15:33:20+00:00"  # timestamp_collected, milliseconds
    assert (post.views, post.likes, post.shares, post.comments) == (20544, 812, 97, 64)
    assert post.mentions == ["rebaz_game_uk"] and post.hashtags == [] and post.links == []
    video = "https://v16-webapp-prime.tiktok.com/video/tos/maliva/7412345678901234567.mp4"
    cover = "https://p16-sign-va.tiktokcdn.com/obj/tos-maliva-p-0068/cover_7412345678901234567.jpeg"
    assert post.attachments == [Attachment("video", url=video, thumbnail_url=cover, duration=14)]
    assert post.media == [video]
    assert post.payload_sha256 == hashlib.sha256(_lines()[0]).hexdigest()


def test_tiktok_photo_post(capture):
    _, posts = capture
    post = posts["tiktok:7413000000000000011"]
    assert post.published_at == "2026-09-10T14:20:00+00:00"  # createTime given as a string
    base = "https://p16-sign-va.tiktokcdn.com/tos-maliva-i-photomode/"
    # The javascript: URL first in the second image's list is passed over.
    assert post.media == [base + "img_1.jpeg", base + "img_2.jpeg"]
    assert [a.type for a in post.attachments] == ["photo", "photo"]
    assert post.hashtags == ["جواز_سفر", "اقامة_اوروبية"]
    assert post.mentions == ["docs.express"]
    assert post.author_name == "أوراق أوروبا"


def test_instagram_carousel_and_reel(capture):
    _, posts = capture
    carousel = posts["instagram:C9xYz_AbCdE"]
    assert carousel.url == "https://www.instagram.com/p/C9xYz_AbCdE/"
    assert carousel.post_id == "C9xYz_AbCdE"  # the shortcode, not the numeric pk
    assert carousel.published_at == "2026-09-12T18:30:00+00:00"
    assert carousel.author_name == "سفر امید | Omid Safar"
    assert carousel.hashtags == ["استانبول", "یونان", "مهاجرت"]
    assert (carousel.likes, carousel.comments, carousel.views) == (233, 41, None)
    cdn = "https://scontent.cdninstagram.com/"
    assert carousel.attachments == [
        Attachment("photo", url=cdn + "v/t51.29350-15/carousel_1_1080.jpg"),
        Attachment(
            "video",
            url=cdn + "o1/v/t16/carousel_2.mp4",
            thumbnail_url=cdn + "v/t51.29350-15/carousel_2_cover.jpg",
        ),
    ]
    reel = posts["instagram:C8aBcDeFgHi"]
    assert reel.views == 48210  # play_count, view_count being null
    assert reel.links == ["https://example.org/help"]
    assert reel.media == [cdn + "o1/v/t16/reel.mp4"]


def test_x_tweet_entities(capture):
    _, posts = capture
    post = posts["x:1834567890123456789"]
    assert post.url == "https://x.com/gameuk_express/status/1834567890123456789"
    assert post.author_name == "Game UK Express 🇬🇧"  # the user result's newer `core`
    assert post.published_at == "2026-09-12T16:45:00+00:00"
    assert (post.views, post.likes, post.shares, post.comments) == (
        15230,
        45,
        13,
        7,
    )  # 12 retweets and 1 quote post
    assert post.hashtags == ["GameUK", "Dunkirk"]
    assert post.mentions == ["uk_routes_help"]
    # The t.co links of the text stand for the expanded link and the photo: not kept twice.
    assert post.links == ["https://wa.me/33612345678"]
    assert post.attachments == [Attachment("photo", url="https://pbs.twimg.com/media/GXboat01.jpg")]


def test_x_visibility_wrapper_long_text_and_video(capture):
    _, posts = capture
    post = posts["x:1835000000000000042"]
    assert post.author_name == "مرصد الهجرة"  # the user result's `legacy`
    assert post.text.startswith("🔴 تقرير |") and post.text.endswith("#الهجرة #تهريب_البشر")
    assert "…" not in post.text  # the note_tweet's whole text, not the cut full_text
    assert post.links == ["https://example.org/investigation"]
    assert post.hashtags == ["الهجرة", "تهريب_البشر"]
    assert post.views == 98012
    high = "https://video.twimg.com/ext_tw_video/1835000000000000099/pu/vid/1280x720/high.mp4"
    thumb = "https://pbs.twimg.com/ext_tw_video_thumb/1835000000000000099/pu/img/thumb.jpg"
    assert post.attachments == [Attachment("video", url=high, thumbnail_url=thumb, duration=95)]


def test_threads_link_preview(capture):
    _, posts = capture
    post = posts["threads:DA1b2C3d4E5"]
    assert post.url == "https://www.threads.net/@bogazici.turizm/post/DA1b2C3d4E5"
    assert post.published_at == "2026-09-13T11:46:40+00:00"
    assert (post.likes, post.shares, post.comments) == (19, 2, 3)
    assert post.links == ["https://www.gov.uk/standard-visitor"]  # out of l.threads.com's redirect
    assert post.attachments == [
        Attachment(
            "link_preview",
            url="https://www.gov.uk/standard-visitor",
            title="Visit the UK as a Standard Visitor - GOV.UK",
            thumbnail_url="https://scontent.cdninstagram.com/v/link_preview.jpg",
        )
    ]
    assert post.hashtags == ["vize", "ingiltere"] and post.media == []


def test_reading_twice_gives_the_same_posts():
    first, second = read_zeeschuimer([CAPTURE]), read_zeeschuimer([CAPTURE])
    assert [(p.key, p.payload_sha256) for p in first.posts] == [
        (p.key, p.payload_sha256) for p in second.posts
    ]
    assert [p.to_json() for p in first.posts] == [p.to_json() for p in second.posts]


def test_hostile_text_and_links_kept_as_text_only(tmp_path):
    tweet = _item(6)
    legacy = tweet["data"]["legacy"]
    text = "\u202egame UK\u202c \u200d👨\u200d👩\u200d👧 javascript:alert(1) " + "ع" * 1_000_000
    legacy["full_text"] = text
    legacy["entities"]["urls"] = [{"url": "https://t.co/x", "expanded_url": "javascript:alert(1)"}]
    legacy["extended_entities"]["media"][0]["media_url_https"] = "javascript:alert(2)"
    result = read_zeeschuimer([_write(tmp_path, tweet)])
    (post,) = result.posts
    assert post.text == text  # untouched here; the CLI strips controls before storing
    assert post.links == []
    assert post.attachments == []
    assert post.media == []


def test_retweet_reply_and_unavailable_tweet(tmp_path):
    original = copy.deepcopy(_item(6)["data"])
    repost = _item(7)
    data = repost["data"]["tweet"]
    data["legacy"]["retweeted_status_result"] = {"result": original}
    data["legacy"]["in_reply_to_status_id_str"] = "1834567890000000000"
    data["legacy"]["in_reply_to_screen_name"] = "Some_One"
    gone = {**_item(7), "data": {"__typename": "TweetTombstone", "tombstone": {}}}
    result = read_zeeschuimer([_write(tmp_path, repost, gone)])
    (post,) = result.posts
    assert post.text == original["legacy"]["full_text"]
    assert post.forwarded_from == "https://x.com/gameuk_express"
    assert post.forwarded_from_name == "Game UK Express 🇬🇧"
    assert post.reply_to == "https://x.com/some_one/status/1834567890000000000"
    assert result.skipped == [
        "capture.ndjson:2: data.__typename: TweetTombstone: the tweet itself is not in the capture"
    ]


def test_x_author_without_screen_name_uses_the_id_permalink(tmp_path):
    tweet = _item(6)
    tweet["data"]["core"] = {"user_results": {}}
    for media in (
        tweet["data"]["legacy"]["extended_entities"]["media"] + tweet["data"]["legacy"]["entities"]["media"]
    ):
        media["expanded_url"] = ""
    (post,) = read_zeeschuimer([_write(tmp_path, tweet)]).posts
    assert post.channel == "1500000000000000001"
    assert post.url == "https://x.com/i/web/status/1834567890123456789"


def test_tiktok_transcript_author_forms_and_bad_fields(tmp_path):
    spoken = _item(1)
    spoken["data"]["voice_to_text"] = "boat leaves every two days"
    embedded = _item(1)
    embedded["data"]["author"], embedded["data"]["nickname"] = "Other.Account", "Other"
    embedded["data"]["id"] = "7412345678901234999"
    no_author = _item(1)
    del no_author["data"]["author"]
    bad_handle = _item(1)
    bad_handle["data"]["author"]["uniqueId"] = "not a handle/../"
    bad_kind = _item(1)
    bad_kind["data"]["stats"] = [1, 2]
    result = read_zeeschuimer([_write(tmp_path, spoken, embedded, no_author, bad_handle, bad_kind)])
    first, second = result.posts
    assert first.text.endswith("@rebaz_game_uk\n\nboat leaves every two days")
    assert (second.channel, second.author_name) == ("other.account", "Other")
    assert result.skipped == [
        "capture.ndjson:3: data.author: missing (no handle and no account id)",
        "capture.ndjson:4: data.author.uniqueId: tiktok handle 'not a handle/../': expected letters, digits, "
        "'_', '.' or '-' (up to 100), as the platform writes it",
        "capture.ndjson:5: data.stats: expected an object, found list",
    ]


def test_4cat_shaped_line_and_not_an_item(tmp_path):
    item = _item(3)
    fourcat = {**item["data"], "__import_meta": {k: v for k, v in item.items() if k != "data"}}
    unnamed = {k: v for k, v in item.items() if k != "source_platform"}
    result = read_zeeschuimer([_write(tmp_path, fourcat, {"id": 1}, "[1, 2]", unnamed)])
    assert [p.key for p in result.posts] == ["instagram:C9xYz_AbCdE"]
    assert result.posts[0].captured_at == "2026-09-14T15:35:20+00:00"
    assert result.skipped == [
        "capture.ndjson:2: data: missing: not a Zeeschuimer item",
        "capture.ndjson:3: data: missing: not a Zeeschuimer item",
        "capture.ndjson:4: source_platform: missing",
    ]


def test_a_file_that_is_not_a_capture_is_refused(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("id,body\n1,hello\n")
    with pytest.raises(InputFormatError) as caught:
        read_zeeschuimer([path])
    assert str(caught.value) == (
        f"{path}: not a Zeeschuimer export (no line has 'source_platform' and 'data'); "
        "a 4CAT CSV goes to `vigie import 4cat`"
    )
    with pytest.raises(InputFormatError, match="no such file"):
        read_zeeschuimer([tmp_path / "missing.ndjson"])


def test_instagram_older_graph_and_grid_formats(tmp_path):
    base = {k: v for k, v in _item(3).items() if k != "data"}
    graph = {
        "__typename": "GraphImage",
        "shortcode": "B1gRaPh0000",
        "taken_at_timestamp": 1789237800,
        "edge_media_to_caption": {"edges": [{"node": {"text": "Yat ji Bodrumê #italya"}}]},
        "owner": {"id": "123", "username": "Yat.Bodrum"},
    }
    grid = {
        "__typename": "XIGPolarisPhotoMedia",
        "code": "C0gRiD00000",
        "caption": None,
        "user": {"pk": "456", "username": "grid.account"},
        "display_uri": "https://scontent.cdninstagram.com/v/grid.jpg",
    }
    first, second = read_zeeschuimer(
        [_write(tmp_path, {**base, "data": graph}, {**base, "data": grid})]
    ).posts
    assert (first.key, first.text, first.hashtags) == (
        "instagram:B1gRaPh0000",
        "Yat ji Bodrumê #italya",
        ["italya"],
    )
    assert first.published_at == "2026-09-12T18:30:00+00:00"
    assert (second.text, second.published_at) == ("", None)
    assert second.media == ["https://scontent.cdninstagram.com/v/grid.jpg"]
