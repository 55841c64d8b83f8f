"""Long posts are read in windows: the encoder sees `max_length` tokens, and an advert
at the end of a long post must still count. A post's score is its best window's.

Two steps. `windows` cuts a long text into overlapping pieces of characters, a bounded
number of them: when a post has more, the first and the last are kept, and the rest are the
pieces richest in contacts and prices, found by one pass of cheap patterns over the raw
text. `token_windows` then cuts any piece the encoder cannot read whole at token
boundaries, so every character of a kept piece is read. A post that fits is one window,
read exactly as in training.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

WINDOW_CHARS = (
    1_000  # bounds the work on a huge post; token_windows cuts each piece to what the encoder reads
)
STRIDE = 750  # windows overlap, so a phrase cut at one edge is whole in the next
MAX_WINDOWS = 12

# Digits runs, @handles, messenger links and currency signs: where contacts and prices sit.
_CONTACTISH = re.compile(
    r"\d{3,}|@\w{3,}|wa\.me|t\.me|whatsapp|telegram|signal|viber|[€£$₺]|usd|eur", re.IGNORECASE
)


def window_starts(length: int) -> list[int]:
    if length <= WINDOW_CHARS:
        return [0]
    starts = list(range(0, length - WINDOW_CHARS + 1, STRIDE))
    if starts[-1] + WINDOW_CHARS < length:
        starts.append(length - WINDOW_CHARS)
    return starts


def windows(text: str) -> list[str]:
    """The windows of `text` to classify, in reading order; a short text is one window."""
    starts = window_starts(len(text))
    if len(starts) > MAX_WINDOWS:
        hits = [m.start() for m in _CONTACTISH.finditer(text)]

        def density(start: int) -> int:
            return bisect.bisect_left(hits, start + WINDOW_CHARS) - bisect.bisect_left(hits, start)

        middle = sorted(starts[1:-1], key=lambda s: (-density(s), s))[: MAX_WINDOWS - 2]
        starts = [starts[0], *sorted(middle), starts[-1]]
    return [_words(text, s, s + WINDOW_CHARS) for s in starts]


def _words(text: str, start: int, end: int) -> str:
    """text[start:end] without the word cut at either edge: a fragment of a word reads as
    noise to the encoder (the overlap between windows keeps the whole word elsewhere)."""
    if start > 0 and not text[start - 1].isspace():
        cut = next((i for i in range(start, min(end, start + 40)) if text[i].isspace()), start)
        start = cut
    if end < len(text) and not text[end].isspace():
        cut = next((i for i in range(end - 1, max(start, end - 40), -1) if text[i].isspace()), end)
        end = cut
    return text[start:end].strip()


def token_windows(text: str, tokenizer: Any, max_tokens: int) -> list[str]:
    """`text` as pieces of at most `max_tokens` tokens each, overlapping by a quarter."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    if len(offsets) <= max_tokens:
        return [text]
    stride = max(1, max_tokens * 3 // 4)
    pieces = []
    for start in range(0, len(offsets), stride):
        span = offsets[start : start + max_tokens]
        pieces.append(_words(text, span[0][0], span[-1][1]))
        if start + max_tokens >= len(offsets):
            break
    return pieces
