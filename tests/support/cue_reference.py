"""The cue finder as it was before the one-pass matcher: one regex per cue and one for place
names, each scanning the text left to right. The tests and the classification benchmark
compare `classifier.cues.find_cues` against it."""

from __future__ import annotations

import re
from functools import cache

import yaml

from classifier.cues import (
    _HANDLE,
    _LINK,
    _PHONE,
    _PRICE,
    PHRASE_CUES,
    CueMatch,
    fold,
    lexicon_files,
    phrase_trie,
    place_names,
)
from classifier.normalize import normalize
from classifier.phrases import is_latin


def reference_regex(phrases: set[str]) -> re.Pattern[str] | None:
    latin = {p for p in phrases if is_latin(p)}
    other = phrases - latin
    parts = []
    if latin:
        parts.append(rf"(?<![^\W_])(?:{phrase_trie(latin)})(?![^\W_])")
    if other:
        parts.append(f"(?:{phrase_trie(other)})")
    return re.compile("|".join(parts)) if parts else None


@cache
def reference_patterns() -> dict[str, re.Pattern[str]]:
    data = yaml.safe_load(lexicon_files()[0].read_text(encoding="utf-8"))
    patterns = {}
    for cue in PHRASE_CUES:
        phrases = {fold(normalize(str(p))) for lang in (data.get(cue) or {}).values() for p in lang or []}
        regex = reference_regex({p for p in phrases if len(p) >= 2})
        if regex:
            patterns[cue] = regex
    return patterns


@cache
def reference_places() -> tuple[re.Pattern[str] | None, dict[str, str]]:
    by_name = place_names()
    return reference_regex(set(by_name)), by_name


def reference_places_in(text: str) -> list[str]:
    regex, by_name = reference_places()
    assert regex is not None
    lowered = fold(normalize(text))
    found = [by_name.get(re.sub(r"\s+", " ", m.group(0))) for m in regex.finditer(lowered)]
    return list(dict.fromkeys(p for p in found if p))


def reference_find_cues(text: str) -> list[CueMatch]:
    clean = normalize(text)
    lowered = fold(clean)
    out: list[CueMatch] = []

    def add(cue: str, matches: list[str]) -> None:
        out.extend(CueMatch(cue, m.strip()) for m in dict.fromkeys(matches) if m.strip())

    phones = [m.group(0) for m in _PHONE.finditer(clean) if 9 <= sum(ch.isdigit() for ch in m.group(0)) <= 15]
    add("phone", phones[:3])
    add("messenger_link", [m.group(0) for m in _LINK.finditer(clean)][:3])
    add("handle", [m.group(0) for m in _HANDLE.finditer(clean)][:3])
    add("price", [m.group(0) for m in _PRICE.finditer(lowered) if any(ch.isdigit() for ch in m.group(0))][:3])
    places = reference_places_in(clean)
    if len(places) >= 2:
        add("route", [" → ".join(places[:3])])
    for cue, regex in reference_patterns().items():
        add(cue, [m.group(0) for m in regex.finditer(lowered)][:3])
    return out
