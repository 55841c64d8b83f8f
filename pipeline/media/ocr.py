"""Text in images, read with Tesseract (libtesseract through tesserocr), with the models a
post's language or script calls for.

Models come from Debian's tesseract-ocr-* packages (`make system-deps` installs them);
`OcrEngine` finds them in $TESSDATA_PREFIX or Debian's tessdata directories. Creating a
Tesseract API loads its models (a second or more), so the engine keeps one per model
string and reuses it.
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.media import MediaError

if TYPE_CHECKING:
    from PIL import Image

TESSDATA_DIRS = (
    Path("/usr/share/tesseract-ocr/5/tessdata"),
    Path("/usr/share/tesseract-ocr/4.00/tessdata"),
    Path("/usr/share/tessdata"),
)
# Narrower images are enlarged to this width before reading: a flyer shrunk to 400 px by a
# repost lost its phone number 1 time in 40 without it, none with it.
MIN_WIDTH = 1000
# Wider ones are reduced to this: a 4000-px photo takes seconds to read and its text is
# no smaller than a flyer's at this width.
MAX_WIDTH = 2400
MIN_SIDE = 8  # below this no letter fits
# Rows whose left and right edges are darker than this (median, 0-255) belong to a dark
# band; a band at least MIN_BAND rows high is read on its own, inverted (see _strips).
DARK_ROW = 100
MIN_BAND = 12
INSTALL_HINT = "run `make system-deps` (Debian: apt-get install {packages})"

# Our language ids (classifier/corpus.py LANGS, plus prs) → Tesseract models, chosen on
# the test flyers (`python -m bench.media_throughput` measures them again: character error
# rate, 3 designs per language). The models of right-to-left and Ethiopic languages read
# the Western digits of phone numbers and prices themselves; adding eng costs time.
#   Sorani: "Arabic" (the Arabic-script model, which knows ە ێ ۆ ڵ ڕ) 0.17;
#     kmr+Arabic 0.22, Arabic+fas 0.24, ara 0.40, fas 0.41, ara+fas 0.44.
#   Pashto: "Arabic" 0.16; pus 0.24, pus+eng 0.28 (pus reads the "+" of +93 as a letter).
#   Persian: fas 0.33, Arabic+fas 0.32 at twice the time. Arabic: ara 0.13, ara+eng 0.11
#     at 1.3 times the time.
#   Tigrinya: tir 0.000, Ethiopic 0.005. Amharic: "Ethiopic" 0.015, amh 0.054.
LANG_MODELS: dict[str, str] = {
    "ar": "ara",
    "ar-Latn": "eng+fra",  # Arabizi: Latin letters and digits
    "ckb": "Arabic",
    "fa": "fas",
    "prs": "fas",  # Dari is written like Persian
    "fa-Latn": "eng",
    "ps": "Arabic",
    "ur": "urd",
    "ur-Latn": "eng",
    "ti": "tir",
    "am": "Ethiopic",
    "tr": "tur",
    "kmr": "kmr",
    "en": "eng",
    "fr": "fra",
    "sq": "sqi",
    "vi": "vie",
    "so": "eng",  # Somali: Latin letters without diacritics; Tesseract has no Somali model
}
_SCRIPT_PACKAGES = {"Arabic": "arab", "Ethiopic": "ethi", "Latin": "latn", "Cyrillic": "cyrl"}
# Letters only one Arabic-script language of ours writes (as classifier/langid.py has them).
_ARABIC_ONLY = (
    (LANG_MODELS["ckb"], re.compile("[ڕڵێۆە]")),
    (LANG_MODELS["ps"], re.compile("[ټډړږښځڅڼۍ]")),
    (LANG_MODELS["ur"], re.compile("[ٹڈڑںے]")),
    (LANG_MODELS["fa"], re.compile("[پچژگکی]")),  # Persian letters, shared by the above
)
_VIETNAMESE = re.compile("[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", re.I)
_TURKISH = re.compile("[ğışİ]")
_ALBANIAN = re.compile("ë", re.I)


class OcrUnavailable(MediaError):
    """Raised by `OcrEngine` when tesserocr, the tessdata directory or a model is missing.
    The message names what and how to install it; the pipeline then skips OCR (or stops,
    if the operator asked for OCR) rather than storing empty readings."""


class OcrFailed(MediaError):
    """Raised by `OcrEngine.read` when Tesseract cannot read the image (too small, empty)."""


@dataclass(frozen=True, slots=True)
class OcrResult:
    text: str
    confidence: float  # Tesseract's mean word confidence, 0 to 1
    models: str


def package_for(model: str) -> str:
    """The Debian package holding a Tesseract model ("ara" → tesseract-ocr-ara)."""
    if model in _SCRIPT_PACKAGES or model[:1].isupper():
        return f"tesseract-ocr-script-{_SCRIPT_PACKAGES.get(model, model[:4].lower())}"
    return f"tesseract-ocr-{model.replace('_', '-').lower()}"


def _tessdata_candidates(tessdata: Path | None) -> list[Path]:
    if tessdata:
        return [tessdata]
    from_env = os.environ.get("TESSDATA_PREFIX")
    return ([Path(from_env)] if from_env else []) + list(TESSDATA_DIRS)


def find_tessdata(tessdata: Path | None = None) -> Path | None:
    """`tessdata`, else $TESSDATA_PREFIX, else the first of Debian's directories with models."""
    return next((d for d in _tessdata_candidates(tessdata) if any(d.glob("*.traineddata"))), None)


