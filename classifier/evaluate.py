"""Evaluate a trained classifier on a corpus split, with the threshold chosen at training."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifier.corpus import CHALLENGE, load_corpus
from classifier.langid import identify
from classifier.metrics import report

if TYPE_CHECKING:
    from classifier.model import AdvertClassifier


def language_id_accuracy(items: list[tuple[str, str]]) -> dict[str, Any]:
    """items: (text, true lang). Accuracy overall and per language."""
    hits: dict[str, list[int]] = defaultdict(list)
    for text, lang in items:
        hits[lang].append(int(identify(text).lang == lang))
    total = [h for v in hits.values() for h in v]
    return {
        "overall": round(sum(total) / max(1, len(total)), 4),
        "accuracy": {lang: round(sum(v) / len(v), 4) for lang, v in sorted(hits.items())},
    }


def evaluate_split(
    clf: AdvertClassifier, split: str = "test", corpus_dir: Path | None = None
) -> dict[str, Any]:
    """Metrics on a corpus split, or on the challenge split (`split="challenge"`), which is
    read from its own directory and never seen by training."""
    if split == CHALLENGE:
        items = load_corpus(corpus_dir, challenge=True)
    else:
        items = [ex for ex in load_corpus(corpus_dir) if ex.split == split]
    predictions = clf.predict([ex.text for ex in items])
    rows = [
        {"label": ex.label, "score": p.score, "lang": ex.lang, "kind": ex.kind, "phenomenon": ex.phenomenon}
        for ex, p in zip(items, predictions, strict=True)
    ]
    return {
        split: report(rows, clf.threshold, clf.review_threshold),
        "language_id": language_id_accuracy([(ex.text, ex.lang) for ex in items]),
        "model": str(clf.directory),
    }
