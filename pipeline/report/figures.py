"""The report's figures from the store's rows: languages, routes and prices, contacts,
channels, repost clusters, referral outcomes, platforms' answers and time to removal."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Collection
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from classifier.cues import place_name
from pipeline.report.model import (
    Channel,
    Cluster,
    Contact,
    Figures,
    Language,
    Outcomes,
    PlatformAnswer,
    PlatformOutcomes,
    PlatformRemoval,
    Removal,
    RemovalBin,
    Route,
    RoutePrice,
    Totals,
)
from pipeline.report.period import check_period
from pipeline.report.queries import FlaggedPost, Referral, read_rows
from pipeline.report.timeline import timeline
from pipeline.report.trend_figures import stored_network_rows, trend_figures
from vigie import __version__

if TYPE_CHECKING:
    from vigie.config import VigieConfig
    from vigie.store import Store

STATUSES = ("removed", "restricted", "declined", "online", "referred", "confirmed", "rejected")
# Statuses of referrals a platform has received.
SENT = ("referred", "removed", "online", "restricted", "declined")
# What became of a referral a platform received, as the answers table names it.
KINDS = {
    "removed": "removed",
    "account_suspended": "account suspended",
    "restricted": "restricted",
    "rejected": "rejected by the platform",
    "online": "still online (re-checked)",
    "pending": "no answer yet",
}
LANGUAGES = {
    "ar": "Arabic",
    "ar-Latn": "Arabizi",
    "ckb": "Kurdish (Sorani)",
    "kmr": "Kurdish (Kurmanji)",
    "fa": "Persian",
    "fa-Latn": "Finglish",
    "ps": "Pashto",
    "ur": "Urdu",
    "tr": "Turkish",
    "en": "English",
    "fr": "French",
    "sq": "Albanian",
    "vi": "Vietnamese",
    "ti": "Tigrinya",
    "am": "Amharic",
    "so": "Somali",
}
# Time to removal, in hours: [low, high) and its label.
REMOVAL_BINS = (
    (0, 1, "< 1 h"),
    (1, 6, "1–6 h"),
    (6, 24, "6–24 h"),
    (24, 72, "1–3 days"),
    (72, 168, "3–7 days"),
    (168, float("inf"), "> 7 days"),
)
TOP = {"languages": 12, "routes": 12, "prices": 12, "contacts": 20, "channels": 15, "clusters": 12}
RouteKey = tuple[str | None, str | None]


def _place(place_id: str | None) -> str:
    return place_name(place_id) or "unknown"


def _route_label(key: RouteKey) -> str:
    return f"{_place(key[0])} → {_place(key[1])}"


def _to_eur(prices: list[Any]) -> list[float]:
    from pipeline.index.template import EUR_PER_UNIT

    out = []
    for price in prices:
        if not isinstance(price, dict):
            continue
        rate = EUR_PER_UNIT.get(str(price.get("currency", "")).upper())
        amount = price.get("amount")
        if rate is not None and isinstance(amount, int | float) and amount > 0:
            out.append(float(amount) * rate)
    return out


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def _quartiles(values: list[float]) -> tuple[float, float] | None:
    if len(values) < 2:
        return None
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return round(q1, 2), round(q3, 2)


def _languages(flagged: list[FlaggedPost]) -> list[Language]:
    langs = Counter(row.lang or "und" for row in flagged)
    languages = [
        Language(lang=code, label=LANGUAGES.get(code, code), count=n)
        for code, n in sorted(langs.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    if len(languages) > TOP["languages"]:
        rest = sum(item.count for item in languages[TOP["languages"] - 1 :])
        languages = [*languages[: TOP["languages"] - 1], Language(lang="", label="Other", count=rest)]
    return languages


def _routes_and_prices(flagged: list[FlaggedPost]) -> tuple[list[Route], list[RoutePrice]]:
    routes: Counter[RouteKey] = Counter()
    route_prices: dict[RouteKey, list[float]] = defaultdict(list)
    for row in flagged:
        origin, destination = row.entities.get("origin"), row.entities.get("destination")
        if not origin and not destination:
            continue
        key = (origin, destination)
        routes[key] += 1
        eur = _to_eur(row.entities.get("prices") or [])
        if eur:
            route_prices[key].append(statistics.median(eur))  # one observation per post

    top_routes = [
        Route(origin=o, destination=d, label=_route_label((o, d)), count=n)
        for (o, d), n in sorted(routes.items(), key=lambda kv: (-kv[1], _route_label(kv[0])))
    ][: TOP["routes"]]
    prices = []
    by_observations = sorted(route_prices.items(), key=lambda kv: (-len(kv[1]), _route_label(kv[0])))
    for key, values in by_observations[: TOP["prices"]]:
        quart = _quartiles(values)
        prices.append(
            RoutePrice(
                origin=key[0],
                destination=key[1],
                label=_route_label(key),
                median_eur=round(statistics.median(values)),
                p25_eur=round(quart[0]) if quart else None,
                p75_eur=round(quart[1]) if quart else None,
                n=len(values),
            )
        )
    return top_routes, prices


def _contacts(row: FlaggedPost) -> list[str]:
    """The post's contacts, once each; older analyses list phones, handles and links apart."""
    contacts = row.entities.get("contacts")
    if not isinstance(contacts, list):
        ent = row.entities
        contacts = [
            *ent.get("phones", []),
            *(f"@{h}" for h in ent.get("handles", [])),
            *ent.get("links", []),
        ]
    return list(dict.fromkeys(str(c) for c in contacts if c))


