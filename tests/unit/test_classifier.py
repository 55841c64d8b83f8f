"""The advert classifier: training smoke run, the shipped model's quality, classify CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from classifier.cues import find_cues
from classifier.metrics import choose_threshold, macro_f1, prf
from classifier.model import META_FILE, AdvertClassifier, ClassifierNotFoundError
from classifier.train import main
from classifier.train_config import TrainConfig
from classifier.windows import MAX_WINDOWS, WINDOW_CHARS, windows
from tests.conftest import run_vigie
from vigie.errors import VigieError

ADVERT = "🚤 Yacht Izmir → Italy, 100% guaranteed, 6500€, pay after arrival. WhatsApp +90 536 741 22 90"
WARNING = (
    "Warning: smugglers ask 6500€ for the yacht from Izmir. Do not trust them, people drowned last week."
)


def test_metrics_helpers():
    assert prf([1, 1, 0, 0], [1, 0, 1, 0]) == {
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "support": 4,
        "tp": 1,
        "fp": 1,
        "fn": 1,
        "tn": 1,
    }
    assert macro_f1([1, 0, 1, 0], [1, 0, 1, 0]) == 1.0
    # The lowest threshold with precision >= 0.95 keeps the most recall.
    labels = [0, 0, 1, 1, 1, 0]
    scores = [0.1, 0.2, 0.6, 0.7, 0.9, 0.65]
    assert choose_threshold(labels, scores, 0.95) == 0.7
    assert choose_threshold(labels, scores, 0.6) == 0.6


def test_cues_find_contacts_prices_and_words():
    found = {(c.cue, c.text) for c in find_cues(ADVERT)}
    assert ("phone", "+90 536 741 22 90") in found
    assert ("price", "6500€") in found
    assert any(cue == "guarantee" for cue, _ in found)
    assert any(cue == "route" for cue, _ in found)
    assert any(cue == "warning" for cue, _ in {(c.cue, c.text) for c in find_cues(WARNING)})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (TrainConfig(mode="bogus"), "mode = 'bogus'"),  # type: ignore[arg-type]
        (TrainConfig(max_length=4), "max_length = 4"),
        (TrainConfig(min_precision=1.5), "min_precision = 1.5"),
        (TrainConfig(c_grid=(0.0,)), "c_grid"),
        (TrainConfig(mode="finetune", epochs=0), "epochs = 0"),
    ],
)
def test_train_config_checks_before_loading_anything(config, message):
    with pytest.raises(VigieError, match=message.replace("(", r"\(")):
        main(config)


def test_training_smoke_run(tmp_path):
    out = tmp_path / "clf"
    metrics = main(
        TrainConfig(
            output_dir=str(out), mode="frozen", max_items=40, c_grid=(1.0,), runtimes=("torch", "torch-int8")
        )
    )
    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert saved["test"]["overall"]["support"] == metrics["test"]["overall"]["support"] == 40
    meta = json.loads((out / META_FILE).read_text(encoding="utf-8"))
    assert meta["id2label"] == {"0": "not_advert", "1": "advert"} and meta["label2id"]["advert"] == 1
    assert 0 < meta["threshold"] < 1 and len(meta["head"]["coef"]) == 384 + 20
    assert (
        set(meta["heads"]) == {"torch", "torch-int8"} and metrics["runtimes"]["torch-int8"]["threshold"] > 0
    )
    for runtime in ("torch", "torch-int8"):
        clf = AdvertClassifier.load(out, runtime=runtime)
        assert clf.threshold == meta["heads"][runtime]["threshold"]
        assert clf.predict_one(ADVERT).score > clf.predict_one("Happy Eid to all our followers").score


def test_missing_classifier_is_a_clear_error(tmp_path):
    with pytest.raises(ClassifierNotFoundError, match="run `vigie train`"):
        AdvertClassifier.load(tmp_path / "nothing")


def shipped_metrics(shipped: AdvertClassifier) -> dict:
    return json.loads((shipped.directory / "metrics.json").read_text(encoding="utf-8"))


def test_onnx_int8_keeps_float32s_accuracy_with_its_head(shipped):
    """onnx-int8 reads float32's head and thresholds (training fits no head of its own). On
    the shipped classifier (seed 13, 2-core x86_64), test F1 was 0.9609 in float32 and 0.9596
    in int8 with float32's head, against 0.9580 with a head fitted to int8 vectors; challenge
    F1 0.9702, 0.9721 and 0.9680; AUC moved by at most 0.0003. The bars leave room for other
    CPUs' rounding: macro-F1 within 0.015 and AUC within 0.005 of float32's on test."""
    from classifier.evaluate import evaluate_split

    assert "onnx-int8" not in shipped.meta["heads"]
    int8 = AdvertClassifier.load(shipped.directory, runtime="onnx-int8")
    assert int8.threshold == shipped.threshold and int8.head.coef == shipped.head.coef
    exact, quantised = evaluate_split(shipped)["test"], evaluate_split(int8)["test"]
    assert exact["macro_f1"] - quantised["macro_f1"] <= 0.015, (exact["macro_f1"], quantised["macro_f1"])
    assert abs(exact["auc"] - quantised["auc"]) <= 0.005, (exact["auc"], quantised["auc"])


def test_torch_int8_without_its_own_head_says_so(shipped, caplog):
    assert "torch-int8" not in shipped.meta["heads"]
    with caplog.at_level("WARNING", logger="classifier.model"):
        AdvertClassifier.load(shipped.directory, runtime="onnx-int8")
        assert "no head fitted" not in caplog.text
        clf = AdvertClassifier.load(shipped.directory, runtime="torch-int8")
    assert "no head fitted to torch-int8 vectors" in caplog.text
    assert clf.threshold == shipped.meta["threshold"]


def test_onnx_int8_vectors_stay_close_to_float32(shipped):
    """The quantised encoder must not wreck any post's vector. Over 300 test-split posts, the
    1st percentile of the cosine to float32's was 0.950 / 0.962 / 0.983 and the mean 0.997 /
    0.998 / 0.998 for seeds 13 / 1 / 2; with the feed-forward output projections quantised
    too, the 1st percentile was 0.18 and the mean 0.965. On the 4,553-item corpus (seed 13)
    with the feed-forward input projections quantised, 0.78 (the lowest 0.47); with the
    feed-forward block float, as exported now, 0.96 (the lowest 0.81) and the mean 0.998;
    the same corpus and seed trained on another machine of the same kind, 0.925 (the lowest
    0.83, the mean 0.998). The bar sits between those and the wrecked exports."""
    import numpy as np

    from classifier.corpus import load_corpus
    from classifier.normalize import normalize
    from classifier.runtimes import make_encoder

    texts = [normalize(ex.text) for ex in load_corpus() if ex.split == "test"][:300]
    model_dir = shipped.directory / "encoder"
    exact = make_encoder(model_dir, "torch", 32, 128).embed(texts)
    cosine = (make_encoder(model_dir, "onnx-int8", 32, 128).embed(texts) * exact).sum(1)
    assert np.percentile(cosine, 1) >= 0.88 and cosine.mean() >= 0.99, (cosine.min(), cosine.mean())


def test_the_default_runtime_gives_the_vectors_of_torch(shipped):
    """`onnx`, the default, runs the float32 graph: the head fitted to torch's vectors fits
    its own (largest difference measured: 5e-7)."""
    import numpy as np

    from classifier.corpus import load_corpus
    from classifier.normalize import normalize
    from classifier.runtimes import make_encoder

    texts = [normalize(ex.text) for ex in load_corpus() if ex.split == "test"][:200]
    model_dir = shipped.directory / "encoder"
    exact = make_encoder(model_dir, "torch", 32, 128).embed(texts)
    ours = make_encoder(model_dir, "onnx", 32, 128).embed(texts)
    assert np.abs(ours - exact).max() < 1e-4


def test_shipped_classifier_meets_the_bar_on_the_test_split(shipped):
    """Bars from the spread of three seeds (13, 1, 2) on this corpus, 2-core x86_64; CI
    trains seed 13 from an empty cache. The advert band's threshold is where dev precision
    reaches 0.97, so its macro-F1 moves with the seed far more than the ranking does.

    | figure (test split, float32) | seeds 13 / 1 / 2 | mean ± sd | bar |
    | ROC-AUC | 0.976 / 0.984 / 0.985 | 0.981 ± 0.004 | 0.970 |
    | macro-F1 at the advert band | 0.933 / 0.904 / 0.954 | 0.930 ± 0.020 | 0.890 |
    | advert band precision | 0.971 / 0.982 / 0.980 | 0.978 ± 0.005 | 0.950 |
    | recall, adverts + review band | 0.966 / 0.959 / 0.955 | 0.960 ± 0.005 | 0.940 |
    | lowest per-language AUC (>= 20 items) | en 0.886 / en 0.928 / en 0.914 | | 0.850 |
    | lowest per-language F1 (>= 20 items) | ti 0.846 / ar-Latn 0.765 / kmr, en 0.88 | | 0.750 |
    """
    metrics = shipped_metrics(shipped)["test"]
    assert metrics["auc"] >= 0.97, metrics["auc"]
    assert metrics["macro_f1"] >= 0.89, metrics["macro_f1"]
    assert metrics["three_way"]["advert_band_precision"] >= 0.95, metrics["three_way"]
    assert metrics["three_way"]["recall_with_review"] >= 0.94, metrics["three_way"]
    languages = {lang: m for lang, m in metrics["per_language"].items() if m["support"] >= 20}
    assert len(languages) == 16
    assert {lang: m["auc"] for lang, m in languages.items() if m["auc"] < 0.85} == {}
    assert {lang: m["f1"] for lang, m in languages.items() if m["f1"] < 0.75} == {}


def test_shipped_classifier_scores_are_probabilities(shipped):
    adverts = shipped.predict([ADVERT, WARNING])
    # The plain advert may fall in the review band (seed 13 scores it 0.40, under its 0.90
    # advert threshold): it is never let through as not an advert, and the warning always is.
    assert adverts[0].decision in ("advert", "review") and adverts[1].decision == "not_advert"
    assert 0 <= adverts[1].score < adverts[0].score <= 1
    assert adverts[0].lang == "en"
    assert {c["cue"] for c in adverts[0].cues} >= {"phone", "price"}


def test_classify_one_text(shipped):
    result = run_vigie("classify", ADVERT, check=True)
    data = json.loads(result.stdout)
    assert data["decision"] in ("advert", "review") and data["lang"] == "en" and data["cues"]
    assert data["is_advert"] is (data["decision"] == "advert")


def test_classify_jsonl_with_empty_and_huge_posts(shipped, tmp_path: Path):
    rows = [
        {"id": 1, "text": ADVERT, "source": "kept as is"},
        {"id": "two", "text": ""},
        {"id": 3, "text": WARNING},
        {"id": 4, "text": ("ሰላም " + WARNING + " ") * 900},  # ~100 KB
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    assert len(src.read_bytes()) > 100_000
    out = tmp_path / "out.jsonl"
    result = run_vigie("classify", "--input", str(src), "--output", str(out), check=True)
    counts = re.search(r"classified 4 posts: (\d+) flagged as adverts, (\d+) for review", result.stdout)
    assert counts and int(counts[1]) + int(counts[2]) == 1, result.stdout
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in lines] == [1, "two", 3, 4]
    assert lines[0]["decision"] != "not_advert" and lines[0]["source"] == "kept as is"
    assert lines[1] == {
        "id": "two",
        "text": "",
        "lang": "und",
        "lang_confidence": 0.0,
        "score": 0.0,
        "is_advert": False,
        "cues": [],
        "decision": "not_advert",
    }
    assert lines[2]["decision"] == lines[3]["decision"] == "not_advert"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": 1, "text": "ok"}\n{"id": 2, "text": \n', "in.jsonl:2: invalid JSON"),
        ('{"id": 1, "text": "ok"}\n\n["not", "an", "object"]\n', "in.jsonl:3: expected an object with 'id'"),
        ('{"text": "no id"}\n', "in.jsonl:1: expected an object with 'id'"),
    ],
)
def test_classify_bad_jsonl_names_the_line(tmp_path, content, message):
    src = tmp_path / "in.jsonl"
    src.write_text(content, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = run_vigie("classify", "--input", str(src), "--output", str(out))
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_classify_usage_errors(tmp_path):
    assert run_vigie("classify").returncode == 2
    result = run_vigie("classify", "   ")
    assert result.returncode == 2 and "the text is empty" in result.stderr


def test_long_posts_are_read_in_bounded_windows():
    assert windows("short") == ["short"]
    text = "x" * (WINDOW_CHARS * 3)
    parts = windows(text)
    assert len(parts) == 4 and all(len(p) == WINDOW_CHARS for p in parts)
    assert parts[-1] == text[-WINDOW_CHARS:]  # the end is always read
    words = windows("lorem ipsum dolor " * 200)
    assert all(p.split()[0] in ("lorem", "ipsum", "dolor") for p in words)  # no word cut in two
    assert all(p.split()[-1] in ("lorem", "ipsum", "dolor") for p in words)
    # 5 MB: at most MAX_WINDOWS, the first and last kept, the middle ones where contacts are.
    filler = "lorem ipsum dolor sit amet " * 200_000
    middle = len(filler) // 2
    huge = filler[:middle] + " WhatsApp +90 536 741 22 90 €6500 " + filler[middle:]
    chosen = windows(huge)
    assert len(chosen) == MAX_WINDOWS
    assert huge.startswith(chosen[0]) and huge.rstrip().endswith(chosen[-1])
    assert all(WINDOW_CHARS - 40 <= len(p) <= WINDOW_CHARS for p in chosen)
    assert any("+90 536 741 22 90" in p for p in chosen)


def test_an_advert_anywhere_in_a_long_post_counts_as_much_as_alone(shipped):
    """The encoder reads 128 tokens: an advert inside or at the end of a long post must score
    as it does alone, whatever the filler before it (cue-poor filler, so the encoder must
    read the advert itself), and a long post without one must not be flagged."""
    advert = "Boat Libya to Italy every Friday, 3000$, call +218 91 442 7310"
    filler = "The weather today is mild with a light breeze over the hills and some sun later on. "
    alone = shipped.predict_one(advert).score
    middle = filler * 6 + advert + " " + filler * 18  # advert at about offset 500 of 2,000 characters
    end = filler * 30 + advert
    huge = filler * 60_000 + advert  # 5 MB
    assert len(huge) > 5_000_000
    scores = [p.score for p in shipped.predict([middle, end, huge, filler * 60_000])]
    assert all(abs(score - alone) < 0.1 for score in scores[:3]), (alone, scores)
    # Many windows give a long harmless text many chances: it may reach the review band
    # (0.30 for this filler, 0.07 for one sentence of it), never the advert band.
    assert scores[3] < shipped.threshold


def test_length_batches_cover_every_item_once_in_a_seeded_order():
    import random

    from classifier.finetune import length_batches

    lengths = [random.Random(5).randint(3, 120) for _ in range(1000)]
    batches = length_batches(lengths, 16, random.Random(13))
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert batches == length_batches(lengths, 16, random.Random(13))
    assert batches != length_batches(lengths, 16, random.Random(14))
    # Pooled by length: a batch's longest item is seldom far above its shortest.
    spread = sorted(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread[len(spread) // 2] <= 10


def test_fine_tuning_twice_with_one_seed_gives_the_same_classifier(tmp_path):
    def run(name: str) -> tuple[dict, bytes]:
        out = tmp_path / name
        main(
            TrainConfig(
                output_dir=str(out),
                mode="finetune",
                epochs=1,
                batch_size=8,
                max_items=24,
                c_grid=(1.0,),
                runtimes=("torch",),
            )
        )
        meta = json.loads((out / META_FILE).read_text(encoding="utf-8"))
        return meta["heads"], (out / "encoder" / "model.safetensors").read_bytes()

    first, second = run("a"), run("b")
    assert first[0] == second[0]
    assert first[1] == second[1]


def test_roc_auc_ranks_adverts_above_the_rest():
    from classifier.metrics import roc_auc

    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5  # a tie counts half
    assert roc_auc([0, 1, 0, 1], [0.1, 0.3, 0.4, 0.9]) == 0.75
    assert roc_auc([1, 1], [0.2, 0.3]) is None
