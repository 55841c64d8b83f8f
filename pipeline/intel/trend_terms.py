"""Terms rising in flagged posts: words and two-word phrases far more frequent in a period
than in the months before it, candidate code words for analysts ("taxi game").

A term is counted once per post, after normalising and folding the text and removing what
is no word (numbers, phones, handles, links, emoji), stop words and place names (new places
are new routes, not new words). Its score is a smoothed log-ratio of the share of posts
using it, period against baseline, so a term seen in a handful of posts of a quiet month
does not outrank one in many posts of a busy one.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from classifier.cues import fold, gazetteer
from classifier.normalize import normalize

# Pseudo-count added to each side of the ratio: a term needs several posts to rise.
SMOOTHING = 1.0
# The share in the period must be at least this many times the baseline's.
MIN_RATIO = 3.0
TOP = 25
_NOT_WORDS = re.compile(
    r"https?://\S+|(?:wa\.me|t\.me|telegram\.me)/\S+|\S+@\S+\.\S+|@[\w.]+|#\w+|\+?\d[\d\s().-]{6,}\d"
)
_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Function words, months and generic words of the languages adverts are written in.
STOP_WORDS = _words(
    """
    a an and are as at be been but by can do for from has have he her his i if in into is it its
    just me more my no not now of on only or our out per so than that the their them then there
    these they this to up us was we what when where which who will with you your yes all any
    new next last every each get got very one two three four five six seven eight nine ten
    week weeks day days today tomorrow tonight night month price prices only dm message contact
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday
    le la les de des du un une et en au aux pour par sur avec dans est sont pas plus ce cette
    il elle nous vous ils on qui que quoi prix semaine jour
    ve ile bir bu da de için icin mi ne çok cok var yok fiyat
    û bi ji li bo ku di de ev ew te me we tu ez ne na jî ji bo her ya yê ên biha tenê heta
    dhe në ne për per nga me një nje se të te është eshte
    và của cho với là có không các một những từ đến sang giá
    iyo ka ku u oo waa ah la ee in aan
    """
)
STOP_WORDS |= _words("من الى إلى على في عن مع او أو لا ما هذا هذه كل بعد قبل السعر")  # Arabic
STOP_WORDS |= _words("از به با در که این آن و یا برای تا هر را است قیمت پرداخت تماس")  # Persian
STOP_WORDS |= _words("لە بۆ بە لەگەڵ ئەم")  # Sorani


@cache
def _place_words() -> frozenset[str]:
    words: set[str] = set()
    for place in gazetteer().values():
        for names in (place.get("names") or {}).values():
            for name in names or []:
                words.update(_WORD.findall(fold(normalize(str(name)))))
    return frozenset(words)


def _stop(word: str) -> bool:
    return len(word) < 2 or word in STOP_WORDS or word in _place_words()


def terms_of(text: str) -> set[str]:
    """The words and two-word phrases of a post, normalised, each once."""
    clean = _NOT_WORDS.sub(" \n ", fold(normalize(text)))
    found: set[str] = set()
    for line in re.split(r"[\n.,;:!?()|•·]+", clean):
        words = _WORD.findall(line)
        for i, word in enumerate(words):
            if _stop(word):
                continue
            found.add(word)
            if i + 1 < len(words) and not _stop(words[i + 1]):
                found.add(f"{word} {words[i + 1]}")
    return found


@dataclass
class TermCounts:
    """Which posts and sources use each term, over a set of posts."""

    posts: int = 0
    keys: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    sources: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    @classmethod
    def of(cls, posts: list[tuple[str, str, str]]) -> TermCounts:
        """From (post key, source, text), in publication order."""
        counts = cls()
        for key, source, text in posts:
            counts.posts += 1
            for term in terms_of(text):
                counts.keys[term].append(key)
                counts.sources[term].add(source)
        return counts


@dataclass(frozen=True, slots=True)
class Term:
    term: str
    posts: int  # in the period
    baseline_posts: int
    sources: int  # in the period
    score: float  # smoothed log-ratio, period share against baseline share
    example_key: str  # the earliest post of the period using it

    def to_json(self) -> dict[str, Any]:
        return {
            "term": self.term,
            "posts": self.posts,
            "baseline_posts": self.baseline_posts,
            "sources": self.sources,
            "score": self.score,
            "example_key": self.example_key,
        }


def rising_terms(period: TermCounts, baseline: TermCounts, min_posts: int, top: int = TOP) -> list[Term]:
    """Terms in at least `min_posts` posts of the period whose share of posts rose at least
    MIN_RATIO times over the baseline's; those in two sources or more first, then by score.
    A word is left out when a phrase holding it is found in the same posts."""
    found = []
    for term, keys in period.keys.items():
        n = len(keys)
        if n < min_posts:
            continue
        b = len(baseline.keys.get(term, ()))
        share = (n + SMOOTHING) / (period.posts + 2 * SMOOTHING)
        baseline_share = (b + SMOOTHING) / (baseline.posts + 2 * SMOOTHING)
        ratio = share / baseline_share
        if ratio < MIN_RATIO:
            continue
        found.append(
            Term(
                term=term,
                posts=n,
                baseline_posts=b,
                sources=len(period.sources[term]),
                score=round(math.log(ratio), 3),
                example_key=keys[0],
            )
        )
    phrases = [t for t in found if " " in t.term]
    kept = [
        t
        for t in found
        if " " in t.term
        or not any(
            t.term in p.term.split() and set(period.keys[p.term]) == set(period.keys[t.term]) for p in phrases
        )
    ]
    kept.sort(key=lambda t: (t.sources < 2, -t.score, -t.posts, t.term))
    return kept[:top]
