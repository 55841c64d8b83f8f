"""OCR with the real Tesseract and Debian's models: the phone number printed only in a
flyer is read back in each of the ten languages, the model choices, and clear errors when
a model is missing. `make test` installs Tesseract and its models (`make system-deps`):
without them these tests fail, saying what to install."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.media import ocr
from pipeline.media.images import open_image
from pipeline.media.ocr import OcrEngine, OcrFailed, OcrUnavailable, ascii_digits, models_for
from tests.support.flyers import LANGS, character_error_rate, flyer_lines, render_flyer, variants

MODELS_NEEDED = "+".join(sorted({models_for(lang) for lang in LANGS} | {"ara", "fas"}))


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    try:
        ocr.require_models(MODELS_NEEDED)
    except OcrUnavailable as exc:
        pytest.fail(f"Tesseract or its models are not installed (`make system-deps` installs them): {exc}")
    return OcrEngine()


def _digits(text: str) -> str:
    return re.sub(r"\D", "", ascii_digits(text))


@pytest.mark.parametrize("variant", ["original", "resize_50"])
@pytest.mark.parametrize("lang", LANGS)
def test_the_phone_number_in_the_image_is_read(engine: OcrEngine, lang: str, variant: str) -> None:
    flyer = render_flyer(lang, seed=1)
    image = flyer if variant == "original" else open_image(variants(flyer)[variant])
    result = engine.read(image, models_for(lang))
    phone = _digits(flyer_lines(lang)[-1])
    assert phone in _digits(result.text), result.text
    assert result.models == models_for(lang) and 0 < result.confidence <= 1


def test_numbers_in_right_to_left_lines_keep_their_written_order(engine: OcrEngine) -> None:
    # Tesseract gives an RTL line's words right to left, the groups of "+218 91 234 5678" too.
    text = engine.read(render_flyer("ar", seed=2), "ara").text
    assert "+218 91 234 5678" in ascii_digits(text), text


def test_the_sorani_model_reads_sorani_best(engine: OcrEngine) -> None:
    reference = " ".join(flyer_lines("ckb"))
    flyers = [render_flyer("ckb", seed=seed) for seed in range(3)]

    def error_rate(models: str) -> float:
        return sum(character_error_rate(reference, engine.read(f, models).text) for f in flyers) / len(flyers)

    chosen = error_rate(models_for("ckb"))
    assert chosen < 0.25
    for other in ("ara", "fas"):
        assert chosen < error_rate(other), other


def test_one_tesseract_api_per_model_string_is_kept(engine: OcrEngine) -> None:
    flyer = render_flyer("en", seed=3)
    first = engine.read(flyer, "eng")
    api = engine._apis["eng"]
    assert engine.read(flyer, "eng") == first and engine._apis["eng"] is api


def test_blank_and_tiny_images(engine: OcrEngine) -> None:
    from PIL import Image

    assert engine.read(Image.new("RGB", (600, 400), "white"), "eng").text == ""
    with pytest.raises(OcrFailed, match="too small"):
        engine.read(Image.new("RGB", (3, 3), "white"), "eng")


def test_a_missing_model_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(OcrUnavailable, match=r"no Tesseract models in .*make system-deps.*tesseract-ocr-ara"):
        OcrEngine(tessdata=tmp_path)
    with pytest.raises(OcrUnavailable, match=r"no Tesseract models in .*tesseract-ocr-ara"):
        ocr.require_models("ara", tmp_path)
    (tmp_path / "eng.traineddata").write_bytes(b"")
    with pytest.raises(OcrUnavailable, match=r"model Arabic not in .*tesseract-ocr-script-arab") as caught:
        OcrEngine(tessdata=tmp_path).read(render_flyer("ckb"), "eng+Arabic")
    assert "\n" not in str(caught.value)
    assert not ocr.available("eng+Arabic", tmp_path)
    with pytest.raises(OcrUnavailable, match="not a Tesseract model list"):
        OcrEngine(tessdata=tmp_path).read(render_flyer("en"), "../eng")


@pytest.mark.parametrize(
    ("lang", "text", "expected"),
    [
        ("ar", "", "ara"),
        ("ckb", "", "Arabic"),
        ("prs", "", "fas"),
        ("fa", "", "fas"),
        ("ps", "", "Arabic"),
        ("ur", "", "urd"),
        ("ti", "", "tir"),
        ("am", "", "Ethiopic"),
        ("tr", "", "tur"),
        ("kmr", "", "kmr"),
        ("sq", "", "sqi"),
        ("vi", "", "vie"),
        ("so", "", "eng"),
        ("ar-Latn", "", "eng+fra"),
        ("fa-IR", "", "fas"),
        (None, "گەشت بۆ بەریتانیا", "Arabic"),  # Sorani letters
        (None, "پرداخت بعد از رسیدن", "fas"),  # Persian letters
        (None, "تماس با ما ی", "fas"),  # Persian yeh
        (None, "رحلات إلى إيطاليا", "ara"),
        (None, "ካብ ሱዳን ናብ ሊብያ", "Ethiopic"),
        (None, "Đi Anh bằng xe tải", "vie"),
        (None, "Her hafta geçiş", "tur"),
        (None, "Kalim në Angli", "sqi"),
        (None, "Boat to Italy", "eng"),
        ("xx", "DM 📩", "eng"),  # an unknown language: the script
        ("xx", "📩 +44 7700 900123", "eng+ara"),  # no letters to go by: the fallback
        (None, "", "eng+ara"),
    ],
)
def test_models_for(lang: str | None, text: str, expected: str) -> None:
    assert models_for(lang, text) == expected


def test_models_for_fallback_and_digits() -> None:
    assert models_for(None, "📩", fallback="eng") == "eng"
    assert ascii_digits("+۹۸ ٩١٢ 345") == "+98 912 345"
    assert ocr.package_for("ara") == "tesseract-ocr-ara"
    assert ocr.package_for("Ethiopic") == "tesseract-ocr-script-ethi"
