"""Hostile posts and a store holding them, for the tests of everything that reads posts
back out: the terminal, the spreadsheet exports, the index.

The store is filled the way `vigie run` fills it: posts through `Store.upsert_posts` after
`clean_text`, then `pipeline.enrich.process.process` (entities, reposts, contacts). The trained
classifier is not needed to tell these posts are adverts: `CueRules` flags a post that
gives a contact, with the classifier's own cue finder and language identifier.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from classifier.cues import find_cues
from classifier.langid import identify
from classifier.model import Prediction
from crawlers.pipelines import clean_text
from pipeline.enrich.process import process
from pipeline.refer.review import decide
from vigie.records import Post
from vigie.store import Store, cases

ESC = "\x1b"
# What a post may carry to attack whoever reads it.
TITLE = f"{ESC}]0;pwned\x07"  # sets the terminal's title
CLEAR = f"{ESC}[2J"  # clears the screen
CSI_8BIT = "\x9b31m"  # C1 control sequence introducer
RLO = "\u202e"  # right-to-left override: "gnp.exe" shows as "exe.png"
HANDLE_FORMULA = '@smuggler_boss; t.me/=HYPERLINK("http://evil")'
PHONE = "+90 536 741 22 90"

WA_LINK = f"wa.me/905367412290{TITLE}"  # a messenger link as the entity extractor reads it
HOSTILE_TEXTS = [
    f"Game to UK {TITLE}{CLEAR} yacht from Izmir, 2500€, WhatsApp {PHONE} {HANDLE_FORMULA} {WA_LINK}",
    f"=cmd|' /C calc'!A0 boat Izmir → Italy {RLO}gnp.exe\u202c call {CSI_8BIT}+44 7700 900123 [/b] [link=javascript:alert(1)]book[/link]",
    f"-2+3 truck to Germany\r\n\tpay after arrival \x00\x07\x08 @passage_master {ESC}[31mred{ESC}[0m",
    f"Same boss, another channel {RLO}: {PHONE} {WA_LINK}",
]
# Controls a terminal acts on: C0 but newline and tab, DEL, C1, bidi embeddings/overrides/isolates.
UNSAFE_FOR_TERMINAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class CueRules:
    """Flags a post that gives a phone number, handle or messenger link."""

    def __init__(self) -> None:
        self.meta = {"fingerprint": "cue-rules"}

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        out = []
        for text in texts:
            cues = find_cues(text)
            lang = identify(text)
            advert = any(c.cue in ("phone", "handle", "link") for c in cues)
            out.append(
                Prediction(
                    lang=lang.lang,
                    lang_confidence=lang.confidence,
                    score=0.97 if advert else 0.03,
                    is_advert=advert,
                    cues=[{"cue": c.cue, "text": c.text, "weight": 1.0} for c in cues],
                    decision="advert" if advert else "not_advert",
                )
            )
        return out


def hostile_post(n: int, text: str, channel: str = "hostile_chan", **fields: Any) -> Post:
    return Post(
        platform="telegram",
        channel=channel,
        post_id=n,
        url=f"https://t.me/{channel}/{n}",
        text=text,
        published_at=f"2026-09-{1 + n % 28:02d}T10:00:00+00:00",
        payload_sha256=f"{n:064x}",
        captured_at="2026-10-01T00:00:00+00:00",
        **fields,
    )


def fill_store(path: Path, texts: Sequence[str], confirm: bool = True, clean: bool = True) -> list[str]:
    """Store one post per text (cleaned as the crawler cleans them unless `clean` is off,
    as an older Vigie stored them), process them and confirm the flagged ones for referral.
    Returns the keys of the flagged posts."""
    posts = [
        hostile_post(n, clean_text(text) if clean else text, channel=f"hostile_{n % 2}")
        for n, text in enumerate(texts, 1)
    ]
    with Store(path) as store:
        store.upsert_posts(posts)
        process(store, CueRules(), keep_text=True)  # type: ignore[arg-type]
        flagged = [r["post_key"] for r in cases.flagged_posts(store) if r["is_advert"]]
        if confirm:
            for key in flagged:
                decide(store, key, "confirmed", "offers a crossing", "ana")
    return flagged
