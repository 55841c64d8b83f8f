"""Entities an analyst and a platform act on: phone numbers, messenger links and handles,
prices with currency, the route (origin → destination), transport modes, guarantees and
payment terms. Works on normalised text, so Arabic-Indic digits and spaced-out numbers count.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import phonenumbers

from classifier.cues import CueMatch, find_cues, fold, places_in
from classifier.normalize import normalize
from pipeline.enrich.payments import payment_offices_in, wallets_in
from pipeline.enrich.routes import legs as legs_in
from pipeline.enrich.routes import route

# Where a number written without a country code most likely belongs, by post language.
REGION_BY_LANG = {
    "en": "GB",
    "fr": "FR",
    "tr": "TR",
    "ckb": "IQ",
    "kmr": "IQ",
    "ar": "IQ",
    "ar-Latn": "IQ",
    "fa": "IR",
    "fa-Latn": "IR",
    "ps": "AF",
    "ur": "PK",
    "sq": "AL",
    "vi": "VN",
    "so": "SO",
    "ti": "ER",
    "am": "ET",
}
CURRENCIES = [
    ("EUR", r"€|eur|euros?|evro|يورو|یورو|یۆرۆ|ዩሮ"),
    ("GBP", r"£|gbp|pounds?|sterlin|باوند|پاوەند|پوند"),
    ("USD", r"\$|usd|usdt|dollars?|dolar[ıi]?|doolar|đô|دولار|دلار|ډالر|ڈالر|دۆلار|ዶላር"),
    ("TRY", r"₺|tl|lira|ليرة|لیره|لیرە"),
    ("IQD", r"dinars?|dinar[ıi]|دينار|دینار"),
    ("IRR", r"toman|tomans?|تومان|تومن"),
    ("AFN", r"afghanis?|afs|افغانی"),
    ("PKR", r"rupees?|rs|روپے|روپیه|روپیہ"),
    ("ETB", r"birr|ብር"),
    ("ERN", r"nakfa|ናቕፋ"),
    ("SAR", r"sar|riyals?|ريال|ریال"),
    ("AED", r"aed|dirhams?|درهم"),
    ("ALL", r"lek|leke"),
    ("VND", r"triệu đồng|vnd|đồng"),
]
_CURRENCY = "|".join(f"(?P<{code}>{pattern})" for code, pattern in CURRENCIES)
_NUMBER = r"(?P<num>\d{1,3}(?:[.,' ]\d{3})+|\d+(?:[.,]\d+)?)[ \t\u00a0]?(?P<mult>k|bin|mil|m|hezar|هزار|ألف|الف|ھەزار|هەزار|ሺ|triệu)?"
# A number and its currency on one line: "1300 £\nUSDT accepted" is no price in dollars.
_PRICE_AFTER = re.compile(rf"{_NUMBER}[ \t\u00a0]?(?:{_CURRENCY})(?![^\W\d_])", re.IGNORECASE)
_PRICE_BEFORE = re.compile(rf"(?<![^\W\d_])(?:{_CURRENCY})[ \t\u00a0]?{_NUMBER}", re.IGNORECASE)
_MULTIPLIERS = {
    "k": 1_000,
    "bin": 1_000,
    "hezar": 1_000,
    "هزار": 1_000,
    "ألف": 1_000,
    "الف": 1_000,
    "ھەزار": 1_000,
    "هەزار": 1_000,
    "ሺ": 1_000,
    "mil": 1_000_000,
    "m": 1_000_000,
    "triệu": 1_000_000,
}
_LINK = re.compile(
    r"(?:https?://)?(?:wa\.me|api\.whatsapp\.com/send\?phone=|chat\.whatsapp\.com|t\.me|telegram\.me|"
    r"signal\.me/#p|viber\.click|m\.me)/?[^\s)\]}>,،]+",
    re.IGNORECASE,
)
_HANDLE = re.compile(r"(?<![\w@.])@([A-Za-z][A-Za-z0-9_]{3,31})\b")
TRANSPORT = {
    "transport_boat": "boat",
    "transport_truck": "truck",
    "transport_car": "car",
    "transport_foot": "on_foot",
    "transport_plane": "plane",
}


# A "taxi" boat picks people up off the beach in the water: a taxi there is no car.
_TAXI_BOAT = re.compile(
    r"(?:taxi|taksi|taksî|تاکسی|تاكسي|تكسي)[\s-]*(?:game|geym|gem|boat|بوت|گەیم|گیم|جيم|qeyik|bot)",
    re.IGNORECASE,
)


def transport_modes(cues: list[CueMatch], lowered: str) -> list[str]:
    """Transport modes the cues name, in order; a taxi boat counts as a boat, not a car."""
    taxi_boat = _TAXI_BOAT.search(lowered) is not None
    modes = []
    for cue in cues:
        if cue.cue not in TRANSPORT:
            continue
        if (
            taxi_boat
            and cue.cue == "transport_car"
            and fold(cue.text) in ("taxi", "taksi", "taksî", "تاکسی", "تاكسي", "تكسي")
        ):
            modes.append("boat")
        else:
            modes.append(TRANSPORT[cue.cue])
    return list(dict.fromkeys(modes))


@dataclass
class Price:
    amount: float
    currency: str
    text: str


@dataclass
class Entities:
    phones: list[str] = field(default_factory=list)  # E.164
    links: list[str] = field(default_factory=list)  # messenger links, without scheme
    handles: list[str] = field(default_factory=list)  # lowercase, without @
    prices: list[Price] = field(default_factory=list)
    places: list[str] = field(default_factory=list)  # gazetteer ids, in order of mention
    origin: str | None = None
    destination: str | None = None
    transport: list[str] = field(default_factory=list)
    guarantees: list[str] = field(default_factory=list)
    payment_terms: list[str] = field(default_factory=list)
    # Added later: rows stored before lack these keys, so readers use .get().
    payments: list[str] = field(default_factory=list)  # payment offices, canonical names
    wallets: list[str] = field(default_factory=list)  # "usdt-trc20:T…"
    legs: list[dict[str, Any]] = field(default_factory=list)  # {"origin", "destination", "prices"}

    @property
    def contacts(self) -> list[str]:
        return self.phones + [f"@{h}" for h in self.handles] + self.links

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "contacts": self.contacts}


def _amount(raw: str, mult: str | None) -> float | None:
    digits = raw.replace(" ", "").replace("'", "")
    if re.fullmatch(r"\d{1,3}([.,]\d{3})+", digits):
        digits = re.sub(r"[.,]", "", digits)  # thousands separators
    try:
        value = float(digits.replace(",", "."))
    except ValueError:
        return None
    value *= _MULTIPLIERS.get((mult or "").lower(), 1)
    return value if math.isfinite(value) else None  # hundreds of digits are no price


def prices_in(text: str) -> list[Price]:
    found: list[Price] = []
    # A currency sign belongs to one amount: "2000 £ 25 people" is £2000, not £25 as well.
    signs: list[tuple[int, int]] = []
    for regex in (_PRICE_AFTER, _PRICE_BEFORE):
        for m in regex.finditer(text):
            currency = next((code for code, _ in CURRENCIES if m.group(code)), None)
            if currency is None:
                continue
            sign = m.span(currency)
            if any(start < sign[1] and sign[0] < end for start, end in signs):
                continue
            amount = _amount(m.group("num"), m.group("mult"))
            if amount and amount >= 10:
                signs.append(sign)
                price = Price(amount, currency, m.group(0).strip())
                if all((p.amount, p.currency) != (price.amount, price.currency) for p in found):
                    found.append(price)
    return found


def phones_in(text: str, lang: str | None = None) -> list[str]:
    text = re.sub(r"(?<![\d+])00(?=[1-9]\d{7,})", "+", text)  # 0044… → +44…
    found: list[str] = []
    for region in (None, REGION_BY_LANG.get(lang or "")):
        if region is None and "+" not in text:
            continue
        # With a country code, a plausible length is enough (ranges change faster than the
        # library); a local number must be valid for the region we guess.
        leniency = phonenumbers.Leniency.POSSIBLE if region is None else phonenumbers.Leniency.VALID
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=leniency):
            number = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            if number not in found:
                found.append(number)
    # wa.me/<digits> links carry the number too.
    for digits in re.findall(r"wa\.me/\+?(\d{8,15})", text):
        try:
            number = phonenumbers.format_number(
                phonenumbers.parse("+" + digits), phonenumbers.PhoneNumberFormat.E164
            )
        except phonenumbers.NumberParseException:
            continue
        if number not in found:
            found.append(number)
    return found


# OCR misreads a number's leading "+" as 1, 4, *, #, t or ł, and W as VV.
_MISREAD_PLUS = re.compile(r"(?<![\w+])[14*#tł]\s?(?P<number>[1-9]\d{0,3}(?:[\s.-]?\d{2,4}){2,4})(?!\d)")


def repair_ocr_text(text: str) -> str:
    """Text read in an image, with the misreadings that hide contacts undone: a number
    whose first character was a misread "+" gets it back when the digits after it form a
    valid international number (phonenumbers' check keeps chance digit runs as they were)."""
    text = re.sub(r"VV(?=[a-z])", "W", text)

    def plus(match: re.Match[str]) -> str:
        number = match.group("number")
        try:
            valid = phonenumbers.is_valid_number(phonenumbers.parse("+" + re.sub(r"\D", "", number)))
        except phonenumbers.NumberParseException:
            valid = False
        return "+" + number if valid else match.group(0)

    return _MISREAD_PLUS.sub(plus, text)


def extract(text: str, lang: str | None = None, cues: list[CueMatch] | None = None) -> Entities:
    clean = normalize(text)
    lowered = fold(clean)
    cues = cues if cues is not None else find_cues(clean)
    places = places_in(clean)
    entities = Entities(
        phones=phones_in(clean, lang),
        links=list(
            dict.fromkeys(re.sub(r"^https?://", "", m.group(0)).rstrip(".") for m in _LINK.finditer(clean))
        ),
        handles=list(dict.fromkeys(h.lower() for h in _HANDLE.findall(clean))),
        prices=prices_in(lowered),
        places=places,
        transport=transport_modes(cues, lowered),
        guarantees=list(dict.fromkeys(c.text for c in cues if c.cue == "guarantee")),
        payment_terms=list(dict.fromkeys(c.text for c in cues if c.cue == "pay_after_arrival")),
    )
    entities.legs = [leg.to_json() for leg in legs_in(lowered)]
    if entities.legs:
        entities.origin, entities.destination = entities.legs[0]["origin"], entities.legs[0]["destination"]
    entities.payments = payment_offices_in(clean)
    entities.wallets = wallets_in(clean)
    return entities


__all__ = ["Entities", "Price", "extract", "phones_in", "prices_in", "repair_ocr_text", "route"]
