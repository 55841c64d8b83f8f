"""The report's trend and network figures: prices by route and month, transport and terms,
new terms, new routes (`pipeline.intel.trends`) and the stored networks."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from typing import TYPE_CHECKING

from pipeline.report.model import NetworkRow, NewRoute, NewTerm, PricePoint, RouteTerms, TrendFigures
from pipeline.report.period import months_before

if TYPE_CHECKING:
    from pipeline.intel.networks import Network
    from pipeline.intel.trends import Trends
    from pipeline.report.queries import FlaggedPost
    from vigie.config import VigieConfig
    from vigie.store import Store

TOP_ROUTES = 6  # lines in the price chart
TOP_TABLE = 15
TOP_NETWORKS = 20


def _rows(flagged: list[FlaggedPost]) -> list[dict[str, object]]:
    return [
        {
            "key": row.key,
            "platform": row.platform,
            "channel": row.channel,
            "published_at": row.published.isoformat() if row.published else None,
            "lang": row.lang,
            "text": row.text,
            "entities": row.entities,
        }
        for row in flagged
    ]


def trend_figures(
    store: Store, config: VigieConfig, period: str | None, flagged: list[FlaggedPost]
) -> TrendFigures | None:
    """Prices and terms of the report's flagged posts by route and month; new terms and
    routes of the period (of its last month when the report covers everything)."""
    # Imported here: the trends read periods from this package.
    from pipeline.intel.trends import compute, posts_from_rows, route_months

    dated = [row.published for row in flagged if row.published]
    if not dated:
        return None
    found: Trends = compute(store, config, period or max(dated).strftime("%Y-%m"))
    # The trends of a period are those of the report's posts; an all-time report has its own.
    months = found.routes if period else route_months(posts_from_rows(_rows(flagged)), config)
    urls = {row.key: row.url for row in flagged}

    posts_by_route: Counter[str] = Counter()
    terms: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for m in months:
        posts_by_route[m.route] += m.posts
        terms[m.route]["transport"].update(m.transport)
        terms[m.route]["offices"].update(m.payment_offices)
        counts[m.route]["guarantees"] += m.guarantees
        counts[m.route]["payment_terms"] += m.payment_terms
    priced_routes = Counter[str]()
    for m in months:
        if m.median_eur is not None:
            priced_routes[m.route] += m.priced
    top = {route for route, _ in sorted(priced_routes.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_ROUTES]}
    prices = [
        PricePoint(
            route=m.route,
            month=m.month,
            median_eur=m.median_eur,
            posts=m.priced,
            currency=m.currency,
            median_in_currency=m.median_in_currency,
        )
        for m in sorted(months, key=lambda m: (m.route, m.month))
        if m.route in top and m.median_eur is not None
    ]
    routes = [
        RouteTerms(
            route=route,
            posts=n,
            transport=dict(terms[route]["transport"].most_common()),
            guarantees=counts[route]["guarantees"],
            payment_terms=counts[route]["payment_terms"],
            payment_offices=dict(terms[route]["offices"].most_common(3)),
        )
        for route, n in sorted(posts_by_route.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_TABLE]
    ]
    start = date.fromisoformat(found.start)
    return TrendFigures(
        period=found.period,
        baseline=f"{months_before(start, config.trends.baseline_months).isoformat()} to "
        f"{date.fromordinal(start.toordinal() - 1).isoformat()}",
        baseline_posts=found.baseline_posts,
        prices=prices,
        routes=routes,
        new_terms=[
            NewTerm(
                term=t["term"],
                posts=t["posts"],
                baseline_posts=t["baseline_posts"],
                sources=t["sources"],
                score=t["score"],
                example_url=urls.get(t["example_key"]),
            )
            for t in found.new_terms
        ],
        new_routes=[
            NewRoute(
                route=r.route,
                posts=r.posts,
                sources=r.sources,
                first_seen=r.first_seen,
                median_eur=r.median_eur,
            )
            for r in found.new_routes
        ],
    )


def network_rows(networks: list[Network]) -> list[NetworkRow]:
    """The networks as the report's table lists them, the largest first."""
    from pipeline.intel.networks import route_words

    rows = []
    for n in sorted(networks, key=lambda n: (-n.flagged_posts, -len(n.sources), n.network_id)):
        if n.merged_into:
            continue
        routes = sorted(n.routes, key=lambda r: -int(r.get("posts") or 0))[:3]
        rows.append(
            NetworkRow(
                network_id=n.network_id,
                sources=list(n.sources),
                contacts=len(n.contacts),
                flagged_posts=n.flagged_posts,
                first_seen=(n.first_seen or "")[:10] or None,
                last_seen=(n.last_seen or "")[:10] or None,
                routes=[route_words(r, unknown="unknown") for r in routes],
                price_range_eur=n.price_range_eur(),
            )
        )
    return rows[:TOP_NETWORKS]


def stored_network_rows(store: Store) -> list[NetworkRow]:
    """The networks as last refreshed."""
    from pipeline.intel.networks import stored_networks

    return network_rows(stored_networks(store))
