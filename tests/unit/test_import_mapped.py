"""Plain CSV and JSON Lines from other tools, read through a column mapping."""

from __future__ import annotations

import csv
import hashlib
import json

import pytest

from crawlers.imports.mapped import read_mapped
from tests.conftest import DATA
from vigie.errors import InputFormatError

FOLDER = DATA / "imports" / "csv"
POSTS_CSV = FOLDER / "posts.csv"
POSTS_JSONL = FOLDER / "posts.jsonl"

# The mappings the folder's README gives.
CSV_COLUMNS = {
    "platform": "Platform",
    "channel": "Account",
    "post_id": "Post ID",
    "url": "Link",
    "text": "Message",
    "published_at": "Posted",
    "author_name": "Author",
    "views": "Views",
    "likes": "Likes",
    "shares": "Shares",
    "comments": "Comments",
    "hashtags": "Tags",
    "mentions": "Mentioned",
    "links": "URLs",
    "media": "Media URLs",
}
JSONL_COLUMNS = {
    "platform": "network",
    "channel": "user.handle",
    "author_name": "user.display",
    "post_id": "id",
    "text": "body",
    "published_at": "created",
    "views": "stats.views",
    "likes": "stats.likes",
    "hashtags": "tags",
    "links": "links",
    "media": "media",
}


def test_csv_rows_of_every_platform():
    result = read_mapped([POSTS_CSV], CSV_COLUMNS, timezone="Europe/Istanbul")
    assert result.records == 12
    assert [p.key for p in result.posts] == [
        "telegram:uk_game_dunkirk:1042",
        "tiktok:7309999999999999991",
        "facebook:111222333_444555666",
        "instagram:C8xYz123AbC",
        "x:1800000000000000001",
        "youtube:dQw4w9WgXcQ",
    ]
    telegram, tiktok, facebook, instagram, x, youtube = result.posts
    assert telegram.url == "https://t.me/uk_game_dunkirk/1042"
    assert telegram.published_at == "2024-06-01T10:00:00+00:00"  # 13:00 in Istanbul
    assert telegram.views == 1530  # written "1,530"
    assert telegram.hashtags == ["UK", "game"]  # "UK|game", and the same in the text
    assert telegram.links == ["https://wa.me/33612345678"]
    assert telegram.media == ["https://cdn.example.net/tg/1042.jpg"]
    assert telegram.attachments[0].type == "photo"
    assert telegram.author_name == "UK Game Dunkirk"
    assert tiktok.url == "https://www.tiktok.com/@kurd.road.eu/video/7309999999999999991"
    assert tiktok.attachments[0].type == "video"
    assert (tiktok.views, tiktok.likes, tiktok.shares, tiktok.comments) == (8800, 310, 25, 44)
    assert facebook.url == "https://www.facebook.com/sahte.belge.merkezi/posts/444555666"
    assert facebook.hashtags == ["pasaport", "belge"]  # "pasaport belge"
    assert facebook.mentions == ["belge_usta"]
    assert instagram.url == "https://www.instagram.com/p/C8xYz123AbC/"
    assert instagram.hashtags == ["calais", "migrants"]
    assert instagram.links == ["https://news.example.org/calais"]
    assert x.url == "https://x.com/ngo_warns/status/1800000000000000001"
    assert x.mentions == ["unhcr_example"]
    assert youtube.url == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    with POSTS_CSV.open(encoding="utf-8", newline="") as f:
        cells = list(csv.reader(f))[1]
    raw = json.dumps(cells, ensure_ascii=False, separators=(",", ":"))
    assert telegram.payload_sha256 == hashlib.sha256(raw.encode()).hexdigest()


def test_bad_csv_rows_and_other_platforms():
    result = read_mapped([POSTS_CSV], CSV_COLUMNS, timezone="Europe/Istanbul")
    assert result.skipped == [
        "posts.csv:9: Post ID: missing",
        "posts.csv:10: Posted: '06/06/2024 noon' is not a time",
        "posts.csv:11: Views: 'many' is not a count",
        "posts.csv:12: Link: missing: a facebook post's URL does not follow from its id",
        "posts.csv:13: row: 5 of the header's 15 columns (a cut or broken row)",
    ]
    assert result.warnings == [
        "1 row(s) of platform 'linkedin' skipped: Vigie keeps telegram, facebook, instagram, threads, tiktok, x, youtube"
    ]


def test_times_without_an_offset_need_a_time_zone():
    result = read_mapped([POSTS_CSV], CSV_COLUMNS)
    assert result.posts == []
    assert result.skipped[0] == (
        "posts.csv:2: Posted: '2024-06-01 13:00:00' has no time zone (give the file's with --timezone)"
    )


