"""A 6-layer student distilled from the trained classifier's 12-layer encoder, measured against
that teacher in the same run: advert-F1 on test and on the challenge split, the share the
n-gram cascade decides, and full-predict speed with the cascade.

The student keeps evenly spaced teacher layers and learns the teacher's sentence vectors on
the train split (with its variants) and the sample channels' posts (`classifier.distill`);
then a head, blend, thresholds and cascade are fitted on train and dev as `vigie train`
does, with the student's vectors. The challenge split is only evaluated. It takes about
17 minutes with 8 epochs on 2 cores.
Run: .venv/bin/python -m bench.student_distill [--layers 6] [--epochs 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from classifier.augment import augment
from classifier.distill import distill_encoder
from classifier.embeddings import EmbeddingCache
from classifier.evaluate import evaluate_split
from classifier.model import META_FILE, AdvertClassifier
from classifier.normalize import normalize
from classifier.runtimes import make_encoder
from classifier.train import _splits
from classifier.train import main as train
from classifier.train_config import TrainConfig
from crawlers.telegram.mirror import load_channels
from vigie.paths import cache_root, default_classifier_dir


def teacher_targets(teacher: Path, config: TrainConfig) -> tuple[list[str], Any, Any]:
    """The distillation texts, the teacher's vectors for them, and its head's decision direction."""
    import numpy as np

    meta = json.loads((teacher / META_FILE).read_text(encoding="utf-8"))
    train_items = _splits(config)["train"]
    train_items = train_items + augment(train_items, config.augment, config.seed)
    samples = [post["text"] for channel in load_channels().values() for post in channel["posts"]]
    texts = list(
        dict.fromkeys(t for t in (normalize(x) for x in [e.text for e in train_items] + samples) if t)
    )
    encoder = make_encoder(teacher / "encoder", "onnx", config.batch_size, config.max_length)
    cache = EmbeddingCache(cache_root() / "embeddings.sqlite")
    try:
        vectors = cache.embed(encoder, texts)
    finally:
        cache.close()
    head = meta["head"]
    direction = np.asarray(head["coef"][: encoder.dim], dtype=np.float32) * float(head["platt_a"])
    return texts, vectors, direction


def speed(model_dir: Path, posts: list[str]) -> float:
    clf = AdvertClassifier.load(model_dir, runtime="onnx")
    clf.predict(posts[:64])  # warm-up and the one-off ONNX export
    rates = []
    for _ in range(2):
        start = time.perf_counter()
        clf.predict(posts)
        rates.append(len(posts) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--teacher", default=None, help="classifier directory (default: the trained one)")
    args = parser.parse_args()
    teacher = Path(args.teacher) if args.teacher else default_classifier_dir()
    config = TrainConfig()
    work = Path(tempfile.mkdtemp(prefix="vigie-student-"))
    started = time.time()
    texts, vectors, direction = teacher_targets(teacher, config)
    student_dir = distill_encoder(
        teacher / "encoder",
        texts,
        vectors,
        direction,
        work / "encoder",
        layers=args.layers,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=config.batch_size,
        max_length=config.max_length,
        seed=config.seed,
    )
    distilled = time.time() - started
    train(
        TrainConfig(
            output_dir=str(work / "classifier"),
            mode="frozen",
            base_model=str(student_dir),
            runtimes=("torch",),
        )
    )
    print(
        f"distilled {len(texts)} texts into {args.layers} layers in {distilled:.0f} s, head in "
        f"{time.time() - started - distilled:.0f} s; student in {work}"
    )
    posts = [ex.text for ex in _splits(config)["test"]]
    baseline: dict[str, float] = {}
    for name, model_dir in (
        ("teacher, 12 layers", teacher),
        (f"student, {args.layers} layers", work / "classifier"),
    ):
        clf = AdvertClassifier.load(model_dir, runtime="onnx")
        figures = {}
        for split in ("test", "challenge"):
            found = evaluate_split(clf, split)
            figures[f"{split} F1"] = found[split]["overall"]["f1"]
            figures[f"{split} by n-grams"] = (
                found["cascade"]["decided_by_ngrams"] if "cascade" in found else 0.0
            )
        figures["posts/s"] = speed(model_dir, posts)
        baseline = baseline or figures
        print(
            f"{name:>20}: "
            + ", ".join(
                f"{k} {v:.4f} ({v - baseline[k]:+.4f})"
                if "F1" in k
                else f"{k} {v:.1%}"
                if "n-grams" in k
                else f"{k} {v:.0f} (x{v / baseline[k]:.2f})"
                for k, v in figures.items()
            )
        )
    print("baseline: the teacher (the first row); full predict with the cascade, onnx runtime")


if __name__ == "__main__":
    main()
