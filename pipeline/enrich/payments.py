"""Payment arrangements that identify a network: the names of hawala and "guarantee" offices
that hold the money until arrival, and cryptocurrency wallet addresses.

An office is named after a word that says what it is ("Sarafi Azadi", "صرافة آزادي",
"ofîsa Berxwedan", "hawala Baran") or before one ("Azadi exchange office"). Its canonical
form folds case and diacritics, transliterates Arabic-script names letter by letter and
maps the kind word to one of three: `sarafi` (exchange), `hawala`, `office`; so "Sarafi
Azadi", "sarafi azadi", "Azadi Exchange" and "صرافة آزادي" are one: "sarafi azadi".
A generic kind word ("office", "mekteb", "hawala") needs a capitalised name after it, and
words like "garantiyê", "the" or "de" are never names: "money stays with the hawala office"
names no office.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from classifier.normalize import normalize

# Kind words before the name, by canonical kind. Latin forms are matched case-insensitively.
_LATIN_BEFORE = {
    "sarafi": ("sarafi", "sarrafi", "sarafî", "sarrafî", "saraf", "sarraf", "sarafa", "sarrafa", "sarafiya",
               "sarrafiya", "sarafiye", "sarrafiye", "serafi", "sarrafe", "sarafe", "bureau de change"),
    "hawala": ("hawala", "hawalah", "hewale", "havale", "hawaladar"),
    # Not a bare "office"/"ofis" before a name: "the office Manager" is nobody's office.
    "office": ("mekteb", "mektab", "maktab", "mektebi", "maktabi", "ofîsa", "ofisa", "daftar", "daftare"),
}  # fmt: skip
_LATIN_AFTER = {
    "sarafi": ("exchange office", "exchange", "money exchange", "döviz", "doviz", "sarrafiye", "sarafi"),
    "hawala": ("hawala", "hawala office"),
}
# Arabic-script kind words (after fold: Arabic ي/ك read as Persian ی/ک).
_SCRIPT_BEFORE = {
    "sarafi": ("صرافة", "صرافه", "صرافی", "صراف", "سەرافی", "سەڕافی", "سرافی", "صەرافی", "صرافت"),
    "hawala": ("حوالة", "حواله", "حەواڵە", "هەواڵە"),
    "office": ("مکتب", "دفتر", "نووسینگەی", "دفتر"),
}
# Kinds whose name must look like one (capitalised, in Latin script): the word alone is common.
_GENERIC = {"hawala", "office"}
_STOPWORDS = set(
    [
        "a",
        "an",
        "the",
        "of",
        "for",
        "and",
        "or",
        "with",
        "at",
        "in",
        "on",
        "to",
        "from",
        "by",
        "our",
        "your",
        "my",
        "this",
        "that",
        "is",
        "are",
        "be",
        "was",
        "money",
        "cash",
        "pay",
        "payment",
        "payments",
        "paid",
        "deposit",
        "guarantee",
        "guaranteed",
        "garanti",
        "garantie",
        "garantiye",
        "garantî",
        "garantiyê",
        "sigorta",
        "sigortayê",
        "insurance",
        "safe",
        "secure",
        "trusted",
        "office",
        "offices",
        "exchange",
        "exchanges",
        "bureau",
        "change",
        "hawala",
        "havale",
        "hewale",
        "mekteb",
        "maktab",
        "ofis",
        "ofîs",
        "ofîsa",
        "ofisa",
        "ofîsê",
        "agent",
        "agency",
        "company",
        "li",
        "ji",
        "bi",
        "bo",
        "ber",
        "û",
        "u",
        "an",
        "jî",
        "ku",
        "de",
        "da",
        "le",
        "la",
        "les",
        "des",
        "du",
        "et",
        "ou",
        "au",
        "aux",
        "chez",
        "dans",
        "ve",
        "ile",
        "veya",
        "bir",
        "bu",
        "until",
        "after",
        "before",
        "when",
        "then",
        "only",
        "also",
        "here",
        "there",
        "near",
        "home",
        "foreign",
        "currency",
        "western",
        "union",
        "sarafi",
        "sarraf",
        "saraf",
        "döviz",
        "doviz",
        "stays",
        "para",
        "pere",
        "pare",
        "whatsapp",
        "telegram",
        "viber",
        "signal",
        "contact",
        "contacts",
        "tel",
        "phone",
        "call",
        "dm",
        "peywendi",
        "peywendî",
        "info",
        "iletisim",
        "iletişim",
        "kontakt",
        "now",
        "today",
        "stay",
        "held",
        "hold",
        "kept",
        "keep",
    ]
)
_STOPWORDS_FOLDED: set[str] = set()  # filled below, once fold_name exists
_SCRIPT_STOPWORDS = {
    "ضمان", "الضمان", "الضمانه", "الضمانة", "ضمانت", "گارانتی", "گەرەنتی", "بیمه", "التامین", "التأمين",
    "تأمين", "امانت", "عند", "فی", "في", "من", "الى", "إلى", "به", "بە", "لە", "له", "از", "در", "و",
    "او", "أو", "یا", "للصرافة", "للصرافه", "الصرافة", "الصرافه", "صرافی", "صرافة", "حوالة", "حواله",
    "مکتب", "المکتب", "دفتر", "هذا", "هذه", "ذلک", "ما", "لا", "نا", "پول", "پاره", "پارە", "المبلغ",
    "الفلوس", "ضمانة", "تضمین", "ګارنټي", "کې", "ته", "څخه", "سره", "د", "کی", "را", "واتساب", "واتس", "تلگرام", "تماس",
}  # fmt: skip
# Arabic-script prepositions written onto the next word ("بأربيل", in Erbil): not a name
# after a generic kind word.
_CLITIC = re.compile(r"^(?:ب|ل|ف|و|بال|لل|وال)")

_LATIN_WORD = r"[^\W\d_][^\W_]*(?:['’-][^\W\d_]+)?"
_SCRIPT_WORD = r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]+"


def _alternatives(words: tuple[str, ...]) -> str:
    return "|".join(sorted((re.escape(w).replace(r"\ ", r"\s+") for w in set(words)), key=len, reverse=True))


_BEFORE = [
    (kind, re.compile(rf"(?<![^\W\d_])(?P<kind>{_alternatives(words)})\s+(?P<name>{_LATIN_WORD}(?:[ \t]+{_LATIN_WORD}){{0,2}})", re.IGNORECASE))
    for kind, words in _LATIN_BEFORE.items()
]  # fmt: skip
_AFTER = [
    (kind, re.compile(rf"(?P<name>(?:{_LATIN_WORD}[ \t]+){{0,1}}{_LATIN_WORD})[ \t]+(?P<kind>{_alternatives(words)})(?![^\W\d_])", re.IGNORECASE))
    for kind, words in _LATIN_AFTER.items()
]  # fmt: skip
_SCRIPT = [
    (kind, re.compile(rf"(?<![\u0600-\u06ff])(?P<kind>{_alternatives(words)})[ \t]+(?P<name>{_SCRIPT_WORD})"))
    for kind, words in _SCRIPT_BEFORE.items()
]

# Arabic-script letters to Latin, for office names: approximate, but one spelling of a name
# always gives one result ("آزادي" → "azadi").
_TRANSLIT = {
    "آ": "a", "ا": "a", "أ": "a", "إ": "i", "ٱ": "a", "ب": "b", "پ": "p", "ت": "t", "ث": "s", "ج": "j",
    "چ": "ch", "ح": "h", "خ": "kh", "د": "d", "ذ": "z", "ر": "r", "ڕ": "r", "ز": "z", "ژ": "zh", "س": "s",
    "ش": "sh", "ص": "s", "ض": "z", "ط": "t", "ظ": "z", "ع": "", "غ": "gh", "ف": "f", "ڤ": "v", "ق": "q",
    "ک": "k", "ك": "k", "گ": "g", "ل": "l", "ڵ": "l", "م": "m", "ن": "n", "ه": "h", "ە": "e", "ة": "a",
    "ۆ": "o", "ێ": "e", "ې": "e", "ۍ": "ai", "ټ": "t", "ډ": "d", "ړ": "r", "ږ": "zh", "ښ": "sh", "ګ": "g", "ڼ": "n", "ء": "", "ئ": "", "ؤ": "u", "ى": "a",
}  # fmt: skip


def fold_name(value: str) -> str:
    """Lowercase, without diacritics, Arabic-script letters transliterated: the form two
    spellings of one office name share."""
    out = []
    letters = list(unicodedata.normalize("NFKC", value).replace("ي", "ی"))
    for i, ch in enumerate(letters):
        if ch in ("و", "ی"):  # a consonant at the start of a word, a vowel inside it
            start = i == 0 or not letters[i - 1].isalpha()
            out.append(("w" if ch == "و" else "y") if start else ("u" if ch == "و" else "i"))
        else:
            out.append(_TRANSLIT.get(ch, ch))
    decomposed = unicodedata.normalize("NFKD", "".join(out))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^\w]+", " ", plain).strip()


_STOPWORDS_FOLDED.update(fold_name(w) for w in _STOPWORDS)


def _latin_name(raw: str, kind: str, leading: bool) -> str | None:
    """The name among `raw`'s words (those after the kind word when `leading`, else those
    before it, nearest first), or None when they are not one."""
    words = raw.split()
    if not leading:
        words = words[::-1]
    name: list[str] = []
    for word in words:
        capital = word[:1].isupper()
        if (
            fold_name(word) in _STOPWORDS_FOLDED
            or (name and not capital)
            or ((kind in _GENERIC or not leading) and not capital)
        ):
            break
        name.append(word)
        if not capital:  # a lowercase name ("sarafi azadi") is one word
            break
    if not name:
        return None
    return " ".join(name if leading else name[::-1])


def payment_offices_in(text: str) -> list[str]:
    """Office names, canonical (e.g. "sarafi azadi"), in order of first mention."""
    clean = normalize(text)
    found: list[tuple[int, str]] = []
    for kind, regex in _BEFORE:
        for m in regex.finditer(clean):
            name = _latin_name(m.group("name"), kind, leading=True)
            if name:
                found.append((m.start(), f"{kind} {fold_name(name)}"))
    for kind, regex in _AFTER:
        for m in regex.finditer(clean):
            name = _latin_name(m.group("name"), kind, leading=False)
            if name:
                found.append((m.start(), f"{kind} {fold_name(name)}"))
    script = clean.replace("ي", "ی").replace("ك", "ک")
    for kind, regex in _SCRIPT:
        for m in regex.finditer(script):
            name = m.group("name")
            if name in _SCRIPT_STOPWORDS or (kind in _GENERIC and _CLITIC.match(name)):
                continue
            folded = fold_name(name)
            if len(folded) >= (3 if kind in _GENERIC else 2):
                found.append((m.start(), f"{kind} {folded}"))
    return list(dict.fromkeys(value for _, value in sorted(found) if value.split(" ", 1)[1]))


_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_TRON = re.compile(r"(?<![0-9A-Za-z])T[1-9A-HJ-NP-Za-km-z]{33}(?![0-9A-Za-z])")
_BTC_LEGACY = re.compile(r"(?<![0-9A-Za-z])[13][1-9A-HJ-NP-Za-km-z]{25,34}(?![0-9A-Za-z])")
_BTC_BECH32 = re.compile(r"(?<![0-9A-Za-z])bc1[02-9ac-hj-np-z]{11,71}(?![0-9A-Za-z])", re.IGNORECASE)
_ETH = re.compile(r"(?<![0-9A-Za-z])0x[0-9a-fA-F]{40}(?![0-9A-Za-z])")
_LABEL_WINDOW = 48  # characters before an address where its currency is named


def _base58check(address: str) -> bool:
    number = 0
    for ch in address:
        number = number * 58 + _BASE58.index(ch)
    pad = len(address) - len(address.lstrip("1"))
    raw = b"\0" * pad + number.to_bytes((number.bit_length() + 7) // 8, "big")
    payload, checksum = raw[:-4], raw[-4:]
    return len(raw) > 4 and hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == checksum


def _mixed(address: str) -> bool:
    # A chance run of letters ("Thisisnotawalletbutaverylongword…") has no digits.
    return any(ch.isdigit() for ch in address) and any(ch.isupper() for ch in address[1:])


def wallets_in(text: str) -> list[str]:
    """Wallet addresses (e.g. "usdt-trc20:T…", "btc:bc1…"), in order of first mention.

    TRON (TRC20) addresses are labelled `usdt-trc20` when USDT is named just before them,
    `trx` when TRX or TRON is, else `trc20`; Ethereum ones `usdt-erc20`, `usdc-erc20` or
    `eth`. Bitcoin legacy addresses must pass their checksum (chance strings do not)."""
    clean = normalize(text)
    found: list[tuple[int, str]] = []

    def said(start: int, *words: str) -> bool:
        before = clean[max(0, start - _LABEL_WINDOW) : start].lower()
        return any(re.search(rf"(?<![a-z]){w}(?![a-z])", before) for w in words)

    for m in _TRON.finditer(clean):
        if _mixed(m.group(0)):
            label = (
                "usdt-trc20"
                if said(m.start(), "usdt", "tether")
                else "trx"
                if said(m.start(), "trx", "tron")
                else "trc20"
            )
            found.append((m.start(), f"{label}:{m.group(0)}"))
    for m in _ETH.finditer(clean):
        label = (
            "usdt-erc20"
            if said(m.start(), "usdt", "tether")
            else "usdc-erc20"
            if said(m.start(), "usdc")
            else "eth"
        )
        found.append((m.start(), f"{label}:{m.group(0).lower()}"))
    for m in _BTC_BECH32.finditer(clean):
        found.append((m.start(), f"btc:{m.group(0).lower()}"))
    for m in _BTC_LEGACY.finditer(clean):
        if _base58check(m.group(0)):
            found.append((m.start(), f"btc:{m.group(0)}"))
    return list(dict.fromkeys(value for _, value in sorted(found)))


def wallet_address(wallet: str) -> str:
    """The address of a labelled wallet ("usdt-trc20:T…" → "T…"): what identifies it."""
    return wallet.rsplit(":", 1)[-1]
