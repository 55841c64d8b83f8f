"""Process stored posts: classify in batches, extract entities, group reposts, minimise.

A post is pending when it has no analysis yet, when its content changed since, or when a
newer classifier is in use (for posts whose text was kept). Each batch is written in one
transaction: a crash loses at most the batch in progress, which the next run redoes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.enrich.entities import extract
from pipeline.enrich.reposts import RepostIndex
from vigie.store import DECIDED, Store, analysis, utcnow
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


def model_id(clf: AdvertClassifier) -> str:
    return str(clf.meta.get("fingerprint") or clf.meta.get("trained_at"))


def _save(
    store: Store,
    reposts: RepostIndex,
    row: dict[str, Any],
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
            "entities": json.dumps(entities.to_json() if entities and flagged else {}, ensure_ascii=False),
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
) -> ProcessReport:
    from classifier.model import Prediction

    report = ProcessReport()
    current = model_id(clf)
    reposts = RepostIndex(store)
    while True:
        rows = analysis.pending_posts(store, current, batch_size)
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
