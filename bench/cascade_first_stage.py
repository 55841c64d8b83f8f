"""Candidate first stages for the cascade, measured against the shipped one in the same run.

The shipped cascade lets the character n-gram model decide the posts it is sure of. This
benchmark adds static token vectors distilled from the classifier's own fine-tuned encoder
(each vocabulary piece read alone, mean-pooled, then weighted by how rare it is in the train
split) with a logistic head on them and the cue features, blended with the n-grams as the
transformer head is. Two rules set the sure bands on dev (`choose_cascade`):

- every dev post: no dev advert below the low band and no dev non-advert above the high one;
- only the dev posts the transformer reads rightly (shipped): an advert it finds (advert or
  review band) and a non-advert it does not flag.

It prints, on test and on the challenge split, the share decided without the transformer,
F1 with the cascade against the transformer on every post (the baseline), and each first
stage's own speed against the transformer's. Bands and heads are fitted on train and dev
only. Run: .venv/bin/python -m bench.cascade_first_stage
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifier.corpus import load_corpus
from classifier.metrics import decide, prf
from classifier.model import AdvertClassifier, cue_matrix, features
from classifier.ngrams import choose_blend, choose_cascade
from classifier.normalize import normalize
from vigie.paths import default_classifier_dir

if TYPE_CHECKING:
    import numpy as np

SIF = 1e-3  # a / (a + p(piece)): pieces as common as "the" weigh little


def distil_static_vectors(encoder_dir: Path) -> np.ndarray:
    """One vector per vocabulary piece: the encoder's output for [CLS] piece [SEP], mean-pooled."""
    import numpy as np
    import torch
    from transformers import AutoModel

    from classifier.encoding import quiet_transformers

    quiet_transformers()
    model: Any = AutoModel.from_pretrained(encoder_dir, local_files_only=True).eval()
    size = model.config.vocab_size
    out = np.zeros((size, model.config.hidden_size), np.float32)
    with torch.inference_mode():
        for start in range(0, size, 1024):
            ids = torch.arange(start, min(size, start + 1024))
            rows = torch.stack([torch.zeros_like(ids), ids, torch.full_like(ids, 2)], 1)
            hidden = model(input_ids=rows, attention_mask=torch.ones_like(rows)).last_hidden_state
            out[start : start + len(ids)] = hidden.mean(1).numpy()
    return out


@dataclass
class StaticEncoder:
    tokenizer: Any
    vectors: np.ndarray  # already weighted per piece

    def counts(self, texts: list[str]) -> Any:
        import numpy as np
        from scipy import sparse

        rows, cols = [], []
        for i, encoding in enumerate(self.tokenizer.encode_batch(["query: " + t for t in texts])):
            ids = [piece for piece in encoding.ids if piece > 3]  # not <s> <pad> </s> <unk>
            rows += [i] * len(ids)
            cols += ids
        data = np.ones(len(rows), np.float32)
        return sparse.csr_matrix((data, (rows, cols)), shape=(len(texts), len(self.vectors)))

    def embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        pooled = self.counts(texts) @ self.vectors
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-9, None)


def main() -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="classifier directory (default: the trained one)")
    args = parser.parse_args()
    model_dir = Path(args.model) if args.model else default_classifier_dir()
    clf = AdvertClassifier.load(model_dir, runtime="onnx")
    if clf.ngrams is None:
        raise SystemExit(f"{model_dir}: no n-gram model, so no cascade to compare against")
    corpus = load_corpus()
    items = {name: [ex for ex in corpus if ex.split == name] for name in ("train", "dev", "test")}
    items["challenge"] = load_corpus(challenge=True)
    texts = {name: [normalize(ex.text) for ex in v] for name, v in items.items()}
    labels = {name: np.array([ex.label for ex in v]) for name, v in items.items()}
    cues = {name: cue_matrix(t)[0] for name, t in texts.items()}
    ngram = {name: clf.ngrams.logits(t) for name, t in texts.items()}

    scored = ("dev", "test", "challenge")
    started = time.perf_counter()
    full = {
        name: np.array(clf.head.scores(features(clf.encoder.embed(texts[name]), cues[name]), ngram[name]))
        for name in scored
    }
    transformer_rate = sum(len(texts[n]) for n in scored) / (time.perf_counter() - started)
    decided = {name: (full[name] >= clf.threshold).astype(int) for name in scored}
    print(f"transformer on every post: {transformer_rate:.0f} posts/s (the baseline)")

    started = time.perf_counter()
    vectors = distil_static_vectors(clf.encoder.model_dir)
    print(
        f"static vectors: {vectors.shape[0]} pieces x {vectors.shape[1]}, distilled in {time.perf_counter() - started:.0f} s"
    )
    static = StaticEncoder(clf.encoder.tokenizer._tokenizer, vectors)
    frequency = np.asarray(static.counts(texts["train"]).sum(0)).ravel() + 1
    static.vectors = vectors * (SIF / (SIF + frequency / frequency.sum()))[:, None]
    x = {name: features(static.embed(t), cues[name]) for name, t in texts.items()}
    best: tuple[float, Any] | None = None
    for c in (2.0, 8.0, 32.0, 128.0):
        lr = LogisticRegression(C=c, max_iter=5000).fit(x["train"], labels["train"])
        loss = log_loss(labels["dev"], lr.predict_proba(x["dev"])[:, 1])
        best = (loss, lr) if best is None or loss < best[0] else best
    assert best is not None
    head = best[1]
    logits = {name: x[name] @ head.coef_[0] + head.intercept_[0] for name in texts}
    blend, _, _ = choose_blend(logits["dev"], ngram["dev"], labels["dev"].tolist())

    assert clf.cascade is not None
    # Each first stage's log-odds; choose_cascade Platt-scales them on dev and sets the bands.
    stages = {
        "n-grams (shipped)": ngram,
        "static vectors + n-grams": {name: blend.combine(logits[name], ngram[name]) for name in texts},
    }
    sample = texts["test"] * 4
    rates = {}
    for name, run in (
        ("n-grams (shipped)", lambda: clf.ngrams.logits(sample)),
        ("static vectors + n-grams", lambda: (static.embed(sample), clf.ngrams.logits(sample))),
    ):
        started = time.perf_counter()
        run()
        rates[name] = len(sample) / (time.perf_counter() - started)
    read = [decide(float(v), clf.threshold, clf.review_threshold) for v in full["dev"]]
    for stage, stage_logits in stages.items():
        rate = rates[stage]
        print(f"\nfirst stage: {stage}, {rate:.0f} posts/s (x{rate / transformer_rate:.0f} the transformer)")
        for rule, dev_read in (
            ("every dev post sets the bands", None),
            ("only those read rightly (shipped)", read),
        ):
            cascade = choose_cascade(stage_logits["dev"], labels["dev"].tolist(), dev_read)
            assert cascade is not None
            print(f"  {rule}: bands {cascade.low:.3f} / {cascade.high:.3f}")
            for name in ("test", "challenge"):
                quick = cascade.scores(stage_logits[name])
                sure = (quick < cascade.low) | (quick > cascade.high)
                decisions = np.where(sure, (quick > cascade.high).astype(int), decided[name])
                f1 = float(prf(labels[name].tolist(), decisions.tolist())["f1"])
                base = float(prf(labels[name].tolist(), decided[name].tolist())["f1"])
                print(
                    f"    {name}: decided alone {sure.mean():.1%}, F1 {f1:.4f} ({f1 - base:+.4f} vs {base:.4f})"
                )
    print("\nbaseline F1: the transformer on every post, same model and thresholds")


if __name__ == "__main__":
    main()
