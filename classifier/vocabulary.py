"""The encoder's vocabulary cut down to the pieces Vigie's posts use.

XLM-R's 250k-piece vocabulary serves a hundred languages; its embedding rows are most of
the encoder's memory. A trimmed encoder keeps the pieces the given texts tokenise into,
every piece of the Arabic and Ethiopic scripts (most of the languages watched, and the
ones with the fewest Latin look-alikes), and every single-character piece, so that a word
never seen before is still spelt out in known pieces rather than lost as <unk>.

A unigram tokenizer picks the best-scoring segmentation among its pieces. Removing pieces
the best segmentation of a text does not use leaves that segmentation the best, so every
text the vocabulary was cut for tokenises to the same pieces, and the model computes the
same vectors for it. `trim_vocabulary` checks that before it writes anything.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifier.encoding import PREFIX
from vigie.errors import VigieError

MANIFEST = "vocabulary.json"
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
KEPT_SCRIPTS = ("ARABIC", "ETHIOPIC")
_SPACE = "\u2581"  # the tokenizer's word-start mark


@dataclass(frozen=True)
class Trimmed:
    pieces_before: int
    pieces: int
    from_texts: int  # pieces kept because the texts use them


def _script_pieces(vocab: list[list[Any]]) -> set[int]:
    """Single characters, and pieces written only in a kept script."""
    kept: set[int] = set()
    for i, (piece, _score) in enumerate(vocab):
        body = piece.replace(_SPACE, "")
        letters = [ch for ch in body if ch.isalpha()]
        if len(body) <= 1 or (
            letters and all(unicodedata.name(ch, "").startswith(KEPT_SCRIPTS) for ch in letters)
        ):
            kept.add(i)
    return kept


def _token_ids(tokenizer: Any, texts: Sequence[str], batch: int = 1024) -> list[list[int]]:
    # Whole texts: a tokenizer saved after use keeps its truncation, and a piece cut off past
    # max_length is still read (the classifier splits long posts into windows).
    tokenizer.no_truncation()
    tokenizer.no_padding()
    out: list[list[int]] = []
    for start in range(0, len(texts), batch):
        out.extend(
            enc.ids for enc in tokenizer.encode_batch([PREFIX + t for t in texts[start : start + batch]])
        )
    return out


def _remap_tokenizer(spec: dict[str, Any], keep: list[int], new_id: dict[int, int]) -> dict[str, Any]:
    model = spec["model"]
    model["vocab"] = [model["vocab"][i] for i in keep]
    model["unk_id"] = new_id[model["unk_id"]]
    for token in spec.get("added_tokens") or []:
        token["id"] = new_id[token["id"]]
    for special in ((spec.get("post_processor") or {}).get("special_tokens") or {}).values():
        special["ids"] = [new_id[i] for i in special["ids"]]
    if spec.get("padding"):
        spec["padding"]["pad_id"] = new_id[spec["padding"]["pad_id"]]
    return spec


def trim_vocabulary(encoder_dir: Path, texts: Iterable[str]) -> Trimmed:
    """Rewrite the encoder directory (tokenizer.json, its config, the embedding rows and
    config.json) with the vocabulary cut down for `texts` (normalised, without the e5
    prefix). Raises VigieError before writing anything if a text would tokenise
    differently afterwards."""
    import numpy as np
    from safetensors.numpy import load_file, save_file
    from tokenizers import Tokenizer

    encoder_dir = Path(encoder_dir)
    tok_path, weights_path = encoder_dir / "tokenizer.json", encoder_dir / "model.safetensors"
    spec = json.loads(tok_path.read_text(encoding="utf-8"))
    if spec.get("model", {}).get("type") != "Unigram":
        raise VigieError(
            f"{tok_path}: a {spec.get('model', {}).get('type')} tokenizer; only Unigram can be trimmed"
        )
    vocab = spec["model"]["vocab"]
    texts = list(texts)
    before = _token_ids(Tokenizer.from_file(str(tok_path)), texts)
    used = {i for ids in before for i in ids}
    specials = {t["id"] for t in spec.get("added_tokens") or []} | {spec["model"]["unk_id"]}
    keep = sorted(used | specials | _script_pieces(vocab))
    new_id = {old: new for new, old in enumerate(keep)}

    trimmed_spec = _remap_tokenizer(spec, keep, new_id)
    after = _token_ids(Tokenizer.from_str(json.dumps(trimmed_spec, ensure_ascii=False)), texts)
    for text, old, new in zip(texts, before, after, strict=True):
        if [new_id[i] for i in old] != new:
            raise VigieError(f"vocabulary trim would change how a text tokenises: {text[:60]!r}")

    tensors = load_file(str(weights_path))
    # e5's matrix has a few rows past the tokenizer's last piece; no text reaches them.
    if WORD_EMBEDDINGS not in tensors or tensors[WORD_EMBEDDINGS].shape[0] < len(vocab):
        raise VigieError(f"{weights_path}: no {WORD_EMBEDDINGS} with a row per piece ({len(vocab)})")
    tensors[WORD_EMBEDDINGS] = np.ascontiguousarray(tensors[WORD_EMBEDDINGS][keep])
    config = json.loads((encoder_dir / "config.json").read_text(encoding="utf-8"))
    config["vocab_size"] = len(keep)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        if config.get(key) is not None:
            config[key] = new_id[config[key]]
    tok_config_path = encoder_dir / "tokenizer_config.json"
    tok_config = json.loads(tok_config_path.read_text(encoding="utf-8")) if tok_config_path.exists() else {}
    if "added_tokens_decoder" in tok_config:
        tok_config["added_tokens_decoder"] = {
            str(new_id[int(k)]): v for k, v in tok_config["added_tokens_decoder"].items()
        }

    # Each file is written whole beside its old self, then moved over it.
    def replace(path: Path, write: Any) -> None:
        part = path.with_name(path.name + ".part")
        write(part)
        part.chmod(path.stat().st_mode & 0o777)
        part.replace(path)

    replace(weights_path, lambda p: save_file(tensors, str(p), metadata={"format": "pt"}))
    replace(tok_path, lambda p: p.write_text(json.dumps(trimmed_spec, ensure_ascii=False), encoding="utf-8"))
    if tok_config:
        replace(tok_config_path, lambda p: p.write_text(json.dumps(tok_config, indent=1), encoding="utf-8"))
    replace(
        encoder_dir / "config.json", lambda p: p.write_text(json.dumps(config, indent=1), encoding="utf-8")
    )
    result = Trimmed(pieces_before=len(vocab), pieces=len(keep), from_texts=len(used))
    (encoder_dir / MANIFEST).write_text(
        json.dumps({**result.__dict__, "texts": len(texts), "kept_scripts": list(KEPT_SCRIPTS)}, indent=1),
        encoding="utf-8",
    )
    return result
