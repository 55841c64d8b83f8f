"""The labelled corpus: JSON Lines under classifier/data/corpus, one file per language.

Each line: {"text", "lang", "label" (1 = smuggling service advert), "kind", "split"}.
The split is fixed by a hash of the text, so it never changes when items are added.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from vigie.errors import InputFormatError

ADVERT_KINDS = ("advert_crossing", "advert_documents")
NEGATIVE_KINDS = (
    "news",
    "warning",
    "question",
    "personal",  # migrants' own messages: "we arrived", thanks, greetings to family
    "parody",  # memes and jokes that mimic adverts
    "legal_travel",
    "legal_visa",
    "job",
    "sale",
    "other",
)
HARD_NEGATIVE_KINDS = ("news", "warning", "question", "personal", "parody", "legal_travel", "legal_visa")
# What makes an item hard, for per-phenomenon reports (optional on corpus items, required on
# the challenge split). Adverts first, then the kinds of post that must not be flagged.
ADVERT_PHENOMENA = (
    "explicit",  # route, price and contact said plainly
    "code_words",  # "game", "taxi", "dunki", football "tickets", calm-sea talk, tourist euphemisms
    "disguised_package",  # study/work/visa offers bundling a "guaranteed route"; look-alike passports
    "testimonial",  # arrival videos, "you can be next", referral discounts, posted by the service
    "we_moved",  # a closed channel's "we moved" notice listing the same destinations
    "short_offer",  # price and payment arrangement (hawala, guarantee office), no phone number
    "implied_contact",  # the offer only implied, the contact "in bio", "DM", "in comments"
    "documents",  # forged or look-alike passports, visas, residence cards
)
NEGATIVE_PHENOMENA = (
    "personal",
    "parody",
    "ngo_warning",  # warnings that quote smugglers' slogans, often in mixed languages
    "legal_job_scheme",  # seasonal-work schemes that warn against paying brokers
    "news",
    "question",
    "legal_travel",
    "legal_visa",
    "other",
)
PHENOMENA = ADVERT_PHENOMENA + NEGATIVE_PHENOMENA
LANGS = (
    "ar",
    "ar-Latn",
    "ckb",
    "kmr",
    "fa",
    "fa-Latn",
    "ps",
    "ur",
    "tr",
    "en",
    "fr",
    "sq",
    "vi",
    "ti",
    "am",
    "so",
)
SPLITS = ("train", "dev", "test")
CHALLENGE = "challenge"


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    lang: str
    label: int
    kind: str
    split: str
    phenomenon: str = ""


def corpus_dir() -> Path:
    return Path(__file__).resolve().parent / "data" / "corpus"


def split_for(text: str) -> str:
    """70/15/15 by a hash of the text: stable, and independent of the other items."""
    bucket = int(hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:8], 16) % 100
    return "train" if bucket < 70 else ("dev" if bucket < 85 else "test")


def parse_line(line: str, where: str, challenge: bool = False) -> Example:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputFormatError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, dict):
        raise InputFormatError(f"{where}: expected a JSON object")
    text, lang, label, kind = data.get("text"), data.get("lang"), data.get("label"), data.get("kind")
    if not isinstance(text, str) or not text.strip():
        raise InputFormatError(f"{where}: 'text' must be a non-empty string")
    if lang not in LANGS:
        raise InputFormatError(f"{where}: 'lang' = {lang!r}: expected one of {', '.join(LANGS)}")
    if label not in (0, 1):
        raise InputFormatError(f"{where}: 'label' = {label!r}: expected 0 or 1")
    kinds = ADVERT_KINDS if label == 1 else NEGATIVE_KINDS
    if kind not in kinds:
        raise InputFormatError(
            f"{where}: 'kind' = {kind!r}: expected one of {', '.join(kinds)} for label {label}"
        )
    phenomenon = data.get("phenomenon") or ""
    allowed = ADVERT_PHENOMENA if label == 1 else NEGATIVE_PHENOMENA
    if phenomenon and phenomenon not in allowed:
        raise InputFormatError(
            f"{where}: 'phenomenon' = {phenomenon!r}: expected one of {', '.join(allowed)} for label {label}"
        )
    if challenge:
        if not phenomenon:
            raise InputFormatError(f"{where}: challenge items need a 'phenomenon'")
        return Example(text, str(lang), int(label), str(kind), CHALLENGE, phenomenon)
    split = data.get("split") or split_for(text)
    if split not in SPLITS:
        raise InputFormatError(f"{where}: 'split' = {split!r}: expected one of {', '.join(SPLITS)}")
    return Example(text, str(lang), int(label), str(kind), str(split), phenomenon)


def challenge_dir() -> Path:
    return Path(__file__).resolve().parent / "data" / "challenge"


def load_corpus(directory: Path | None = None, challenge: bool = False) -> list[Example]:
    """The labelled corpus, or with `challenge` the challenge split: written apart from the
    corpus, never used to train, calibrate or choose thresholds."""
    where = directory or (challenge_dir() if challenge else corpus_dir())
    examples = []
    for path in sorted(where.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    examples.append(parse_line(line, f"{path}:{number}", challenge))
    if not examples:
        raise InputFormatError(f"{where}: no corpus files (*.jsonl)")
    return examples


def corpus_hash(examples: list[Example]) -> str:
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(
            json.dumps(
                [ex.text, ex.lang, ex.label, ex.kind, ex.split, ex.phenomenon], ensure_ascii=False
            ).encode()
        )
    return digest.hexdigest()


def summary(examples: list[Example]) -> dict[str, object]:
    return {
        "items": len(examples),
        "adverts": sum(ex.label for ex in examples),
        "by_lang": dict(sorted(Counter(ex.lang for ex in examples).items())),
        "by_kind": dict(sorted(Counter(ex.kind for ex in examples).items())),
        "by_split": dict(sorted(Counter(ex.split for ex in examples).items())),
    }