def available(models: str = "eng", tessdata: Path | None = None) -> bool:
    """Whether OCR with `models` can run here (tesserocr importable, the models installed)."""
    try:
        require_models(models, tessdata)
    except OcrUnavailable:
        return False
    return True


def require_models(models: str, tessdata: Path | None = None) -> Path:
    """The tessdata directory holding every model of `models` ("eng+ara"); raises
    `OcrUnavailable` saying what is missing and which Debian package holds it."""
    try:
        import tesserocr  # noqa: F401
    except ImportError as exc:
        raise OcrUnavailable(f"OCR needs the tesserocr package ({exc}): pip install tesserocr") from None
    directory = find_tessdata(tessdata)
    names = [m for m in models.split("+") if m]
    if not names or any(not re.fullmatch(r"[A-Za-z0-9_]+", m) for m in names):
        raise OcrUnavailable(f"not a Tesseract model list: {models[:80]!r} (expected e.g. eng+ara)")
    if directory is None:
        where = ", ".join(str(d) for d in _tessdata_candidates(tessdata)) or "no tessdata directory"
        packages = " ".join(package_for(m) for m in names)
        raise OcrUnavailable(f"no Tesseract models in {where}: " + INSTALL_HINT.format(packages=packages))
    missing = [m for m in names if not (directory / f"{m}.traineddata").is_file()]
    if missing:
        packages = " ".join(package_for(m) for m in missing)
        raise OcrUnavailable(
            f"Tesseract model {', '.join(missing)} not in {directory}: "
            + INSTALL_HINT.format(packages=packages)
        )
    return directory


# A script's models when nothing says the language: the script models read every language
# written in them (Sorani and Pashto better than ara does); Latin starts with English.
SCRIPT_MODELS = {"Arabic": "Arabic", "Ethiopic": "Ethiopic", "Latin": "eng"}


def models_for(lang: str | None, text: str = "", fallback: str = "eng+ara") -> str:
    """The Tesseract models for an image posted with `text` in language `lang` (our ids:
    ar, ckb, fa, prs, ps, ur, ti, am, tr, kmr, en, fr, sq, vi, so, ...): by the language,
    else by the script `text` is written in, else `fallback`."""
    if lang:
        found = LANG_MODELS.get(lang) or LANG_MODELS.get(lang.split("-")[0].lower())
        if found:
            return found
    return _models_for_script(text) or fallback


