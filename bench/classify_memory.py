"""Peak memory (RSS) and load time of a process that loads the classifier and classifies
the test-split posts, per runtime, against the same classifier given the untrimmed
250k-piece encoder (the packaged base model) in the same run. Each figure comes from a
fresh process. Run: .venv/bin/python -m bench.classify_memory"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from vigie.paths import default_classifier_dir

_CHILD = """
import json, resource, sys, time
start = time.perf_counter()
from classifier.corpus import load_corpus
from classifier.model import AdvertClassifier
clf = AdvertClassifier.load(sys.argv[1], runtime=sys.argv[2])
clf.predict(["warm-up"])
loaded = time.perf_counter() - start
posts = [ex.text for ex in load_corpus() if ex.split == "test"][: int(sys.argv[3])]
clf.predict(posts)
print(json.dumps({"load_s": loaded, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(classifier_dir: Path, runtime: str, posts: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(classifier_dir), runtime, str(posts)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def untrimmed_copy(classifier_dir: Path, tmp: Path) -> Path:
    """The classifier's files beside the packaged encoder: the memory of a full vocabulary
    (its scores mean nothing; only the process's size and load time are read)."""
    from classifier.base_model import resolve_base_model

    copy = tmp / "untrimmed"
    copy.mkdir()
    for item in classifier_dir.iterdir():
        if item.name != "encoder" and item.is_file():
            (copy / item.name).symlink_to(item)
    (copy / "encoder").symlink_to(resolve_base_model(), target_is_directory=True)
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runtimes", default="torch,onnx,onnx-int8,torch-int8")
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--model", default=None, help="classifier directory (default: the trained one)")
    args = parser.parse_args()
    shipped = Path(args.model) if args.model else default_classifier_dir()
    vocab = json.loads((shipped / "encoder" / "vocabulary.json").read_text(encoding="utf-8"))
    print(
        f"machine: {platform.machine()}, Python {platform.python_version()}; load, then classify up to "
        f"{args.posts} test-split posts; encoder vocabulary {vocab['pieces']:,} pieces "
        f"(of {vocab['pieces_before']:,})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        baseline_dir = untrimmed_copy(shipped, Path(tmp))
        for runtime in args.runtimes.split(","):
            for directory in (baseline_dir, shipped):  # the first load may export to ONNX; not timed
                measure(directory, runtime, 8)
            base = measure(baseline_dir, runtime, args.posts)
            mine = measure(shipped, runtime, args.posts)
            print(
                f"{runtime:>10}: peak RSS {mine['peak_mb']:,.0f} MB (x{mine['peak_mb'] / base['peak_mb']:.2f}), "
                f"load {mine['load_s']:.1f}s (x{mine['load_s'] / base['load_s']:.2f}); "
                f"untrimmed: {base['peak_mb']:,.0f} MB, load {base['load_s']:.1f}s"
            )
    print("baseline: the same classifier with the packaged 250k-piece encoder, each in a fresh process")


if __name__ == "__main__":
    main()
