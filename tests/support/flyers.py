"""Test images: smuggling flyers (price lists, crossing schedules) rendered with Pillow and
Debian's Noto fonts, in ten languages, plus a few unrelated images.

Every flyer carries a phone number in international format and a price; its text is known
(`flyer_lines`), so OCR can be scored against it, and `variants` re-encodes, resizes and
crops it the way reposts do, for the PDQ tests. Right-to-left lines are shaped by raqm;
a line mixing scripts is drawn as runs, each in a font that has its glyphs, the runs laid
out right to left in an RTL line (a number or a Latin word keeps its own order inside).

Write the demo flyers of crawlers/telegram/samples/media:
    python -m tests.support.flyers --demo crawlers/telegram/samples/media
"""

from __future__ import annotations

import argparse
import io
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

NOTO = Path("/usr/share/fonts/truetype/noto")
WIDTH = 800
LINE_SPACING = 1.6  # line height over font size
RTL_LANGS = frozenset({"ar", "fa", "ckb", "ps", "ur"})
ETHIOPIC_LANGS = frozenset({"ti", "am"})

# Ground truth: what each flyer says, line by line, written for these tests. The phone
# numbers appear nowhere else, so OCR tests can tell they came from the image.
FLYER_TEXT: dict[str, list[str]] = {
    "ar": [
        "رحلات من ليبيا إلى إيطاليا",
        "قارب كبير وآمن كل يوم خميس",
        "السعر 3500 $ للشخص",
        "الأطفال نصف السعر",
        "واتساب +218 91 234 5678",
    ],
    "fa": [
        "انتقال از ایران به ترکیه",
        "مسیر کوهستانی با راهنما",
        "قیمت 1200 $ تا استانبول",
        "پرداخت بعد از رسیدن",
        "تماس +98 912 345 6789",
    ],
    "ckb": [
        "گەشت بۆ بەریتانیا بە بەلەم",
        "لە فەرەنسا هەموو هەفتەیەک",
        "نرخ 2500 £ بۆ هەر کەسێک",
        "گەرەنتی تەواو",
        "پەیوەندی +33 7 58 41 22 90",
    ],
    "ps": [
        "له افغانستان څخه ایران ته سفر",
        "هره اونۍ موټر روانېږي",
        "بیه 900 $ د هر کس لپاره",
        "تضمین شوې لاره",
        "اړیکه +93 70 123 4567",
    ],
    "ti": [
        "ካብ ሱዳን ናብ ሊብያ ጉዕዞ",
        "ብመኪና ኩሉ ሰሙን",
        "ዋጋ 4000 $",
        "ብዘይ ስግኣት",
        "ስልኪ +249 91 234 5678",
    ],
    "am": [
        "ከኢትዮጵያ ወደ ሳውዲ ጉዞ",
        "በጀልባ በየሳምንቱ",
        "ዋጋ 3000 $",
        "ዋስትና ያለው",
        "ስልክ +251 91 123 4567",
    ],
    "tr": [
        "İzmir → İtalya yat ile",
        "Her hafta garantili geçiş",
        "Fiyat 8000 € kişi başı",
        "Çocuklar yarı fiyat",
        "WhatsApp +90 532 418 77 09",
    ],
    "vi": [
        "Đi Anh bằng xe tải an toàn",
        "Khởi hành từ Pháp mỗi tuần",
        "Giá 15000 £ trọn gói",
        "Bao đậu, trả tiền khi đến",
        "Liên hệ +84 912 345 678",
    ],
    "sq": [
        "Kalim nga Shqipëria në Angli",
        "Me gomone çdo javë",
        "Çmimi 4000 £ për person",
        "E garantuar 100%",
        "Telefon +355 69 123 4567",
    ],
    "en": [
        "Belarus → Poland → Germany",
        "Forest route with guide, every week",
        "Price $4,500 per person",
        "Guaranteed, pay after arrival",
        "WhatsApp +44 7700 900461",
    ],
}
LANGS = tuple(FLYER_TEXT)

