"""The media stage: fetch the files posts carry as evidence, read their text, hash their
images, and release what data minimisation says must go.

Runs before classification: a post with media waits until its files are fetched and read,
so the classifier and the entity extractor see the text in its images. A file is written
to disk before the store records it, and the store records a post's media in one
transaction: a crash loses at most the post in progress, whose media are fetched again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pipeline.enrich.entities import repair_ocr_text
from vigie.records import Post, stored_attachments
from vigie.store import media as stored

if TYPE_CHECKING:
    from pipeline.media.files import MediaFiles
    from pipeline.media.ocr import OcrEngine
    from vigie.config import VigieConfig
    from vigie.http_client import HttpClient
    from vigie.store import Store

log = logging.getLogger(__name__)
BATCH = 20
# OCR text shorter than this is noise (a logo, a watermark), not something to read.
MIN_OCR_CHARS = 8
CAPTION_CHARS = 12
# After this many failed fetches in a row from one host (a dead CDN), the run stops trying it.
HOST_FAILURES = 3
# Runs in which a post's media may fail to download before it is classified without them.
MAX_ATTEMPTS = 3


@dataclass
class MediaReport:
    posts: int = 0
    fetched: int = 0
    reused: int = 0  # files already stored for another post: not read again
    too_big: int = 0
    failed: int = 0
    unavailable: int = 0
    read: int = 0  # images with text found in them
    waiting: int = 0  # posts whose media wait for the next run (a server down, OCR missing)
    deleted: int = 0  # files released by data minimisation or retention
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class MediaReader:
    """Fetches, stores, hashes and reads one post's media at a time."""

    def __init__(
        self, config: VigieConfig, client: HttpClient, files: MediaFiles, ocr: OcrEngine | None
    ) -> None:
        self.config, self.client, self.files, self.ocr = config, client, files, ocr
        self.failures: dict[str, int] = {}  # consecutive failed fetches by host

    def read_post(self, store: Store, row: dict[str, Any], report: MediaReport) -> None:
        """Fetch and read one post's media. A fetch that failed (a dead or overloaded
        server) leaves the post pending for the next run, up to MAX_ATTEMPTS runs; then its
        outcomes are recorded as they are and the post is classified without those files."""
        from pipeline.media.fetch import fetch_media

        outcomes: list[stored.AttachmentOutcome] = []
        found: list[stored.MediaFile] = []
        failed = False
        for position, attachment in enumerate(stored_attachments(row["attachments"])):
            url = attachment.evidence_url()
            if attachment.sha256 and self.files.has(attachment.sha256):
                # An export's own file, held since the import: read, not fetched.
                data = self.files.path(attachment.sha256).read_bytes()
                found.append(self._file_for(store, data, attachment.sha256, row["text"], report))
                outcomes.append(
                    stored.AttachmentOutcome(
                        position, attachment.type, url, "fetched", sha256=attachment.sha256
                    )
                )
                continue
            if url is None or not url.startswith(("http://", "https://")):
                if attachment.unavailable:
                    outcomes.append(
                        stored.AttachmentOutcome(
                            position, attachment.type, None, "unavailable", error=attachment.unavailable
                        )
                    )
                    report.unavailable += 1
                continue
            host = urlsplit(url).hostname or ""
            if self.failures.get(host, 0) >= HOST_FAILURES:
                # Not tried: the host is down this run, which counts as this post's try too,
                # so posts of a dead host go on after MAX_ATTEMPTS runs like the others.
                failed = True
                outcomes.append(
                    stored.AttachmentOutcome(
                        position, attachment.type, url, "failed", error=f"{host}: down this run, not tried"
                    )
                )
                report.failed += 1
                continue
            got = fetch_media(self.client, url, self.config.media.max_bytes)
            self.failures[host] = self.failures.get(host, 0) + 1 if got.transient else 0
            if got.status != "fetched" or got.data is None or got.sha256 is None:
                failed |= got.transient
                outcomes.append(
                    stored.AttachmentOutcome(position, attachment.type, url, got.status, error=got.error)
                )
                report.too_big += got.status == "too_big"
                report.failed += got.status in ("failed", "refused")
                if got.error and len(report.errors) < 20:
                    report.errors.append(f"{row['key']}: {got.error}")
                continue
            self.files.put(got.data)  # again for a known file: its row may outlive a lost file
            found.append(self._file_for(store, got.data, got.sha256, row["text"], report))
            report.fetched += 1
            outcomes.append(
                stored.AttachmentOutcome(position, attachment.type, url, "fetched", sha256=got.sha256)
            )
        if failed and row["media_attempts"] + 1 < MAX_ATTEMPTS:
            stored.try_again_later(store, row["key"], failed=failed)
            report.waiting += 1
            return
        texts = [f.ocr_text for f in found if f.ocr_text]
        stored.save_post_media(store, row["key"], outcomes, found, "\n".join(texts) or None)
        report.posts += 1

    def _file_for(
        self, store: Store, data: bytes, sha256: str, caption: str, report: MediaReport
    ) -> stored.MediaFile:
        """The facts of a file: as stored when another post brought it, else read now."""
        from pipeline.media.sniff import sniff

        file = stored.known_file(store, sha256)
        if file is not None:
            report.reused += 1
            return file
        file = self._new_file(data, sha256, sniff(data), caption)
        report.read += bool(file.ocr_text)
        return file

    def _new_file(self, data: bytes, sha256: str, content_type: str | None, caption: str) -> stored.MediaFile:
        """The facts of a file not seen before. A file that defeats the decoder, the hash or
        Tesseract (however hostile) is kept as evidence with what could be read of it."""
        from pipeline.media.images import ImageError, open_image
        from pipeline.media.ocr import OcrUnavailable
        from pipeline.media.pdq import PdqError, pdq_hash

        file = stored.MediaFile(sha256, content_type, len(data))
        if not (content_type or "").startswith("image/"):
            return file
        try:
            image = open_image(data)
        except (ImageError, MemoryError) as exc:
            log.warning("%s: %s", sha256[:12], exc)
            return file
        file.width, file.height = image.size
        try:
            hashed = pdq_hash(image)
            file.pdq, file.pdq_quality = hashed.hex, hashed.quality
        except (PdqError, MemoryError, ValueError) as exc:
            log.warning("%s: %s", sha256[:12], exc)
        if self.ocr is not None:
            from pipeline.media.ocr import OcrFailed

            try:
                text, models, confidence = self._read_text(image, caption)
            except OcrUnavailable:
                raise  # the stage stops: every other image would go unread the same way
            except (OcrFailed, MemoryError, RuntimeError, ValueError) as exc:
                log.warning("%s: %s", sha256[:12], exc)
                return file
            if len(text.strip()) >= MIN_OCR_CHARS:
                file.ocr_text, file.ocr_models, file.ocr_confidence = (
                    repair_ocr_text(text.strip()),
                    models,
                    confidence,
                )
        return file

    def _read_text(self, image: Any, caption: str) -> tuple[str, str, float]:
        """Models from the caption's language. When the caption says nothing ("DM 📩"), the
        script Tesseract detects in the image chooses them, and the letters then read may
        choose better ones (Sorani, Pashto, Vietnamese…) for a second reading; the more
        confident one is kept."""
        from classifier.langid import identify
        from pipeline.media.ocr import SCRIPT_MODELS, models_for

        assert self.ocr is not None
        fallback = self.config.media.ocr_fallback
        # A caption of a few characters ("DM 📩") says nothing of the image's language.
        lang = identify(caption).lang if sum(ch.isalnum() for ch in caption) >= CAPTION_CHARS else None
        if lang in (None, "und"):
            models = SCRIPT_MODELS.get(self.ocr.script(image) or "", fallback)
        else:
            models = models_for(lang, caption, fallback)
        first = self.ocr.read(image, models)
        best = first
        if (lang in (None, "und")) and first.text.strip():
            # The letters read tell the script (Sorani, Pashto, Ethiopic…) better than a
            # language guess over OCR errors does.
            again = models_for(None, first.text, fallback)
            if again != models:
                second = self.ocr.read(image, again)
                if second.confidence > first.confidence:
                    best = second
        return best.text, best.models, float(best.confidence)


