"""The encoder exported to ONNX and run by ONNX Runtime: float32 (`onnx`, the vectors of
torch without importing it) or with int8 weights (`onnx-int8`, the fastest). Both are
exported at once, the first time either is needed, and kept in the cache."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifier.encoding import quiet_transformers, token_batches, weights_id
from classifier.tokenizer import FileTokenizer, save_tokenizer
from vigie.paths import cache_root

if TYPE_CHECKING:
    import numpy as np


def onnx_path_for(model_dir: Path, quantized: bool = True) -> Path:
    kind = "int8-7bit-per-channel-attention-only" if quantized else "fp32"
    return cache_root() / "onnx" / f"{weights_id(model_dir)}.{kind}.onnx"


def tokenizer_path_for(model_dir: Path) -> Path:
    return cache_root() / "onnx" / f"{weights_id(model_dir)}.tokenizer.json"


def export(model_dir: Path) -> None:
    """Export the encoder's last hidden state to ONNX (float32), then a copy of it with its
    weights quantised to int8, and the tokenizer transformers runs for it; each is published
    by a rename once whole."""
    import warnings

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    quiet_transformers()
    bert: Any = AutoModel.from_pretrained(model_dir, local_files_only=True)
    bert.eval()

    class LastHiddenState(torch.nn.Module):
        # Only the two inputs the encoder needs, by name: the export traces exactly this call.
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    model = LastHiddenState().eval()
    target = onnx_path_for(model_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".onnx-", dir=target.parent))
    try:
        ids = torch.ones((2, 16), dtype=torch.long)
        float_path = work / "encoder.onnx"
        with warnings.catch_warnings():
            # The exporter's notes on traced shape checks and index lowering are for model
            # authors; the exported graph is checked by the runtime's accuracy tests.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", UserWarning)
            torch.onnx.export(
                model,
                (ids, torch.ones_like(ids)),
                str(float_path),
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                opset_version=17,
                dynamo=False,
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "seq"},
                    "attention_mask": {0: "batch", 1: "seq"},
                    "last_hidden_state": {0: "batch", 1: "seq"},
                },
            )
        quantized = work / "encoder.int8.onnx"
        # Per-channel weight scales, and only the attention projections in int8: each layer's
        # feed-forward block stays float. Its output projection's inputs (after GELU) carry
        # outliers that one per-tensor activation scale crushes (quantised, 1% of posts got a
        # cosine under 0.2 to the float32 vector). With its input projection quantised too,
        # a classifier fine-tuned on the 4,553-item corpus left 1% of test posts under 0.78
        # (the lowest 0.47); kept float, 0.96 (the lowest 0.81), at 52 posts/s against 64
        # and float32's 40 (300 test posts, 2 cores).
        quiet = logging.getLogger()
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # the quantiser logs a pre-processing tip at WARNING on the root logger
        try:
            quantize_dynamic(
                str(float_path),
                str(quantized),
                weight_type=QuantType.QInt8,
                per_channel=True,
                # 7-bit weights: without VNNI, the u8 x s8 multiply-add of AVX2 saturates
                # 16-bit sums with full-range weights (measured on an AMD EPYC: 1st
                # percentile cosine 0.86 to float32, against 0.95+ on the CPUs it was
                # tuned on).
                reduce_range=True,
                nodes_to_exclude=feed_forward_projections(float_path),
            )
        finally:
            quiet.setLevel(level)
        os.replace(quantized, target)
        os.replace(float_path, onnx_path_for(model_dir, quantized=False))
        save_tokenizer(model_dir, tokenizer_path_for(model_dir))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def feed_forward_projections(model_path: Path) -> list[str]:
    """Names of the MatMul nodes of each layer's feed-forward block: up, then back down."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and node.name.endswith(("/intermediate/dense/MatMul", "/output/dense/MatMul"))
        and "/attention/" not in node.name
    ]


class OnnxEncoder:
    def __init__(
        self,
        model_dir: Path,
        max_length: int = 256,
        batch_size: int = 32,
        threads: int | None = None,
        quantized: bool = True,
    ) -> None:
        import onnxruntime as ort

        self.model_dir = Path(model_dir)
        self.max_length = max_length
        self.batch_size = batch_size
        path = onnx_path_for(self.model_dir, quantized)
        tokenizer = tokenizer_path_for(self.model_dir)
        if not (path.is_file() and tokenizer.is_file()):
            export(self.model_dir)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        # Neither transformers nor torch is imported unless the model must be exported first.
        self.tokenizer = FileTokenizer(tokenizer)
        self.dim = int(self.session.get_outputs()[0].shape[-1] or 384)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx, batch in token_batches(self.tokenizer, texts, self.batch_size, self.max_length, "np"):
            mask = batch["attention_mask"].astype(np.int64)
            (hidden,) = self.session.run(
                None, {"input_ids": batch["input_ids"].astype(np.int64), "attention_mask": mask}
            )
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(1) / np.clip(weights.sum(1), 1e-9, None)
            out[idx] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return out
