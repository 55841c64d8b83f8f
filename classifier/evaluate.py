"""Evaluate a trained classifier on a corpus split, with the threshold chosen at training."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifier.corpus import CHALLENGE, load_corpus
from classifier.langid import identify_many
from classifier.metrics import report

if TYPE_CHECKING:
    from classifier.corpus import Example
    from classifier.model import AdvertClassifier, Prediction


def language_id_accuracy(items: list[tuple[str, str]]) -> dict[str, Any]:
    """items: (text, true lang). Accuracy overall and per language."""
    hits: dict[str, list[int]] = defaultdict(list)
    found = identify_many([text for text, _ in items])
    for (_, lang), result in zip(items, found, strict=True):
        hits[lang].append(int(result.lang == lang))
    total = [h for v in hits.values() for h in v]
    return {
        "overall": round(sum(total) / max(1, len(total)), 4),
        "accuracy": {lang: round(sum(v) / len(v), 4) for lang, v in sorted(hits.items())},
    }


def evaluate_split(
    clf: AdvertClassifier, split: str = "test", corpus_dir: Path | None = None
) -> dict[str, Any]:
    """Metrics on a corpus split, or on the challenge split (`split="challenge"`), which is
    read from its own directory and never seen by training. With a cascade, also how many
    posts it decided alone and what the transformer on every post would have scored."""
    if split == CHALLENGE:
        items = load_corpus(corpus_dir, challenge=True)
    else:
        items = [ex for ex in load_corpus(corpus_dir) if ex.split == split]
    texts = [ex.text for ex in items]
    predictions = clf.predict(texts)
    out: dict[str, Any] = {
        split: report(_rows(items, predictions), clf.threshold, clf.review_threshold),
        "language_id": language_id_accuracy([(ex.text, ex.lang) for ex in items]),
        "model": str(clf.directory),
    }
    if clf.cascade is not None:
        without = report(_rows(items, clf.predict(texts, cascade=False)), clf.threshold, clf.review_threshold)
        out["cascade"] = {
            "decided_by_ngrams": round(sum(p.stage == "ngrams" for p in predictions) / max(1, len(items)), 4),
            "with": _summary(out[split]),
            "without": _summary(without),
        }
    return out


def _rows(items: list[Example], predictions: list[Prediction]) -> list[dict[str, Any]]:
    return [
        {"label": ex.label, "score": p.score, "lang": ex.lang, "kind": ex.kind, "phenomenon": ex.phenomenon}
        for ex, p in zip(items, predictions, strict=True)
    ]


def _summary(metrics: dict[str, Any]) -> dict[str, float]:
    overall = metrics["overall"]
    return {
        "f1": overall["f1"],
        "precision": overall["precision"],
        "recall": overall["recall"],
        "macro_f1": metrics["macro_f1"],
        "recall_with_review": metrics["three_way"]["recall_with_review"],
    }
