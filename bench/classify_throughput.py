"""Classification throughput (posts/s) per runtime, with and without the n-gram cascade, and
advert-F1 on the test split, each against the float32 transformer on every post, measured in
the same run. Run: .venv/bin/python -m bench.classify_throughput"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

from classifier.corpus import load_corpus
from classifier.metrics import prf
from classifier.model import AdvertClassifier
from vigie.paths import default_classifier_dir


def cue_rates(posts: list[str], repeat: int) -> None:
    """Cue features alone: the one-pass matcher against one regex per cue, same posts."""
    from classifier.cues import find_cues
    from tests.support.cue_reference import reference_find_cues

    rates = {}
    for name, finder in (("one regex per cue", reference_find_cues), ("one automaton", find_cues)):
        finder(posts[0])  # builds its patterns
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            for post in posts:
                finder(post)
            runs.append(len(posts) / (time.perf_counter() - start))
        rates[name] = statistics.median(runs)
    base = rates["one regex per cue"]
    for name, rate in rates.items():
        print(f"cue features, {name:>17}: {rate:6.0f} posts/s (x{rate / base:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runtimes", default="torch,onnx,onnx-int8,torch-int8")
    parser.add_argument("--posts", type=int, default=1000, help="posts per timed run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--model", default=None, help="classifier directory (default: the trained one)")
    args = parser.parse_args()

    test = [ex for ex in load_corpus() if ex.split == "test"]
    texts = [ex.text for ex in test]
    labels = [ex.label for ex in test]
    posts = (texts * (args.posts // len(texts) + 1))[: args.posts]
    chars = statistics.mean(len(t) for t in posts)
    print(
        f"machine: {platform.machine()}, Python {platform.python_version()}; {len(posts)} test-split posts, "
        f"mean {chars:.0f} characters, batch {args.batch_size}; full predict = cues, language ID, "
        "scores, three-way decision"
    )
    cue_rates(posts, args.repeat)
    baseline: tuple[float, float] | None = None
    for runtime in args.runtimes.split(","):
        model_dir = Path(args.model) if args.model else default_classifier_dir()
        clf = AdvertClassifier.load(model_dir, runtime=runtime, batch_size=args.batch_size)
        clf.predict(posts[:64])  # warm-up (and the one-off ONNX export)
        for cascade in (False, True) if clf.cascade is not None else (False,):
            preds = clf.predict(texts, cascade=cascade)
            f1 = float(prf(labels, [int(p.is_advert) for p in preds])["f1"])
            routed = sum(p.stage == "ngrams" for p in preds) / len(preds)
            rates = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                clf.predict(posts, cascade=cascade)
                rates.append(len(posts) / (time.perf_counter() - start))
            rate = statistics.median(rates)
            baseline = baseline or (rate, f1)
            name = f"{runtime}{' + cascade' if cascade else ''}"
            print(
                f"{name:>22}: {rate:6.0f} posts/s (x{rate / baseline[0]:.2f}), "
                f"advert-F1 {f1:.4f} ({f1 - baseline[1]:+.4f}), decided by n-grams {routed:.1%}"
            )
    print("baseline: the first row (float32 transformer on every post)")


if __name__ == "__main__":
    main()
