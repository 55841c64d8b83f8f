"""Finds the phrases of many lexicons in one pass over a text (an Aho-Corasick automaton).

It gives, lexicon by lexicon, the matches a regex per lexicon would give when scanning left
to right (`re.finditer`): at each position the longest phrase of that lexicon, Latin-script
phrases first and only between word boundaries, then on from the end of the match. A space
in a phrase matches any run of whitespace. One automaton for every cue and place name reads
a post once instead of sixteen times.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import ahocorasick

_WHITESPACE = re.compile(r"\s+")
# Anything a plain text's single spaces are not: a newline, a tab, two spaces in a row.
_ODD_WHITESPACE = re.compile(r"\s\s|[^\S ]")


def is_latin(phrase: str) -> bool:
    return all(not ch.isalpha() or "LATIN" in unicodedata.name(ch, "") for ch in phrase)


@dataclass(frozen=True, slots=True)
class PhraseMatch:
    start: int
    end: int
    phrase: str  # as the lexicon has it: whitespace in the text may differ


class PhraseMatcher:
    def __init__(self, lexicons: Mapping[str, Iterable[str]]) -> None:
        self.labels = tuple(lexicons)
        owners: dict[str, list[int]] = {}
        for index, phrases in enumerate(lexicons.values()):
            for phrase in phrases:
                # Whitespace in a phrase is a word gap, matched by any run of it in a text.
                words = _WHITESPACE.sub(" ", phrase).strip()
                if words:
                    owners.setdefault(words, []).append(index)
        self._automaton = ahocorasick.Automaton()
        for phrase, indices in owners.items():
            self._automaton.add_word(phrase, (len(phrase), tuple(indices), is_latin(phrase), phrase))
        self._empty = not owners
        if owners:
            self._automaton.make_automaton()

    def find(self, text: str) -> dict[str, list[PhraseMatch]]:
        """Matches per lexicon label, in text order, with offsets into `text`."""
        found: dict[str, list[PhraseMatch]] = {label: [] for label in self.labels}
        if self._empty:
            return found
        squeezed, to_text = _squeeze(text)
        # Per lexicon, per start: the longest Latin phrase, and the longest other one (used
        # only where no Latin phrase starts, as the regex's alternation would).
        latin_best: list[dict[int, tuple[int, str]]] = [{} for _ in self.labels]
        other_best: list[dict[int, tuple[int, str]]] = [{} for _ in self.labels]
        for last, (length, indices, latin, phrase) in self._automaton.iter(squeezed):
            start, end = last - length + 1, last + 1
            if latin and (
                (start > 0 and squeezed[start - 1].isalnum())
                or (end < len(squeezed) and squeezed[end].isalnum())
            ):
                continue
            table = latin_best if latin else other_best
            for index in indices:
                if end > table[index].get(start, (-1, ""))[0]:
                    table[index][start] = (end, phrase)
        for index, label in enumerate(self.labels):
            latin_at, other_at = latin_best[index], other_best[index]
            resume = 0
            for start in sorted(latin_at.keys() | other_at.keys()):
                if start < resume:
                    continue
                end, phrase = latin_at.get(start) or other_at[start]
                found[label].append(PhraseMatch(to_text(start), to_text(end - 1) + 1, phrase))
                resume = end
        return found


def _squeeze(text: str) -> tuple[str, Callable[[int], int]]:
    """`text` with each whitespace run as one space, and the map back to `text`'s offsets
    (exact for every non-space character, which is where matches start and end)."""
    if not _ODD_WHITESPACE.search(text):
        return text, _identity
    pieces: list[str] = []
    at = 0
    marks: list[int] = []  # squeezed position just after each run
    shifts: list[int] = []  # characters removed up to there
    removed = 0
    for run in _WHITESPACE.finditer(text):
        pieces.append(text[at : run.start()])
        pieces.append(" ")
        removed += run.end() - run.start() - 1
        marks.append(run.start() - (removed - (run.end() - run.start() - 1)) + 1)
        shifts.append(removed)
        at = run.end()
    pieces.append(text[at:])
    return "".join(pieces), _OffsetMap(marks, shifts)


def _identity(position: int) -> int:
    return position


class _OffsetMap:
    __slots__ = ("marks", "shifts")

    def __init__(self, marks: list[int], shifts: list[int]) -> None:
        self.marks = marks
        self.shifts = shifts

    def __call__(self, position: int) -> int:
        k = bisect.bisect_right(self.marks, position)
        return position + (self.shifts[k - 1] if k else 0)
