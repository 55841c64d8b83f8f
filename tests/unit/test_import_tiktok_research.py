"""TikTok Research API video query results as posts."""

from __future__ import annotations

import hashlib
import json

import pytest

from crawlers.imports.common import canonical_sha256
from crawlers.imports.tiktok_research import read_tiktok_research
from tests.conftest import DATA
from vigie.errors import InputFormatError

FOLDER = DATA / "imports" / "tiktok-research"
VIDEOS = FOLDER / "videos.json"
PAGES = FOLDER / "pages.jsonl"


def test_a_response_body_maps_every_documented_field():
    result = read_tiktok_research([VIDEOS])
    assert result.records == 8
    assert len(result.posts) == 5
    advert = result.posts[0]
    assert advert.key == "tiktok:7301234567890123456"
    assert advert.post_id == "7301234567890123456"  # an integer in the JSON, a string here
    assert advert.url == "https://www.tiktok.com/@safe.crossing_uk/video/7301234567890123456"
    assert advert.published_at == "2024-06-01T10:00:00+00:00"  # from Unix seconds 1717236000
    assert advert.text == (
        "Game to UK 100% guaranteed 🇬🇧 boat from Dunkirk every week, 1500€ per person, kids half price. "
        "WhatsApp +33 6 12 34 56 78 #uk #dunkirk #game"
        "\n\ncall us on whatsapp, we leave on thursday night, safe boat, good driver"
    )
    assert advert.hashtags == ["uk", "dunkirk", "game"]
    assert advert.mentions == ["helper_dunkirk"]
    assert (advert.views, advert.likes, advert.shares, advert.comments) == (15890, 412, 23, 57)
    assert advert.attachments[0].type == "video" and advert.attachments[0].duration == 31
    assert advert.media == []  # the API gives no file URL
    raw = json.loads(VIDEOS.read_text(encoding="utf-8"))["data"]["videos"][0]
    assert advert.payload_sha256 == canonical_sha256(raw)
    kurdish = result.posts[1]
    assert kurdish.text.endswith("#germany")  # no transcript: no blank line
    assert kurdish.hashtags == ["ئەڵمانیا", "germany"]
    assert kurdish.mentions == ["rebaz_road"]


def test_bad_videos_are_skipped_by_number_and_field():
    result = read_tiktok_research([VIDEOS])
    assert result.skipped == [
        "videos.json video 6: id: missing",
        "videos.json video 7: create_time: 'yesterday' is not a time",
        "videos.json video 8: like_count: 'many' is not a count",
    ]
    assert result.warnings == []


def test_pages_written_one_response_a_line():
    result = read_tiktok_research([PAGES])
    assert [p.post_id for p in result.posts] == [
        "7311111111111111111",
        "7311111111111111112",
        "7311111111111111114",
    ]
    assert result.skipped == [
        "pages.jsonl:2: line: not JSON: Expecting property name enclosed in double quotes at column 71"
    ]
    assert result.warnings == [
        "pages.jsonl:4: the API answered error code 'rate_limit_exceeded' (Daily quota exceeded)"
    ]
    ngo = result.posts[1]
    assert ngo.channel == "refugee.rights.org"
    assert ngo.published_at == "2024-06-11T10:00:00+00:00"
    raw = json.loads(PAGES.read_text(encoding="utf-8").splitlines()[0])["data"]["videos"][1]
    assert ngo.payload_sha256 == canonical_sha256(raw)


def test_a_list_of_videos_and_lines_of_single_videos(tmp_path):
    video = json.loads(VIDEOS.read_text(encoding="utf-8"))["data"]["videos"][3]
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([video]), encoding="utf-8")
    line = json.dumps(video, ensure_ascii=False)
    lines = tmp_path / "single.jsonl"
    lines.write_text(line + "\n", encoding="utf-8")
    from_list = read_tiktok_research([listed]).posts
    from_lines = read_tiktok_research([lines]).posts
    assert [p.key for p in from_list] == [p.key for p in from_lines] == ["tiktok:7301234567890123459"]
    assert from_lines[0].payload_sha256 == hashlib.sha256(line.encode("utf-8")).hexdigest()
    assert from_list[0].payload_sha256 == canonical_sha256(video)


def test_reading_twice_gives_the_same_posts():
    first = read_tiktok_research([VIDEOS, PAGES])
    second = read_tiktok_research([VIDEOS, PAGES])
    assert [(p.key, p.payload_sha256) for p in first.posts] == [
        (p.key, p.payload_sha256) for p in second.posts
    ]
    assert len({p.key for p in first.posts}) == 8


def test_hostile_and_odd_fields(tmp_path):
    videos = [
        {"id": 1, "username": "a" * 101, "create_time": 1717236000},
        {
            "id": "7301",
            "username": "ok_user",
            "create_time": 1717236000,
            "video_description": "x" * 1_000_000,
        },
        {
            "id": "7302",
            "username": "ok_user",
            "create_time": 1717236000,
            "video_description": "click javascript:alert(1) or https://good.example/a\u202e",
            "hashtag_names": "not a list",
        },
        {
            "id": "7303",
            "username": "ok_user",
            "create_time": 1717236000,
            "video_description": "zero\u200bwidth \U0001f600 click javascript:alert(1) https://good.example/b",
        },
        {"id": "../../etc", "username": "ok_user", "create_time": 1717236000},
    ]
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"data": {"videos": videos}, "error": {"code": "ok"}}), encoding="utf-8")
    result = read_tiktok_research([path])
    assert [p.post_id for p in result.posts] == ["7301", "7303"]
    assert len(result.posts[0].text) == 1_000_000
    assert result.posts[1].links == ["https://good.example/b"]
    assert result.posts[1].text.startswith("zero\u200bwidth \U0001f600")
    assert result.skipped[0].startswith("odd.json video 1: username: tiktok handle 'aaaa")
    assert result.skipped[1] == "odd.json video 3: hashtag_names: expected a list of names"
    assert result.skipped[2].startswith("odd.json video 5: id: tiktok post id '../../etc'")


def test_a_file_that_is_not_json_is_one_error(tmp_path):
    path = tmp_path / "videos.json"
    path.write_text("{\n  not json\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"videos\.json:2: not JSON"):
        read_tiktok_research([path])