def _contacts_and_channels(
    flagged: list[FlaggedPost], hotlines: Collection[str] = ()
) -> tuple[list[Contact], list[Channel], int, int]:
    """The top contacts and channels, and how many of each there are in all; the configured
    hotlines are nobody's contact."""
    contact_posts: dict[str, set[str]] = defaultdict(set)
    contact_channels: dict[str, set[str]] = defaultdict(set)
    contact_platforms: dict[str, set[str]] = defaultdict(set)
    contact_last: dict[str, str] = {}
    channel_posts: Counter[tuple[str, str]] = Counter()
    channel_contacts: dict[tuple[str, str], set[str]] = defaultdict(set)
    channel_last: dict[tuple[str, str], str] = {}
    for row in flagged:
        source = (row.platform, row.channel)
        channel_posts[source] += 1
        seen = row.day.isoformat() if row.day else ""
        channel_last[source] = max(channel_last.get(source, ""), seen)
        for contact in _contacts(row):
            if contact in hotlines:
                continue
            contact_posts[contact].add(row.key)
            contact_channels[contact].add(f"{row.platform}:{row.channel}")
            contact_platforms[contact].add(row.platform)
            contact_last[contact] = max(contact_last.get(contact, ""), seen)
            channel_contacts[source].add(contact)
    top_contacts = [
        Contact(
            contact=c,
            posts=len(contact_posts[c]),
            channels=len(contact_channels[c]),
            platforms=sorted(contact_platforms[c]),
            last_seen=contact_last[c] or None,
        )
        for c in sorted(contact_posts, key=lambda c: (-len(contact_channels[c]), -len(contact_posts[c]), c))
    ][: TOP["contacts"]]
    top_channels = [
        Channel(
            platform=platform,
            channel=channel,
            adverts=n,
            contacts=len(channel_contacts[(platform, channel)]),
            last_seen=channel_last[(platform, channel)] or None,
        )
        for (platform, channel), n in sorted(channel_posts.items(), key=lambda kv: (-kv[1], kv[0]))
    ][: TOP["channels"]]
    return top_contacts, top_channels, len(contact_posts), len(channel_posts)


def _clusters(flagged: list[FlaggedPost]) -> list[Cluster]:
    """Repost clusters, the same advert in several places: all of them, the largest first."""
    members_of: dict[str, list[FlaggedPost]] = defaultdict(list)
    for row in flagged:
        if row.cluster_id:
            members_of[row.cluster_id].append(row)
    clusters = []
    for cluster_id, members in members_of.items():
        if len(members) < 2:
            continue
        dated = sorted(members, key=lambda r: (r.published is None, r.published or datetime.min, r.key))
        example = dated[0]
        days = [r.day for r in members if r.day]
        clusters.append(
            Cluster(
                cluster_id=cluster_id,
                copies=len(members),
                channels=len({(r.platform, r.channel) for r in members}),
                platforms=sorted({r.platform for r in members}),
                example_url=example.url,
                example_text=(example.text or "")[:240],
                first_seen=min(days).isoformat() if days else None,
                last_seen=max(days).isoformat() if days else None,
            )
        )
    clusters.sort(key=lambda c: (-c.copies, -c.channels, c.cluster_id))
    return clusters