def _models_for_script(text: str) -> str | None:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return None
    arabic = sum(
        "\u0600" <= c <= "\u06ff" or "\u0750" <= c <= "\u077f" or "\ufb50" <= c <= "\ufeff" for c in letters
    )
    ethiopic = sum("\u1200" <= c <= "\u139f" or "\u2d80" <= c <= "\u2ddf" for c in letters)
    latin = sum("LATIN" in unicodedata.name(c, "") for c in letters)
    top = max(arabic, ethiopic, latin)
    if top == 0:
        return None
    if top == arabic:
        return next((model for model, pattern in _ARABIC_ONLY if pattern.search(text)), "ara")
    if top == ethiopic:
        return "Ethiopic"  # the script model reads both Tigrinya and Amharic
    if _VIETNAMESE.search(text):
        return "vie"
    if _TURKISH.search(text):
        return "tur"
    if _ALBANIAN.search(text):
        return "sqi"
    return "eng"


def ascii_digits(text: str) -> str:
    """`text` with Arabic-Indic, Persian and other decimal digits written as 0-9."""
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() and not c.isascii() else c for c in text)


class OcrEngine:
    """Reads images with Tesseract, keeping one API per model string (thread-safe: each
    API is used by one thread at a time)."""

    def __init__(self, tessdata: Path | None = None) -> None:
        """Raises `OcrUnavailable` when tesserocr or every tessdata directory is missing;
        a single missing model is only known (and raised) when `read` asks for it."""
        try:
            import tesserocr  # noqa: F401
        except ImportError as exc:
            raise OcrUnavailable(f"OCR needs the tesserocr package ({exc}): pip install tesserocr") from None
        if find_tessdata(tessdata) is None:
            where = ", ".join(str(d) for d in _tessdata_candidates(tessdata)) or "no tessdata directory"
            packages = " ".join(package_for(m) for m in ("eng", "ara"))
            raise OcrUnavailable(f"no Tesseract models in {where}: " + INSTALL_HINT.format(packages=packages))
        self.tessdata = tessdata
        self._apis: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def read(self, image: Image.Image, models: str) -> OcrResult:
        """The text Tesseract reads in `image` with `models` ("ara", "eng+ara", "Arabic").
        Raises `OcrUnavailable` for a model that is not installed, `OcrFailed` for an
        image too small to hold text."""
        api, lock = self._api(models)
        strips = _strips(_prepare(image))
        texts: list[str] = []
        weighted = characters = 0
        with lock:
            for strip in strips:
                api.SetImage(strip)
                text = api.GetUTF8Text() or ""
                confidence = max(0, api.MeanTextConf())
                api.Clear()
                texts.append(text)
                size = len(text.strip())
                weighted, characters = weighted + confidence * size, characters + size
        lines = [
            _ltr_runs_in_logical_order(" ".join(line.split())) for text in texts for line in text.splitlines()
        ]
        mean_confidence = weighted / characters / 100 if characters else 0.0
        return OcrResult("\n".join(line for line in lines if line), mean_confidence, models)

    def close(self) -> None:
        with self._guard:
            for api in self._apis.values():
                api.End()
            self._apis.clear()

    def __enter__(self) -> OcrEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def script(self, image: Image.Image) -> str | None:
        """The script Tesseract's orientation and script detection sees in `image`
        ("Latin", "Arabic", "Ethiopic", ...), or None (no `osd` model, too little text)."""
        import tesserocr

        directory = find_tessdata(self.tessdata)
        if directory is None or not (directory / "osd.traineddata").is_file():
            return None
        with self._guard:
            if "osd" not in self._apis:
                self._apis["osd"] = tesserocr.PyTessBaseAPI(
                    path=str(directory) + os.sep, lang="osd", psm=tesserocr.PSM.OSD_ONLY
                )
                self._locks["osd"] = threading.Lock()
        api = self._apis["osd"]
        with self._locks["osd"]:
            api.SetImage(image.convert("L"))
            found = api.DetectOrientationScript() or {}
            api.Clear()
        return (
            str(found["script_name"])
            if found.get("script_name") and found.get("script_conf", 0) > 0
            else None
        )

    def _api(self, models: str) -> tuple[Any, threading.Lock]:
        with self._guard:
            if models not in self._apis:
                import tesserocr

                directory = require_models(models, self.tessdata)
                try:
                    api = tesserocr.PyTessBaseAPI(
                        path=str(directory) + os.sep, lang=models, oem=tesserocr.OEM.LSTM_ONLY
                    )
                except RuntimeError as exc:
                    raise OcrUnavailable(
                        f"Tesseract could not load {models} from {directory}: {exc}"
                    ) from None
                self._apis[models], self._locks[models] = api, threading.Lock()
            return self._apis[models], self._locks[models]


