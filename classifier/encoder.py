"""Sentence embeddings from the e5 encoder in torch: "query: " prefix, mean pooling, L2 norm;
float32, or int8 linear layers (torch-int8).

torch and transformers are imported here only, when an Encoder is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifier.encoding import quiet_transformers, token_batches

if TYPE_CHECKING:
    import numpy as np


def mean_pool(hidden: Any, attention_mask: Any) -> Any:
    """The mean of a torch batch's token vectors over its real tokens (padding left out)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


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
                # Feed-forward output projections stay float (outliers); the ONNX path keeps
                # the whole feed-forward block float.
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
                pooled = torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1)
                out[idx] = pooled.float().numpy()
        return out
