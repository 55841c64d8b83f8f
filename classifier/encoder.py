"""Sentence embeddings from the e5 encoder: "query: " prefix, mean pooling, L2 norm.

torch and transformers are imported here only, when an Encoder is made.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

PREFIX = "query: "  # how e5 was trained for classification-style inputs


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


class Encoder:
    def __init__(
        self,
        model_dir: Path,
        max_length: int = 256,
        batch_size: int = 32,
        threads: int | None = None,
        quantize: bool = False,
    ) -> None:
        quiet_transformers()
        import torch
        from transformers import AutoModel, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.model_dir = Path(model_dir)
        self.max_length = max_length
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        model: Any = AutoModel.from_pretrained(self.model_dir, local_files_only=True)
        model.eval()
        if quantize:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # torch's notice that this API will move
                # As in the ONNX path, feed-forward output projections stay float (outliers).
                linear = {
                    name
                    for name, module in model.named_modules()
                    if isinstance(module, torch.nn.Linear)
                    and not (name.endswith(".output.dense") and ".attention." not in name)
                }
                model = torch.ao.quantization.quantize_dynamic(model, linear, dtype=torch.qint8)
        self.model = model
        self.dim = int(model.config.hidden_size)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        torch = self.torch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for idx, batch in token_batches(self.tokenizer, texts, self.batch_size, self.max_length, "pt"):
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[idx] = pooled.float().numpy()
        return out


RUNTIMES = ("torch", "torch-int8", "onnx-int8")


def make_encoder(model_dir: Path, runtime: str = "torch", batch_size: int = 32, max_length: int = 256) -> Any:
    """torch (float32), torch-int8 (dynamically quantised linear layers) or onnx-int8
    (ONNX Runtime with int8 weights, exported once and cached)."""
    if runtime == "onnx-int8":
        from classifier.onnx_encoder import OnnxEncoder

        return OnnxEncoder(model_dir, max_length=max_length, batch_size=batch_size)
    if runtime not in RUNTIMES:
        from vigie.errors import VigieError

        raise VigieError(f"runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}")
    return Encoder(model_dir, max_length=max_length, batch_size=batch_size, quantize=runtime == "torch-int8")
