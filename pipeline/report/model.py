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
    referrals: int  # confirmed by an analyst, referred or not (not the rejected)
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
    trends: TrendFigures | None = None
    networks: list[NetworkRow] | None = None  # None: networks could not be read


@dataclass(frozen=True, slots=True)
class PricePoint:
    """One route's median price in one month."""

    route: str
    month: str  # "2026-09"
    median_eur: float
    posts: int  # posts with a price on the route that month
    currency: str | None
    median_in_currency: float | None


@dataclass(frozen=True, slots=True)
class RouteTerms:
    """How a route is offered over the period: transport modes and terms, in posts."""

    route: str
    posts: int
    transport: dict[str, int]
    guarantees: int
    payment_terms: int
    payment_offices: dict[str, int]


@dataclass(frozen=True, slots=True)
class NewTerm:
    term: str
    posts: int
    baseline_posts: int
    sources: int
    score: float
    example_url: str | None


@dataclass(frozen=True, slots=True)
class NewRoute:
    route: str
    posts: int
    sources: int
    first_seen: str
    median_eur: float | None


@dataclass(frozen=True, slots=True)
class TrendFigures:
    period: str  # what new terms and routes were measured on
    baseline: str  # "2026-08-01 to 2026-10-31"
    baseline_posts: int
    prices: list[PricePoint]  # the top routes, month by month
    routes: list[RouteTerms]
    new_terms: list[NewTerm]
    new_routes: list[NewRoute]


@dataclass(frozen=True, slots=True)
class NetworkRow:
    network_id: str
    sources: list[str]
    contacts: int
    flagged_posts: int
    first_seen: str | None  # ISO dates
    last_seen: str | None
    routes: list[str]  # top routes, labelled
    price_range_eur: tuple[float, float] | None
