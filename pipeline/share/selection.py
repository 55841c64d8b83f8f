"""What is shared: flagged posts only (never one an analyst rejected, never the text of an
unflagged post), the accounts that posted them, the contacts, payment offices and wallets they
give (never a hotline the configuration lists: an NGO's number is not a smuggler's), the images
read in them, and the networks they belong to."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.intel.networks import (
    UnknownNetworkError,
    find_networks,
    hotline_members,
    member,
    merged_ids,
    route_words,
    stored_networks,
    surviving_id,
)
from pipeline.report.period import bounds, check_span
from vigie.store import DECIDED
from vigie.store.media import media_of
from vigie.store.sharing import shareable_posts

if TYPE_CHECKING:
    from pipeline.intel.networks import Network
    from vigie.config import VigieConfig
    from vigie.store import Store


@dataclass(frozen=True, slots=True)
class SharedImage:
    sha256: str
    content_type: str | None
    ocr_text: str | None  # None when texts are not shared
    url: str | None


@dataclass(slots=True)
class SharedPost:
    key: str
    platform: str
    channel: str
    post_id: str
    url: str
    text: str | None  # None when texts are not shared, or the post was minimised
    text_sha256: str  # of the stored text, UTF-8
    page_sha256: str  # the markup the post was read from (frozen at referral); "" for imports
    content_sha256: str  # the stored post's content (vigie.store.content_sha256)
    published_at: str | None
    captured_at: str
    first_seen: str
    updated_at: str
    author_name: str | None
    lang: str | None
    score: float
    cluster_id: str | None
    phones: list[str]
    handles: list[str]
    links: list[str]
    payments: list[str]
    wallets: list[str]
    images: list[SharedImage]
    referral_status: str | None
    notice_id: str | None
    review_decision: str | None
    review_reason: str | None
    review_decided_at: str | None
    networks: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        return f"{self.platform}:{self.channel}"

    @property
    def evidence_sha256(self) -> str:
        """The hash a referral cites: the captured page's, else the stored content's."""
        return self.page_sha256 or self.content_sha256


@dataclass(slots=True)
class Selection:
    period: str | None
    network_id: str | None
    posts: list[SharedPost]
    networks: list[Network]  # those the posts belong to (or the one asked for)
    include_text: bool

    @property
    def sources(self) -> list[str]:
        return sorted({p.source for p in self.posts})

    @property
    def phones(self) -> list[str]:
        return sorted({v for p in self.posts for v in p.phones})

    @property
    def handles(self) -> list[str]:
        return sorted({v for p in self.posts for v in p.handles})

    @property
    def payments(self) -> list[str]:
        return sorted({v for p in self.posts for v in p.payments})

    @property
    def wallets(self) -> list[str]:
        return sorted({v for p in self.posts for v in p.wallets})

    def network_of_source(self, source: str) -> list[str]:
        return [n.network_id for n in self.networks if source in n.sources]


def _strings(entities: dict[str, Any], name: str) -> list[str]:
    values = entities.get(name)
    return [v for v in values if isinstance(v, str) and v] if isinstance(values, list) else []


class Hotlines:
    """The configuration's hotlines, normalised as networks normalise them: a post's
    contact is left out when it is one of them, exactly."""

    def __init__(self, listed: list[str]) -> None:
        self.members = hotline_members(listed)

    def __contains__(self, found: tuple[str, str]) -> bool:
        return member(*found) in self.members


def _shared_post(
    row: dict[str, Any], media: list[dict[str, Any]], hotlines: Hotlines, with_text: bool
) -> SharedPost:
    entities = row["entities"]
    text = row["text"] or ""
    minimised = bool(row.get("minimised"))
    images = [
        SharedImage(
            sha256=m["sha256"],
            content_type=m.get("content_type"),
            ocr_text=(m.get("ocr_text") or None) if with_text and not minimised else None,
            url=m.get("url"),
        )
        for m in media
        if m.get("sha256") and m.get("status") == "fetched"
    ]
    return SharedPost(
        key=row["key"],
        platform=row["platform"],
        channel=row["channel"],
        post_id=str(row["post_id"]),
        url=row["url"],
        text=text if with_text and not minimised and text else None,
        text_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        page_sha256=row["evidence_sha256"] or row["payload_sha256"] or "",
        content_sha256=row["content_sha256"] or "",
        published_at=row["published_at"],
        captured_at=row["captured_at"],
        first_seen=row["first_seen"],
        updated_at=row["updated_at"],
        author_name=row["author_name"],
        lang=row["lang"],
        score=float(row["score"]),
        cluster_id=row["cluster_id"],
        phones=[v for v in _strings(entities, "phones") if ("phone", v) not in hotlines],
        handles=[v.lower() for v in _strings(entities, "handles") if ("handle", v) not in hotlines],
        links=[v for v in _strings(entities, "links") if ("link", v) not in hotlines],
        payments=_strings(entities, "payments"),
        wallets=_strings(entities, "wallets"),
        images=images,
        referral_status=row["referral_status"],
        notice_id=row["notice_id"],
        review_decision=row["review_decision"],
        review_reason=row["review_reason"],
        review_decided_at=row["decided_at"],
    )


def select(
    store: Store, config: VigieConfig, period: str | None = None, network_id: str | None = None
) -> Selection:
    """The flagged posts published in `period` (2026, 2026-Q3, 2026-11, 2026-11-05) or all,
    of one network or all, with what partners receive of them. A network merged into
    another is followed to the one that absorbed it."""
    start = end = None
    if period:
        period = check_span(period)
        first, after = bounds(period)
        start, end = first.isoformat(), after.isoformat()
    else:
        period = None
    networks = stored_networks(store) or find_networks(store, config)
    keys = None
    if network_id is not None:
        network_id = surviving_id(merged_ids(store), network_id)
        networks = [n for n in networks if n.network_id == network_id]
        if not networks:
            raise UnknownNetworkError(f"no network {network_id!r} (see `vigie networks`)")
        keys = networks[0].post_keys
    rows = shareable_posts(store, DECIDED, start, end, keys)
    media = media_of(store, [r["key"] for r in rows])
    hotlines = Hotlines(config.networks.hotlines)
    with_text = config.sharing.include_text
    shared = [_shared_post(r, media.get(r["key"], []), hotlines, with_text) for r in rows]
    by_key = {p.key: p for p in shared}
    kept: list[Network] = []
    for network in networks:
        members = [by_key[k] for k in network.post_keys if k in by_key]
        for post in members:
            post.networks.append(network.network_id)
        if members or network_id is not None:
            kept.append(network)
    return Selection(
        period=period, network_id=network_id, posts=shared, networks=kept, include_text=with_text
    )


def network_summary(network: Network) -> str:
    """A network's profile in a few lines: what an analyst's assessment of it rests on."""
    contacts = sum(len(network.members.get(kind, [])) for kind in ("phone", "handle", "link"))
    lines = [
        f"Smuggling network {network.network_id}: {len(network.sources)} sources "
        f"({', '.join(network.sources)}), {network.flagged_posts} flagged posts, {contacts} contacts, "
        f"seen from {network.first_seen} to {network.last_seen}.",
    ]
    routes = [f"{route_words(r)} ({r.get('posts', 0)} posts)" for r in network.routes]
    if routes:
        lines.append("Routes: " + "; ".join(routes) + ".")
    prices = [
        f"{p.get('month')} {p.get('route', '')}: median {p.get('median')} {p.get('currency', '')}".strip()
        for p in network.prices
    ]
    if prices:
        lines.append("Prices: " + "; ".join(prices) + ".")
    for label, counts in (
        ("Transport", network.transport),
        ("Payment terms", network.payment_terms),
        ("Referral outcomes", network.referral_outcomes),
    ):
        if counts:
            lines.append(f"{label}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ".")
    for kind, label in (("payment", "Payment offices"), ("wallet", "Wallets")):
        if network.members.get(kind):
            lines.append(f"{label}: {', '.join(network.members[kind])}.")
    return "\n".join(lines)
