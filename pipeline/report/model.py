"""The report's figures: plain values, computed once by `figures.collect`, read by the
charts and the templates."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Totals:
    posts: int
    analysed: int
    flagged: int
    channels: int
    platforms: int
    contacts: int
    clusters: int
    referrals: int
    sent: int  # referrals a platform has received
    removed: int
    online: int
    removal_rate: float | None  # removed / sent
    median_hours_to_removal: float | None
    first_published: str | None  # ISO dates of the flagged adverts
    last_published: str | None


@dataclass(frozen=True, slots=True)
class Series:
    platform: str
    counts: list[int]  # one per bucket


@dataclass(frozen=True, slots=True)
class Timeline:
    granularity: str  # "day", "week" (buckets are Mondays) or "month"
    buckets: list[str]  # ISO dates, first day of each bucket
    series: list[Series]
    total: list[int]


@dataclass(frozen=True, slots=True)
class Language:
    lang: str  # "" for the "Other" group
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class Route:
    origin: str | None
    destination: str | None
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class RoutePrice:
    origin: str | None
    destination: str | None
    label: str
    median_eur: int
    p25_eur: int | None  # the middle half of prices, when there are two or more
    p75_eur: int | None
    n: int  # adverts on the route with a price


@dataclass(frozen=True, slots=True)
class Contact:
    contact: str
    posts: int
    channels: int
    platforms: list[str]
    last_seen: str | None


@dataclass(frozen=True, slots=True)
class Channel:
    platform: str
    channel: str
    adverts: int
    contacts: int
    last_seen: str | None


@dataclass(frozen=True, slots=True)
class Cluster:
    cluster_id: str
    copies: int
    channels: int
    platforms: list[str]
    example_url: str | None  # the earliest copy
    example_text: str
    first_seen: str | None
    last_seen: str | None


@dataclass(frozen=True, slots=True)
class PlatformOutcomes:
    platform: str
    counts: dict[str, int]  # status → referrals, statuses with none left out
    total: int


@dataclass(frozen=True, slots=True)
class Outcomes:
    statuses: list[str]  # those present, in the order of `figures.STATUSES`
    by_status: dict[str, int]
    by_platform: list[PlatformOutcomes]


@dataclass(frozen=True, slots=True)
class PlatformRemoval:
    platform: str
    median_hours: float | None
    n: int


@dataclass(frozen=True, slots=True)
class RemovalBin:
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class Removal:
    median_hours: float | None
    n: int  # removed posts with both a referral and a removal time
    by_platform: list[PlatformRemoval]
    distribution: list[RemovalBin]


@dataclass(frozen=True, slots=True)
class PlatformAnswer:
    """How many of a platform's referrals ended one way, and how long the answer took."""

    platform: str
    kind: str  # removed, account_suspended, restricted, rejected, online, pending
    label: str
    n: int
    median_hours: float | None  # from referral to the answer; None for online and pending


@dataclass(frozen=True, slots=True)
class Figures:
    generated_at: str
    version: str
    period: str | None
    totals: Totals
    timeline: Timeline
    languages: list[Language]
    routes: list[Route]
    prices: list[RoutePrice]
    contacts: list[Contact]
    channels: list[Channel]
    clusters: list[Cluster]
    outcomes: Outcomes
    removal: Removal
    answers: list[PlatformAnswer]  # by platform (most referrals first), then in `figures.KINDS` order
