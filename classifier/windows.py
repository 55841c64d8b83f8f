"""Long posts are read in windows: the encoder sees a few hundred tokens, and an advert
at the end of a long post must still count. A post's score is its best window's.

The number of windows is bounded. When a post has more, the first and the last are kept,
and the rest are the windows richest in contacts and prices, found by one pass of cheap
patterns over the raw text.
"""

from __future__ import annotations

import bisect
import re

WINDOW_CHARS = 1_000  # about what max_length tokens hold in most scripts
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
    return [text[s : s + WINDOW_CHARS] for s in starts]
