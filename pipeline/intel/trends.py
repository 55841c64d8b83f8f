"""Modus operandi over time, from flagged posts: per route and month the median price in
euros, transport and terms; words rising against the months before (candidate code words);
and routes never seen before.

Routes are read at the country level ("Dunkirk → Dover" is France → United Kingdom), leg
by leg, so each price of a price list goes to its own route. A leg counts once per post; its
price is the first one written on it ("Only 4,800€ (normally 5,500€)" is 4,800).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from classifier.cues import place_name
from pipeline.enrich.routes import country_of
from pipeline.intel.money import to_eur
from pipeline.intel.trend_terms import TermCounts, rising_terms
from pipeline.report.period import bounds, check_span, months_before
from vigie.store import json_object, stored_time

if TYPE_CHECKING:
    from vigie.config import VigieConfig
    from vigie.store import Store


@dataclass(frozen=True, slots=True)
class Post:
    """A flagged post as trends read it."""

    key: str
    source: str  # "platform:channel"
    published: datetime
    lang: str | None
    text: str
    entities: dict[str, Any]

    @property
    def month(self) -> str:
        return self.published.strftime("%Y-%m")


@dataclass
class RouteMonth:
    origin: str
    destination: str
    route: str  # "France → United Kingdom"
    month: str  # "2026-09"
    posts: int
    priced: int  # posts with a price on this route that converts to EUR
    median_eur: float | None
    min_eur: float | None
    max_eur: float | None
    currency: str | None  # the currency most of its prices are in
    median_in_currency: float | None
    transport: dict[str, int]  # mode -> posts
    guarantees: int  # posts offering a guarantee
    payment_terms: int  # posts with a payment arrangement (pay after arrival, an office)
    payment_offices: dict[str, int]
    change_vs_previous: float | None = None  # median vs the route's previous month, as a fraction
    change_vs_first: float | None = None  # vs the route's first month in the period
    example_key: str | None = None


@dataclass
class NewRoute:
    origin: str
    destination: str
    route: str
    posts: int
    sources: int
    first_seen: str
    median_eur: float | None
    example_key: str


@dataclass
class Trends:
    period: str
    start: str  # first day
    end: str  # day after the last
    baseline_start: str
    flagged_posts: int
    baseline_posts: int
    routes: list[RouteMonth]
    new_terms: list[dict[str, Any]]
    new_routes: list[NewRoute]
    generated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def posts_from_rows(rows: list[dict[str, Any]]) -> list[Post]:
    """Store rows as trend posts; a post without a readable date is left out."""
    out = []
    for row in rows:
        published = stored_time(row.get("published_at"))
        if published is None:
            continue
        out.append(
            Post(
                key=str(row["key"]),
                source=f"{row['platform']}:{row['channel']}",
                published=published,
                lang=row.get("lang"),
                text=str(row.get("text") or ""),
                entities=json_object(row.get("entities")),
            )
        )
    return out


def route_label(origin: str | None, destination: str | None) -> str:
    return f"{place_name(origin) or 'unknown'} → {place_name(destination) or 'unknown'}"


def _legs(entities: dict[str, Any]) -> list[dict[str, Any]]:
    """The post's legs; rows stored before legs existed have only origin, destination, prices."""
    legs = entities.get("legs")
    if isinstance(legs, list):
        return [leg for leg in legs if isinstance(leg, dict)]
    if entities.get("origin") or entities.get("destination"):
        return [
            {
                "origin": entities.get("origin"),
                "destination": entities.get("destination"),
                "prices": entities.get("prices") or [],
            }
        ]
    return []


