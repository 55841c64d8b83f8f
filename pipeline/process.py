"""Process stored posts: classify in batches, extract entities, group reposts, minimise.

A post is pending when it has no analysis yet, when its content changed since, or when a
newer classifier is in use (for posts whose text was kept). Each batch is written in one
transaction: a crash loses at most the batch in progress, which the next run redoes.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.entities import extract
from pipeline.reposts import RepostIndex
from vigie.store import DECIDED, Store, utcnow

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


def model_id(clf: AdvertClassifier) -> str:
    return str(clf.meta.get("fingerprint") or clf.meta.get("trained_at"))


# Posts never analysed, changed since, or analysed by another model (while their text is kept).
_PENDING = (
    " FROM posts p LEFT JOIN analysis a ON a.post_key = p.key"
    " WHERE a.post_key IS NULL OR a.content_sha256 != p.content_sha256"
    " OR (a.model_id != ? AND p.minimised = 0)"
)


def pending(store: Store, current_model: str, limit: int) -> list[sqlite3.Row]:
    query = (
        "SELECT p.*, (SELECT r.status FROM referrals r WHERE r.post_key = p.key) AS referral_status"
        + _PENDING
        + " ORDER BY p.platform, p.channel, p.post_id LIMIT ?"
    )
    return list(store.db.execute(query, (current_model, limit)))


def count_pending(store: Store, current_model: str) -> int:
    return int(store.db.execute("SELECT COUNT(*)" + _PENDING, (current_model,)).fetchone()[0])


def _save(
    store: Store,
    reposts: RepostIndex,
    row: sqlite3.Row,
    pred: Prediction,
    current_model: str,
    keep_text: bool,
) -> str | None:
    # Adverts and the review band keep their text, entities and clusters for the analysts. An
    # analyst's decision outlives a new model's score: a confirmed or referred post is never
    # minimised, and stays flagged (in the review band) even if it now scores low.
    decided = row["referral_status"] in DECIDED
    flagged = pred.decision in ("advert", "review") or decided
    entities = extract(row["text"], pred.lang) if row["text"] else None
    cluster = reposts.assign(row["key"], row["text"]) if flagged else None
    store.db.execute(
        "INSERT INTO analysis (post_key, content_sha256, model_id, lang, lang_confidence, score, is_advert,"
        " needs_review, cues, entities, cluster_id, processed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(post_key) DO UPDATE SET content_sha256 = excluded.content_sha256,"
        " model_id = excluded.model_id, lang = excluded.lang, lang_confidence = excluded.lang_confidence,"
        " score = excluded.score, is_advert = excluded.is_advert, needs_review = excluded.needs_review,"
        " cues = excluded.cues,"
        " entities = excluded.entities, cluster_id = excluded.cluster_id, processed_at = excluded.processed_at",
        (
            row["key"],
            row["content_sha256"],
            current_model,
            pred.lang,
            pred.lang_confidence,
            pred.score,
            int(pred.is_advert),
            int(pred.decision == "review" or (decided and not pred.is_advert)),
            json.dumps(pred.cues, ensure_ascii=False),
            json.dumps(entities.to_json() if entities and flagged else {}, ensure_ascii=False),
            cluster,
            utcnow(),
        ),
    )
    store.db.execute("DELETE FROM contacts WHERE post_key = ?", (row["key"],))
    if pred.is_advert and entities:
        # Only sure adverts link channels: the review band may hold an NGO's hotline.
        store.db.executemany(
            "INSERT OR IGNORE INTO contacts (contact, post_key, platform, channel) VALUES (?, ?, ?, ?)",
            [(c, row["key"], row["platform"], row["channel"]) for c in entities.contacts],
        )
    if not flagged:
        store.db.execute("DELETE FROM signatures WHERE post_key = ?", (row["key"],))
        if not keep_text:
            # Data minimisation: a post that is not flagged keeps its key, score and times only.
            store.db.execute(
                "UPDATE posts SET text = '', media = '[]', links = '[]', minimised = 1 WHERE key = ?",
                (row["key"],),
            )
            return "minimised"
    return cluster


def process(
    store: Store,
    clf: AdvertClassifier,
    batch_size: int = 64,
    keep_text: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ProcessReport:
    from classifier.model import Prediction

    report = ProcessReport()
    current = model_id(clf)
    reposts = RepostIndex(store)
    while True:
        rows = pending(store, current, batch_size)
        if not rows:
            return report
        texts = [row["text"] for row in rows]
        scored = [i for i, t in enumerate(texts) if t.strip()]
        predictions = dict(zip(scored, clf.predict([texts[i] for i in scored]), strict=True))
        empty = Prediction("und", 0.0, 0.0, False, [])
        with store.transaction():
            for i, row in enumerate(rows):
                pred = predictions.get(i, empty)
                outcome = _save(store, reposts, row, pred, current, keep_text)
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
