"""Rules shared by the other platforms' posts: handles and ids that keys can hold, what is
cleaned before storing, and how a platform's answer finds its post."""

from __future__ import annotations

import pytest

from crawlers.pipelines import clean_post
from pipeline.refer.dsa_tdb import _precision
from pipeline.refer.outcomes import url_key
from vigie.platforms import handle, platform_name, post_id
from vigie.records import Post


def test_handles_and_ids_never_hold_the_key_separator():
    assert handle("tiktok", "@Kurd.Road.Eu") == "kurd.road.eu"
    assert post_id("facebook", "1234_5678") == "1234_5678" and post_id("telegram", "42") == 42
    for bad in ("a:b", "", "x" * 129):
        with pytest.raises(ValueError):
            post_id("instagram", bad)
    with pytest.raises(ValueError):
        handle("x", "evil:handle")
    assert platform_name("Twitter") == "x" and platform_name("www.instagram.com") == "instagram"


def test_display_names_hashtags_and_mentions_are_cleaned_before_storing():
    post = Post("tiktok", "someone", "1", "https://www.tiktok.com/@someone/video/1", "t", None)
    post.author_name = "Nice\x1b]8;;http://x\x07Name"
    post.hashtags, post.mentions = ["tag\x1b[5m"], ["who\x07"]
    clean_post(post)
    assert "\x1b" not in post.author_name and post.hashtags == ["tag[5m"] and post.mentions == ["who"]


def test_two_facebook_stories_are_two_urls_and_tracking_is_not():
    a = "https://www.facebook.com/permalink.php?story_fbid=111&id=1"
    b = "https://m.facebook.com/permalink.php?story_fbid=222&id=2"
    assert url_key(a) != url_key(b)
    assert url_key(a + "&mibextid=abc") == url_key("https://facebook.com/permalink.php?id=1&story_fbid=111")


def test_statement_dates_are_compared_at_their_own_precision():
    assert _precision("2026-09-01") == 10
    assert _precision("2026-09-01 10:00:00") == 13
    assert _precision("2026-09-01T10:17:03Z") == 19


def test_a_record_of_another_shape_is_skipped_and_named_not_fatal(tmp_path):
    import json

    from crawlers.imports.x_api import read_x_api
    from crawlers.imports.zeeschuimer import read_zeeschuimer

    capture = tmp_path / "capture.ndjson"
    tweet = {"rest_id": "1834567890123456789", "legacy": {
        "full_text": "Game to UK", "created_at": "Sat Sep 12 16:45:00 +0000 2026",
        "entities": {"urls": [{"url": "https://t.co/a", "expanded_url": "https://wa.me/1"}]}},
        "core": {"user_results": {"result": {"legacy": {"screen_name": "someone", "name": "S"}}}}}  # fmt: skip
    odd = json.loads(json.dumps(tweet))
    odd["rest_id"] = "1834567890123456790"
    odd["legacy"]["entities"]["urls"] = [{"url": ["a", "list"]}]  # a list where a URL goes
    items = [
        {"source_platform": "twitter.com", "timestamp_collected": 1790000000000, "data": t}
        for t in (tweet, odd)
    ]
    capture.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    result = read_zeeschuimer([capture])
    assert [p.post_id for p in result.posts] == ["1834567890123456789"]
    (skipped,) = result.skipped
    assert skipped.startswith("capture.ndjson:2: record: not the documented shape (TypeError")

    page = tmp_path / "search.json"
    tweets = [
        {"id": "1834567890123456789", "text": "Game to UK", "author_id": "1", "created_at": "2026-09-12T16:45:00Z"},
        {"id": "1834567890123456790", "text": "odd", "author_id": "1", "created_at": "2026-09-12T16:45:00Z",
         "referenced_tweets": 5},
    ]  # fmt: skip
    users = [{"id": "1", "username": "someone", "name": "S"}]
    page.write_text(json.dumps({"data": tweets, "includes": {"users": users}}), encoding="utf-8")
    result = read_x_api([page])
    assert [p.post_id for p in result.posts] == ["1834567890123456789"]
    (skipped,) = result.skipped
    assert (skipped.startswith("search.json") and "referenced_tweets" in skipped) or "record" in skipped
