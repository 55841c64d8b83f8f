"""The tokenizer saved from transformers and read back without it: the pieces, masks and
offsets of transformers' fast tokenizer on the whole corpus and the sample posts (for the
packaged base model, whose own tokenizer.json gives other offsets, and for the shipped
trimmed encoder), and a classifier on the ONNX runtime that never imports transformers or
torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from classifier.corpus import load_corpus
from classifier.encoding import PREFIX
from classifier.model import META_FILE
from classifier.normalize import normalize
from classifier.tokenizer import FileTokenizer, save_tokenizer
from crawlers.telegram.mirror import load_channels
from vigie.errors import VigieError
from vigie.paths import default_classifier_dir

ODD = ["", " ", "a" * 5000, "\u200f\u202e hi \u0000", "😀" * 300, "ـــ", "\ufeffword"]


def _texts() -> list[str]:
    corpus = [normalize(ex.text) for ex in load_corpus(None)]
    posts = [normalize(p["text"]) for channel in load_channels().values() for p in channel["posts"]]
    return corpus + posts + ODD


def _encoder_dirs() -> list[Path]:
    from classifier.base_model import resolve_base_model

    dirs = [resolve_base_model()]
    shipped = default_classifier_dir()
    if (shipped / META_FILE).is_file():
        dirs.append(shipped / "encoder")  # trimmed vocabulary
    return dirs


@pytest.fixture(scope="module", params=_encoder_dirs(), ids=lambda p: p.parent.name)
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[FileTokenizer, Any]:
    from transformers import AutoTokenizer

    saved = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    save_tokenizer(request.param, saved)
    return FileTokenizer(saved), AutoTokenizer.from_pretrained(request.param, local_files_only=True)


def test_batches_match_the_transformers_tokenizer(pair: tuple[FileTokenizer, Any]) -> None:
    ours, theirs = pair
    texts = _texts()
    for start in range(0, len(texts), 32):
        batch = [PREFIX + t for t in texts[start : start + 32]]
        got = ours(batch, padding=True, truncation=True, max_length=128, return_tensors="np")
        want = theirs(batch, padding=True, truncation=True, max_length=128, return_tensors="np")
        assert got["input_ids"].shape == want["input_ids"].shape, batch
        assert (got["input_ids"] == want["input_ids"]).all(), batch
        assert (got["attention_mask"] == want["attention_mask"]).all(), batch


def test_offsets_match_the_transformers_tokenizer(pair: tuple[FileTokenizer, Any]) -> None:
    ours, theirs = pair
    for text in _texts():
        got = ours(text, add_special_tokens=False, return_offsets_mapping=True)
        want = theirs(text, add_special_tokens=False, return_offsets_mapping=True)
        assert got["input_ids"] == want["input_ids"], text
        assert [tuple(o) for o in got["offset_mapping"]] == [tuple(o) for o in want["offset_mapping"]], text


def test_truncation_counts_the_special_tokens(pair: tuple[FileTokenizer, Any]) -> None:
    ours, _ = pair
    ids = ours(["word " * 400], truncation=True, max_length=16)["input_ids"][0]
    assert len(ids) == 16
    assert ids[0] != ids[-1] and ours("")["input_ids"] == [ids[0], ids[-1]]  # <s> ... </s>


def test_a_missing_or_broken_tokenizer_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(VigieError, match="not a readable tokenizer"):
        FileTokenizer(tmp_path / "tokenizer.json")
    (tmp_path / "broken.json").write_text('{"model": 3', encoding="utf-8")
    with pytest.raises(VigieError, match="not a readable tokenizer"):
        FileTokenizer(tmp_path / "broken.json")


def test_the_onnx_runtime_classifies_without_transformers_or_torch() -> None:
    shipped = default_classifier_dir()
    if not (shipped / META_FILE).is_file():
        pytest.skip("no trained classifier in the cache (`make test` trains it)")
    from classifier.onnx_encoder import export, onnx_path_for, tokenizer_path_for

    encoder = shipped / "encoder"
    if not (onnx_path_for(encoder, quantized=False).is_file() and tokenizer_path_for(encoder).is_file()):
        export(encoder)  # training makes it; exporting needs torch, classifying not
    advert = "Game to UK 100% guaranteed, boat from Dunkirk 1500 euro, WhatsApp +44 7700 900123"
    code = (
        "import sys\n"
        "from classifier.model import AdvertClassifier\n"
        f"clf = AdvertClassifier.load({str(shipped)!r}, runtime='onnx')\n"
        f"p = clf.predict([{advert!r}], cascade=False)[0]\n"
        "print(p.decision, sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    decision, loaded = out.stdout.strip().split(" ", 1)
    assert decision == "advert", out.stdout
    assert loaded == "[]", out.stdout
