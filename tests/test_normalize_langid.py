"""Normalisation and language identification."""

from __future__ import annotations

import pytest

from classifier.corpus import load_corpus
from classifier.langid import identify, script_of
from classifier.normalize import MAX_CHARS, normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("w h a t s a p p: 0 0 4 4 7 7 0 0 9 0 0 1 2 3", "whatsapp: 00447700900123"),
        ("واتساب ٠٠٩٦٤٧٥٠١٢٣٤٥٦٧", "واتساب 009647501234567"),
        ("شماره: ۰۹۱۲۳۴۵۶۷۸۹", "شماره: 09123456789"),
        ("Ｗｈａｔｓ\u200bapp", "Whatsapp"),
        ("wh\u200ca\u200cts", "whats"),
        ("می\u200cروم 🇬🇧🚤", "می\u200cروم 🇬🇧🚤"),  # Persian ZWNJ is spelling; emoji stay
        ("call 0-5-3-2-1-1-2-2-3-3", "call 0532112233"),
        ("t e l e g r a m @x", "telegram @x"),
        ("  a \t b \n\n\n c  ", "a b\nc"),
        ("price 2 500 € and 3 bin euro", "price 2 500 € and 3 bin euro"),
        ("I am a u.s. citizen", "I am a u.s. citizen"),
        ("\u202eevil\u202c", "evil"),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_normalize_bounds_huge_and_odd_input():
    assert len(normalize("x" * 200_000)) == MAX_CHARS
    assert normalize("") == ""
    assert normalize("\ud800 lone surrogate") == "\ud800 lone surrogate"


@pytest.mark.parametrize(
    ("text", "script"),
    [("hello", "latin"), ("سلام", "arabic"), ("ሰላም", "ethiopic"), ("🚤 123", "none"), ("Привет", "other")],
)
def test_script(text, script):
    assert script_of(text) == script


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("سەفەری یاتی بۆ ئیتاڵیا بە نرخێکی گونجاو", "ckb"),
        ("د ترکیې لاره ډېره خطرناکه ده، پام کوئ", "ps"),
        ("ہم آپ کو یورپ پہنچائیں گے، رابطہ کریں", "ur"),
        ("Yat ji Bodrumê ber bi Îtalyayê, pere piştî gihîştinê", "kmr"),
        ("Chuyến đi sang Anh bằng xe tải, bao đến nơi", "vi"),
        ("Bonjour, je cherche des informations sur la demande d'asile", "fr"),
        ("Udhëtim i sigurt për në Angli, pagesa pas mbërritjes", "sq"),
        ("Safar bi Talyaaniga doon ka baxaysa Tripoli, lacagta marka aad gaarto", "so"),
        ("ናብ ኢጣልያ ብጀልባ ንኸይድ ኢና፡ ክፍሊት ምስ በጻሕኩም", "ti"),
        ("ወደ ጣሊያን በጀልባ እንወስዳችኋለን፣ ክፍያ ስትደርሱ ነው", "am"),
    ],
)
def test_identify_known_examples(text, lang):
    assert identify(text).lang == lang


def test_no_letters_is_undetermined():
    assert identify("📞 +44 7700 900123 🚤").lang == "und"


def test_accuracy_per_language_on_held_out_items():
    items = [ex for ex in load_corpus() if ex.split == "test"]
    per_lang: dict[str, list[int]] = {}
    for ex in items:
        per_lang.setdefault(ex.lang, []).append(int(identify(ex.text).lang == ex.lang))
    accuracy = {lang: sum(v) / len(v) for lang, v in per_lang.items()}
    assert sum(sum(v) for v in per_lang.values()) / len(items) >= 0.95, accuracy
    for lang, acc in accuracy.items():
        assert acc >= 0.8, (lang, accuracy)
