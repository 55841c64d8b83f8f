"""The media library on the test flyers (tests/support/flyers.py): OCR character error rate
and images/s per script, phone numbers read back, the Tesseract model choices, PDQ hashes/s
and the Hamming distances that set pdq.DEFAULT_DISTANCE. Throughputs are given against a
baseline measured in the same run on the same images: Pillow decoding the JPEG and
resizing it to 512x512.

Run from the repository root: .venv/bin/python -m bench.media_throughput"""

from __future__ import annotations

import argparse
import io
import itertools
import platform
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

from PIL import Image

from pipeline.media import ocr, pdq
from pipeline.media.images import open_image
from tests.support.flyers import (
    LANGS,
    character_error_rate,
    flyer_lines,
    render_flyer,
    unrelated_images,
    variants,
)

SCRIPTS = {
    "Arabic": ("ar", "fa", "ckb", "ps"),
    "Ethiopic": ("ti", "am"),
    "Latin": ("tr", "sq", "en"),
    "Vietnamese Latin": ("vi",),
}
# The alternatives to each choice of ocr.LANG_MODELS that was not the language's own model.
ALTERNATIVES = {
    "ckb": ("Arabic", "Arabic+fas", "kmr+Arabic", "ara", "fas", "ara+fas"),
    "ps": ("Arabic", "pus", "pus+eng"),
    "fa": ("fas", "fas+eng", "Arabic+fas"),
    "ar": ("ara", "ara+eng", "Arabic"),
    "ti": ("tir", "Ethiopic", "tir+amh"),
    "am": ("Ethiopic", "amh", "amh+eng"),
}


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _per_second(n: int, work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return n / (time.perf_counter() - start)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", ocr.ascii_digits(text))


def baseline(jpegs: list[bytes], rounds: int = 3) -> float:
    """Images/s of Pillow decoding each JPEG and resizing it to 512x512."""

    def work() -> None:
        for _ in range(rounds):
            for data in jpegs:
                with Image.open(io.BytesIO(data)) as image:
                    image.convert("RGB").resize((512, 512), Image.Resampling.LANCZOS)

    return _per_second(rounds * len(jpegs), work)


def ocr_table(engine: ocr.OcrEngine, seeds: int, base: float) -> None:
    print(
        f"\nOCR ({seeds} designs per language, models from ocr.models_for; CER = edit distance / reference length)"
    )
    print(f"{'script':18} {'langs':16} {'CER':>6} {'phones':>7} {'images/s':>9} {'vs baseline':>12}")
    for script, langs in SCRIPTS.items():
        errors, phones, n, elapsed = [], 0, 0, 0.0
        for lang in langs:
            reference = " ".join(flyer_lines(lang))
            phone = _digits(flyer_lines(lang)[-1])
            for seed in range(seeds):
                image = open_image(_jpeg(render_flyer(lang, seed=seed)))
                start = time.perf_counter()
                text = engine.read(image, ocr.models_for(lang)).text
                elapsed += time.perf_counter() - start
                errors.append(character_error_rate(reference, text))
                phones += phone in _digits(text)
                n += 1
        rate = n / elapsed
        print(
            f"{script:18} {','.join(langs):16} {statistics.mean(errors):6.3f} {phones:>3}/{n:<3} "
            f"{rate:9.1f} {rate / base:11.3f}x"
        )


def model_choices(engine: ocr.OcrEngine, seeds: int) -> None:
    print("\nModel choices (mean CER over the designs; * = ocr.models_for's choice)")
    for lang, candidates in ALTERNATIVES.items():
        reference = " ".join(flyer_lines(lang))
        images = [render_flyer(lang, seed=seed) for seed in range(seeds)]
        cells = []
        for models in candidates:
            cer = statistics.mean(
                character_error_rate(reference, engine.read(i, models).text) for i in images
            )
            mark = "*" if models == ocr.models_for(lang) else ""
            cells.append(f"{models}{mark} {cer:.3f}")
        print(f"  {lang:4} " + "; ".join(cells))


def reposts_ocr(engine: ocr.OcrEngine) -> None:
    found, n = 0, 0
    for lang in LANGS:
        phone = _digits(flyer_lines(lang)[-1])
        for data in variants(render_flyer(lang, seed=0)).values():
            found += phone in _digits(engine.read(open_image(data), ocr.models_for(lang)).text)
            n += 1
    print(f"phone numbers read from reposted variants (q40, 50%, 5% crop, combinations): {found}/{n}")


def pdq_section(designs: int, base: float) -> None:
    pictures = {f"{lang}/{seed}": render_flyer(lang, seed=seed) for lang in LANGS for seed in range(designs)}
    pictures.update(unrelated_images())
    decoded = [open_image(_jpeg(p)) for p in pictures.values()]
    rounds = 5
    rate = _per_second(
        rounds * len(decoded), lambda: [pdq.pdq_hash(i) for _ in range(rounds) for i in decoded]
    )
    print(f"\nPDQ: {rate:,.0f} hashes/s on decoded flyers ({rate / base:.2f}x the baseline)")

    hashes = {name: pdq.pdq_hash(p).hex for name, p in pictures.items()}
    by_variant: dict[str, list[int]] = {}
    for name, picture in pictures.items():
        for variant, data in variants(picture).items():
            by_variant.setdefault(variant, []).append(
                pdq.hamming(hashes[name], pdq.pdq_hash(open_image(data)).hex)
            )
    different = sorted(pdq.hamming(hashes[a], hashes[b]) for a, b in itertools.combinations(hashes, 2))
    limit = pdq.DEFAULT_DISTANCE
    print(
        f"Hamming distances over {len(pictures)} images ({designs} designs x {len(LANGS)} languages + unrelated):"
    )
    for variant, distances in by_variant.items():
        within = sum(d <= limit for d in distances)
        print(
            f"  same flyer, {variant:26} max {max(distances):3}  median {statistics.median(distances):5.1f}"
            f"  within {limit}: {within}/{len(distances)}"
        )
    beyond = sum(d > limit for d in different)
    print(
        f"  different flyers: min {different[0]}, 1st percentile {different[len(different) // 100]}, "
        f"median {statistics.median(different):.0f}; beyond {limit}: {beyond}/{len(different)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3, help="flyer designs per language for OCR")
    parser.add_argument("--pdq-designs", type=int, default=4, help="flyer designs per language for PDQ")
    args = parser.parse_args()
    import pdqhash
    import tesserocr

    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}; "
        f"{tesserocr.tesseract_version().splitlines()[0]} (tessdata {ocr.find_tessdata()}); "
        f"pdqhash {pdqhash.__version__}; Pillow {Image.__version__}"
    )
    jpegs = [_jpeg(render_flyer(lang, seed=seed)) for lang in LANGS for seed in range(args.seeds)]
    base = baseline(jpegs)
    print(
        f"baseline: Pillow decode + resize to 512x512: {base:,.0f} images/s ({len(jpegs)} flyer JPEGs, ~800 px wide)"
    )
    ocr.require_models("+".join({ocr.models_for(lang) for lang in LANGS}))
    with ocr.OcrEngine() as engine:
        engine.read(render_flyer("en"), "eng")  # model loading is not throughput
        for lang in LANGS:
            engine.read(render_flyer(lang), ocr.models_for(lang))
        ocr_table(engine, args.seeds, base)
        reposts_ocr(engine)
        model_choices(engine, args.seeds)
    pdq_section(args.pdq_designs, base)


if __name__ == "__main__":
    main()
