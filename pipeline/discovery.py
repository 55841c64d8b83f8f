"""New sources found from the watched ones: the Telegram channels and other platforms'
accounts that flagged posts forward from, link to or @mention.

A candidate's score counts only flagged posts (sure adverts an analyst has not rejected, and
posts an analyst confirmed) of watched sources (configured or approved):

    score = flagged posts pointing to it + 2 × distinct watched sources they come from

so a channel two sources point to outranks one a single source repeats. Hops: a candidate
reached from a configured source is 1; from a source approved at hop n, n + 1.

Approving a candidate records the evidence it had; approved Telegram channels are crawled
beside the configured ones (`vigie crawl`, `vigie run`, the daemon), other platforms'
accounts are recorded as watched and their posts imported (`vigie import ...`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from vigie import platforms
from vigie.config import VigieConfig
from vigie.store import DECIDED, Store
from vigie.store import discovery as decided_sources
from vigie.store.discovery import AUTOMATIC

log = logging.getLogger(__name__)

EVIDENCE_KEPT = 50  # posts an approval records as its evidence, at most
CRAWLED = ("telegram",)  # the platforms whose approved sources are crawled

_TELEGRAM_HOSTS = ("t.me", "telegram.me", "telegram.dog")
# t.me paths that are not a username: invites, sticker sets, share and proxy links, ...
_TELEGRAM_PATHS = {
    "joinchat", "addstickers", "addemoji", "addtheme", "addlist", "share", "proxy", "socks",
    "iv", "login", "c", "boost", "contact", "setlanguage", "confirmphone", "bg", "invoice",
    "giftcode", "m", "k", "z", "a", "web",
}  # fmt: skip
# First path segments that name a page of the platform, not an account.
_RESERVED = {
    "instagram": {"p", "reel", "reels", "tv", "explore", "stories", "accounts", "direct", "about", "legal"},
    "facebook": {
        "groups", "events", "watch", "marketplace", "photo", "photos", "story", "stories", "sharer",
        "share", "login", "plugins", "dialog", "hashtag", "people", "pages", "permalink", "reel",
        "reels", "help", "privacy", "policies", "gaming", "media", "notes", "l",
    },
    "x": {
        "i", "intent", "share", "home", "search", "hashtag", "explore", "settings", "messages",
        "notifications", "login", "signup", "tos", "privacy", "compose",
    },
}  # fmt: skip
_HOSTS = {
    "tiktok.com": "tiktok",
    "instagram.com": "instagram",
    "facebook.com": "facebook",
    "fb.com": "facebook",
    "x.com": "x",
    "twitter.com": "x",
    "youtube.com": "youtube",
    **dict.fromkeys(_TELEGRAM_HOSTS, "telegram"),
}
_HOST_PATTERN = "|".join(re.escape(h) for h in sorted(_HOSTS, key=len, reverse=True))
# Account URLs written in a post's text, with or without a scheme.
_URL_IN_TEXT = re.compile(
    rf"(?<![\w.@/-])(?:https?://)?(?:(?:www|m|mobile)\.)?(?:{_HOST_PATTERN})/[^\s<>\"'()\[\]{{}}]+",
    re.IGNORECASE,
)
# @name, not inside an e-mail address or a URL path (tiktok.com/@x is a link).
_MENTION = re.compile(r"(?<![\w@./-])@([A-Za-z][A-Za-z0-9_]{3,31})(?![A-Za-z0-9_])")
HOWS = ("forward", "link", "mention")


@dataclass
class Candidate:
    """A source flagged posts point to, with the posts and the watched sources they come from."""

    platform: str
    handle: str
    hops: int
    posts: dict[str, dict[str, Any]] = field(default_factory=dict)  # post URL -> source, ways

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.handle}"

    @property
    def sources(self) -> list[str]:
        return sorted({p["source"] for p in self.posts.values()})

    @property
    def flagged_posts(self) -> int:
        return len(self.posts)

    @property
    def score(self) -> float:
        return float(self.flagged_posts + 2 * len(self.sources))

    def evidence(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The pointing posts: url, source and how each points (forward, link, mention)."""
        rows = [
            {"post": url, "source": p["source"], "how": [h for h in HOWS if h in p["how"]]}
            for url, p in sorted(self.posts.items(), key=lambda kv: (kv[1]["source"], kv[0]))
        ]
        return rows[:limit] if limit is not None else rows

    def to_json(self, evidence_limit: int | None = None) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "handle": self.handle,
            "url": platforms.account_url(self.platform, self.handle),
            "score": self.score,
            "flagged_posts": self.flagged_posts,
            "sources": self.sources,
            "hops": self.hops,
            "evidence": self.evidence(evidence_limit),
        }


# -- where a post points -----------------------------------------------------------------