def country_routes(post: Post, partial: bool = False) -> list[tuple[tuple[str, str], list[dict[str, Any]]]]:
    """(origin country, destination country) and the leg's prices, for each leg of the post
    with both ends in different countries; each route once per post. With `partial`, legs
    naming only one end count too, the other end "" ("Game to UK, £1,200": "" → gb)."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for leg in _legs(post.entities):
        origin, destination = country_of(leg.get("origin")), country_of(leg.get("destination"))
        if origin == destination:  # two towns of one country: no crossing named
            if not partial:
                continue
            origin = None
        if origin and destination:
            key = (origin, destination)
        elif partial and (origin or destination):
            key = (origin or "", destination or "")
        else:
            continue
        if key not in found:
            found[key] = [p for p in leg.get("prices") or [] if isinstance(p, dict)]
    return list(found.items())


def price_eur(prices: list[dict[str, Any]], on: date, config: VigieConfig) -> tuple[float, str, float] | None:
    """The leg's first price that converts to at least `trends.min_price_eur`: (EUR, currency,
    amount). "3000 IQD" (about €2) is a misreading or a fee, not the price of a crossing."""
    for price in prices:
        amount, currency = price.get("amount"), str(price.get("currency") or "")
        if not isinstance(amount, int | float) or amount <= 0 or not currency:
            continue
        eur = to_eur(float(amount), currency, on, config)
        if eur is not None and eur >= config.trends.min_price_eur:
            return round(eur, 2), currency.upper(), float(amount)
    return None


def _change(now: float | None, before: float | None) -> float | None:
    if now is None or not before:
        return None
    return round((now - before) / before, 4)


def route_months(
    posts: list[Post], config: VigieConfig, before: list[RouteMonth] | None = None
) -> list[RouteMonth]:
    """Per route and month: posts, prices in EUR, transport and terms, and changes of the
    median (against the route's previous priced month, in the period or in `before`, the
    baseline's rows). Routes naming one end only are rows of their own ("unknown → …")."""
    groups: dict[tuple[tuple[str, str], str], list[tuple[Post, tuple[float, str, float] | None]]] = (
        defaultdict(list)
    )
    for post in posts:
        for key, prices in country_routes(post, partial=True):
            groups[(key, post.month)].append((post, price_eur(prices, post.published.date(), config)))
    rows = []
    for ((origin, destination), month), members in groups.items():
        eur = [p[0] for _, p in members if p]
        currencies = Counter(p[1] for _, p in members if p)
        currency = currencies.most_common(1)[0][0] if currencies else None
        in_currency = [p[2] for _, p in members if p and p[1] == currency]
        transport: Counter[str] = Counter()
        offices: Counter[str] = Counter()
        for post, _ in members:
            transport.update(dict.fromkeys(post.entities.get("transport") or [], 1))
            offices.update(dict.fromkeys(post.entities.get("payments") or [], 1))
        rows.append(
            RouteMonth(
                origin=origin,
                destination=destination,
                route=route_label(origin, destination),
                month=month,
                posts=len(members),
                priced=len(eur),
                median_eur=round(statistics.median(eur), 2) if eur else None,
                min_eur=min(eur) if eur else None,
                max_eur=max(eur) if eur else None,
                currency=currency,
                median_in_currency=round(statistics.median(in_currency), 2) if in_currency else None,
                transport=dict(sorted(transport.items(), key=lambda kv: (-kv[1], kv[0]))),
                guarantees=sum(1 for post, _ in members if post.entities.get("guarantees")),
                payment_terms=sum(
                    1
                    for post, _ in members
                    if post.entities.get("payment_terms") or post.entities.get("payments")
                ),
                payment_offices=dict(sorted(offices.items(), key=lambda kv: (-kv[1], kv[0]))),
                example_key=members[0][0].key,
            )
        )
    totals: Counter[tuple[str, str]] = Counter()
    for row in rows:
        totals[(row.origin, row.destination)] += row.posts
    rows.sort(key=lambda r: (-totals[(r.origin, r.destination)], r.route, r.month))
    previous: dict[tuple[str, str], RouteMonth] = {}
    for row in sorted(before or [], key=lambda r: r.month):
        if row.median_eur is not None:
            previous[(row.origin, row.destination)] = row
    first: dict[tuple[str, str], RouteMonth] = {}
    for row in rows:
        key = (row.origin, row.destination)
        if row.median_eur is not None:
            if key in previous:
                row.change_vs_previous = _change(row.median_eur, previous[key].median_eur)
            if key in first:
                row.change_vs_first = _change(row.median_eur, first[key].median_eur)
            previous[key] = row
            first.setdefault(key, row)
    return rows


def new_routes(period_posts: list[Post], baseline_posts: list[Post], config: VigieConfig) -> list[NewRoute]:
    """Routes with flagged posts in the period and none in the baseline."""
    known = {key for post in baseline_posts for key, _ in country_routes(post)}
    found: dict[tuple[str, str], list[tuple[Post, float | None]]] = defaultdict(list)
    for post in period_posts:
        for key, prices in country_routes(post):
            if key not in known:
                price = price_eur(prices, post.published.date(), config)
                found[key].append((post, price[0] if price else None))
    out = []
    for (origin, destination), members in found.items():
        if len(members) < config.trends.min_route_posts:
            continue
        eur = [e for _, e in members if e is not None]
        out.append(
            NewRoute(
                origin=origin,
                destination=destination,
                route=route_label(origin, destination),
                posts=len(members),
                sources=len({post.source for post, _ in members}),
                first_seen=min(post.published for post, _ in members).date().isoformat(),
                median_eur=round(statistics.median(eur), 2) if eur else None,
                example_key=members[0][0].key,
            )
        )
    out.sort(key=lambda r: (-r.posts, -r.sources, r.route))
    return out


def trends_of(
    period: str, period_posts: list[Post], baseline_posts: list[Post], config: VigieConfig
) -> Trends:
    """Trends of `period` from its flagged posts and those of the baseline months before it."""
    period = check_span(period)
    start, end = bounds(period)
    baseline_start = months_before(start, config.trends.baseline_months)
    # Without a baseline everything would be new: nothing is offered.
    terms = (
        rising_terms(
            TermCounts.of([(p.key, p.source, p.text) for p in period_posts]),
            TermCounts.of([(p.key, p.source, p.text) for p in baseline_posts]),
            min_posts=config.trends.min_term_posts,
        )
        if baseline_posts
        else []
    )
    return Trends(
        period=period,
        start=start.isoformat(),
        end=end.isoformat(),
        baseline_start=baseline_start.isoformat(),
        flagged_posts=len(period_posts),
        baseline_posts=len(baseline_posts),
        routes=route_months(period_posts, config, before=route_months(baseline_posts, config)),
        new_terms=[term.to_json() for term in terms],
        new_routes=new_routes(period_posts, baseline_posts, config) if baseline_posts else [],
    )


def compute(store: Store, config: VigieConfig, period: str) -> Trends:
    """`vigie trends`: the trends of `period` ("2026", "2026-Q3", "2026-09", "2026-09-05")."""
    from vigie.store import DECIDED
    from vigie.store.trends import flagged_posts_between

    period = check_span(period)
    start, end = bounds(period)
    baseline_start = months_before(start, config.trends.baseline_months)
    rows = flagged_posts_between(store, baseline_start.isoformat(), end.isoformat(), DECIDED)
    posts = posts_from_rows(rows)
    in_period = [p for p in posts if p.published.date() >= start]
    baseline = [p for p in posts if p.published.date() < start]
    return trends_of(period, in_period, baseline, config)
