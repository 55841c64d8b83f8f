"""The advert classifier: encoder embeddings plus cue features, a logistic head, Platt
calibration and a decision threshold chosen on the dev split.

A trained classifier is a directory: `vigie_classifier.json` (labels, head weights,
calibration, threshold, provenance, metrics) and, after full fine-tuning, `encoder/`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifier.cues import CUE_NAMES, CueMatch, cue_vector, find_cues
from classifier.langid import identify_many
from classifier.metrics import decide
from classifier.ngrams import Blend, Cascade, NgramModel
from classifier.normalize import normalize
from classifier.windows import token_windows, windows
from vigie.errors import VigieError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import numpy as np

    from classifier.encoding import TextEncoder

META_FILE = "vigie_classifier.json"
FORMAT = 1
CUE_SCALE = 0.5  # cue features sit beside unit-norm embeddings; keep them on a similar scale
ID2LABEL = {0: "not_advert", 1: "advert"}
LABEL2ID = {v: k for k, v in ID2LABEL.items()}


class ClassifierNotFoundError(VigieError):
    """Raised by `AdvertClassifier.load` when no trained classifier is at the path;
    the message says how to train one."""


# Letters and digits a text needs before its words count as evidence: every labelled
# item of the corpus has at least 12.
MIN_EVIDENCE_CHARS = 8


def has_evidence(text: str) -> bool:
    return sum(ch.isalnum() for ch in text) >= MIN_EVIDENCE_CHARS


@dataclass
class Prediction:
    lang: str
    lang_confidence: float
    score: float
    is_advert: bool
    cues: list[dict[str, Any]] = field(default_factory=list)
    # advert (sure), review (an analyst decides) or not_advert
    decision: str = "not_advert"
    # Which model decided: the n-gram model alone (the cascade's sure cases), the transformer,
    # "too_short" (no evidence in the text), or "image" (the text read in its images).
    stage: str = "transformer"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def cue_matrix(texts: Sequence[str]) -> tuple[np.ndarray, list[list[CueMatch]]]:
    import numpy as np

    matches = [find_cues(t) for t in texts]
    return np.array([cue_vector(m) for m in matches], dtype=np.float32).reshape(
        len(texts), len(CUE_NAMES)
    ), matches


def features(embeddings: np.ndarray, cues: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.hstack([embeddings, cues * CUE_SCALE]).astype(np.float32)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


@dataclass
class Head:
    coef: list[float]
    intercept: float
    platt_a: float = 1.0
    platt_b: float = 0.0
    # With the n-gram model: how its log-odds mix with the head's before Platt scaling.
    blend: dict[str, float] | None = None

    def logits(self, x: np.ndarray) -> np.ndarray:
        import numpy as np

        return x @ np.asarray(self.coef, dtype=np.float32) + self.intercept

    def scores(self, x: np.ndarray, ngram_logits: np.ndarray | None = None) -> list[float]:
        z = self.logits(x)
        if self.blend is not None:
            if ngram_logits is None:
                raise VigieError("this classifier blends an n-gram model: its ngrams.json is missing")
            z = Blend(**self.blend).combine(z, ngram_logits)
        return [sigmoid(self.platt_a * float(v) + self.platt_b) for v in z]

    def cue_weights(self, embed_dim: int) -> dict[str, float]:
        """How much each cue moves the calibrated log-odds when present."""
        share = 1.0 if self.blend is None else (1 - self.blend["weight"]) / self.blend["head_scale"]
        return {
            name: self.platt_a * share * self.coef[embed_dim + i] * CUE_SCALE
            for i, name in enumerate(CUE_NAMES)
        }


class AdvertClassifier:
    def __init__(
        self, directory: Path, meta: dict[str, Any], encoder: TextEncoder, runtime: str = "torch"
    ) -> None:
        self.directory = directory
        self.meta = meta
        self.encoder = encoder
        self.runtime = runtime
        # The head fitted to this runtime's vectors, when training made one. onnx shares
        # torch's (the same float32 vectors), and so does onnx-int8 unless trained with its
        # own: its int8 attention projections move the vectors too little to need one.
        fitted = meta.get("heads", {}).get(runtime)
        if fitted is None and runtime == "torch-int8" and "heads" in meta:
            log.warning(
                "no head fitted to %s vectors in %s: float32's is used, a little less accurate "
                "(train with that runtime in `runtimes`)",
                runtime,
                directory,
            )
        head = (
            {k: v for k, v in fitted.items() if k not in ("threshold", "review_threshold")}
            if fitted
            else meta["head"]
        )
        self.head = Head(**head)
        self.threshold = float(fitted["threshold"] if fitted else meta["threshold"])
        # Classifiers trained before the review band existed have none: the band is empty.
        self.review_threshold = float((fitted or meta).get("review_threshold", self.threshold))
        self.weights = self.head.cue_weights(encoder.dim)
        self.ngrams = NgramModel.load(directory)
        self.cascade = Cascade(**meta["cascade"]) if meta.get("cascade") and self.ngrams else None

    @classmethod
    def load(
        cls, directory: Path, runtime: str = "onnx", batch_size: int = 8, max_length: int | None = None
    ) -> AdvertClassifier:
        from classifier.base_model import resolve_base_model
        from classifier.runtimes import make_encoder

        meta_path = Path(directory) / META_FILE
        if not meta_path.is_file():
            raise ClassifierNotFoundError(
                f"no trained classifier in {directory}: run `vigie train` (or pass --model DIR)"
            )
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise VigieError(
                f"{meta_path}: classifier format {meta.get('format')}, expected {FORMAT}; retrain"
            )
        encoder_dir = Path(directory) / "encoder"
        model_dir = encoder_dir if encoder_dir.is_dir() else resolve_base_model(meta["base_model"])
        encoder = make_encoder(
            model_dir,
            runtime=runtime,
            batch_size=batch_size,
            max_length=max_length or int(meta["max_length"]),
        )
        return cls(Path(directory), meta, encoder, runtime)

    def predict(self, texts: Sequence[str], cascade: bool = True) -> list[Prediction]:
        """With `cascade` (and a classifier that has one), posts the n-gram model is sure of
        are decided without the transformer. A text with fewer than MIN_EVIDENCE_CHARS
        letters and digits ("DM 📩", "👇👇") carries no evidence either way: it is not an
        advert by its text (the model, which never saw such a text, would guess)."""
        substantive = [i for i, text in enumerate(texts) if has_evidence(text)]
        scored = dict(zip(substantive, self._predict([texts[i] for i in substantive], cascade), strict=True))
        short = [i for i in range(len(texts)) if i not in scored]
        langs = dict(zip(short, identify_many([normalize(texts[i]) for i in short]), strict=True))
        return [
            scored[i]
            if i in scored
            else Prediction(langs[i].lang, langs[i].confidence, 0.0, False, [], "not_advert", "too_short")
            for i in range(len(texts))
        ]

    def _predict(self, texts: Sequence[str], cascade: bool) -> list[Prediction]:
        import numpy as np

        # Each text is one or more windows (long posts); a text gets its best window's score.
        owner: list[int] = []
        clean: list[str] = []
        # What the encoder reads of a window: max_length tokens less [CLS], [SEP] and the prefix.
        room = self.encoder.max_length - 8
        for i, text in enumerate(texts):
            for window in windows(text):
                for piece in token_windows(normalize(window), self.encoder.tokenizer, room):
                    owner.append(i)
                    clean.append(piece)
        cues, matches = cue_matrix(clean)
        ngram_logits = self.ngrams.logits(clean) if self.ngrams is not None else None
        scores = np.zeros(len(clean), dtype=np.float64)
        sure: set[int] = set()
        best_quick: dict[int, float] = {}
        if cascade and self.cascade is not None and ngram_logits is not None:
            quick = self.cascade.scores(ngram_logits)
            for w, i in enumerate(owner):
                best_quick[i] = max(best_quick.get(i, 0.0), float(quick[w]))
            sure = {i for i, score in best_quick.items() if self.cascade.sure(score)}
            scores[:] = quick
        read = [w for w, i in enumerate(owner) if i not in sure]
        if read:
            embeddings = self.encoder.embed([clean[w] for w in read])
            read_logits = ngram_logits[read] if ngram_logits is not None else None
            scores[read] = self.head.scores(features(embeddings, cues[read]), read_logits)
        first: dict[int, int] = {}
        best: dict[int, int] = {}
        for w, i in enumerate(owner):
            first.setdefault(i, w)
            if i not in best or scores[w] > scores[best[i]]:
                best[i] = w
        langs = identify_many([clean[first[i]] for i in range(len(texts))])
        out = []
        for i, lang in enumerate(langs):
            w = best[i]
            score, found = scores[w], matches[w]
            ranked = sorted(found, key=lambda m: -abs(self.weights[m.cue]))
            cue_list = [
                {"cue": m.cue, "text": m.text, "weight": round(self.weights[m.cue], 3)} for m in ranked
            ]
            if i in sure and self.cascade is not None:
                decision = self.cascade.decision(best_quick[i])
            else:
                decision = decide(float(score), self.threshold, self.review_threshold)
            out.append(
                Prediction(
                    lang.lang,
                    lang.confidence,
                    round(float(score), 4),
                    decision == "advert",
                    cue_list,
                    decision,
                    "ngrams" if i in sure else "transformer",
                )
            )
        return out

    def predict_one(self, text: str) -> Prediction:
        return self.predict([text])[0]
