"""Adverts posted as pictures, end to end: the mirror serves flyers (rendered with Pillow and
Noto fonts) as photos of caption-only posts; `vigie run` fetches them, reads them with
Tesseract, hashes them with PDQ, flags the posts from their images, finds the phone number
that only the image gives, and clusters the same flyer re-encoded in another channel —
never two different flyers. The notice then lists each file's SHA-256 and PDQ hash."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import run_vigie
from tests.support.flyers import render_flyer, unrelated_images, variants
from vigie.store import Store
from vigie.store import media as stored_media

# Tesseract and its models come with `make test` (`make system-deps`): never skipped.
pytestmark = pytest.mark.elasticsearch


def _jpeg(image: Any, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _post(i: int, text: str, images: list[str]) -> dict[str, Any]:
    return {
        "id": i,
        "date": f"2026-10-0{i}T10:00:00+00:00",
        "text": text,
        "views": 100,
        "images": images,
    }


@pytest.fixture
def pictured(mirror_factory, config_file, shipped, es_url):
    family = next(iter(unrelated_images().values()))
    files = {
        "izmir.jpg": _jpeg(render_flyer("tr", seed=1)),
        "belarus.jpg": _jpeg(render_flyer("en", seed=2)),
        "libya.jpg": _jpeg(render_flyer("ar", seed=3)),
        # The first flyer as a repost makes it: cropped, halved and re-encoded at quality 40.
        "izmir-repost.jpg": variants(render_flyer("tr", seed=1))["crop_5+resize_50+jpeg_q40"],
        "family.jpg": _jpeg(family),
    }
    channels = {
        "flyer_one": {
            "username": "flyer_one",
            "title": "Flyer One",
            "posts": [
                _post(1, "DM 📩", ["izmir.jpg"]),
                _post(2, "DM 📩", ["belarus.jpg"]),
                _post(3, "We arrived safely, thank God. Love you mum ❤️", ["family.jpg"]),
            ],
        },
        "flyer_two": {
            "username": "flyer_two",
            "title": "Flyer Two",
            "posts": [_post(1, "📩", ["izmir-repost.jpg"]), _post(2, "DM 📩", ["libya.jpg"])],
        },
    }
    mirror = mirror_factory(channels, media=files)
    config = config_file(
        telegram={"base_url": mirror.url},
        sources=[{"platform": "telegram", "channel": name} for name in channels],
        referrals={"notifier_name": "Ana", "notifier_email": "ana@example.org"},
        elasticsearch={"url": es_url, "index_prefix": "vigie-pictured"},
    )
    run_vigie("run", config=config, check=True, timeout=900)
    return config, files, es_url


def _analysis(store: Store) -> dict[str, dict[str, Any]]:
    rows = store.db.execute(
        "SELECT a.post_key, a.is_advert, a.score, a.image_score, a.cluster_id, a.entities, p.ocr_text "
        "FROM analysis a JOIN posts p ON p.key = a.post_key"
    ).fetchall()
    return {r["post_key"]: dict(r) for r in rows}


def test_caption_only_posts_are_flagged_and_clustered_from_their_images(pictured, tmp_path):
    _, files, es_url = pictured
    with Store(tmp_path / "data" / "vigie.db", read_only=True) as store:
        rows = _analysis(store)
        media = stored_media.media_of(store, list(rows))
    izmir, belarus, family = (rows[f"telegram:flyer_one:{i}"] for i in (1, 2, 3))
    repost, libya = (rows[f"telegram:flyer_two:{i}"] for i in (1, 2))
    for row in (izmir, belarus, repost, libya):
        assert row["is_advert"] == 1 and row["image_score"] >= row["score"] - 1e-6, row
    assert not family["is_advert"]
    # The phone number is only in the image.
    assert "+905324187709" in json.loads(izmir["entities"])["contacts"]
    assert "+905324187709" in json.loads(izmir["entities"])["image"]["contacts"]
    assert "+218912345678" in json.loads(libya["entities"])["image"]["contacts"]
    # The same flyer, re-encoded elsewhere, is one cluster; different flyers never are.
    assert izmir["cluster_id"] == repost["cluster_id"]
    assert len({izmir["cluster_id"], belarus["cluster_id"], libya["cluster_id"]}) == 3
    # Evidence by content: what the mirror served, byte for byte.
    (served,) = media["telegram:flyer_one:1"]
    assert served["sha256"] == hashlib.sha256(files["izmir.jpg"]).hexdigest()
    assert served["content_type"] == "image/jpeg" and len(served["pdq"]) == 64
    assert (tmp_path / "data" / "media" / served["sha256"][:2]).is_dir()
    # The index holds the hashes, whole and in segments, and what the image says.
    es = Elasticsearch(es_url)
    es.indices.refresh(index="vigie-pictured-*")
    (hit,) = es.search(index="vigie-pictured-*", query={"ids": {"values": ["telegram:flyer_one:1"]}})["hits"][
        "hits"
    ]
    doc = hit["_source"]
    assert doc["pdq"] == [served["pdq"]] and len(doc["pdq_segments"]) == 16
    assert "+905324187709" in doc["image_contacts"] and "8000" in doc["ocr_text"]
    assert doc["media_sha256"] == [served["sha256"]] and doc["attachment_types"] == ["photo"]
    near = es.search(index="vigie-pictured-*", query={"terms": {"pdq_segments": doc["pdq_segments"][:4]}})
    assert "telegram:flyer_one:1" in {h["_id"] for h in near["hits"]["hits"]}
    # Data minimisation: the unflagged post's photo is gone from disk, its facts kept.
    family_sha = hashlib.sha256(files["family.jpg"]).hexdigest()
    with Store(tmp_path / "data" / "vigie.db", read_only=True) as store:
        assert stored_media.known_file(store, family_sha) is None
        (kept, ocr_text) = store.db.execute(
            "SELECT kept, ocr_text FROM media_files WHERE sha256 = ?", (family_sha,)
        ).fetchone()
    assert (kept, ocr_text) == (0, None) and "telegram:flyer_one:3" not in media
    assert not any(
        p.name == hashlib.sha256(files["family.jpg"]).hexdigest()
        for p in (tmp_path / "data" / "media").rglob("*")
    )


def test_review_shows_image_hashes_and_the_notice_lists_each_file(pictured, tmp_path):
    config, files, _ = pictured
    queue = json.loads(run_vigie("review", "--json", config=config, check=True).stdout)
    izmir = next(g for g in queue if any(p["key"] == "telegram:flyer_one:1" for p in g["posts"]))
    assert {p["key"] for p in izmir["posts"]} == {"telegram:flyer_one:1", "telegram:flyer_two:1"}
    assert len(izmir["pdq"]) == 2 and "[image]" in izmir["example"]
    run_vigie("review", "confirm", izmir["target"], "--reason", "price list image", config=config, check=True)
    out = tmp_path / "out"
    run_vigie(
        "referrals", "export", "--platform", "telegram", "--format", "json", "--out", str(out),
        config=config, check=True,
    )  # fmt: skip
    (manifest,) = out.glob("*/notices.json")
    (notice,) = json.loads(manifest.read_text("utf-8"))["notices"]
    assert len(notice["evidence"]) == 2  # the notice covers the whole cluster
    shas = {m["sha256"] for e in notice["evidence"] for m in e["media"]}
    assert shas == {hashlib.sha256(files[n]).hexdigest() for n in ("izmir.jpg", "izmir-repost.jpg")}
    assert all(len(m["pdq"]) == 64 for e in notice["evidence"] for m in e["media"])
    assert "Text read in its image(s)" in notice["explanation"] and "+905324187709" in notice["explanation"]
    assert "PDQ" in notice["email"]["body"]
