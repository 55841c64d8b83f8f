"""Precision, recall and F1 overall, per language and per kind; threshold selection."""

from __future__ import annotations

import math
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


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """The chance that an advert scores above a non-advert (ties count half): how well the
    scores rank, whatever the threshold. None when one class is missing."""
    pairs = sorted(zip(scores, labels, strict=True))
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid_rank = (i + j + 1) / 2  # 1-based ranks i+1..j share their mean
        rank_sum += mid_rank * sum(y for _, y in pairs[i:j])
        i = j
    return round((rank_sum - positives * (positives + 1) / 2) / (positives * negatives), 4)


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


def choose_review_threshold(
    labels: Sequence[int], scores: Sequence[float], min_recall: float = 0.97, ceiling: float = 1.0
) -> float:
    """The lower edge of the review band: the highest threshold (at most `ceiling`, the
    advert threshold) at which adverts plus the review band still find `min_recall` of the
    adverts."""
    adverts = sorted((s for y, s in zip(labels, scores, strict=True) if y == 1), reverse=True)
    if not adverts:
        return round(ceiling, 6)
    needed = max(1, min(len(adverts), math.ceil(min_recall * len(adverts) - 1e-9)))
    return round(min(ceiling, adverts[needed - 1]), 6)


def decide(score: float, threshold: float, review_threshold: float) -> str:
    """advert (sure), review (an analyst looks first) or not_advert."""
    if score >= threshold:
        return "advert"
    return "review" if score >= review_threshold else "not_advert"


def phenomenon_table(
    rows: Sequence[dict[str, Any]], threshold: float, review_threshold: float
) -> dict[str, Any]:
    """Per phenomenon: for adverts, recall of the advert band and of advert + review; for the
    rest, how often they are flagged as adverts (false-positive rate) or sent to review."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("phenomenon"):
            groups[str(r["phenomenon"])].append(r)
    table = {}
    for name, items in sorted(groups.items()):
        decisions = [decide(float(r["score"]), threshold, review_threshold) for r in items]
        label = int(items[0]["label"])
        advert = sum(d == "advert" for d in decisions) / len(items)
        review = sum(d == "review" for d in decisions) / len(items)
        entry: dict[str, Any] = {"label": label, "support": len(items)}
        if label == 1:
            entry |= {"recall": round(advert, 4), "recall_with_review": round(advert + review, 4)}
        else:
            entry |= {"false_positive_rate": round(advert, 4), "review_rate": round(review, 4)}
        table[name] = entry
    return table


def three_way(rows: Sequence[dict[str, Any]], threshold: float, review_threshold: float) -> dict[str, Any]:
    labels = [int(r["label"]) for r in rows]
    decisions = [decide(float(r["score"]), threshold, review_threshold) for r in rows]
    adverts = sum(labels)
    sure = [y for y, d in zip(labels, decisions, strict=True) if d == "advert"]
    review = [y for y, d in zip(labels, decisions, strict=True) if d == "review"]
    return {
        "review_threshold": review_threshold,
        "advert_band_precision": round(sum(sure) / len(sure), 4) if sure else 1.0,
        "recall_with_review": round((sum(sure) + sum(review)) / adverts, 4) if adverts else 1.0,
        "review_fraction": round(len(review) / len(rows), 4) if rows else 0.0,
        "review_adverts": sum(review),
        "review_others": len(review) - sum(review),
    }


def report(
    rows: Sequence[dict[str, Any]], threshold: float, review_threshold: float | None = None
) -> dict[str, Any]:
    """rows: dicts with label, score, lang, kind and optionally phenomenon. Without a
    `review_threshold` the review band is empty."""
    review = threshold if review_threshold is None else review_threshold
    labels = [int(r["label"]) for r in rows]
    preds = [1 if float(r["score"]) >= threshold else 0 for r in rows]
    overall = prf(labels, preds)
    by_lang: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_lang[r["lang"]].append(i)
    scores = [float(r["score"]) for r in rows]
    per_lang = {}
    for lang, idx in sorted(by_lang.items()):
        per_lang[lang] = {
            **prf([labels[i] for i in idx], [preds[i] for i in idx]),
            "macro_f1": macro_f1([labels[i] for i in idx], [preds[i] for i in idx]),
            "auc": roc_auc([labels[i] for i in idx], [scores[i] for i in idx]),
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
        "auc": roc_auc(labels, scores),
        "confusion_matrix": {
            "labels": ["not_advert", "advert"],
            "matrix": [[overall["tn"], overall["fp"]], [overall["fn"], overall["tp"]]],
        },
        "per_language": per_lang,
        "per_kind": per_kind,
        "three_way": three_way(rows, threshold, review),
        "per_phenomenon": phenomenon_table(rows, threshold, review),
    }
