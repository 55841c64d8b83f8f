"""The labelled corpus meets what the classifier and its evaluation rely on."""

from __future__ import annotations

from collections import Counter

import pytest

from classifier.corpus import HARD_NEGATIVE_KINDS, LANGS, corpus_dir, load_corpus, parse_line, split_for
from vigie.errors import InputFormatError


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


def test_size_languages_and_balance(corpus):
    assert len(corpus) >= 3000
    per_lang = Counter(ex.lang for ex in corpus)
    assert sum(1 for n in per_lang.values() if n >= 100) >= 14, per_lang
    assert set(per_lang) == set(LANGS)
    assert sum(ex.label for ex in corpus) / len(corpus) >= 0.40
    negatives = [ex for ex in corpus if ex.label == 0]
    assert sum(ex.kind in HARD_NEGATIVE_KINDS for ex in negatives) / len(negatives) >= 0.7


def test_every_language_has_both_labels_in_every_split(corpus):
    seen = Counter((ex.lang, ex.split, ex.label) for ex in corpus)
    for lang in LANGS:
        for split in ("train", "dev", "test"):
            assert seen[(lang, split, 0)] and seen[(lang, split, 1)], (lang, split)


def test_no_duplicate_texts(corpus):
    texts = Counter(" ".join(ex.text.lower().split()) for ex in corpus)
    assert [t for t, n in texts.items() if n > 1] == []


def test_split_is_fixed_by_the_text(corpus):
    assert all(ex.split == split_for(ex.text) for ex in corpus)
    assert Counter(ex.split for ex in corpus)["train"] / len(corpus) == pytest.approx(0.70, abs=0.03)


def test_files_are_named_by_language():
    for path in corpus_dir().glob("*.jsonl"):
        langs = {ex.lang for ex in load_corpus_file(path)}
        assert langs == {path.stem}


def load_corpus_file(path):
    return [
        parse_line(line, f"{path}:{n}")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if line.strip()
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{oops", "f.jsonl:3: invalid JSON"),
        (
            '{"text": "", "lang": "en", "label": 1, "kind": "advert_crossing"}',
            "'text' must be a non-empty string",
        ),
        ('{"text": "x", "lang": "xx", "label": 1, "kind": "advert_crossing"}', "'lang' = 'xx'"),
        (
            '{"text": "x", "lang": "en", "label": 2, "kind": "advert_crossing"}',
            "'label' = 2: expected 0 or 1",
        ),
        ('{"text": "x", "lang": "en", "label": 0, "kind": "advert_crossing"}', "'kind' = 'advert_crossing'"),
    ],
)
def test_bad_lines_name_file_and_line(line, message):
    with pytest.raises(InputFormatError, match=message.replace("(", r"\(")):
        parse_line(line, "f.jsonl:3")


def test_the_challenge_split_is_apart_from_the_corpus(corpus):
    from classifier.corpus import ADVERT_PHENOMENA, CHALLENGE, NEGATIVE_PHENOMENA, challenge_dir
    from classifier.train import _splits
    from classifier.train_config import TrainConfig

    challenge = load_corpus(challenge=True)
    assert all(ex.split == CHALLENGE and ex.phenomenon for ex in challenge)
    per_lang = Counter(ex.lang for ex in challenge)
    assert set(per_lang) == set(LANGS) and min(per_lang.values()) >= 20, per_lang
    phenomena = Counter(ex.phenomenon for ex in challenge)
    assert set(ADVERT_PHENOMENA) <= set(phenomena) and {"personal", "parody", "ngo_warning"} <= set(phenomena)
    assert set(phenomena) <= set(ADVERT_PHENOMENA) | set(NEGATIVE_PHENOMENA)
    # Never trained on: no text in common with the corpus, and training reads only the corpus.
    fold = lambda text: " ".join(text.lower().split())  # noqa: E731
    assert {fold(ex.text) for ex in challenge}.isdisjoint(fold(ex.text) for ex in corpus)
    trained = {fold(ex.text) for items in _splits(TrainConfig()).values() for ex in items}
    assert trained.isdisjoint(fold(ex.text) for ex in challenge)
    assert challenge_dir() != corpus_dir()


def test_challenge_items_need_a_phenomenon(tmp_path):
    (tmp_path / "x.jsonl").write_text(
        '{"text": "boat to Italy", "lang": "en", "label": 1, "kind": "advert_crossing"}\n', encoding="utf-8"
    )
    with pytest.raises(InputFormatError, match=r"x\.jsonl:1: challenge items need a 'phenomenon'"):
        load_corpus(tmp_path, challenge=True)
    with pytest.raises(InputFormatError, match="'phenomenon' = 'parody': expected one of explicit"):
        parse_line(
            '{"text": "t", "lang": "en", "label": 1, "kind": "advert_crossing", "phenomenon": "parody"}', "x"
        )
