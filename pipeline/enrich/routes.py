"""Routes in an advert: where a trip leaves from and where it arrives, one leg per line or
segment, each with the prices written on it.

Places come from the gazetteer, as names in the post's languages (with the case endings
Turkish and Kurmanji add: "İzmir'den", "Dunkirkê") or as flag emoji. What marks an end:
words before a place ("from"/"to", "ji"/"bo", "nga"/"në", "من"/"الى", "từ"/"sang", ...),
endings after it (Turkish -den/-ya, Sorani -ەوە, Pashto ته, Urdu سے/تک) and arrows between
two places; a left arrow reads backwards in left-to-right text and forwards in
right-to-left text, where it points at what comes next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from classifier.cues import fold, gazetteer, phrase_trie, place_names
from classifier.normalize import normalize

FROM, TO, VIA, AT = "from", "to", "via", "at"

# Marker words written before a place. Latin-script words count only as whole words; the
# one-letter Arabic ل and the Ge'ez ከ/ካብ/ናብ attach to the name itself.
_BEFORE_LATIN = {
    FROM: "from|out of|leaving|de|du|des|depuis|d'|d’|von|ab|aus|da|dal|dalla|nga|prej|ji|ka|kaga|laga|"
    "từ|tu|az|men|min|mn|3an",
    TO: "to|towards|into|for|vers|en|au|aux|pour|à|jusqu'à|jusqu’à|nach|per|verso|në|ne|drejt|bo|ber bi|"
    "berbi|heta|ta|sang|đến|tới|toi|ilaa|ila|ela|la|u|be",
    VIA: "via|through|across|par|über|uber|qua|arasından|üzerinden|uzerinden|taree2|tareeq",
    AT: "at|near|bei|près de|pres de|li|le",
}
_BEFORE_OTHER = {
    FROM: "من|از|لە|له|ካብ|ከ",
    TO: "إلى|الى|الي|لـ|ل|نحو|باتجاه|بۆ|به|بە|تا|ናብ|ወደ",
    VIA: "عبر|عن طريق|من طريق|از طریق|له لارې",
    AT: "ب|في|بـ|لای|لە نزیک|نزدیک",
}
# Letters a name written without spaces may carry before it (prepositions, "and") or after
# it (Sorani endings); other letters around it mean the name is part of another word.
_ATTACHED_BEFORE = re.compile(r"(?:^|[^\w])(?:و|ل|لل|ب|ف|وب|ول|ከ|ካብ|ናብ|በ|ወደ)?$")
_ATTACHED_AFTER = re.compile(r"^(?:[^\w]|$|ەوە|وە|دا|ی\b|ە\b|ێ\b|یش\b)")
_ARTICLES = r"(?:\s+(?:the|la|le|les|l'|l’|el|al))?"
# Case endings after a Latin-script name, and postpositions after any name.
_SUFFIX_FROM = r"dan|den|tan|ten|ndan|nden"
_SUFFIX_TO = r"ya|ye|a|e|na|ne"
# Endings that mark no direction (Kurmanji oblique -ê, Albanian -ë, Turkish -de "in").
_SUFFIX_NEUTRAL = r"ê|yê|ë|ës|in|ın|un|ün|da|de|ta|te|ê"
_AFTER_OTHER = {FROM: r"^(?:ەوە|وە|ەوه|\s+(?:نه|سے|سے))", TO: r"^\s*(?:ته|تک|کو|ته\b)"}
# Arrows: right arrows point at the destination; left arrows at the origin in left-to-right
# text, at the destination in right-to-left text.
_RIGHT_ARROWS = "→|->|➡️|➡|⇒|=>|⟶|>>"
_LEFT_ARROWS = "←|<-|⬅️|⬅|⇐|⟵|<<"
_ARROW = re.compile(rf"(?P<right>{_RIGHT_ARROWS})|(?P<left>{_LEFT_ARROWS})")
_RTL = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")
# What a leg is read from: each line, and each part of a line a list separates.
_SEGMENT = re.compile(r"\n|\s[|•·;/]\s|\s\|\s*|(?<=\d)\s*[|•·;]\s*")
# Contacts and links name places inside them (@dunkirk_taxi_game): blanked before matching.
_NOT_TEXT = re.compile(r"https?://\S+|(?:wa\.me|t\.me|telegram\.me)/\S+|@[\w.]+|#\w+|\S+@\S+")
_FLAG = re.compile(
    r"[\U0001f1e6-\U0001f1ff]{2}|\U0001f3f4\U000e0067\U000e0062(?:\U000e0065\U000e006e\U000e0067|\U000e0073\U000e0063\U000e0074|\U000e0077\U000e006c\U000e0073)\U000e007f"
)
_SUBDIVISION_FLAGS = {"\U0001f3f4\U000e0067\U000e0062": "gb"}


@dataclass(frozen=True, slots=True)
class Mention:
    place: str
    start: int
    end: int
    hint: str | None = None  # FROM/TO from a case ending or postposition
    flag: bool = False


@dataclass
class Leg:
    origin: str | None
    destination: str | None
    prices: list[dict[str, Any]] = field(default_factory=list)  # {"amount", "currency", "text"}

    def to_json(self) -> dict[str, Any]:
        return {"origin": self.origin, "destination": self.destination, "prices": self.prices}


def country_of(place: str | None) -> str | None:
    """The country a place is in ("fr-dunkirk" → "fr"); a region across countries is its own."""
    if not place:
        return None
    entry = gazetteer().get(place)
    if entry is None:
        return place
    return str(entry.get("country") or place)


def _is_latin(name: str) -> bool:
    return all(
        not ch.isalpha() or ch.isascii() or "\u00c0" <= ch <= "\u024f" or "\u1e00" <= ch <= "\u1eff"
        for ch in name
    )


@cache
def _matchers() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], dict[str, str]]:
    names = place_names()
    by_name = dict(names)
    for key, place_id in names.items():
        if len(key) >= 5 and key.endswith("e") and _is_latin(key):
            by_name.setdefault(key[:-1] + "ê", place_id)  # Kurmanji: Tirkiye → Tirkiyê
    latin = {n for n in by_name if _is_latin(n)}
    other = set(by_name) - latin
    bounded = r"(?<![^\W_])(?P<name>{})(?![^\W_])"
    exact = re.compile(bounded.format(phrase_trie(latin)))
    # A case ending only after names long enough not to be read inside another word.
    inflected = re.compile(
        rf"(?<![^\W_])(?P<name>{phrase_trie({n for n in latin if len(n) >= 4})})['’]?(?:(?P<from>{_SUFFIX_FROM})|(?P<to>{_SUFFIX_TO})|{_SUFFIX_NEUTRAL})(?![^\W_])"
    )
    attached = re.compile(f"(?P<name>{phrase_trie(other)})")
    return exact, inflected, attached, by_name


@cache
def _arrow_names() -> tuple[re.Pattern[str] | None, dict[str, str]]:
    """Names a place has only beside a route arrow or after "sang" ("Calais → Anh", "sang
    Anh"): elsewhere the same letters are a common word."""
    by_name = {
        fold(normalize(str(name))): str(place["id"])
        for place in gazetteer().values()
        for name in place.get("arrow_names") or []
    }
    if not by_name:
        return None, by_name
    names = phrase_trie(set(by_name))
    arrow = f"{_RIGHT_ARROWS}|{_LEFT_ARROWS}"
    after_marker = rf"(?:{arrow}|(?<![^\W_])sang)\s*(?P<after>{names})(?![^\W_])"
    before_arrow = rf"(?<![^\W_])(?P<before>{names})(?=\s*(?:{arrow}))"
    return re.compile(f"{after_marker}|{before_arrow}"), by_name


def _blank(text: str) -> str:
    return _NOT_TEXT.sub(lambda m: " " * len(m.group(0)), text)


def _flag_place(flag: str) -> str | None:
    if flag in _SUBDIVISION_FLAGS or flag.startswith("\U0001f3f4"):
        return "gb"
    code = "".join(chr(ord(ch) - 0x1F1E6 + ord("a")) for ch in flag)
    return code if gazetteer().get(code, {}).get("type") == "country" else None


def mentions(lowered: str) -> list[Mention]:
    """Places in normalised, folded text, in order, each with the ending that marks it."""
    exact, inflected, attached, by_name = _matchers()
    text = _blank(lowered)
    found: list[Mention] = []
    for m in exact.finditer(text):
        place = by_name.get(re.sub(r"\s+", " ", m.group("name")))
        if place:
            found.append(Mention(place, m.start(), m.end()))
    # A whole name beats the same letters read as a shorter name with an ending ("serbi" + "a").
    for m in inflected.finditer(text):
        place = by_name.get(re.sub(r"\s+", " ", m.group("name")))
        if place:
            found.append(
                Mention(place, m.start(), m.end(), FROM if m.group("from") else TO if m.group("to") else None)
            )
    for m in attached.finditer(text):
        place = by_name.get(re.sub(r"\s+", " ", m.group("name")))
        after = text[m.end() : m.end() + 6]
        if not place or not _ATTACHED_BEFORE.search(text[max(0, m.start() - 3) : m.start()]):
            continue
        if not _ATTACHED_AFTER.match(after):
            continue
        hint = next((d for d, rx in _AFTER_OTHER.items() if re.match(rx, after)), None)
        found.append(Mention(place, m.start(), m.end(), hint))
    arrowed, arrow_names = _arrow_names()
    for m in arrowed.finditer(text) if arrowed else ():
        group = "after" if m.group("after") else "before"
        found.append(Mention(arrow_names[m.group(group)], m.start(group), m.end(group)))
    for m in _FLAG.finditer(text):
        place = _flag_place(m.group(0))
        if place:
            found.append(Mention(place, m.start(), m.end(), flag=True))
    # Overlaps: the earliest, then the longest, wins.
    found.sort(key=lambda x: (x.start, -(x.end - x.start)))
    kept: list[Mention] = []
    for mention in found:
        if not kept or mention.start >= kept[-1].end:
            kept.append(mention)
    return _without_echo_flags(kept, text)


def _without_echo_flags(found: list[Mention], text: str) -> list[Mention]:
    """A flag next to a name of a place in its country repeats it ("Izmir 🇹🇷", "Italy 🇮🇹")."""
    out = []
    for i, mention in enumerate(found):
        if mention.flag:
            neighbours = [found[j] for j in (i - 1, i + 1) if 0 <= j < len(found) and not found[j].flag]
            if any(
                country_of(n.place) == country_of(mention.place)
                and not text[min(n.end, mention.end) : max(n.start, mention.start)].strip(" :,.-!")
                for n in neighbours
            ):
                continue
        out.append(mention)
    return out


@cache
def _before_pattern() -> re.Pattern[str]:
    parts = []
    for direction in (FROM, TO, VIA, AT):
        latin = rf"(?<![^\W_])(?:{_BEFORE_LATIN[direction]}){_ARTICLES}"
        other = rf"(?:^|(?<=[\s\W]))(?:{_BEFORE_OTHER[direction]})"
        parts.append(rf"(?P<{direction}>{latin}|{other})")
    return re.compile(rf"(?:{'|'.join(parts)})[\s:]*$")


def _marker(gap: str) -> str | None:
    m = _before_pattern().search(gap[-24:])
    if not m:
        return None
    return next(d for d in (FROM, TO, VIA, AT) if m.group(d))


def _segment_route(segment: str) -> tuple[str | None, str | None, int]:
    """(origin, destination, places named) of one line or list item."""
    found = mentions(segment)
    if not found:
        return None, None, 0
    rtl = bool(_RTL.search(segment))
    marks: list[str | None] = []
    previous_end = 0
    for mention in found:
        gap = segment[previous_end : mention.start]
        mark = _marker(gap)
        if mark is None and mention.hint:
            mark = mention.hint
        marks.append(mark)
        previous_end = mention.end
    arrow_from: list[int] = []
    arrow_to: list[int] = []
    for i in range(len(found) - 1):
        gap = segment[found[i].end : found[i + 1].start]
        arrow = _ARROW.search(gap)
        if not arrow or re.search(r"[^\W\d_]{3,}", gap):
            continue
        forward = bool(arrow.group("right")) or rtl
        a, b = (i, i + 1) if forward else (i + 1, i)
        arrow_from.append(a)
        arrow_to.append(b)
    origin_i = next((i for i, m in enumerate(marks) if m == FROM), None)
    # "to France, then to the UK": the last place gone to is the end, the others stops on the way.
    destination_i = next((i for i in reversed(range(len(marks))) if marks[i] == TO), None)
    if origin_i is None and arrow_from:
        candidates = [i for i in arrow_from if i not in arrow_to] or arrow_from
        origin_i = candidates[0]
    if destination_i is None and arrow_to:
        candidates = [i for i in arrow_to if i not in arrow_from] or arrow_to
        destination_i = candidates[-1]
    origin = found[origin_i].place if origin_i is not None else None
    destination = found[destination_i].place if destination_i is not None else None
    if (
        not arrow_from
        and all(m.flag for m in found)
        and len(found) > 1
        and origin is None
        and destination is None
    ):
        return None, None, 0  # "🇮🇹 Italian, 🇵🇹 Portuguese": a list of flags is no route
    # Flags decorate a line ("🇸🇴 ... Talyaaniga 🇮🇹"): they fill an end the words or arrows
    # left open, or stand for the places of a line that names none.
    names = [m for m in found if not m.flag]
    if origin is None and destination is None and names:
        ordered = names
    else:
        ordered = names + [m for m in found if m.flag]
    unmarked = [m.place for m in ordered if marks[found.index(m)] not in (VIA, AT)]
    places = list(dict.fromkeys(unmarked))
    if origin is None and destination is None and len({country_of(p) for p in places}) == 1:
        places = places[-1:]  # "arrived in the UK, near Dover": where, not a route
    if len(places) >= 2:
        if origin is None:
            gone_to = {m.place for m, mark in zip(found, marks, strict=True) if mark == TO}
            origin = next(
                (p for p in places if p != destination and p not in gone_to and _apart(p, destination)), None
            )
        if destination is None:
            destination = next((p for p in reversed(places) if p != origin and _apart(p, origin)), None)
    elif len(places) == 1 and origin is None and destination is None:
        destination = places[0]
    if origin is not None and origin == destination:
        origin = None
    return origin, destination, len(places)


def _apart(place: str, other: str | None) -> bool:
    """Two ends of a route in different countries, when the other end is known."""
    return other is None or country_of(place) != country_of(other)


def segments(text: str) -> list[str]:
    """The lines of a post, and the items of a list written on one line."""
    return [part for part in _SEGMENT.split(text) if part and part.strip()]


def _prices_of(segment: str) -> list[dict[str, Any]]:
    from pipeline.enrich.entities import prices_in

    return [{"amount": p.amount, "currency": p.currency, "text": p.text} for p in prices_in(segment)]


def legs(text: str) -> list[Leg]:
    """The legs of a post's routes: one per line or list item naming a route, each with the
    prices written on it; a post with a single route has one leg that takes all its prices."""
    lowered = fold(normalize(text))
    found: list[Leg] = []
    complete = 0
    for segment in segments(lowered):
        origin, destination, _ = _segment_route(segment)
        leg = Leg(origin, destination, _prices_of(segment))
        if origin and destination:
            found.append(leg)
            complete += 1
        elif (origin or destination) and leg.prices:
            found.append(leg)  # a price list's line naming one end: "🇬🇧 game: £2,000"
    if len(found) == 1:
        found[0].prices = _prices_of(lowered)
    if complete or len(found) > 1:
        return found  # a price list whose lines name one end each keeps its prices apart
    origin, destination = whole_route(lowered)
    if origin or destination:
        return [Leg(origin, destination, _prices_of(lowered))]
    return []


def whole_route(lowered: str) -> tuple[str | None, str | None]:
    """The route of a post read as one segment: its lines joined."""
    origin, destination, _ = _segment_route(re.sub(r"\s*\n\s*", " · ", lowered))
    return origin, destination


def route(text: str) -> tuple[str | None, str | None]:
    """Origin and destination of a post: its first leg."""
    found = legs(text)
    return (found[0].origin, found[0].destination) if found else (None, None)
