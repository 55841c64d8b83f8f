"""The trimmed vocabulary: the same pieces and vectors for the texts it was cut for, known
pieces (never <unk>) for words it was not, and a clear refusal of what it cannot trim."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from classifier.corpus import load_corpus
from classifier.encoding import PREFIX
from classifier.model import META_FILE
from classifier.normalize import normalize
from classifier.vocabulary import MANIFEST, trim_vocabulary
from vigie.errors import VigieError


@pytest.fixture(scope="module")
def base_dir() -> Path:
    from classifier.base_model import resolve_base_model

    return resolve_base_model()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    by_lang: dict[str, list[str]] = {}
    for ex in load_corpus(None):
        by_lang.setdefault(ex.lang, []).append(normalize(ex.text))
    return [t for items in by_lang.values() for t in items[:3]]


@pytest.fixture(scope="module")
def trimmed(base_dir: Path, texts: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vocab") / "encoder"
    shutil.copytree(base_dir, out)
    trim_vocabulary(out, texts)
    return out


@functools.cache
def _tokenizer(model_dir: Path) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(model_dir / "tokenizer.json"))


def _pieces(model_dir: Path, texts: list[str]) -> list[list[str]]:
    return [enc.tokens for enc in _tokenizer(model_dir).encode_batch([PREFIX + t for t in texts])]


def test_the_texts_it_was_cut_for_get_the_same_pieces_and_vectors(base_dir, trimmed, texts):
    import numpy as np

    from classifier.encoder import Encoder

    assert len({t for t in texts}) > 40  # several per language
    assert _pieces(trimmed, texts) == _pieces(base_dir, texts)
    one_each = texts[::3]  # one per language: the vectors are slow to compute on two cores
    full, cut = Encoder(base_dir).embed(one_each), Encoder(trimmed).embed(one_each)
    assert np.abs(full - cut).max() < 1e-5


def test_the_trimmed_encoder_is_a_fraction_of_the_size(base_dir, trimmed):
    manifest = json.loads((trimmed / MANIFEST).read_text(encoding="utf-8"))
    config = json.loads((trimmed / "config.json").read_text(encoding="utf-8"))
    vocab = json.loads((trimmed / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    assert manifest["pieces_before"] == 250002 and config["vocab_size"] == len(vocab) == manifest["pieces"]
    assert manifest["pieces"] < 60000
    assert (trimmed / "model.safetensors").stat().st_size < (
        base_dir / "model.safetensors"
    ).stat().st_size / 2
    assert vocab[:4] == [["<s>", 0.0], ["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0]]
    assert vocab[-1][0] == "<mask>"


@pytest.mark.parametrize(
    "text",
    [
        "Zyxquorblat flumbergast",  # Latin words no text used: spelt out in shorter pieces
        "नमस्ते दोस्तों",  # a script that is not kept: single characters
        "قاچاقچییەکان بەلەمەکانیان",  # Arabic script: its pieces are all kept
        "ሰላምታ ለሁላችሁ",  # Ethiopic: likewise
    ],
)
def test_words_it_was_not_cut_for_are_spelt_out_in_known_pieces(base_dir, trimmed, text):
    (full,) = _pieces(base_dir, [text])
    (cut,) = _pieces(trimmed, [text])
    assert "<unk>" not in cut and "".join(cut) == "".join(full)
    if text.startswith(("قاچاق", "ሰላም")):
        assert cut == full


def test_a_special_token_keeps_its_meaning(trimmed):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(trimmed, local_files_only=True)
    ids = tok("hello")["input_ids"]
    assert (ids[0], ids[-1]) == (tok.cls_token_id, tok.sep_token_id) == (0, 2)
    assert tok.pad_token_id == 1 and tok.unk_token_id == 3
    assert tok.convert_ids_to_tokens(tok.mask_token_id) == "<mask>"


def test_what_cannot_be_trimmed_is_refused_and_left_as_it_was(base_dir, tmp_path):
    out = tmp_path / "bpe"
    out.mkdir()
    spec = json.loads((base_dir / "tokenizer.json").read_text(encoding="utf-8"))
    spec["model"]["type"] = "BPE"
    (out / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(VigieError, match="only Unigram"):
        trim_vocabulary(out, ["hello"])
    assert json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))["model"]["type"] == "BPE"


def test_the_shipped_classifier_runs_on_a_trimmed_vocabulary(shipped):
    manifest = json.loads((shipped.directory / "encoder" / MANIFEST).read_text(encoding="utf-8"))
    metrics = json.loads((shipped.directory / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["vocabulary"]["pieces"] == manifest["pieces"] < manifest["pieces_before"] / 4
    meta = json.loads((shipped.directory / META_FILE).read_text(encoding="utf-8"))
    # Cut for every corpus text, every augmented variant and the sample channels' posts.
    assert meta["vocabulary_texts"] > 200
    corpus = metrics["corpus"]
    assert manifest["texts"] == corpus["items"] + corpus["train_variants"] + meta["vocabulary_texts"]


def test_pieces_past_a_saved_truncation_are_kept(base_dir, tmp_path):
    """A tokenizer saved after use keeps its truncation; the tail of a long post (read in a
    later window) must still tokenise as before the trim."""
    out = tmp_path / "encoder"
    shutil.copytree(base_dir, out)
    spec = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    spec["truncation"] = {"direction": "Right", "max_length": 16, "strategy": "LongestFirst", "stride": 0}
    (out / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    text = "boat " * 20 + "contact @azadiroutes_official for seats"
    trim_vocabulary(out, [text])
    cut = _tokenizer(out)
    cut.no_truncation()
    pieces = cut.encode(PREFIX + text).tokens
    assert len(pieces) > 16
    assert pieces == _tokenizer(base_dir).encode(PREFIX + text).tokens
