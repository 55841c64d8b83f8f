"""The encoder's tokenizer as transformers builds it, saved once to a tokenizer.json and read
back by the `tokenizers` library alone: the same pieces without importing transformers, and
with it torch, which costs seconds and hundreds of megabytes a process.

The file on disk in a model directory is not enough: transformers rebuilds parts of the
pipeline from the tokenizer's class (for XLM-R, a whitespace split before the Metaspace
pre-tokenizer), so its pieces and offsets can differ from that file's. `save_tokenizer`
writes what transformers actually runs.

`FileTokenizer` answers the calls the classifier makes of a tokenizer (`token_batches`,
`token_windows`) and nothing else."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vigie.errors import VigieError


def save_tokenizer(model_dir: Path, target: Path) -> None:
    """Write the tokenizer transformers runs for `model_dir`, with its padding, to `target`."""
    from transformers import AutoTokenizer

    from classifier.encoding import quiet_transformers

    quiet_transformers()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    backend = tokenizer.backend_tokenizer
    backend.no_truncation()
    backend.enable_padding(pad_id=tokenizer.pad_token_id, pad_token=tokenizer.pad_token)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(backend.to_str(), encoding="utf-8")
    os.replace(partial, target)


class FileTokenizer:
    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # missing, unreadable or not a tokenizer: one line says which
            raise VigieError(f"{path}: not a readable tokenizer ({exc})") from None
        padding = self._tokenizer.padding
        if padding is None:
            raise VigieError(f"{path}: no padding token (write it with save_tokenizer)")
        self._pad = (padding["pad_token"], padding["pad_id"])

    def __call__(
        self,
        texts: str | Sequence[str],
        padding: bool = False,
        truncation: bool = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
        add_special_tokens: bool = True,
        return_offsets_mapping: bool = False,
    ) -> dict[str, Any]:
        """input_ids and attention_mask (and offset_mapping), for one text or a batch: a batch
        padded to its longest as numpy arrays with return_tensors="np", lists otherwise."""
        one = isinstance(texts, str)
        batch = [texts] if isinstance(texts, str) else list(texts)
        tokenizer = self._tokenizer
        if truncation and max_length:
            tokenizer.enable_truncation(max_length)
        else:
            tokenizer.no_truncation()
        if padding:
            tokenizer.enable_padding(pad_id=self._pad[1], pad_token=self._pad[0])
        else:
            tokenizer.no_padding()
        encodings = tokenizer.encode_batch(batch, add_special_tokens=add_special_tokens)
        out: dict[str, Any] = {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
        }
        if return_offsets_mapping:
            out["offset_mapping"] = [e.offsets for e in encodings]
        if return_tensors == "np":
            import numpy as np

            for key in ("input_ids", "attention_mask"):
                out[key] = np.asarray(out[key], dtype=np.int64)
            return out
        if return_tensors is not None:
            raise ValueError(f"return_tensors={return_tensors!r}: only 'np' or None")
        return {k: v[0] for k, v in out.items()} if one else out
