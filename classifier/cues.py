"""Cues: what in a post an analyst can point at — contacts, prices, routes, and words that
offer, guarantee or warn. They explain a decision and are features of the classifier.

Phrases come from classifier/data/cues.yaml (per cue, per language); contacts and prices
are patterns; routes need two places from the gazetteer (pipeline/data/gazetteer.yaml).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from classifier.normalize import normalize
from classifier.phrases import PhraseMatcher

PHRASE_CUES = (
    "guarantee",
    "pay_after_arrival",
    "offer",
    "crossing",
    "transport_boat",
    "transport_truck",
    "transport_car",
    "transport_foot",
    "transport_plane",
    "documents",
    "forged",
    "warning",
    "news",
    "question",
    "legal_service",
)
PATTERN_CUES = ("phone", "messenger_link", "handle", "price", "route")
CUE_NAMES = PATTERN_CUES + PHRASE_CUES

_CURRENCY = (
    r"€|£|\$|usd|eur|euros?|dollars?|dolar|dolar[ıi]|pounds?|gbp|sterlin|lira|tl|₺|dinars?|dinar[ıi]|"
    r"toman|tomans?|afghanis?|afs|rupees?|rs|birr|nakfa|sar|aed|riyals?|dirhams?|lek|leke|đô|usdt|"
    r"doolar|doollar|shilin|evro|triệu đồng|usd|"
    r"يورو|دولار|دينار|ليرة|جنيه|باوند|تومان|تومن|افغانی|روپے|روپیه|روپیہ|یورو|دلار|ډالر|ڈالر|یۆرۆ|دۆلار|"
    r"دینار|پاوەند|پوند|لیره|لیرە|ریال|درهم|ዩሮ|ዶላር|ብር|ናቕፋ"
)
_AMOUNT = r"\d[\d.,' ]{0,9}\d?\s?(?:k|bin|mil|m|hezar|هزار|ألف|الف|میلیون|ھەزار|هەزار|ሺ|triệu|kun)?"
_PRICE = re.compile(
    rf"(?:(?:{_CURRENCY})\s?{_AMOUNT})|(?:{_AMOUNT}\s?(?:{_CURRENCY}))(?![^\W\d_])", re.IGNORECASE
)
_PHONE = re.compile(r"(?<![\w/])\+?\d[\d \-.()]{7,18}\d(?!\w)")
_LINK = re.compile(
    r"(?:wa\.me|chat\.whatsapp\.com|api\.whatsapp\.com|t\.me|telegram\.me|signal\.me|viber\.click|m\.me)/\S+",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
_HANDLE = re.compile(r"(?<![\w@.])@[A-Za-z][A-Za-z0-9_]{3,31}\b")
# What reaching the seller takes: a number, a messenger link or a handle.
CONTACT_PATTERNS = (_LINK, _HANDLE, _PHONE)


@dataclass(frozen=True, slots=True)
class CueMatch:
    cue: str
    text: str


def _data_file(package: str, *parts: str) -> Path:
    # Data ships inside the packages (see package-data in pyproject.toml).
    return Path(__file__).resolve().parent.parent.joinpath(package, *parts)


_FOLD = str.maketrans({"ي": "ی", "ى": "ی", "ك": "ک", "İ": "i"})


def fold(text: str) -> str:
    """Lowercase for matching: Arabic-keyboard ي/ك match Persian-keyboard ی/ک, and
    Turkish capital İ lowercases to a plain i."""
    return text.translate(_FOLD).lower()


def lexicon_files() -> list[Path]:
    """The data files cue features are computed from (a change means retraining)."""
    return [_data_file("classifier", "data", "cues.yaml"), _data_file("pipeline", "data", "gazetteer.yaml")]


def phrase_trie(phrases: set[str]) -> str:
    """One pattern matching any of `phrases`, shaped as a prefix tree: the regex engine
    then reads each position once instead of trying thousands of alternatives."""
    root: dict[str, Any] = {}
    for phrase in phrases:
        node = root
        for ch in phrase:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [
            (r"\s+" if ch == " " else re.escape(ch)) + build(child)
            for ch, child in sorted(node.items())
            if ch
        ]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body  # greedy: the longest phrase wins

    return build(root)


def _load_yaml(path: Path) -> Any:
    # libyaml's safe loader where PyYAML has it: the gazetteer loads in a sixth of the time.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)


PLACES = "places"  # the matcher's lexicon of place names, beside one per phrase cue


@cache
def _matcher() -> tuple[PhraseMatcher, dict[str, str]]:
    """One matcher for every phrase cue and every place name, and each name's place id."""
    path = lexicon_files()[0]
    data: dict[str, Any] = _load_yaml(path) if path.is_file() else {}
    lexicons: dict[str, set[str]] = {}
    for cue in PHRASE_CUES:
        phrases = {fold(normalize(str(p))) for lang in (data.get(cue) or {}).values() for p in lang or []}
        lexicons[cue] = {p for p in phrases if len(p) >= 2}
    by_name = place_names()
    lexicons[PLACES] = set(by_name)
    return PhraseMatcher(lexicons), by_name


