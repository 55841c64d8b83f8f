"""Text normalisation before language ID, the model and cue extraction.

NFKC folds look-alike characters (full-width digits, ligatures); invisible characters used
to dodge filters are removed; Arabic-Indic and Persian digits become ASCII; spelled-out
obfuscations ("w h a t s a p p", "0 0 4 4 7…") are joined. Emoji are kept: they are signal.
"""

from __future__ import annotations

import re
import unicodedata

MAX_CHARS = 20_000  # longer posts are cut here: the model reads 512 tokens at most anyway

# Zero-width space, word joiner, BOM, soft hyphen, bidi marks and embeddings.
_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u00ad\u200e\u200f\u202a-\u202e\u2066-\u2069\u180e]")
# ZWNJ/ZWJ between ASCII letters or digits is obfuscation; elsewhere (Persian, emoji) it is spelling.
_JOINER_IN_ASCII = re.compile(r"(?<=[A-Za-z0-9])[\u200c\u200d]+(?=[A-Za-z0-9])")
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
# Four or more single letters separated by spaces, dots or dashes: "w h a t s a p p".
_SPACED_LETTERS = re.compile(r"(?<![^\W\d_])(?:[^\W\d_][ .\-_*]){3,}[^\W\d_](?![^\W\d_])")
# Digit runs split by single separators: "0 0 4 4 7 7", "+44.7700.900", "0-5-3-2".
_SPACED_DIGITS = re.compile(r"(?<!\d)\+?\d(?:[ .\-_*/]{1,2}\d){5,}(?!\d)")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


def _join(match: re.Match[str]) -> str:
    return re.sub(r"[ .\-_*/]", "", match.group(0))


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = _JOINER_IN_ASCII.sub("", text)
    text = text.translate(_DIGITS)
    text = _SPACED_LETTERS.sub(_join, text)
    text = _SPACED_DIGITS.sub(_join, text)
    text = _SPACES.sub(" ", text)
    text = re.sub(r" *\n[ \n]*", "\n", text)
    return text.strip()[:MAX_CHARS]
