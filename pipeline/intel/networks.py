"""Smuggling networks: sources (channels, accounts) linked by what their flagged posts share.

INTERFACE STUB: the types and signatures below are what other modules use; the bodies are
being written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vigie.config import VigieConfig
    from vigie.store import Store

# Member kinds, in the order profiles list them.
KINDS = ("source", "phone", "handle", "link", "payment", "wallet", "cluster", "image")


@dataclass
class Link:
    """Why two sources are in one network: what they share and what it weighs."""

    a: str  # "telegram:channel"
    b: str
    via: list[str]  # members, as "kind:value"
    weight: float


@dataclass
class Network:
    network_id: str  # stable: "net-" + 12 hex digits
    first_seen: str  # ISO 8601 UTC: the earliest flagged post of its sources
    last_seen: str
    sources: list[str]  # "platform:channel", sorted
    members: dict[str, list[str]]  # kind -> values (see KINDS); "source" is `sources`
    links: list[Link]
    post_keys: list[str]  # its flagged posts
    flagged_posts: int
    languages: dict[str, int]  # lang -> flagged posts
    routes: list[dict[str, Any]]  # {"origin", "destination", "origin_name", "destination_name", "posts"}
    prices: list[
        dict[str, Any]
    ]  # {"month": "2026-09", "route": "fr → gb", "currency", "min", "max", "median", "median_eur", "posts"}
    transport: dict[str, int]
    guarantees: dict[str, int]
    payment_terms: dict[str, int]
    referral_outcomes: dict[str, int]  # referral status or platform outcome -> items
    platforms: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass
class Refresh:
    """What one refresh of the stored networks changed."""

    networks: list[Network]
    new: list[Network]  # networks not stored before
    joined: list[tuple[str, str, str]]  # (network_id, kind, value) new in a known network
    merged: list[tuple[str, str]]  # (absorbed id, surviving id)


def find_networks(store: Store, config: VigieConfig) -> list[Network]:
    """The networks in the store now, with ids reconciled against the stored ones (read only)."""
    raise NotImplementedError


def refresh(store: Store, config: VigieConfig) -> Refresh:
    """Recompute the networks and store them: ids, members (with when each joined), profiles."""
    raise NotImplementedError


def stored_networks(store: Store) -> list[Network]:
    """The networks as last refreshed, without recomputing."""
    raise NotImplementedError
