"""Meta Content Library CSV downloads and API records as posts."""

from __future__ import annotations

import csv
import hashlib
import json

from crawlers.imports.meta_content_library import read_meta_content_library
from tests.conftest import DATA

FOLDER = DATA / "imports" / "meta-content-library"
FACEBOOK = FOLDER / "facebook.csv"
INSTAGRAM = FOLDER / "instagram.jsonl"


def test_the_ui_csv_maps_facebook_posts():
    result = read_meta_content_library([FACEBOOK])
    assert result.records == 10
    assert len(result.posts) == 6
    advert = result.posts[0]
    assert advert.platform == "facebook"
    assert advert.key == "facebook:1234567890_9876543210"
    assert advert.post_id == "1234567890_9876543210"
    assert advert.url == "https://www.facebook.com/1234567890_9876543210"
    assert advert.author_name == "Dunkirk Safe Travel"
    assert advert.published_at == "2024-06-01T10:00:00+00:00"  # written at +0200
    assert advert.hashtags == ["UK", "Dunkirk"]
    assert advert.links == ["https://wa.me/33612345678"]  # the link attachment
    assert advert.media == ["https://scontent.xx.fbcdn.net/v/t39.30808-6/boat_dunkirk.jpg"]
    # Likes on Facebook are all reactions ("1,204" in the cell).
    assert (advert.views, advert.likes, advert.shares, advert.comments) == (22000, 1204, 87, 41)
    with FACEBOOK.open(encoding="utf-8", newline="") as f:
        cells = list(csv.reader(f))[1]
    raw = json.dumps(cells, ensure_ascii=False, separators=(",", ":"))
    assert advert.payload_sha256 == hashlib.sha256(raw.encode()).hexdigest()
    page_without_username = result.posts[1]
    assert page_without_username.channel == "100088877766655"
    assert page_without_username.attachments[0].type == "video"
    forged = result.posts[2]
    assert forged.mentions == ["papiers_rapides"] and forged.views is None
    group_question = result.posts[5]
    assert group_question.published_at == "2024-06-05T17:50:00+00:00"  # written at +0330


def test_bad_csv_rows_are_skipped_by_line_and_field():
    result = read_meta_content_library([FACEBOOK])
    assert result.skipped == [
        "facebook.csv:8: id: missing",
        "facebook.csv:9: creation_time: '06/07/2024 10:00' is not a time",
        "facebook.csv:10: statistics.share_count: 'a lot' is not a count",
        "facebook.csv:11: row: 3 of the header's 27 columns (a cut or broken row)",
    ]


def test_api_records_map_instagram_posts():
    result = read_meta_content_library([INSTAGRAM])
    assert len(result.posts) == 5
    advert = result.posts[0]
    assert advert.platform == "instagram"
    # Keyed by the permalink's shortcode, as Zeeschuimer and 4CAT key the same post.
    assert advert.key == "instagram:C7aBcDeFgHi"
    assert advert.url == "https://www.instagram.com/p/C7aBcDeFgHi/"  # its permalink
    assert advert.author_name == "Ege Geçiş ⚓"
    assert advert.published_at == "2024-06-01T19:00:00+00:00"
    assert advert.hashtags == ["kos", "bodrum", "yunanistan"]
    assert (advert.views, advert.likes, advert.shares, advert.comments) == (6100, 240, None, 18)
    line = INSTAGRAM.read_bytes().splitlines()[0]
    assert advert.payload_sha256 == hashlib.sha256(line).hexdigest()
    video = result.posts[1]
    assert video.attachments[0].type == "video"
    assert video.mentions == ["rah_amn_eu"]
    assert result.posts[2].links == ["https://docs-fast.example.net"]
    assert len(result.posts[2].media) == 2
    assert result.skipped == [
        "instagram.jsonl:6: line: not JSON: Unterminated string starting at column 77",
        "instagram.jsonl:7: id: missing",
        "instagram.jsonl:8: creation_time: 'tomorrow at noon' is not a time",
        "instagram.jsonl:9: statistics.like_count: 'lots' is not a count",
    ]
    assert result.warnings == [
        "instagram.jsonl: 4 Instagram post(s) have no permalink or mcl_url, so their URL is built from "
        "the Library's id and may not open; export with permalinks to refer them"
    ]


