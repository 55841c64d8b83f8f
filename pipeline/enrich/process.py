"""Process stored posts: classify in batches, extract entities, group reposts, minimise.

A post is pending when it has no analysis yet, when its content changed since, or when a
newer classifier is in use (for posts whose text was kept). Each batch is written in one
transaction: a crash loses at most the batch in progress, which the next run redoes.

With `keys` (a cluster's classification batch), only those posts are processed, those still
pending when their chunk is saved; several processes may save at once: each chunk is saved
under the store's repost lock, after the repost index caught up with what others saved.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pipeline.enrich.entities import extract
from pipeline.enrich.reposts import RepostIndex
from pipeline.media.pdq import DEFAULT_DISTANCE
from vigie.records import readable_text, stored_attachments
from vigie.store import DECIDED, Store, analysis, utcnow
from vigie.store import media as stored_media
from vigie.store.posts import minimise_post

if TYPE_CHECKING:
    from classifier.model import AdvertClassifier, Prediction


@dataclass
class ProcessReport:
    processed: int = 0
    flagged: int = 0
    for_review: int = 0
    minimised: int = 0
    by_source: Counter[str] = field(default_factory=Counter)
    flagged_by_source: Counter[str] = field(default_factory=Counter)
    by_lang: Counter[str] = field(default_factory=Counter)
    flagged_by_lang: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {k: dict(v) if isinstance(v, Counter) else v for k, v in self.__dict__.items()}


def readable(row: dict[str, Any]) -> str:
    """A stored post's text with its attachments' words (poll, document name)."""
    attachments = stored_attachments(row.get("attachments"))
    return readable_text(row["text"], attachments)


def with_images(text: Prediction, image: Prediction) -> Prediction:
    """The post's prediction from its two channels: the more advert-like one decides; the
    language stays the text's unless the text says nothing; cues from both, the image's marked."""
    image_cues = [{**cue, "source": "image"} for cue in image.cues]
    said = text if text.lang != "und" else image
    if image.score <= text.score:
        return replace(
            text, lang=said.lang, lang_confidence=said.lang_confidence, cues=text.cues + image_cues
        )
    return replace(
        image,
        lang=said.lang,
        lang_confidence=said.lang_confidence,
        cues=image_cues + text.cues,
        stage="image",
    )


def model_id(clf: AdvertClassifier) -> str:
    return str(clf.meta.get("fingerprint") or clf.meta.get("trained_at"))


def _save(
    store: Store,
    reposts: RepostIndex,
    row: dict[str, Any],
    pred: Prediction,
    current_model: str,
    keep_text: bool,
    image_score: float | None = None,
) -> str | None:
    # Adverts and the review band keep their text, entities and clusters for the analysts. An
    # analyst's decision outlives a new model's score: a confirmed or referred post is never
    # minimised, and stays flagged (in the review band) even if it now scores low.
    decided = row["referral_status"] in DECIDED
    flagged = pred.decision in ("advert", "review") or decided
    text, ocr = readable(row), (row.get("ocr_text") or "").strip()
    entities = extract("\n".join(filter(None, [text, ocr])), pred.lang) if (text or ocr) else None
    if entities is not None and ocr:
        in_image = extract(ocr, pred.lang)  # what the images say, for the notice's explanation
        image = {
            "contacts": in_image.contacts,
            "prices": in_image.to_json()["prices"],
            "places": in_image.places,
        }
    cluster = (
        reposts.assign(row["key"], "\n".join(filter(None, [text, ocr])), row.get("pdq") or [])
        if flagged
        else None
    )
    analysis.save_analysis(
        store,
        {
            "post_key": row["key"],
            "content_sha256": row["content_sha256"],
            "model_id": current_model,
            "lang": pred.lang,
            "lang_confidence": pred.lang_confidence,
            "score": pred.score,
            "is_advert": int(pred.is_advert),
            "needs_review": int(pred.decision == "review" or (decided and not pred.is_advert)),
            "cues": json.dumps(pred.cues, ensure_ascii=False),
            "entities": json.dumps(
                {**entities.to_json(), **({"image": image} if ocr else {})} if entities and flagged else {},
                ensure_ascii=False,
            ),
            "image_score": image_score,
            "cluster_id": cluster,
            "processed_at": utcnow(),
        },
    )
    # Only sure adverts link channels: the review band may hold an NGO's hotline.
    found = entities.contacts if pred.is_advert and entities else []
    analysis.replace_contacts(store, row["key"], row["platform"], row["channel"], found)
    if not flagged:
        analysis.forget_signature(store, row["key"])
        if not keep_text:
            minimise_post(store, row["key"])
            return "minimised"
    return cluster


def process(
    store: Store,
    clf: AdvertClassifier,
    batch_size: int = 64,
    keep_text: bool = False,
    progress: Callable[[int], None] | None = None,
    pdq_distance: int = DEFAULT_DISTANCE,
    keys: Sequence[str] | None = None,
) -> ProcessReport:
    from classifier.model import Prediction

    report = ProcessReport()
    current = model_id(clf)
    reposts = RepostIndex(store, pdq_distance)
    chunks = (
        [list(keys[i : i + batch_size]) for i in range(0, len(keys), batch_size)]
        if keys is not None
        else None
    )
    while True:
        if chunks is None:
            rows = analysis.pending_posts(store, current, batch_size)
            if not rows:
                return report
        else:
            if not chunks:
                return report
            rows = analysis.pending_posts(store, current, batch_size, keys=chunks.pop(0))
            if not rows:
                continue
        texts = [readable(row) for row in rows]
        scored = [i for i, t in enumerate(texts) if t.strip()]
        predictions = dict(zip(scored, clf.predict([texts[i] for i in scored]), strict=True))
        # The text read in images is a channel of its own: scored apart, so a caption-only
        # post ("DM 📩") is judged by its flyer, and a flyer's OCR noise never dilutes a caption.
        pictured = [i for i, row in enumerate(rows) if (row.get("ocr_text") or "").strip()]
        in_images = dict(zip(pictured, clf.predict([rows[i]["ocr_text"] for i in pictured]), strict=True))
        hashes = stored_media.image_hashes(store, [rows[i]["key"] for i in pictured])
        empty = Prediction("und", 0.0, 0.0, False, [])
        with store.transaction():
            if chunks is not None:
                analysis.hold_repost_lock(store)
                reposts.catch_up(store)
                # A batch retried while its first run still goes: what that run saved stays.
                wanted = analysis.still_pending(store, current, [row["key"] for row in rows])
            for i, row in enumerate(rows):
                if chunks is not None and row["key"] not in wanted:
                    continue
                pred = predictions.get(i, empty)
                image_pred = in_images.get(i)
                if image_pred is not None:
                    pred = with_images(pred, image_pred)
                row = {**row, "pdq": hashes.get(row["key"], [])}
                outcome = _save(
                    store, reposts, row, pred, current, keep_text, image_pred.score if image_pred else None
                )
                source = f"{row['platform']}:{row['channel']}"
                report.processed += 1
                report.by_source[source] += 1
                report.by_lang[pred.lang] += 1
                report.minimised += outcome == "minimised"
                report.for_review += pred.decision == "review"
                if pred.is_advert:
                    report.flagged += 1
                    report.flagged_by_source[source] += 1
                    report.flagged_by_lang[pred.lang] += 1
        if progress:
            progress(len(rows))
