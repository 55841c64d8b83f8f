"""The one-pass phrase matcher finds exactly what one regex per cue found before it (the
reference, tests/support/cue_reference.py), on every corpus and challenge item and on texts
built to hit its corners (whitespace runs, overlapping phrases, word boundaries)."""

from __future__ import annotations

import pytest

from classifier import cues
from classifier.corpus import load_corpus
from classifier.cues import PHRASE_CUES, find_cues
from classifier.phrases import PhraseMatcher
from tests.support.cue_reference import reference_find_cues, reference_regex


def corner_texts() -> list[str]:
    items = [ex.text for ex in load_corpus()] + [ex.text for ex in load_corpus(challenge=True)]
    out = []
    for text in items[::7]:
        out.append(text.replace(" ", "  \n\t "))  # every space a whitespace run
        out.append(text.upper())
        out.append("x" + text.replace(" ", "") + "x")  # words glued: Latin boundaries fail
    return out


def test_cues_match_the_regex_reference_on_every_corpus_and_challenge_item() -> None:
    texts = [ex.text for ex in load_corpus()] + [ex.text for ex in load_corpus(challenge=True)]
    assert len(texts) > 4000
    differing = [t for t in texts if find_cues(t) != reference_find_cues(t)]
    assert differing == []
    # The comparison is not empty-handed: most items have phrase cues and some have routes.
    with_phrases = sum(any(c.cue in PHRASE_CUES for c in find_cues(t)) for t in texts)
    assert with_phrases > len(texts) // 2
    assert any(c.cue == "route" for t in texts[:500] for c in find_cues(t))


def test_cues_match_the_reference_where_whitespace_and_boundaries_differ() -> None:
    differing = [t for t in corner_texts() if find_cues(t) != reference_find_cues(t)]
    assert differing == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Longest phrase at a position wins; the scan resumes after it.
        ("safe arrival now", [(0, 12, "safe arrival")]),
        ("a safe  \n arrival", [(2, 17, "safe arrival")]),
        # A Latin phrase needs word boundaries; a shorter one is tried when the longer fails them.
        ("unsafe arrival", [(7, 14, "arrival")]),
        ("safe arrivals", [(0, 4, "safe")]),
        # Arabic-script phrases match inside words (attached prefixes).
        ("والمضمون", [(3, 8, "مضمون")]),
        # Overlapping phrases: the leftmost wins, as a left-to-right regex scan would have it.
        ("arrival time", [(0, 7, "arrival")]),
    ],
)
def test_matcher_scans_like_a_regex(text: str, expected: list[tuple[int, int, str]]) -> None:
    matcher = PhraseMatcher({"x": {"safe", "safe arrival", "arrival", "val time", "مضمون"}})
    assert [(m.start, m.end, m.phrase) for m in matcher.find(text)["x"]] == expected
    regex = reference_regex({"safe", "safe arrival", "arrival", "val time", "مضمون"})
    assert regex is not None
    assert [m.span() for m in regex.finditer(text)] == [(s, e) for s, e, _ in expected]


def test_a_latin_phrase_is_tried_before_a_longer_other_one_at_the_same_place() -> None:
    phrases = {"100%", "100% مضمون"}
    text = "عرض 100% مضمون"
    matcher = PhraseMatcher({"x": phrases})
    regex = reference_regex(phrases)
    assert regex is not None
    assert [(m.start, m.end) for m in matcher.find(text)["x"]] == [m.span() for m in regex.finditer(text)]


def test_whitespace_in_a_phrase_is_a_word_gap() -> None:
    matcher = PhraseMatcher({"x": {" pay\n on  arrival "}, "empty": {"", "  "}})
    found = matcher.find("we take pay on\tarrival")
    assert [(m.start, m.end, m.phrase) for m in found["x"]] == [(8, 22, "pay on arrival")]
    assert found["empty"] == []


def test_one_automaton_serves_every_cue() -> None:
    matcher, _ = cues._matcher()
    assert set(matcher.labels) == {*PHRASE_CUES, cues.PLACES}
