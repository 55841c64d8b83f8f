"""X API v2 search results (pages and twarc2's flattened tweets) as posts."""

from __future__ import annotations

import hashlib
import json

import pytest

from crawlers.imports.common import canonical_sha256
from crawlers.imports.x_api import read_x_api
from tests.conftest import DATA
from vigie.errors import InputFormatError

FOLDER = DATA / "imports" / "x-api"
SEARCH = FOLDER / "search.json"
FLAT = FOLDER / "flattened.jsonl"


def _page() -> dict:
    return json.loads(SEARCH.read_text(encoding="utf-8"))


def test_a_search_page_resolves_authors_media_and_metrics():
    result = read_x_api([SEARCH])
    assert result.records == 9
    assert [p.channel for p in result.posts] == [
        "uk_crossing_now",
        "balkan_road_ar",
        "belge_merkezi",
        "channel_reporter",
        "calais_volunteer",
        "sara_in_izmir",
    ]
    advert = result.posts[0]
    assert advert.key == "x:1798000000000000001"
    assert advert.url == "https://x.com/uk_crossing_now/status/1798000000000000001"
    assert advert.author_name == "UK Crossing 🇬🇧"
    assert advert.published_at == "2024-06-03T21:15:00+00:00"
    assert advert.hashtags == ["UK", "Dunkirk"]
    assert advert.mentions == ["calais_helper"]
    # The expanded link is kept, the t.co links and the photo's own link are not.
    assert advert.links == ["https://wa.me/33612345678"]
    assert advert.media == ["https://pbs.twimg.com/media/GPhOtO12345.jpg"]
    assert advert.attachments[0].type == "photo"
    assert (advert.views, advert.likes, advert.shares, advert.comments) == (
        5120,
        30,
        14,
        4,
    )  # shares = 12 + 2
    assert advert.payload_sha256 == canonical_sha256(_page()["data"][0])


def test_long_posts_videos_retweets_and_replies():
    posts = read_x_api([SEARCH]).posts
    long_post = posts[1]
    assert long_post.text.endswith("#ألمانيا #تهريب")  # note_tweet.text, not the truncated text
    assert long_post.hashtags == ["ألمانيا", "تهريب"]
    video = long_post.attachments[0]
    assert video.type == "video" and video.duration == 21
    assert video.url == "https://video.twimg.com/ext_tw_video/1798000000000000202/pu/vid/720x1280/high.mp4"
    assert (
        video.thumbnail_url
        == "https://pbs.twimg.com/ext_tw_video_thumb/1798000000000000202/pu/img/VideoThumb.jpg"
    )
    retweet = posts[4]
    assert retweet.forwarded_from == "https://x.com/refugee_ngo/status/1797999999999999999"
    assert retweet.shares == 40
    reply = posts[5]
    assert reply.reply_to == "https://x.com/uk_crossing_now/status/1798000000000000001"
    assert reply.mentions == ["uk_crossing_now"]


def test_bad_tweets_are_skipped_by_number_and_field():
    result = read_x_api([SEARCH])
    assert result.skipped == [
        "search.json tweet 7: id: missing",
        "search.json tweet 8: created_at: 'last Tuesday' is not a time",
        "search.json tweet 9: public_metrics.like_count: 'lots' is not a count",
    ]


def test_flattened_tweets_keep_their_line_hash_and_capture_time():
    result = read_x_api([FLAT])
    assert [p.post_id for p in result.posts] == ["1799000000000000001", "1799000000000000003"]
    assert result.skipped == ["flattened.jsonl:2: line: not JSON: Unterminated string starting at column 36"]
    first = result.posts[0]
    line = FLAT.read_bytes().splitlines()[0]
    assert first.payload_sha256 == hashlib.sha256(line).hexdigest()
    assert first.channel == "meric_yol" and first.author_name == "Meriç Yol"
    assert first.captured_at == "2024-06-07T07:30:00+00:00"  # retrieved_at at +02:00
    assert first.links == []  # javascript: is never a link, in the entities or the text
    assert first.media == ["https://pbs.twimg.com/media/GMeric0001.jpg"]
    assert first.shares == 2


