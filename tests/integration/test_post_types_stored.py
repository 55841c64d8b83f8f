"""Every post type survives the whole way into the store: crawled from preview pages the
mirror serves, and imported from a Telegram Desktop export."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_vigie
from vigie.records import Attachment, readable_text
from vigie.store import Store

DATA = Path(__file__).resolve().parents[1] / "data" / "telegram"


def _stored(tmp_path: Path) -> dict[int, dict]:
    with Store(tmp_path / "data" / "vigie.db", read_only=True) as store:
        return {int(p["post_id"]): p for p in store.posts()}


def test_crawled_post_types_are_stored_with_their_attachments(tmp_path, mirror_factory, config_file):
    base = {"date": "2026-10-01T10:00:00+00:00", "views": 10, "text": ""}
    posts = [
        {
            **base,
            "id": 1,
            "text": "Which route?",
            "poll": {"question": "Izmir or Bodrum?", "options": ["Izmir", "Bodrum"]},
        },
        {**base, "id": 2, "document": {"name": "price-list\x1b]0;x\x07.pdf", "size": 120_000}},
        {**base, "id": 3, "voice": 35},
        {**base, "id": 4, "sticker": True},
        {**base, "id": 5, "too_big_video": 292, "text": "the crossing, filmed"},
        {**base, "id": 6, "partial": True, "text": "see more in the app"},
        {**base, "id": 7, "forwarded_from_name": "Abu Karim", "text": "forwarded offer"},
        {**base, "id": 8, "images": ["a.jpg"], "text": "DM"},
    ]
    mirror = mirror_factory({"types_chan": {"username": "types_chan", "title": "Types", "posts": posts}})
    config = config_file()
    run_vigie("crawl", "telegram", "types_chan", "--base-url", mirror.url, config=config, check=True)
    stored = _stored(tmp_path)
    kinds = {i: [a["type"] for a in json.loads(p["attachments"])] for i, p in stored.items()}
    assert kinds[1] == ["poll"] and kinds[2] == ["document"] and kinds[3] == ["voice"]
    assert kinds[4] == ["sticker"] and kinds[5] == ["video"] and kinds[8] == ["photo"]
    poll = [Attachment.from_json(a) for a in json.loads(stored[1]["attachments"])]
    assert readable_text(stored[1]["text"], poll) == "Which route?\nIzmir or Bodrum?\nIzmir\nBodrum"
    (document,) = json.loads(stored[2]["attachments"])
    assert document["name"] == "price-list]0;x.pdf"  # control characters never reach the store
    (video,) = json.loads(stored[5]["attachments"])
    assert video.get("url") is None and video["unavailable"] == "too_big" and video["duration"] == 292
    assert stored[6]["partial"] == 1 and stored[7]["forwarded_from_name"] == "Abu Karim"
    assert stored[7]["forwarded_from"] is None
    # A photo, and a too-big video's thumbnail, wait to be fetched; a poll and a voice
    # message have nothing to fetch.
    assert [stored[i]["media_pending"] for i in (8, 5, 1, 3)] == [1, 1, 0, 0]


def test_exported_post_types_are_stored_without_placeholders_as_files(tmp_path, config_file):
    config = config_file()
    result = run_vigie(
        "import",
        "telegram-export",
        str(DATA / "result_types.json"),
        "--channel",
        "kargo",
        config=config,
        check=True,
    )
    assert result.returncode == 0
    stored = _stored(tmp_path)
    photo = json.loads(stored[10]["attachments"])[0]
    assert photo["type"] == "photo" and photo.get("url") is None and photo["unavailable"] == "not_included"
    assert json.loads(stored[10]["media"]) == []
    video = json.loads(stored[11]["attachments"])[0]
    assert (video["name"], video["unavailable"], video["duration"]) == ("tekne.mp4", "too_big", 292)
    kinds = {a["type"] for p in stored.values() for a in json.loads(p["attachments"])}
    assert {"poll", "contact", "location", "voice"} <= kinds
    # A second import adds nothing.
    again = run_vigie(
        "import",
        "telegram-export",
        str(DATA / "result_types.json"),
        "--channel",
        "kargo",
        config=config,
        check=True,
    )
    assert "new" in again.stdout and _stored(tmp_path) == stored


def test_an_export_s_own_images_are_held_then_read_like_fetched_ones(tmp_path, config_file):
    import hashlib
    import io

    from pipeline.enrich.media import fetch_and_read
    from tests.support.flyers import render_flyer
    from vigie.config_file import load_config
    from vigie.store import media as stored_media

    export = tmp_path / "export"
    (export / "photos").mkdir(parents=True)
    flyer = io.BytesIO()
    render_flyer("en", seed=5).save(flyer, "JPEG", quality=85)
    (export / "photos" / "photo_1.jpg").write_bytes(flyer.getvalue())
    (tmp_path / "outside.jpg").write_bytes(flyer.getvalue())
    message = {"type": "message", "date": "2026-10-01T09:00:00", "date_unixtime": "1790845200", "text": "DM"}
    (export / "result.json").write_text(
        json.dumps(
            {
                "name": "G",
                "type": "public_channel",
                "id": 5,
                "messages": [
                    {**message, "id": 1, "photo": "photos/photo_1.jpg"},
                    {**message, "id": 2, "photo": "../outside.jpg"},  # leads out of the export
                ],
            }
        ),
        encoding="utf-8",
    )
    config = config_file()
    result = run_vigie("import", "telegram-export", str(export / "result.json"), config=config, check=True)
    assert "1 files held for reading" in result.stdout
    assert "../outside.jpg" in result.stderr and "not a file inside the export" in result.stderr
    with Store(tmp_path / "data" / "vigie.db") as store:
        fetch_and_read(load_config(config), store)
        keys = [p["key"] for p in store.posts()]
        media = stored_media.media_of(store, keys)
        texts = {int(p["post_id"]): p["ocr_text"] or "" for p in store.posts()}
    (held,) = media[keys[0]]
    assert held["status"] == "fetched" and held["sha256"] == hashlib.sha256(flyer.getvalue()).hexdigest()
    assert held["url"] == "photos/photo_1.jpg" and held["content_type"] == "image/jpeg"
    assert "7700" in texts[1] and texts[2] == ""