_RTL_LETTER = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")
_TRAILING_PLUS = re.compile(r"^([0-9٠-٩۰-۹][0-9٠-٩۰-۹.,()-]*)\+$")


def _is_ltr_word(word: str) -> bool:
    """A number, a price or a Latin word: no right-to-left letter, and a digit, a Latin
    letter or a currency sign."""
    if _RTL_LETTER.search(word):
        return False
    return any(
        c.isdecimal() or (c.isascii() and c.isalpha()) or unicodedata.category(c) == "Sc" for c in word
    )


def _ltr_runs_in_logical_order(line: str) -> str:
    """Tesseract gives the words of a right-to-left line from right to left, numbers and
    Latin words included: a phone number "+218 91 234 5678" comes out "5678 234 91 218+".
    Runs of such words are turned back to the order they are written in (and a number's
    "+" back to its front), as the Unicode bidi algorithm expects the text to be stored."""
    if not _RTL_LETTER.search(line):
        return line
    out: list[str] = []
    run: list[str] = []
    for word in [*line.split(" "), ""]:
        if word and _is_ltr_word(word):
            run.append(word)
            continue
        out += [_TRAILING_PLUS.sub(r"+\1", w) for w in reversed(run)]
        run = []
        if word:
            out.append(word)
    return " ".join(out)


MAX_ASPECT = 20  # longest side over shortest: past this, not a picture of text


def _prepare(image: Image.Image) -> Image.Image:
    """Grey, and enlarged when small: Tesseract reads best with letters 20-40 px high, and
    reposted flyers are often shrunk to a few hundred pixels."""
    from PIL import Image

    if min(image.size) < MIN_SIDE:
        raise OcrFailed(f"image too small to read: {image.width}x{image.height} pixels")
    if max(image.size) > MAX_ASPECT * min(image.size):
        # A strip 8 px wide and 60,000 high is no flyer; enlarged it would take gigabytes.
        raise OcrFailed(f"image too elongated to read: {image.width}x{image.height} pixels")
    grey = image.convert("L")
    if grey.width > MAX_WIDTH:
        grey = grey.resize(
            (MAX_WIDTH, max(1, round(grey.height * MAX_WIDTH / grey.width))), Image.Resampling.LANCZOS
        )
    elif grey.width < MIN_WIDTH:
        factor = MIN_WIDTH / grey.width
        grey = grey.resize((MIN_WIDTH, max(1, round(grey.height * factor))), Image.Resampling.LANCZOS)
    return grey


def _strips(grey: Image.Image) -> list[Image.Image]:
    """`grey` cut at the edges of its dark bands (a flyer's title bar, a footer), top to
    bottom, each band inverted to dark text on light. Tesseract's layout analysis takes a
    wide dark band for a picture and skips the light text in it, and may lose lines next
    to it; read strip by strip, the text of both is kept. A row belongs to a band when it
    is dark at both edges (bands run across; text and drawings keep off the edges)."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(grey)
    edge = max(1, grey.width // 25)
    margins = np.concatenate((pixels[:, :edge], pixels[:, -edge:]), axis=1)
    dark = np.median(margins, axis=1) < DARK_ROW
    # Runs of dark rows: where the mask switches on and off.
    edges = np.flatnonzero(np.diff(np.concatenate(([0], dark.astype(np.int8), [0]))))
    bands = [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2], strict=True) if e - s >= MIN_BAND]
    if not bands:
        return [grey]
    strips, top = [], 0
    for start, end in bands:
        if start - top >= MIN_SIDE:
            strips.append(Image.fromarray(pixels[top:start]))
        strips.append(Image.fromarray(255 - pixels[start:end]))
        top = end
    if grey.height - top >= MIN_SIDE:
        strips.append(Image.fromarray(pixels[top:]))
    return strips
