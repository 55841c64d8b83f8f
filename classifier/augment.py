"""Variants of training posts that keep their label, so the model learns what makes an
advert an advert rather than the surface it usually comes with.

- **Contact dropped:** adverts whose phone, messenger link or handle is removed stay
  adverts (real offers say "DM", "in bio", or leave the number to the comments).
- **Emoji stripped:** adverts and the posts that mimic them (parodies, migrants' own posts,
  NGO warnings) without their emoji keep their label, so 🚤 and 🇬🇧 alone decide nothing.

Only train-split items are varied, and each variant goes to the train split, so dev and test
stay as written.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

from classifier.corpus import Example
from classifier.cues import CONTACT_PATTERNS

# Emoji, pictographs, regional-indicator flags, dingbats, arrows and their joiners.
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U00002190-\U000021ff\U00002b00-\U00002bff"
    "\U0000fe0f\U0000200d\U000020e3]+"
)
_SPACES = re.compile(r"[ \t]{2,}")
# Words left dangling in front of a removed contact ("WhatsApp:", "tel", "📞").
_LEFTOVER = re.compile(r"(?im)^[\s:：\-–—|•]*$")
MIN_CHARS = 20
# Negative kinds that borrow an advert's look: their emoji-stripped variants teach that the
# look alone is not an advert.
LOOKALIKE_KINDS = ("parody", "personal", "warning", "legal_travel")


def _picked(text: str, salt: str, fraction: float, seed: int) -> bool:
    digest = hashlib.sha256(f"{seed}:{salt}:{text}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def _tidy(text: str) -> str:
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line and not _LEFTOVER.fullmatch(line))


def drop_contacts(text: str) -> str:
    for pattern in CONTACT_PATTERNS:
        text = pattern.sub(" ", text)
    return _tidy(text)


def strip_emoji(text: str) -> str:
    return _tidy(_EMOJI.sub(" ", text))


def augment(train: list[Example], fraction: float, seed: int) -> list[Example]:
    """New train items: for about `fraction` of the eligible items, one variant each."""
    out: list[Example] = []
    seen = {ex.text for ex in train}
    for ex in train:
        variants = []
        if ex.label == 1 and _picked(ex.text, "contact", fraction, seed):
            variants.append(drop_contacts(ex.text))
        if (ex.label == 1 or ex.kind in LOOKALIKE_KINDS) and _picked(ex.text, "emoji", fraction, seed):
            variants.append(strip_emoji(ex.text))
        for text in variants:
            if len(text) >= MIN_CHARS and text not in seen:
                seen.add(text)
                out.append(replace(ex, text=text, split="train"))
    return out
