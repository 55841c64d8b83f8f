"""Training: parse → seed → load data → model → train → evaluate → save metrics.

The default trains a logistic head on frozen encoder embeddings plus cue features;
`mode="finetune"` first fine-tunes the whole encoder on the train split.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from classifier.augment import augment
from classifier.corpus import Example, corpus_hash, load_corpus, summary
from classifier.finetune import finetune_encoder, seed_everything
from classifier.metrics import choose_review_threshold, choose_threshold, decide, report
from classifier.model import FORMAT, ID2LABEL, LABEL2ID, META_FILE, cue_matrix, features
from classifier.ngrams import Cascade, NgramModel, choose_blend, choose_cascade
from classifier.normalize import normalize
from classifier.train_config import TrainConfig, fingerprint
from classifier.vocabulary import trim_vocabulary
from vigie.errors import VigieError
from vigie.paths import cache_root, default_classifier_dir


def _splits(config: TrainConfig) -> dict[str, list[Example]]:
    examples = load_corpus(Path(config.corpus_dir) if config.corpus_dir else None)
    examples = examples + list(config.extra_examples)
    out: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    for ex in examples:
        out[ex.split].append(ex)
    if config.max_items:
        rng = random.Random(config.seed)
        out = {k: rng.sample(v, min(config.max_items, len(v))) for k, v in out.items()}
    for name, items in out.items():
        if len({ex.label for ex in items}) < 2:
            raise VigieError(
                f"the {name} split needs both adverts and non-adverts; it has {len(items)} items"
            )
    return out


def cascade_report(
    cascade: Cascade,
    ngram_logits: Any,
    scores: list[float],
    rows: Callable[[str, list[float]], list[dict[str, Any]]],
    threshold: float,
    review: float,
) -> dict[str, Any]:
    """The test split as `predict` decides it: the posts the n-gram model is sure of take
    its score and decision, the rest the blended score."""
    quick = [float(v) for v in cascade.scores(ngram_logits)]
    sure = [cascade.sure(q) for q in quick]
    # `report` decides by thresholds: a sure post gets a score on the side of them that
    # `Cascade.decision` chose (an advert at least the threshold, else under the review band).
    cascaded = [
        ((max(q, threshold) if cascade.decision(q) == "advert" else min(q, review / 2)) if is_sure else s)
        for q, s, is_sure in zip(quick, scores, sure, strict=True)
    ]
    test = report(rows("test", cascaded), threshold, review)
    return {
        "decided_by_ngrams": round(sum(sure) / max(1, len(sure)), 4),
        "test_f1": test["overall"]["f1"],
        "test_macro_f1": test["macro_f1"],
        "test_recall_with_review": test["three_way"]["recall_with_review"],
    }


def _fit_head(
    x_train: Any, y_train: list[int], x_dev: Any, y_dev: list[int], config: TrainConfig
) -> dict[str, Any]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    best: tuple[float, float, Any] | None = None
    for c in config.c_grid:
        lr = LogisticRegression(C=c, max_iter=5000, random_state=config.seed)
        lr.fit(x_train, y_train)
        loss = log_loss(y_dev, lr.predict_proba(x_dev)[:, 1])
        if best is None or loss < best[0]:
            best = (loss, c, lr)
    assert best is not None
    _, c, lr = best
    dev_logits = x_dev @ lr.coef_[0] + lr.intercept_[0]
    # Platt scaling on dev: the head's log-odds, re-scaled to be calibrated probabilities.
    platt = LogisticRegression(C=1e6, max_iter=5000).fit(dev_logits.reshape(-1, 1), y_dev)
    return {
        "coef": [float(v) for v in lr.coef_[0]],
        "intercept": float(lr.intercept_[0]),
        "platt_a": float(platt.coef_[0][0]),
        "platt_b": float(platt.intercept_[0]),
        "C": c,
        "dev_log_loss": float(np.round(best[0], 5)),
    }


def main(config: TrainConfig) -> dict[str, Any]:
    """Train, evaluate on dev and test, write the classifier directory; returns the metrics."""
    config.check()
    started = time.time()
    seed_everything(config.seed, config.threads)
    from classifier.base_model import resolve_base_model
    from classifier.embeddings import EmbeddingCache
    from classifier.encoding import TextEncoder
    from classifier.model import Head
    from classifier.runtimes import make_encoder

    splits = _splits(config)
    all_items = [ex for items in splits.values() for ex in items]
    variants = augment(splits["train"], config.augment, config.seed)
    splits["train"] = splits["train"] + variants
    base_dir = resolve_base_model(config.base_model)
    out_dir = Path(config.output_dir).expanduser() if config.output_dir else default_classifier_dir()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    stages: dict[str, float] = {}
    try:
        encoder_dir = (
            finetune_encoder(config, base_dir, splits["train"], tmp)
            if config.mode == "finetune"
            else base_dir
        )
        stages["finetune"] = round(time.time() - started, 1)
        texts = {name: [normalize(ex.text) for ex in items] for name, items in splits.items()}
        vocabulary = None
        if config.mode == "finetune" and config.trim_vocabulary:
            seen = [t for items in texts.values() for t in items]
            vocabulary = trim_vocabulary(encoder_dir, seen + [normalize(t) for t in config.vocabulary_texts])
        cues = {name: cue_matrix(texts[name])[0] for name in splits}
        labels = {name: [ex.label for ex in items] for name, items in splits.items()}
        ngrams = (
            NgramModel.fit(texts["train"], labels["train"], texts["dev"], labels["dev"])
            if config.ngrams
            else None
        )
        ngram_logits = {name: ngrams.logits(texts[name]) for name in splits} if ngrams is not None else {}
        if ngrams is not None:
            ngrams.save(tmp)
        cascade: Cascade | None = None

        def rows(name: str, scores: list[float]) -> list[dict[str, Any]]:
            return [
                {"label": ex.label, "score": s, "lang": ex.lang, "kind": ex.kind, "phenomenon": ex.phenomenon}
                for ex, s in zip(splits[name], scores, strict=True)
            ]

        # A head per runtime: int8 encoders give slightly different vectors, and a head fitted
        # to them keeps the quantised runtimes as accurate as float32.
        heads: dict[str, dict[str, Any]] = {}
        runtime_metrics: dict[str, dict[str, Any]] = {}
        for runtime in ("torch", *[r for r in config.runtimes if r != "torch"]):
            runtime_started = time.time()
            encoder: TextEncoder
            if runtime == "torch":
                cache = EmbeddingCache(cache_root() / "embeddings.sqlite")
                # The float32 ONNX graph gives torch's vectors (to 5e-7) in less time, and
                # exporting it here serves the default runtime too.
                encoder = make_encoder(encoder_dir, "onnx", config.batch_size, config.max_length)
                embed = {name: cache.embed(encoder, texts[name]) for name in splits}
                cache.close()
            else:
                encoder = make_encoder(encoder_dir, runtime, config.batch_size, config.max_length)
                embed = {name: encoder.embed(texts[name]) for name in splits}
            matrices = {name: features(embed[name], cues[name]) for name in splits}
            fitted = _fit_head(matrices["train"], labels["train"], matrices["dev"], labels["dev"], config)
            head = Head(fitted["coef"], fitted["intercept"], fitted["platt_a"], fitted["platt_b"])
            if ngrams is not None:
                blend, fitted["platt_a"], fitted["platt_b"] = choose_blend(
                    head.logits(matrices["dev"]), ngram_logits["dev"], labels["dev"]
                )
                fitted["blend"] = blend.to_json()
                head = Head(**{k: fitted[k] for k in ("coef", "intercept", "platt_a", "platt_b", "blend")})
            scores = {name: head.scores(matrices[name], ngram_logits.get(name)) for name in splits}
            threshold = choose_threshold(labels["dev"], scores["dev"], config.min_precision)
            review = choose_review_threshold(
                labels["dev"], scores["dev"], config.min_review_recall, threshold
            )
            if runtime == "torch" and ngrams is not None:
                # The bands follow what the float32 transformer decides on dev; every runtime shares them.
                read = [decide(v, threshold, review) for v in scores["dev"]]
                cascade = choose_cascade(ngram_logits["dev"], labels["dev"], read)
            heads[runtime] = {
                **{k: fitted[k] for k in ("coef", "intercept", "platt_a", "platt_b", "blend") if k in fitted},
                "threshold": threshold,
                "review_threshold": review,
            }
            runtime_metrics[runtime] = {
                "dev": report(rows("dev", scores["dev"]), threshold, review),
                "test": report(rows("test", scores["test"]), threshold, review),
                "head": {
                    "C": fitted["C"],
                    "dev_log_loss": fitted["dev_log_loss"],
                    "ngram_weight": (fitted.get("blend") or {}).get("weight", 0.0),
                },
            }
            stages[f"head_{runtime}"] = round(time.time() - runtime_started, 1)
            if cascade is not None:
                runtime_metrics[runtime]["cascade"] = cascade_report(
                    cascade, ngram_logits["test"], scores["test"], rows, threshold, review
                )
        metrics = {
            **runtime_metrics["torch"],
            "runtimes": {
                rt: {
                    "test_macro_f1": m["test"]["macro_f1"],
                    "test_auc": m["test"]["auc"],
                    "threshold": m["test"]["threshold"],
                }
                for rt, m in runtime_metrics.items()
            },
            "runtime_reports": {rt: m["test"] for rt, m in runtime_metrics.items() if rt != "torch"},
            "corpus": summary(all_items) | {"train_variants": len(variants)},
            "vocabulary": asdict(vocabulary) if vocabulary else None,
            "seconds": round(time.time() - started, 1),
            "stage_seconds": stages,
        }
        threshold = heads["torch"]["threshold"]
        meta = {
            "format": FORMAT,
            "id2label": {str(k): v for k, v in ID2LABEL.items()},
            "label2id": LABEL2ID,
            "base_model": config.base_model if config.base_model != "packaged" else "packaged",
            "base_model_dir": str(base_dir),
            "mode": config.mode,
            "max_length": config.max_length,
            "threshold": threshold,
            "review_threshold": heads["torch"]["review_threshold"],
            "min_precision": config.min_precision,
            "cascade": cascade.to_json() if cascade is not None else None,
            "head": {k: v for k, v in heads["torch"].items() if k not in ("threshold", "review_threshold")},
            "heads": heads,
            "corpus_sha256": corpus_hash(all_items),
            "fingerprint": fingerprint(config),
            "train_config": {
                k: v for k, v in asdict(config).items() if k not in ("extra_examples", "vocabulary_texts")
            },
            "extra_examples": len(config.extra_examples),
            "vocabulary_texts": len(config.vocabulary_texts),
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1, ensure_ascii=False), encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.rename(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return metrics