def _valid(platform: str, name: str) -> tuple[str, str] | None:
    try:
        return platform, platforms.handle(platform, name)
    except ValueError:
        return None


def account_of_url(url: str) -> tuple[str, str] | None:
    """The (platform, handle) an account or post URL names, or None: t.me/NAME, t.me/NAME/ID
    and t.me/s/NAME (not invites: t.me/+..., t.me/joinchat/...), tiktok.com/@NAME,
    youtube.com/@NAME, instagram.com/NAME, facebook.com/NAME, x.com/NAME, twitter.com/NAME."""
    try:
        parts = urlsplit(url.strip() if "://" in url else f"https://{url.strip()}")
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    for prefix in ("www.", "m.", "mobile."):
        host = host.removeprefix(prefix)
    platform = _HOSTS.get(host)
    segments = [s for s in parts.path.split("/") if s]
    if platform is None or not segments:
        return None
    first = segments[0]
    if platform == "telegram":
        if first.lower() == "s" and len(segments) > 1:
            first = segments[1]
        if first.startswith("+") or first.lower() in _TELEGRAM_PATHS:
            return None
        return _valid("telegram", first)
    if platform in ("tiktok", "youtube"):
        return _valid(platform, first[1:]) if first.startswith("@") and len(first) > 1 else None
    if first.lower() in _RESERVED.get(platform, set()) or first.endswith(".php") or first.startswith("@"):
        return None
    return _valid(platform, first)


def _urls_in_text(text: str) -> list[str]:
    return [m.group(0).rstrip(".,;:!?") for m in _URL_IN_TEXT.finditer(text or "")]