# The flyers of crawlers/telegram/samples/media: (file name, language, design seed, lines).
# Their phone numbers are written nowhere else in the repository but here and in that
# folder's README. The seeds are designs that OCR reads well (bench: CER 0.01-0.10).
DEMO_FLYERS: list[tuple[str, str, int, list[str]]] = [
    (
        "flyer-izmir-italy.jpg",
        "tr",
        6,
        [
            "İzmir → İtalya / Izmir → Italy",
            "Yat ile 3 gün / 3 days by yacht",
            "8000 € kişi başı / per person",
            "Garantili / Guaranteed",
            "WhatsApp +90 541 772 30 18",
        ],
    ),
    (
        "flyer-libya-italy-ar.jpg",
        "ar",
        7,
        [
            "من زوارة إلى لامبيدوزا",
            "قارب خشبي كبير كل أسبوع",
            "السعر 3000 $ للشخص",
            "الدفع عند الوصول",
            "واتساب +218 92 615 0447",
        ],
    ),
    (
        "flyer-uk-kurdish.jpg",
        "ckb",
        6,
        [
            "گەشت بۆ بەریتانیا",
            "لە دەنکێرک بە بەلەم",
            "نرخ 2000 £",
            "گەرەنتی سەد لە سەد",
            "پەیوەندی +44 7700 900587",
        ],
    ),
    (
        "flyer-belarus-poland.jpg",
        "en",
        1,
        [
            "Minsk → Poland → Germany",
            "Car pick-up after the forest",
            "Price $5,000, children $2,500",
            "Guaranteed, pay on arrival",
            "Telegram / WhatsApp +375 29 318 64 02",
        ],
    ),
]

NATIVE_FONT = {
    **dict.fromkeys(RTL_LANGS, "NotoSansArabic-Bold.ttf"),
    **dict.fromkeys(ETHIOPIC_LANGS, "NotoSansEthiopic-Bold.ttf"),
}
LATIN_FONT = "NotoSans-Bold.ttf"
# Fonts tried, in order, for a word the native font cannot draw (digits in Ethiopic, $ in Arabic, →).
FALLBACK_FONTS = (LATIN_FONT, "NotoSansSymbols2-Regular.ttf", "NotoSansMath-Regular.ttf")

# Light backgrounds and dark bands; dark text on light keeps the flyers legible, as the real ones are.
BACKGROUNDS = [
    ((255, 250, 235), (250, 220, 170)),
    ((235, 245, 255), (180, 210, 245)),
    ((240, 255, 240), (190, 235, 200)),
    ((255, 240, 245), (245, 200, 215)),
    ((250, 250, 250), (215, 215, 225)),
    ((255, 255, 220), (240, 230, 150)),
]
BANDS = [(20, 60, 120), (140, 20, 30), (10, 90, 60), (60, 30, 100), (30, 30, 30), (160, 80, 0)]
INKS = [(15, 15, 25), (40, 20, 10), (10, 30, 60), (50, 0, 20)]


def flyer_lines(lang: str) -> list[str]:
    """The text of `lang`'s flyer, line by line (the OCR ground truth)."""
    try:
        return list(FLYER_TEXT[lang])
    except KeyError:
        raise ValueError(f"no flyer in {lang!r}: expected one of {', '.join(LANGS)}") from None


@cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(NOTO / name), size, layout_engine=ImageFont.Layout.RAQM)


@cache
def _draws(name: str, char: str) -> bool:
    """Whether font `name` has a glyph for `char` (it draws something else than .notdef)."""
    font = _font(name, 24)
    return _glyph(font, char) != _glyph(font, "\U0010fff0")


def _glyph(font: ImageFont.FreeTypeFont, char: str) -> bytes:
    image = Image.new("L", (48, 48))
    ImageDraw.Draw(image).text((4, 4), char, font=font, fill=255)
    return image.tobytes()


@dataclass
class _Run:
    text: str
    font: str
    rtl: bool


def _runs(line: str, lang: str) -> list[_Run]:
    """`line` cut at word boundaries into runs that one font each can draw, in logical order."""
    native = NATIVE_FONT.get(lang, LATIN_FONT)
    runs: list[_Run] = []
    for word in line.split():
        # Numbers and Latin words are one left-to-right run in one font, whatever the script.
        candidates = FALLBACK_FONTS if word.isascii() else (native, *FALLBACK_FONTS)
        font = next((f for f in candidates if all(_draws(f, c) for c in word)), LATIN_FONT)
        rtl = lang in RTL_LANGS and font == native and not word.isascii()
        if runs and runs[-1].font == font and runs[-1].rtl == rtl:
            runs[-1].text += " " + word
        else:
            runs.append(_Run(word, font, rtl))
    return runs


def _line_size(runs: list[_Run], size: int) -> tuple[int, int]:
    space = int(size * 0.3)
    width = sum(int(_font(r.font, size).getlength(r.text, direction="rtl" if r.rtl else "ltr")) for r in runs)
    return width + space * (len(runs) - 1), int(size * LINE_SPACING)


