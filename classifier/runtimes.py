"""Picks the encoder for a runtime: torch (float32), torch-int8 (dynamically quantised
linear layers), onnx (ONNX Runtime, float32: torch's vectors, loaded in a second without
torch) or onnx-int8 (ONNX Runtime with int8 weights). The ONNX graphs are exported once and
cached."""

from __future__ import annotations

from pathlib import Path

from classifier.encoding import RUNTIMES, TextEncoder
from vigie.errors import VigieError


def make_encoder(
    model_dir: Path, runtime: str = "torch", batch_size: int = 32, max_length: int = 256
) -> TextEncoder:
    if runtime not in RUNTIMES:
        raise VigieError(f"runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}")
    if runtime in ("onnx", "onnx-int8"):
        from classifier.onnx_encoder import OnnxEncoder

        return OnnxEncoder(
            model_dir, max_length=max_length, batch_size=batch_size, quantized=runtime == "onnx-int8"
        )
    from classifier.encoder import Encoder

    return Encoder(model_dir, max_length=max_length, batch_size=batch_size, quantize=runtime == "torch-int8")