def pointers(row: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(platform, handle) -> how the stored post `row` points to it: "forward" (its origin),
    "link" (a URL in its links or text) and "mention" (@name in its text, or its platform's
    mentions). On Telegram, the preview writes each @name as a t.me link too: that link is
    the mention, not a link of its own."""
    found: dict[tuple[str, str], set[str]] = {}
    platform, text = row["platform"], row.get("text") or ""
    if row.get("forwarded_from"):
        origin = account_of_url(row["forwarded_from"])
        if origin is not None and origin[0] == "telegram":
            found.setdefault(origin, set()).add("forward")
    names = list(row.get("mentions") or [])
    if platform == "telegram":
        names += [m.group(1) for m in _MENTION.finditer(text)]
    mentioned = set()
    for name in names:
        account = _valid(platform, name)
        if account is not None:
            found.setdefault(account, set()).add("mention")
            mentioned.add(account)
    written = text.lower()
    for url in [*(row.get("links") or []), *_urls_in_text(text)]:
        account = account_of_url(url)
        if account is None:
            continue
        if account in mentioned and account[0] == "telegram":
            spelled = re.compile(rf"(?:t|telegram)\.(?:me|dog)/(?:s/)?{re.escape(account[1])}(?![a-z0-9_])")
            if not spelled.search(written):
                continue  # the preview's link for the @mention
        found.setdefault(account, set()).add("link")
    return found


# -- candidates --------------------------------------------------------------------------


def watched(config: VigieConfig, store: Store) -> dict[tuple[str, str], int]:
    """(platform, channel) -> hops of every watched source: configured ones (0) and approved ones."""
    found = {
        (d["platform"], d["channel"]): int(d["hops"] or 1)
        for d in decided_sources.decisions(store, "approved")
    }
    found.update({(s.platform, s.channel): 0 for s in config.sources})
    return found


def telegram_channels(config: VigieConfig, store: Store) -> list[str]:
    """The Telegram channels to crawl: the configured ones, then the approved ones."""
    channels = [s.channel for s in config.sources if s.platform == "telegram"]
    for d in decided_sources.decisions(store, "approved"):
        if d["platform"] == "telegram" and d["channel"] not in channels:
            channels.append(d["channel"])
    return channels


def _gather(config: VigieConfig, store: Store) -> dict[tuple[str, str], Candidate]:
    """Every source flagged posts of watched sources point to, watched ones left out."""
    sources = watched(config, store)
    found: dict[tuple[str, str], Candidate] = {}
    for row in decided_sources.flagged_posts_of(store, sources, DECIDED):
        origin = (row["platform"], row["channel"])
        hops = sources[origin] + 1
        for account, hows in pointers(row).items():
            if account in sources or account == origin:
                continue
            candidate = found.get(account)
            if candidate is None:
                candidate = found[account] = Candidate(account[0], account[1], hops)
            candidate.hops = min(candidate.hops, hops)
            entry = candidate.posts.setdefault(
                row["url"], {"source": f"{origin[0]}:{origin[1]}", "how": set()}
            )
            entry["how"] |= hows
    return found


def _ranked(candidates: Iterable[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (-c.score, c.hops, c.platform, c.handle))


def find_candidates(config: VigieConfig, store: Store, min_score: float = 0.0) -> list[Candidate]:
    """Candidates not watched and not dismissed, scoring at least `min_score`, best first."""
    dismissed = {(d["platform"], d["channel"]) for d in decided_sources.decisions(store, "dismissed")}
    return _ranked(
        c
        for account, c in _gather(config, store).items()
        if account not in dismissed and c.score >= min_score
    )


# -- decisions ---------------------------------------------------------------------------


def parse_source(value: str) -> tuple[str, str]:
    """(platform, handle) from PLATFORM:HANDLE, @name or NAME (Telegram), or an account URL
    (t.me/NAME, tiktok.com/@NAME, ...). ValueError says what was expected."""
    text = value.strip()
    expected = "PLATFORM:HANDLE (telegram:name, tiktok:name, ...), @name or an account link such as t.me/name"
    looks_like_url = "/" in text
    if looks_like_url:
        account = account_of_url(text)
        if account is None:
            raise ValueError(f"{value[:80]!r}: not an account link; expected {expected}")
        return account
    if ":" in text:
        platform, _, name = text.partition(":")
        platform = platforms.platform_name(platform)
        return platform, platforms.handle(platform, name)
    return "telegram", platforms.handle("telegram", text)


@dataclass
class Decision:
    platform: str
    handle: str
    status: str
    decided_by: str
    decided_at: str
    candidate: Candidate | None  # what the store held on it when decided
    previous: dict[str, Any] | None  # the decision it replaced, or the same one, unchanged
    changed: bool = True

    @property
    def crawled(self) -> bool:
        return self.platform in CRAWLED


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def decide(config: VigieConfig, store: Store, platform: str, handle: str, status: str, by: str) -> Decision:
    """Approve or dismiss a source, recording its score, hops and evidence as they stand.
    A configured source cannot be decided on (the configuration file decides); deciding
    again what was decided changes nothing."""
    if any((s.platform, s.channel) == (platform, handle) for s in config.sources):
        raise ValueError(
            f"{platform}:{handle} is a configured source; change the configuration's sources: instead"
        )
    previous = decided_sources.decision(store, platform, handle)
    if previous is not None and previous["status"] == status:
        at = previous["decided_at"]
        return Decision(platform, handle, status, previous["decided_by"], at, None, previous, False)
    candidate = _gather(config, store).get((platform, handle))
    return _record(store, platform, handle, status, by, candidate, previous, _now())


def _record(
    store: Store,
    platform: str,
    handle: str,
    status: str,
    by: str,
    candidate: Candidate | None,
    previous: dict[str, Any] | None,
    now: str,
) -> Decision:
    if candidate is not None:
        evidence: dict[str, Any] = {
            "found": True,
            "flagged_posts": candidate.flagged_posts,
            "sources": candidate.sources,
            "posts": candidate.evidence(EVIDENCE_KEPT),
        }
        hops, score = candidate.hops, candidate.score
    elif previous is not None:  # an approved source dismissed (or back): what it was decided on
        evidence, hops, score = previous["evidence"], previous["hops"], previous["score"]
    else:
        evidence, hops, score = {"found": False}, 1, None
    decided_sources.decide(store, platform, handle, status, by, now, int(hops or 1), score, evidence)
    return Decision(platform, handle, status, by, now, candidate, previous)


def follow(config: VigieConfig, store: Store, now: datetime | None = None) -> list[Candidate]:
    """With `discovery.follow`, approve as 'automatic' the candidates scoring at least
    `discovery.min_score` within `discovery.max_hops`, best first, at most
    `discovery.daily_cap` per UTC day (counted in the store, across runs). Each is logged."""
    settings = config.discovery
    if not settings.follow:
        return []
    now = (now or datetime.now(UTC)).astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = (d.isoformat(timespec="seconds") for d in (day, day + timedelta(days=1)))
    room = settings.daily_cap - decided_sources.count_followed_between(store, start, end)
    eligible = [c for c in find_candidates(config, store, settings.min_score) if c.hops <= settings.max_hops]
    followed: list[Candidate] = []
    for candidate in eligible:
        if len(followed) >= room:
            log.info(
                "discovery: the daily cap of %d sources followed is reached; %d more wait (best: %s, score %g)",
                settings.daily_cap,
                len(eligible) - len(followed),
                candidate.key,
                candidate.score,
            )
            break
        at = now.isoformat(timespec="seconds")
        _record(store, candidate.platform, candidate.handle, "approved", AUTOMATIC, candidate, None, at)
        log.info(
            "discovery: following %s automatically: score %g (%d flagged posts from %s), hop %d",
            candidate.key,
            candidate.score,
            candidate.flagged_posts,
            ", ".join(candidate.sources),
            candidate.hops,
        )
        followed.append(candidate)
    return followed