def test_pages_as_json_lines_and_error_pages(tmp_path):
    page = _page()
    path = tmp_path / "pages.jsonl"
    error = {"errors": [{"title": "Too Many Requests", "detail": "Rate limit exceeded"}]}
    empty = {"meta": {"result_count": 0}}
    path.write_text("\n".join(json.dumps(v) for v in (page, error, empty)) + "\n", encoding="utf-8")
    result = read_x_api([path])
    assert len(result.posts) == 6
    assert result.skipped[0] == "pages.jsonl:1 tweet 7: id: missing"
    assert result.warnings == ["pages.jsonl:2: the API answered an error, not tweets (Rate limit exceeded)"]


def test_an_author_without_user_object_is_named_by_id(tmp_path):
    page = _page()
    page["includes"]["users"] = []
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(page), encoding="utf-8")
    first = read_x_api([path]).posts[0]
    assert first.channel == "2244994945"
    assert first.author_name is None
    assert first.url == "https://x.com/2244994945/status/1798000000000000001"


def test_a_flattened_retweet_names_the_original_author_inline(tmp_path):
    tweet = {
        "id": "10",
        "text": "RT @Orig_User: boat to UK",
        "author": {"id": "1", "username": "relay_account"},
        "created_at": "2024-06-01T00:00:00.000Z",
        "referenced_tweets": [
            {"type": "retweeted", "id": "5", "author_id": "9", "author": {"id": "9", "username": "Orig_User"}}
        ],
    }
    path = tmp_path / "flat.jsonl"
    path.write_text(json.dumps(tweet) + "\n", encoding="utf-8")
    post = read_x_api([path]).posts[0]
    assert post.forwarded_from == "https://x.com/orig_user/status/5"
    assert post.mentions == ["orig_user"]


def test_reading_twice_gives_the_same_posts():
    first = read_x_api([SEARCH, FLAT])
    second = read_x_api([SEARCH, FLAT])
    assert [(p.key, p.payload_sha256) for p in first.posts] == [
        (p.key, p.payload_sha256) for p in second.posts
    ]


def test_hostile_and_odd_tweets(tmp_path):
    tweets = [
        {
            "id": "1",
            "text": "x" * 500_000,
            "author": {"username": "ok_user"},
            "created_at": "2024-06-01T00:00:00Z",
        },
        {
            "id": "2",
            "text": "hi",
            "author": {"username": "bad handle!"},
            "created_at": "2024-06-01T00:00:00Z",
        },
        {"id": "3", "text": 42, "author": {"username": "ok_user"}, "created_at": "2024-06-01T00:00:00Z"},
        {
            "id": "4",
            "text": "\u202eevil\u202c \U0001f4a5 see https://ok.example/x",
            "author": {"username": "ok_user"},
            "created_at": "2024-06-01T02:00:00+02:00",
            "entities": {"urls": [{"url": "https://t.co/z", "expanded_url": "javascript:alert(1)"}]},
        },
    ]
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(json.dumps(t) for t in tweets) + "\n", encoding="utf-8")
    result = read_x_api([path])
    assert [p.post_id for p in result.posts] == ["1", "4"]
    assert len(result.posts[0].text) == 500_000
    assert result.posts[1].links == ["https://ok.example/x"]
    assert result.posts[1].published_at == "2024-06-01T00:00:00+00:00"
    assert result.skipped[0].startswith("odd.jsonl:2: author.username: x handle 'bad handle!'")
    assert result.skipped[1] == "odd.jsonl:3: text: expected text, found int"


def test_a_file_that_is_not_json_is_one_error(tmp_path):
    path = tmp_path / "search.json"
    path.write_text('{\n  "data": [\n', encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"search\.json:\d+: not JSON"):
        read_x_api([path])
