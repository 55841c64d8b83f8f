"""Precision, recall and F1 overall, per language and per kind; threshold selection."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any


def prf(labels: Sequence[int], preds: Sequence[int]) -> dict[str, float | int]:
    tp = sum(1 for y, p in zip(labels, preds, strict=True) if y == 1 and p == 1)
    fp = sum(1 for y, p in zip(labels, preds, strict=True) if y == 0 and p == 1)
    fn = sum(1 for y, p in zip(labels, preds, strict=True) if y == 1 and p == 0)
    tn = len(labels) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "support": len(labels),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def macro_f1(labels: Sequence[int], preds: Sequence[int]) -> float:
    """Mean of the F1 of each class (adverts, and non-adverts as the positive class)."""
    pos = prf(labels, preds)["f1"]
    neg = prf([1 - y for y in labels], [1 - p for p in preds])["f1"]
    return round((float(pos) + float(neg)) / 2, 4)


def choose_threshold(labels: Sequence[int], scores: Sequence[float], min_precision: float = 0.95) -> float:
    """The threshold whose precision reaches `min_precision` with the most recall (ties:
    the better precision); if none does, the threshold with the best precision."""
    candidates = sorted(set(scores))
    best: tuple[float, float, float] | None = None
    fallback = (0.5, -1.0)
    for t in candidates:
        preds = [1 if s >= t else 0 for s in scores]
        m = prf(labels, preds)
        if m["tp"] == 0:
            continue
        quality = (float(m["recall"]), float(m["precision"]))
        if float(m["precision"]) >= min_precision and (best is None or quality > best[1:]):
            best = (t, *quality)
        if float(m["precision"]) > fallback[1]:
            fallback = (t, float(m["precision"]))
    return round(best[0] if best else fallback[0], 6)


def report(rows: Sequence[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """rows: dicts with label, score, lang, kind."""
    labels = [int(r["label"]) for r in rows]
    preds = [1 if float(r["score"]) >= threshold else 0 for r in rows]
    overall = prf(labels, preds)
    by_lang: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_lang[r["lang"]].append(i)
    per_lang = {}
    for lang, idx in sorted(by_lang.items()):
        per_lang[lang] = {
            **prf([labels[i] for i in idx], [preds[i] for i in idx]),
            "macro_f1": macro_f1([labels[i] for i in idx], [preds[i] for i in idx]),
        }
    by_kind: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_kind[r["kind"]].append(i)
    per_kind = {}
    for kind, idx in sorted(by_kind.items()):
        wrong = sum(1 for i in idx if preds[i] != labels[i])
        # For negatives: how often that kind is wrongly flagged; for adverts: how often missed.
        per_kind[kind] = {"support": len(idx), "errors": wrong, "error_rate": round(wrong / len(idx), 4)}
    return {
        "threshold": threshold,
        "overall": overall,
        "macro_f1": macro_f1(labels, preds),
        "confusion_matrix": {
            "labels": ["not_advert", "advert"],
            "matrix": [[overall["tn"], overall["fp"]], [overall["fn"], overall["tp"]]],
        },
        "per_language": per_lang,
        "per_kind": per_kind,
    }
