"""The media stage against real servers, without the classifier: images fetched from the
mirror, read and hashed; a dead server's media wait for later runs, then give up; a hostile
image is kept as evidence without stopping anything; missing OCR models hold posts back."""

from __future__ import annotations

import hashlib
import io
import socket

import pytest
from PIL import Image

from pipeline.enrich.media import MAX_ATTEMPTS, fetch_and_read, release
from pipeline.media import ocr
from tests.support.flyers import render_flyer
from vigie.config_file import parse_config
from vigie.records import Attachment, Post
from vigie.store import Store
from vigie.store import media as stored


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _photo(i: int, url: str) -> Post:
    return Post(
        "telegram", "chan", i, f"https://t.me/chan/{i}", "DM 📩", None, attachments=[Attachment("photo", url)]
    )


@pytest.fixture
def setup(tmp_path, mirror_factory):
    files = {
        "flyer.png": _png(render_flyer("tr", seed=4)),
        # 8 x 60,000 pixels in about a kilobyte: enlarged for OCR it would take gigabytes.
        "strip.png": _png(Image.new("L", (8, 60_000), 255)),
        "not-an-image.jpg": b"<html>this is no picture</html>",
    }
    mirror = mirror_factory({}, media=files)
    config = parse_config(
        {
            "data_dir": str(tmp_path / "data"),
            "crawl": {"download_delay": 0, "backoff_base": 0, "retry_times": 1},
        }
    )
    return config, mirror, files


def test_images_are_fetched_hashed_and_read_and_hostile_files_kept_as_evidence(setup):
    config, mirror, files = setup
    with Store(config.store_url()) as store:
        store.upsert_posts(
            [_photo(1, f"{mirror.url}/media/flyer.png"), _photo(2, f"{mirror.url}/media/strip.png"),
             _photo(3, f"{mirror.url}/media/not-an-image.jpg"), _photo(4, f"{mirror.url}/media/missing.png")]
        )  # fmt: skip
        report = fetch_and_read(config, store)
        media = stored.media_of(store, [f"telegram:chan:{i}" for i in range(1, 5)])
        texts = {int(p["post_id"]): p["ocr_text"] for p in store.posts()}
    assert report.errors[:1] and "missing.png" in report.errors[0] and report.fetched == 3
    flyer, strip, html = (media[f"telegram:chan:{i}"][0] for i in (1, 2, 3))
    assert flyer["sha256"] == hashlib.sha256(files["flyer.png"]).hexdigest() and flyer["pdq_quality"] >= 50
    assert "532" in texts[1] and "8000" in texts[1]
    assert (strip["status"], strip["width"], strip["height"], texts[2]) == ("fetched", 8, 60_000, None)
    # The bytes, not the name, say what a file is: no image, so no hash and no OCR.
    assert html["content_type"] is None and html["pdq"] is None and texts[3] is None
    assert (config.media_path() / flyer["sha256"][:2] / flyer["sha256"][2:4] / flyer["sha256"]).is_file()
    # A 404 is an answer, not an outage: recorded at once, not retried.
    assert media["telegram:chan:4"][0]["status"] == "failed"


def test_a_dead_server_s_media_wait_for_later_runs_then_the_post_goes_on_without_them(setup):
    config, _, _ = setup
    dead = f"http://127.0.0.1:{_closed_port()}/media/x.jpg"
    with Store(config.store_url()) as store:
        store.upsert_posts([_photo(i, dead) for i in range(1, 6)])
        report = fetch_and_read(config, store)
        assert report.waiting == 5 and stored.count_pending_media(store) == 5
        # Three failures in a row and the run stops trying that host: the two posts not tried
        # count the run too (their host was down), so a dead host holds no post for long.
        assert sorted(p["media_attempts"] for p in store.posts()) == [1, 1, 1, 1, 1]
        runs = 1
        while stored.count_pending_media(store):
            fetch_and_read(config, store)
            runs += 1
            assert runs <= MAX_ATTEMPTS  # every post goes on after MAX_ATTEMPTS runs
        outcomes = stored.media_of(store, [f"telegram:chan:{i}" for i in range(1, 6)])
    assert all(rows[0]["status"] == "failed" for rows in outcomes.values()) and len(outcomes) == 5
    assert any("down this run, not tried" in (rows[0]["error"] or "") for rows in outcomes.values())


def test_without_ocr_models_posts_with_images_wait_and_nothing_is_lost(setup, monkeypatch):
    config, mirror, _ = setup

    def missing(*_args: object, **_kw: object) -> None:
        raise ocr.OcrUnavailable("no Tesseract models in /nowhere: apt-get install tesseract-ocr-eng")

    monkeypatch.setattr(ocr, "OcrEngine", missing)
    with Store(config.store_url()) as store:
        store.upsert_posts([_photo(1, f"{mirror.url}/media/flyer.png")])
        report = fetch_and_read(config, store)
        assert stored.count_pending_media(store) == 1 and report.waiting == 1
        assert "posts with images wait" in report.errors[0] and "media.ocr: false" in report.errors[0]
    monkeypatch.undo()
    with Store(config.store_url()) as store:
        fetch_and_read(config, store)
        assert stored.count_pending_media(store) == 0
        assert "532" in next(store.posts())["ocr_text"]


def test_release_deletes_the_files_of_posts_not_flagged(setup):
    config, mirror, files = setup
    with Store(config.store_url()) as store:
        store.upsert_posts([_photo(1, f"{mirror.url}/media/flyer.png")])
        fetch_and_read(config, store)
        sha = hashlib.sha256(files["flyer.png"]).hexdigest()
        assert release(config, store) == 0  # not classified yet: needed
        from vigie.store.posts import minimise_post

        minimise_post(store, "telegram:chan:1")  # what classification does to a post not flagged
        assert release(config, store) == 1
        assert not (config.media_path() / sha[:2] / sha[2:4] / sha).exists()
        assert stored.known_file(store, sha) is None
