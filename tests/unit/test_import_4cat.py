"""4CAT dataset exports: the CSV download and the NDJSON of the original items."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from crawlers.imports.fourcat import read_4cat
from crawlers.imports.zeeschuimer import read_zeeschuimer
from tests.conftest import DATA
from vigie.errors import InputFormatError
from vigie.records import Attachment

TIKTOK = DATA / "imports" / "4cat" / "tiktok.csv"
INSTAGRAM = DATA / "imports" / "4cat" / "instagram.ndjson"
CAPTURE = DATA / "imports" / "zeeschuimer" / "capture.ndjson"


def _csv(tmp_path: Path, header: list[str], *rows: list[str]) -> Path:
    path = tmp_path / "export.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_tiktok_csv_rows_and_bad_rows_named():
    result = read_4cat([TIKTOK])
    assert result.records == 9
    assert [p.key for p in result.posts] == [
        "tiktok:7420000000000000001",
        "tiktok:7420000000000000002",
        "tiktok:7420000000000000003",
        "tiktok:7420000000000000004",
        "tiktok:7420000000000000005",
    ]
    assert result.skipped == [
        "tiktok.csv:7: row: 5 cells where the header has 36",
        "tiktok.csv:11: id: missing",
        "tiktok.csv:12: timestamp: '20/09/2026 10h' is not a time",
        "tiktok.csv:13: likes: 'many' is not a count",
    ]
    assert result.warnings == []


def test_tiktok_csv_fields():
    posts = {p.post_id: p for p in read_4cat([TIKTOK]).posts}
    post = posts["7420000000000000002"]
    assert post.platform == "tiktok" and post.channel == "game.uk.fast"
    assert post.url == "https://www.tiktok.com/@game.uk.fast/video/7420000000000000002"
    assert post.author_name == "Game UK"
    assert post.text.startswith("Game to UK 100% guaranteed, boat from Dunkirk, 1500€")
    assert post.published_at == "2026-09-16T06:05:00+00:00"  # unix_timestamp
    assert (post.views, post.likes, post.shares, post.comments) == (45890, 1204, 98, 233)  # "1,204"
    assert post.hashtags == ["gameuk", "dunkirk"]
    assert post.links == ["https://wa.me/33612345678"]
    video = "https://v16-webapp-prime.tiktok.com/video/tos/maliva/game_uk.mp4"
    cover = "https://p16-sign-va.tiktokcdn.com/obj/tos-maliva-p-0068/game_uk.jpeg"
    assert post.attachments == [Attachment("video", url=video, thumbnail_url=cover)]
    assert post.media == [video]
    assert post.captured_at == ""  # a 4CAT CSV does not say when it was collected
    # Without unix_timestamp, `timestamp` is read as the UTC time 4CAT writes.
    assert posts["7420000000000000005"].published_at == "2026-09-19T09:00:00+00:00"
    kurdish = posts["7420000000000000001"]
    assert kurdish.hashtags == ["ئەڵمانیا", "سەفەر"]
    assert kurdish.media == [
        "https://p16-sign-va.tiktokcdn.com/obj/tos-maliva-p-0068/kurd_cover.jpeg?x-expires=1789600000"
    ]


def test_csv_hash_is_of_the_rows_cells():
    with TIKTOK.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    cells = next(r for r in rows if r[1] == "7420000000000000003")
    expected = hashlib.sha256(
        json.dumps(cells, ensure_ascii=False, separators=(",", ":")).encode()
    ).hexdigest()
    post = next(p for p in read_4cat([TIKTOK]).posts if p.post_id == "7420000000000000003")
    assert post.payload_sha256 == expected


def test_instagram_ndjson():
    result = read_4cat([INSTAGRAM])
    assert result.records == 8
    assert [p.key for p in result.posts] == [
        "instagram:C9pAsSpOrT1",
        "instagram:C9bOaT2iTaL",
        "instagram:C9qUeStIoN3",
        "instagram:C9vIsA4gEnC",  # no username: the account's id
    ]
    assert result.skipped == [
        "instagram.ndjson:3: line: not JSON: Unterminated string starting at column 74",
        "instagram.ndjson:6: code: missing",
        "instagram.ndjson:7: taken_at: '2026-13-45' is not a time",
        "instagram.ndjson:8: comment_count: '-5' is not a count",
    ]
    docs, reel = result.posts[0], result.posts[1]
    assert docs.url == "https://www.instagram.com/p/C9pAsSpOrT1/"
    assert docs.published_at == "2026-09-11T04:13:20+00:00"
    assert docs.captured_at == "2026-09-15T19:20:00+00:00"  # __import_meta.timestamp_collected
    assert docs.hashtags == ["passeport", "titredesejour"]
    assert docs.attachments == [
        Attachment("photo", url="https://scontent.cdninstagram.com/v/t51.29350-15/passport.jpg")
    ]
    assert reel.views == 21877  # view_count before play_count, as 4CAT reads it
    assert reel.payload_sha256 == hashlib.sha256(INSTAGRAM.read_bytes().splitlines()[1]).hexdigest()
    assert result.posts[3].url == "https://www.instagram.com/p/C9vIsA4gEnC/"


def test_ndjson_reads_zeeschuimer_items_as_zeeschuimer_does():
    fourcat, zeeschuimer = read_4cat([CAPTURE]), read_zeeschuimer([CAPTURE])
    assert [p.to_json() for p in fourcat.posts] == [p.to_json() for p in zeeschuimer.posts]
    assert fourcat.skipped == zeeschuimer.skipped and fourcat.warnings == zeeschuimer.warnings


def test_reading_twice_gives_the_same_posts():
    first, second = read_4cat([TIKTOK, INSTAGRAM]), read_4cat([TIKTOK, INSTAGRAM])
    assert [(p.key, p.payload_sha256) for p in first.posts] == [
        (p.key, p.payload_sha256) for p in second.posts
    ]
    assert len({p.payload_sha256 for p in first.posts}) == len(first.posts) == 9


def test_a_file_that_does_not_say_its_platform_needs_one(tmp_path):
    header = ["id", "author", "body", "timestamp", "likes"]
    path = _csv(tmp_path, header, ["123", "some.one", "hello", "2026-09-01 10:00:00", "3"])
    with pytest.raises(InputFormatError) as caught:
        read_4cat([path])
    assert str(caught.value) == (
        f"{path}: the export does not say its platform; pass the platform (--platform tiktok, instagram, x or threads)"
    )
    (post,) = read_4cat([path], platform="x").posts
    assert post.url == "https://x.com/some.one/status/123" and post.likes == 3
    assert post.published_at == "2026-09-01T10:00:00+00:00"

    raw = tmp_path / "items.ndjson"
    raw.write_text(INSTAGRAM.read_text(encoding="utf-8").replace('"source_platform": "instagram.com", ', ""))
    with pytest.raises(InputFormatError, match="does not say its platform; pass the platform"):
        read_4cat([raw])
    assert len(read_4cat([raw], platform="instagram").posts) == 4


def test_a_csv_that_is_not_a_4cat_export_is_refused(tmp_path):
    path = _csv(tmp_path, ["name", "message"], ["a", "b"])
    with pytest.raises(InputFormatError) as caught:
        read_4cat([path], platform="tiktok")
    assert str(caught.value) == f"{path}: not a 4CAT CSV export (no 'id' column)"


def test_platform_argument_checked_and_the_file_wins(tmp_path):
    with pytest.raises(InputFormatError, match="platform 'linkedin': 4CAT exports are read for tiktok"):
        read_4cat([TIKTOK], platform="linkedin")
    result = read_4cat([TIKTOK], platform="instagram")
    assert {p.platform for p in result.posts} == {"tiktok"}
    assert result.warnings == ["tiktok.csv: the export is a tiktok dataset; read as tiktok, not instagram"]


def test_x_and_threads_csv_columns(tmp_path):
    x = _csv(
        tmp_path,
        [
            "id",
            "timestamp",
            "link",
            "body",
            "author",
            "author_fullname",
            "author_id",
            "retweet_count",
            "reply_count",
            "like_count",
            "impression_count",
            "hashtags",
            "urls",
            "images",
            "videos",
            "mentions",
            "unix_timestamp",
        ],
        [
            "1834567890123456789",
            "2026-09-12 16:45:00",
            "https://x.com/GameUK_Express/status/1834567890123456789",
            "Game to UK @UK_Routes_Help",
            "GameUK_Express",
            "Game UK",
            "150",
            "12",
            "7",
            "45",
            "15230",
            "GameUK",
            "https://wa.me/33612345678,javascript:alert(1)",
            "https://pbs.twimg.com/media/a.jpg",
            "",
            "UK_Routes_Help",
            "1789231500",
        ],
        [
            "1834567890123456790",
            "2026-09-12 16:46:00",
            "https://x.com/i/web/status/1834567890123456790",
            "=1+1",
            "",
            "",
            "150",
            "0",
            "0",
            "0",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ],
    )
    result = read_4cat([x])
    first, second = result.posts
    assert first.url == "https://x.com/gameuk_express/status/1834567890123456789"
    assert (first.views, first.likes, first.shares, first.comments) == (
        15230,
        45,
        12,
        7,
    )
    assert first.links == ["https://wa.me/33612345678"]  # the javascript: one is not a link
    assert first.mentions == ["uk_routes_help"] and first.hashtags == ["GameUK"]
    assert first.media == ["https://pbs.twimg.com/media/a.jpg"]
    assert first.published_at == "2026-09-12T16:45:00+00:00"
    # No handle: the account id, and the export's own permalink.
    assert (second.channel, second.url) == ("150", "https://x.com/i/web/status/1834567890123456790")
    assert second.text == "=1+1"  # untouched here; CSV output escapes it

    threads = tmp_path / "threads.csv"
    threads.write_text(
        "id,url,body,timestamp,author,likes,reposts,replies,hashtags,image_url,link_url,unix_timestamp\n"
        "DA1b2C3d4E5,https://www.threads.com/@bogazici.turizm/post/DA1b2C3d4E5,Vize #vize,"
        "2026-09-13 11:46:40,bogazici.turizm,19,2,3,vize,,https://www.gov.uk/standard-visitor,1789300000\n"
    )
    (post,) = read_4cat([threads]).posts
    assert post.key == "threads:DA1b2C3d4E5"
    assert (post.likes, post.shares, post.comments) == (19, 2, 3)
    assert post.links == ["https://www.gov.uk/standard-visitor"]


def test_instagram_csv_tells_photos_from_videos(tmp_path):
    path = _csv(
        tmp_path,
        [
            "id",
            "url",
            "body",
            "author",
            "author_fullname",
            "num_likes",
            "num_comments",
            "play_count",
            "image_urls",
            "media_urls",
            "unix_timestamp",
        ],
        [
            "C9xYz_AbCdE",
            "https://www.instagram.com/p/C9xYz_AbCdE",
            "x " * 300_000,
            "omid_safar_van",
            "Omid",
            "233",
            "-1",
            "0",
            "https://cdn.example/a.jpg,https://cdn.example/b.jpg",
            "https://cdn.example/a.jpg,https://cdn.example/b.mp4",
            "1789237800",
        ],
    )
    (post,) = read_4cat([path]).posts
    assert post.comments is None  # 4CAT's -1: not known
    assert post.views == 0 and post.likes == 233 and len(post.text) == 600_000
    assert post.attachments == [
        Attachment("photo", url="https://cdn.example/a.jpg"),
        Attachment("video", url="https://cdn.example/b.mp4", thumbnail_url="https://cdn.example/b.jpg"),
    ]