@cache
def gazetteer() -> dict[str, dict[str, Any]]:
    """The gazetteer's places by id ("tr-izmir": name, type, country, lat, lon, names)."""
    path = lexicon_files()[1]
    if not path.is_file():
        return {}
    data = _load_yaml(path) or {}
    return {str(p["id"]): p for p in data.get("places", [])}


@cache
def place_names() -> dict[str, str]:
    """Every name of every place, normalised and lowercased (two characters or more), and
    its place id; a name two places share belongs to the first."""
    by_name: dict[str, str] = {}
    for place in gazetteer().values():
        for names in (place.get("names") or {}).values():
            for name in names or []:
                key = fold(normalize(str(name)))
                if len(key) >= 2:
                    by_name.setdefault(key, str(place["id"]))
    return by_name


def place_name(place_id: str | None) -> str | None:
    """A place's display name ("tr-izmir" → "Izmir"); an id the gazetteer lacks, as it is."""
    if not place_id:
        return None
    return str(gazetteer().get(place_id, {}).get("name") or place_id)


def route_label(origin: str | None, destination: str | None) -> str | None:
    """How a route between two place ids reads to a person (`route_text` of their names)."""
    return route_text(place_name(origin), place_name(destination))


def route_text(start: str | None, end: str | None) -> str | None:
    """ "Calais → United Kingdom", or with one end unknown "to United Kingdom" / "from
    Turkey"; None with neither."""
    if start and end:
        return f"{start} → {end}"
    if end:
        return f"to {end}"
    return f"from {start}" if start else None


def place_mentions(lowered: str) -> list[tuple[str, int]]:
    """(place id, position) for each mention in normalised, lowercased text."""
    matcher, by_name = _matcher()
    return [(by_name[m.phrase], m.start) for m in matcher.find(lowered)[PLACES]]


def places_in(text: str) -> list[str]:
    """Place ids mentioned in `text`, in order of first mention."""
    return list(dict.fromkeys(place for place, _ in place_mentions(fold(normalize(text)))))


def find_cues(text: str) -> list[CueMatch]:
    """Every cue in `text` (normalised first), at most three matches per cue."""
    clean = normalize(text)
    lowered = fold(clean)
    out: list[CueMatch] = []

    def add(cue: str, matches: list[str]) -> None:
        out.extend(CueMatch(cue, m.strip()) for m in dict.fromkeys(matches) if m.strip())

    digits = _DIGIT.search(clean) is not None  # phones and prices need one
    phones = (
        [m.group(0) for m in _PHONE.finditer(clean) if 9 <= sum(ch.isdigit() for ch in m.group(0)) <= 15]
        if digits
        else []
    )
    add("phone", phones[:3])
    add("messenger_link", [m.group(0) for m in _LINK.finditer(clean)][:3])
    add("handle", [m.group(0) for m in _HANDLE.finditer(clean)][:3])
    prices = _PRICE.finditer(lowered) if digits else ()
    add("price", [m.group(0) for m in prices if any(ch.isdigit() for ch in m.group(0))][:3])
    matcher, by_name = _matcher()
    found = matcher.find(lowered)
    # Places are looked up in the text normalised once more, as places_in(clean) would.
    again = fold(normalize(clean))
    mentions = found[PLACES] if again == lowered else matcher.find(again)[PLACES]
    places = list(dict.fromkeys(by_name[m.phrase] for m in mentions))
    if len(places) >= 2:
        add("route", [" → ".join(places[:3])])
    for cue in PHRASE_CUES:
        add(cue, [lowered[m.start : m.end] for m in found[cue][:3]])
    return out


def cue_vector(matches: list[CueMatch]) -> list[float]:
    present = {m.cue for m in matches}
    return [1.0 if name in present else 0.0 for name in CUE_NAMES]