def _outcomes(referrals: list[Referral]) -> Outcomes:
    by_status = Counter(r.status for r in referrals)
    by_platform: dict[str, Counter[str]] = defaultdict(Counter)
    for r in referrals:
        by_platform[r.platform][r.status] += 1
    statuses = [s for s in STATUSES if by_status[s]] + sorted(s for s in by_status if s not in STATUSES)
    return Outcomes(
        statuses=statuses,
        by_status={s: by_status[s] for s in statuses},
        by_platform=[
            PlatformOutcomes(
                platform=platform,
                counts={s: counts[s] for s in statuses if counts[s]},
                total=sum(counts.values()),
            )
            for platform, counts in sorted(by_platform.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        ],
    )


def _removal(referrals: list[Referral]) -> Removal:
    hours: dict[str, list[float]] = defaultdict(list)
    for r in referrals:
        if r.status == "removed" and r.referred_at and r.removed_at and r.removed_at >= r.referred_at:
            hours[r.platform].append((r.removed_at - r.referred_at).total_seconds() / 3600)
    all_hours = sorted(h for values in hours.values() for h in values)
    return Removal(
        median_hours=_median(all_hours),
        n=len(all_hours),
        by_platform=[
            PlatformRemoval(platform=platform, median_hours=_median(values), n=len(values))
            for platform, values in sorted(hours.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        ],
        distribution=[
            RemovalBin(label=label, count=sum(1 for h in all_hours if low <= h < high))
            for low, high, label in REMOVAL_BINS
        ],
    )


def _kind(r: Referral) -> str:
    if r.status == "removed":
        return "account_suspended" if r.outcome == "account_suspended" else "removed"
    return {"restricted": "restricted", "declined": "rejected", "online": "online"}.get(r.status, "pending")


def _hours_to_answer(r: Referral, kind: str) -> float | None:
    """Hours from referral to removal (the content gone) or to the platform's answer."""
    answered = r.removed_at if kind in ("removed", "account_suspended") else r.outcome_at
    if kind in ("online", "pending") or not r.referred_at or not answered or answered < r.referred_at:
        return None
    return (answered - r.referred_at).total_seconds() / 3600


def _answers(referrals: list[Referral]) -> list[PlatformAnswer]:
    """Each platform's referrals by what became of them, with the median time to the answer."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    hours: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in referrals:
        if r.status not in SENT:
            continue
        kind = _kind(r)
        counts[r.platform][kind] += 1
        if (h := _hours_to_answer(r, kind)) is not None:
            hours[(r.platform, kind)].append(h)
    return [
        PlatformAnswer(
            platform=platform,
            kind=kind,
            label=label,
            n=kinds[kind],
            median_hours=_median(hours[(platform, kind)]),
        )
        for platform, kinds in sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        for kind, label in KINDS.items()
        if kinds[kind]
    ]


def collect(store: Store, period: str | None = None, config: VigieConfig | None = None) -> Figures:
    """The report's figures for posts published in `period` (a year, month or day), or all;
    prices in the trends are converted at `config`'s rates (the defaults without one)."""
    from pipeline.intel.networks import hotline_contacts  # networks read trends, which read periods
    from vigie.config import VigieConfig

    period = check_period(period)
    config = config or VigieConfig()
    rows = read_rows(store, period)
    flagged = rows.flagged
    routes, prices = _routes_and_prices(flagged)
    contacts, channels, contact_count, channel_count = _contacts_and_channels(
        flagged, hotline_contacts(config.networks.hotlines)
    )
    clusters = _clusters(flagged)
    outcomes = _outcomes(rows.referrals)
    removal = _removal(rows.referrals)
    by_status = outcomes.by_status
    sent = sum(by_status.get(s, 0) for s in SENT)
    published = [row.published for row in flagged if row.published]
    totals = Totals(
        posts=rows.posts,
        analysed=rows.analysed,
        flagged=len(flagged),
        channels=channel_count,
        platforms=len({row.platform for row in flagged}),
        contacts=contact_count,
        clusters=len(clusters),
        referrals=sum(n for status, n in by_status.items() if status != "rejected"),
        sent=sent,
        removed=by_status.get("removed", 0),
        online=by_status.get("online", 0),
        removal_rate=round(by_status.get("removed", 0) / sent, 4) if sent else None,
        median_hours_to_removal=removal.median_hours,
        first_published=min(published).date().isoformat() if published else None,
        last_published=max(published).date().isoformat() if published else None,
    )
    return Figures(
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        version=__version__,
        period=period,
        totals=totals,
        timeline=timeline([(row.day, row.platform) for row in flagged if row.day]),
        languages=_languages(flagged),
        routes=routes,
        prices=prices,
        contacts=contacts,
        channels=channels,
        clusters=clusters[: TOP["clusters"]],
        outcomes=outcomes,
        removal=removal,
        answers=_answers(rows.referrals),
        trends=trend_figures(store, config, period, flagged),
        networks=stored_network_rows(store),
    )