def test_json_lines_with_nested_columns_and_real_lists():
    result = read_mapped([POSTS_JSONL], JSONL_COLUMNS, timezone="Europe/Paris")
    assert [p.key for p in result.posts] == [
        "telegram:balkan_route_de:77",
        "x:1800000000000000077",
        "tiktok:7309999999999999992",
    ]
    telegram, x, tiktok = result.posts
    assert telegram.published_at == "2024-06-01T18:00:00+00:00"  # written at +02:00
    assert telegram.author_name == "Balkan Route"
    assert telegram.links == ["https://t.me/balkan_route_de"]
    assert telegram.mentions == ["balkan_route_de"]
    assert telegram.payload_sha256 == hashlib.sha256(POSTS_JSONL.read_bytes().splitlines()[0]).hexdigest()
    assert x.published_at == "2024-06-02T06:00:00+00:00"  # no offset: Paris time
    assert x.links == ["https://news.example.org/court"]  # the javascript: link is dropped
    assert (x.views, x.likes) == (51000, 800)
    assert tiktok.hashtags == ["پناهندگی", "هلند"]  # a text cell in JSON Lines is split too
    assert result.skipped == [
        "posts.jsonl:4: line: not JSON: Unterminated string starting at column 74",
        "posts.jsonl:5: id: missing",
        "posts.jsonl:6: created: 'soon' is not a time",
        "posts.jsonl:7: stats.views: 'a few' is not a count",
    ]


def test_the_platform_argument_serves_every_row(tmp_path):
    path = tmp_path / "tg.csv"
    path.write_text("chan,num,msg\nuk_game_dunkirk,5,hello #UK\n", encoding="utf-8")
    result = read_mapped([path], {"channel": "chan", "post_id": "num", "text": "msg"}, platform="Telegram")
    assert [p.key for p in result.posts] == ["telegram:uk_game_dunkirk:5"]
    assert result.posts[0].published_at is None
    assert result.posts[0].hashtags == ["UK"]


@pytest.mark.parametrize(
    ("columns", "platform", "message"),
    [
        (
            {"channel": "Account", "post_id": "Post ID"},
            "telegram",
            "the column mapping names no column for 'text'",
        ),
        (
            {"text": "Message", "post_id": "Post ID"},
            "telegram",
            "the column mapping names no column for 'channel'",
        ),
        (
            {"text": "Message", "channel": "Account"},
            "telegram",
            "the column mapping names no column for 'post_id'",
        ),
        ({"text": "Message", "channel": "Account", "post_id": "Post ID"}, "", "no platform: map a column"),
        ({"text": "Message", "channel": "Account", "post_id": "Post ID"}, "myspace", "platform 'myspace'"),
        (
            {"text": "Message", "channel": "Account", "post_id": "Post ID", "colour": "X"},
            "x",
            "unknown post field",
        ),
        (
            {"text": "Body", "channel": "Account", "post_id": "Post ID"},
            "telegram",
            r"posts\.csv:1: no column 'Body' \(mapped to 'text'\) in the header",
        ),
    ],
)
def test_a_bad_mapping_is_one_line(columns, platform, message):
    with pytest.raises(InputFormatError, match=message) as caught:
        read_mapped([POSTS_CSV], columns, platform=platform)
    assert "\n" not in str(caught.value)


def test_an_unknown_time_zone_is_one_line():
    with pytest.raises(InputFormatError, match="unknown time zone 'Mars/Olympus'"):
        read_mapped([POSTS_CSV], CSV_COLUMNS, timezone="Mars/Olympus")


def test_reading_twice_gives_the_same_posts():
    first = read_mapped([POSTS_CSV], CSV_COLUMNS, timezone="Europe/Istanbul")
    second = read_mapped([POSTS_CSV], CSV_COLUMNS, timezone="Europe/Istanbul")
    assert [(p.key, p.payload_sha256) for p in first.posts] == [
        (p.key, p.payload_sha256) for p in second.posts
    ]


def test_hostile_and_odd_cells(tmp_path):
    path = tmp_path / "odd.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["p", "c", "i", "t", "l", "u"])
        writer.writerow(["telegram", "uk_game_dunkirk", "1", "y" * 300_000, "", ""])
        writer.writerow(
            [
                "x",
                "ok_user",
                "2",
                '=HYPERLINK("x") \u202e odd \U0001f6a4',
                "javascript:alert(1)|https://ok.example",
                "",
            ]
        )
        writer.writerow(["x", "ok_user", "3", "hi", "", "javascript:alert(1)"])
        writer.writerow(["telegram", "uk_game_dunkirk", "-4", "negative id", "", ""])
    columns = {"platform": "p", "channel": "c", "post_id": "i", "text": "t", "links": "l", "url": "u"}
    result = read_mapped([path], columns)
    assert [p.post_id for p in result.posts] == [1, "2"]
    assert len(result.posts[0].text) == 300_000
    assert result.posts[1].text.startswith("=HYPERLINK")  # cleaned where it is written out, not here
    assert result.posts[1].links == ["https://ok.example"]
    assert result.skipped == [
        "odd.csv:4: u: 'javascript:alert(1)' is not an http(s) URL",
        "odd.csv:5: i: Telegram post id '-4': expected a positive integer",
    ]