def _draw_line(
    draw: ImageDraw.ImageDraw, runs: list[_Run], x: int, y: int, size: int, fill: tuple, rtl: bool
) -> None:
    """Runs left to right, or right to left in an RTL line (the Unicode bidi result for lines
    of words and numbers)."""
    space = int(size * 0.3)
    for run in reversed(runs) if rtl else runs:
        font = _font(run.font, size)
        direction = "rtl" if run.rtl else "ltr"
        # On one baseline: the fonts' ascents differ.
        draw.text((x, y + int(size * 1.15)), run.text, font=font, fill=fill, direction=direction, anchor="ls")
        x += int(font.getlength(run.text, direction=direction)) + space


def render_flyer(lang: str, lines: list[str] | None = None, seed: int = 0) -> Image.Image:
    """An RGB flyer in `lang` (its `flyer_lines` unless `lines` are given): a title band,
    the lines, the last one (the contact) on a highlighted strip, and a drawing. `seed`
    picks the colours, sizes, alignment and drawing, so flyers of different seeds differ
    the way different smugglers' flyers do."""
    lines = flyer_lines(lang) if lines is None else lines
    rng = random.Random(f"{lang}:{seed}")
    rtl = lang in RTL_LANGS
    title_size, body_size = rng.choice([46, 50, 54]), rng.choice([36, 38, 40, 42])
    margin = rng.choice([36, 48, 60])
    align = rng.choice(["centre", "start"])
    drawing = rng.choice(["boat", "truck", "waves", "frame", "stars"])
    drawing_height = 150 if drawing in ("boat", "truck", "waves") else 40
    title, body, contact = lines[0], lines[1:-1], lines[-1]

    rows = [(title, title_size), *[(t, body_size) for t in body], (contact, body_size)]
    measured = [(_runs(t, lang), s) for t, s in rows]
    heights = [_line_size(r, s)[1] for r, s in measured]
    band = heights[0] + 2 * margin // 2
    height = band + margin + sum(heights[1:]) + margin // 2 * 3 + drawing_height + margin
    top, bottom = BACKGROUNDS[rng.randrange(len(BACKGROUNDS))]
    image = _gradient((WIDTH, height), top, bottom, vertical=rng.random() < 0.6)
    draw = ImageDraw.Draw(image)
    band_colour = BANDS[rng.randrange(len(BANDS))]
    ink = INKS[rng.randrange(len(INKS))]

    draw.rectangle((0, 0, WIDTH, band), fill=band_colour)
    y = margin // 2
    for n, ((runs, size), h) in enumerate(zip(measured, heights, strict=True)):
        width = _line_size(runs, size)[0]
        start = WIDTH - margin - width if rtl else margin
        x = (WIDTH - width) // 2 if align == "centre" or n == 0 else start
        fill: tuple = (255, 255, 255) if n == 0 else ink
        if n == len(measured) - 1:
            y += margin // 2
            strip = (margin // 2, y - 6, WIDTH - margin // 2, y + h + 2)
            draw.rounded_rectangle(strip, radius=18, fill=(255, 255, 255), outline=band_colour, width=4)
        _draw_line(draw, runs, x, y, size, fill, rtl)
        y += h + (band - heights[0] + margin // 2 if n == 0 else 0)
    _draw_picture(
        draw,
        drawing,
        (margin, height - drawing_height - margin // 2, WIDTH - margin, height - margin // 2),
        band_colour,
        rng,
    )
    return image


def _gradient(size: tuple[int, int], top: tuple, bottom: tuple, vertical: bool = True) -> Image.Image:
    """A two-colour linear gradient (vertical or horizontal)."""
    steps = size[1] if vertical else size[0]
    strip = Image.new("RGB", (1, steps) if vertical else (steps, 1))
    for i in range(steps):
        t = i / max(1, steps - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        strip.putpixel((0, i) if vertical else (i, 0), colour)
    return strip.resize(size)


def _draw_picture(
    draw: ImageDraw.ImageDraw, kind: str, box: tuple[int, int, int, int], colour: tuple, rng: random.Random
) -> None:
    """A simple drawing in `box`: a boat, a truck, waves, a frame or stars."""
    left, top, right, bottom = box
    cx = rng.randint(left + 150, right - 150)
    if kind == "boat":
        draw.polygon(
            [(cx - 140, top + 90), (cx + 140, top + 90), (cx + 95, bottom - 10), (cx - 95, bottom - 10)],
            fill=colour,
        )
        draw.polygon(
            [(cx - 5, top + 5), (cx - 5, top + 82), (cx - 100, top + 82)],
            fill=(250, 250, 250),
            outline=colour,
        )
        draw.line((cx, top, cx, top + 90), fill=colour, width=6)
    elif kind == "truck":
        draw.rectangle((cx - 150, top + 20, cx + 50, bottom - 35), fill=colour)
        draw.rectangle((cx + 55, top + 60, cx + 130, bottom - 35), fill=colour)
        for wx in (cx - 110, cx - 10, cx + 95):
            draw.ellipse((wx - 20, bottom - 50, wx + 20, bottom - 10), fill=(30, 30, 30))
    elif kind == "waves":
        for row in range(3):
            y = top + 40 + row * 35
            for x in range(left, right, 80):
                draw.arc((x, y, x + 80, y + 40), 180, 360, fill=colour, width=7)
    elif kind == "frame":
        draw.rectangle((4, 4, draw.im.size[0] - 5, draw.im.size[1] - 5), outline=colour, width=8)
    else:
        for _ in range(7):
            x, y, r = rng.randint(left, right), rng.randint(top, bottom), rng.randint(8, 18)
            draw.regular_polygon((x, y, r), 5, fill=colour)


def unrelated_images() -> dict[str, Image.Image]:
    """Images that are not smuggling flyers: a photo-like picture, an NGO poster, a menu."""
    rng = random.Random(7)
    photo = _gradient((WIDTH, 600), (90, 140, 200), (230, 200, 160))
    draw = ImageDraw.Draw(photo)
    for _ in range(5):  # people-shaped blobs on a beach
        x = rng.randint(80, 700)
        tone = (rng.randint(120, 220), rng.randint(80, 160), rng.randint(60, 120))
        draw.ellipse((x - 30, 260, x + 30, 330), fill=tone)
        draw.rounded_rectangle((x - 45, 330, x + 45, 520), radius=30, fill=tone)
    poster = render_flyer(
        "en",
        [
            "Know your rights",
            "Asylum advice is free",
            "Never pay a smuggler",
            "Legal aid every Tuesday",
            "Helpline 0800 123 456",
        ],
        seed=101,
    )
    menu = render_flyer(
        "tr",
        ["Kebap Evi", "Adana kebap 180 TL", "Lahmacun 60 TL", "Ayran 25 TL", "Paket servis 0232 555 01 01"],
        seed=202,
    )
    return {"photo": photo, "ngo-poster": poster, "menu": menu}


def _jpeg(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def _resize(image: Image.Image, factor: float = 0.5) -> Image.Image:
    return image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.LANCZOS)


def _crop(image: Image.Image, fraction: float = 0.05) -> Image.Image:
    """`fraction` of the width and of the height cut off, half on each side."""
    dx, dy = round(image.width * fraction / 2), round(image.height * fraction / 2)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def variants(image: Image.Image) -> dict[str, bytes]:
    """`image` as reposts make it, as JPEG bytes: re-encoded at quality 40, resized to 50%,
    5% cropped, and combinations of these."""
    return {
        "jpeg_q40": _jpeg(image, 40),
        "resize_50": _jpeg(_resize(image)),
        "crop_5": _jpeg(_crop(image)),
        "resize_50+jpeg_q40": _jpeg(_resize(image), 40),
        "crop_5+resize_50": _jpeg(_resize(_crop(image))),
        "crop_5+resize_50+jpeg_q40": _jpeg(_resize(_crop(image)), 40),
    }


def character_error_rate(reference: str, read: str) -> float:
    """Edit distance (insertions, deletions, substitutions of characters) from `read` to
    `reference` over the reference's length; whitespace runs count as one space."""
    ref, got = " ".join(reference.split()), " ".join(read.split())
    previous = list(range(len(got) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, g in enumerate(got, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != g)))
        previous = current
    return previous[-1] / max(1, len(ref))


def write_demo(directory: Path) -> list[Path]:
    """The demo flyers of crawlers/telegram/samples/media, written into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, lang, seed, lines in DEMO_FLYERS:
        path = directory / name
        path.write_bytes(_jpeg(render_flyer(lang, lines, seed=seed), 80))
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--demo", type=Path, metavar="DIR", help="write the demo flyers into DIR")
    parser.add_argument(
        "--all", type=Path, metavar="DIR", help="write every test flyer (seed 0) as PNG into DIR"
    )
    args = parser.parse_args()
    if args.demo:
        for path in write_demo(args.demo):
            print(f"{path} ({path.stat().st_size:,} bytes)")
    if args.all:
        args.all.mkdir(parents=True, exist_ok=True)
        for lang in LANGS:
            render_flyer(lang).save(args.all / f"flyer-{lang}.png")
    if not (args.demo or args.all):
        parser.error("nothing to do: give --demo DIR or --all DIR")


if __name__ == "__main__":
    main()
