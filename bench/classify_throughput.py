"""Classification throughput (posts/s) per runtime, and test-split F1 so a faster runtime
is shown not to cost accuracy. Run: .venv/bin/python bench/classify_throughput.py"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from classifier.corpus import load_corpus
from classifier.metrics import macro_f1
from classifier.model import AdvertClassifier
from vigie.paths import default_classifier_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runtimes", default="torch,torch-int8,onnx-int8")
    parser.add_argument("--posts", type=int, default=1000, help="posts per timed run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    test = [ex for ex in load_corpus() if ex.split == "test"]
    texts = [ex.text for ex in test]
    posts = (texts * (args.posts // len(texts) + 1))[: args.posts]
    chars = statistics.mean(len(t) for t in posts)
    print(
        f"machine: {platform.machine()}, Python {platform.python_version()}; {len(posts)} posts, "
        f"mean {chars:.0f} characters, batch {args.batch_size}"
    )
    baseline = None
    for runtime in args.runtimes.split(","):
        clf = AdvertClassifier.load(default_classifier_dir(), runtime=runtime, batch_size=args.batch_size)
        clf.predict(posts[:64])  # warm-up (and the one-off ONNX export)
        preds = clf.predict(texts)
        f1 = macro_f1([ex.label for ex in test], [int(p.is_advert) for p in preds])
        baseline = f1 if baseline is None else baseline
        encoder_rates, full_rates = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            clf.encoder.embed(posts)
            encoder_rates.append(len(posts) / (time.perf_counter() - start))
            start = time.perf_counter()
            clf.predict(posts)
            full_rates.append(len(posts) / (time.perf_counter() - start))
        print(
            f"{runtime:>10}: encoder {statistics.median(encoder_rates):6.0f} posts/s, "
            f"full predict (cues, language ID) {statistics.median(full_rates):6.0f} posts/s; "
            f"test macro-F1 {f1:.4f} ({f1 - baseline:+.4f} vs first runtime)"
        )


if __name__ == "__main__":
    main()