def test_platform_from_the_record_when_the_file_name_does_not_say(tmp_path):
    lines = INSTAGRAM.read_text(encoding="utf-8").splitlines()
    facebook_record = {
        "id": "42_43",
        "creation_time": "2024-06-01T00:00:00+0000",
        "text": "hi",
        "post_owner": {"data": {"id": "42", "name": "A Page", "type": "page"}},
        "statistics": {"reaction_count": 3},
    }
    unclear = {"id": "44", "creation_time": "2024-06-01T00:00:00+0000", "post_owner": {"id": "9"}}
    whatsapp = {**unclear, "platform": "WhatsApp"}
    path = tmp_path / "export.jsonl"
    records = [
        lines[1],
        json.dumps(facebook_record),
        json.dumps(unclear),
        json.dumps(whatsapp),
        json.dumps(whatsapp),
    ]
    path.write_text("\n".join(records) + "\n", encoding="utf-8")
    result = read_meta_content_library([path])
    assert [p.key for p in result.posts] == ["instagram:17980000000000002", "facebook:42_43"]
    assert result.posts[1].likes == 3
    assert result.skipped == [
        "export.jsonl:3: platform: cannot tell Facebook from Instagram (no platform, permalink or owner type)"
    ]
    assert result.warnings[0] == (
        "2 record(s) of platform 'whatsapp' skipped: Vigie keeps telegram, facebook, instagram, threads, tiktok, x, youtube"
    )


def test_an_api_response_document(tmp_path):
    records = [json.loads(line) for line in INSTAGRAM.read_text(encoding="utf-8").splitlines()[:2]]
    path = tmp_path / "search_instagram.json"
    path.write_text(json.dumps({"data": records, "paging": {}}, indent=2), encoding="utf-8")
    result = read_meta_content_library([path])
    assert [p.post_id for p in result.posts] == ["C7aBcDeFgHi", "17980000000000002"]
    assert [p.payload_sha256 for p in result.posts] == [
        hashlib.sha256(
            json.dumps(r, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        for r in records
    ]


def test_reading_twice_gives_the_same_posts():
    first = read_meta_content_library([FACEBOOK, INSTAGRAM])
    second = read_meta_content_library([FACEBOOK, INSTAGRAM])
    assert [(p.key, p.payload_sha256) for p in first.posts] == [
        (p.key, p.payload_sha256) for p in second.posts
    ]
    assert len({p.key for p in first.posts}) == 11


def test_hostile_and_odd_records(tmp_path):
    owner = {"id": "1", "username": "page.one", "type": "page"}
    records = [
        {
            "id": "1_1",
            "creation_time": "2024-06-01T00:00:00+0000",
            "text": "x" * 400_000,
            "post_owner": owner,
        },
        {
            "id": "1_2",
            "creation_time": "2024-06-01T00:00:00+0000",
            "text": "\u202e\u200b odd \U0001f30a javascript:alert(1)",
            "post_owner": owner,
            "link_attachment": {"link": "javascript:alert(document.cookie)"},
            "multimedia": [{"type": "photo", "url": "javascript:alert(2)"}],
            "permalink": "javascript:alert(3)",
        },
        {"id": "1_3", "creation_time": "2024-06-01T00:00:00+0000", "post_owner": {"username": "bad name!"}},
    ]
    path = tmp_path / "facebook_odd.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    result = read_meta_content_library([path])
    assert [p.post_id for p in result.posts] == ["1_1", "1_2"]
    assert len(result.posts[0].text) == 400_000
    odd = result.posts[1]
    assert odd.links == [] and odd.media == []
    assert odd.url == "https://www.facebook.com/1_2"  # the javascript: permalink is not a URL
    assert result.skipped[0].startswith(
        "facebook_odd.jsonl:3: post_owner.username: facebook handle 'bad name!'"
    )
