"""What every encoder runtime shares: the e5 input prefix, the interface the classifier
relies on, batching by length, the weights' identity, and quiet offline transformers."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

PREFIX = "query: "  # how e5 was trained for classification-style inputs
RUNTIMES = ("torch", "torch-int8", "onnx", "onnx-int8")


class TextEncoder(Protocol):
    """Unit-length sentence vectors for normalised texts."""

    model_dir: Path
    max_length: int
    dim: int
    tokenizer: Any

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def quiet_transformers() -> None:
    """Offline, and without the load reports and weight-loading bars meant for model authors."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def token_batches(
    tokenizer: Any, texts: Sequence[str], size: int, max_length: int, tensors: str
) -> Iterator[tuple[list[int], Any]]:
    """(indices, tokenised batch) in batches of similar length, so little is spent on padding."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), size):
        idx = order[start : start + size]
        batch = tokenizer(
            [PREFIX + texts[i] for i in idx],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors=tensors,
        )
        yield idx, batch


def weights_id(model_dir: Path) -> str:
    """Identifies an encoder's weights, for caches of what they compute."""
    weights = Path(model_dir) / "model.safetensors"
    stat = weights.stat()
    # Size and mtime identify a file we wrote ourselves well enough and cost nothing; they
    # survive the rename that publishes a freshly trained model.
    config = (Path(model_dir) / "config.json").read_bytes()
    return hashlib.sha256(config + f":{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