def fetch_and_read(config: VigieConfig, store: Store) -> MediaReport:
    """Every post waiting for its media, fetched and read (`release` runs after classification)."""
    from pipeline.media import ocr as ocr_module
    from pipeline.media.files import MediaFiles
    from vigie.http_client import HttpClient

    report = MediaReport()
    files = MediaFiles(config.media_path())
    if not stored.count_pending_media(store):
        return report
    started = stored.precise_now()
    if not config.media.fetch:
        while rows := stored.pending_media(store, BATCH, started):
            for row in rows:
                stored.save_post_media(store, row["key"], [], [], None)
        return report
    engine = None
    try:
        if config.media.ocr:
            engine = ocr_module.OcrEngine()
        with HttpClient(config.crawl) as client:
            reader = MediaReader(config, client, files, engine)
            while rows := stored.pending_media(store, BATCH, started):
                for row in rows:
                    reader.read_post(store, row, report)
    except ocr_module.OcrUnavailable as exc:
        # Posts with images wait (nothing is classified without what their images say);
        # the others go on. The operator installs the models or turns media.ocr off.
        report.errors.append(
            f"media not read, posts with images wait: {exc} (or set media.ocr: false to classify them without OCR)"
        )
    report.waiting = stored.count_pending_media(store)
    return report


def release(config: VigieConfig, store: Store) -> int:
    """Delete files no flagged, reviewed or referred post needs (unless media.keep_unflagged),
    and files past media.retention_days that no referral holds."""
    from pipeline.media.files import MediaFiles

    files = MediaFiles(config.media_path())
    shas = set(stored.unreferenced_files(store, config.media.keep_unflagged))
    if config.media.retention_days:
        before = (datetime.now(UTC) - timedelta(days=config.media.retention_days)).isoformat(
            timespec="seconds"
        )
        shas |= set(stored.expired_files(store, before))
    stored.mark_deleted(store, shas)
    for sha in shas:
        files.delete(sha)
    return len(shas)


def hold_export_files(config: VigieConfig, posts: list[Post], export_dir: Path) -> tuple[int, list[str]]:
    """Put the files a Telegram Desktop export brought (next to its `result.json`) in the
    media store, so the media stage reads them like fetched ones. A path leading out of the
    export's directory, a missing file or one over `media.max_bytes` is left out and named.
    Returns how many files are held and what was left out."""
    from pipeline.media.files import MediaFiles

    files = MediaFiles(config.media_path())
    root = export_dir.resolve()
    held, left = 0, []
    for post in posts:
        for attachment in post.attachments:
            relative = attachment.evidence_url()
            if not relative or relative.startswith(("http://", "https://")) or attachment.unavailable:
                continue
            path = (root / relative).resolve()
            if not path.is_relative_to(root) or not path.is_file():
                left.append(f"{post.key}: {relative[:120]!r}: not a file inside the export")
                continue
            if path.stat().st_size > config.media.max_bytes:
                left.append(f"{post.key}: {relative[:120]!r}: over media.max_bytes")
                continue
            attachment.sha256 = files.put(path.read_bytes())
            held += 1
    return held, left
