"""The analysts' report: one self-contained HTML page built from the embedded store.

`collect` turns the store into plain figures (a JSON-able dict); `render` turns figures into
a page that opens from disk with no server and nothing fetched: inline CSS, the figures as
embedded JSON, a small hand-written script that draws the charts as SVG, and tables rendered
here with every string from the data escaped.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import statistics
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from vigie import __version__

if TYPE_CHECKING:
    from vigie.store import Store

GAZETTEER = Path(__file__).resolve().parent / "data" / "gazetteer.yaml"
STATUSES = ("removed", "online", "referred", "confirmed", "rejected")
SENT = ("referred", "removed", "online")  # statuses of referrals a platform has received
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
_PERIOD = re.compile(r"\d{4}(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12]\d|3[01]))?)?")


@cache
def place_names() -> dict[str, str]:
    """Gazetteer id → display name ("tr-izmir" → "Izmir")."""
    with GAZETTEER.open(encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return {str(p["id"]): str(p.get("name") or p["id"]) for p in data.get("places", [])}


def check_period(period: str | None) -> str | None:
    """ "2026", "2026-11" or "2026-11-05"; raises ValueError on anything else."""
    if period is None or period == "":
        return None
    if not _PERIOD.fullmatch(period):
        raise ValueError(f"period must look like 2026, 2026-11 or 2026-11-05, not {period!r}")
    if len(period) == 10:
        try:
            date.fromisoformat(period)
        except ValueError:
            raise ValueError(f"period {period!r}: no such day") from None
    return period


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _json(value: str | None, default: Any) -> Any:
    try:
        loaded = json.loads(value) if value else default
    except (TypeError, ValueError):
        return default
    return loaded if isinstance(loaded, type(default)) else default


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def _quartiles(values: list[float]) -> tuple[float, float] | None:
    if len(values) < 2:
        return None
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return round(q1, 2), round(q3, 2)


def _bucket(day: date, granularity: str) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())  # the Monday
    if granularity == "month":
        return day.replace(day=1)
    return day


def _next(bucket: date, granularity: str) -> date:
    if granularity == "week":
        return bucket + timedelta(days=7)
    if granularity == "month":
        return (bucket.replace(day=28) + timedelta(days=4)).replace(day=1)
    return bucket + timedelta(days=1)


def _timeline(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Flagged adverts per day (spans up to about two months), week (two years) or month."""
    days = [(row["day"], row["platform"]) for row in rows if row["day"] is not None]
    if not days:
        return {"granularity": "day", "buckets": [], "series": [], "total": []}
    first = min(d for d, _ in days)
    last = max(d for d, _ in days)
    span = (last - first).days
    granularity = "day" if span <= 62 else "week" if span <= 730 else "month"
    buckets: list[date] = []
    cursor = _bucket(first, granularity)
    while cursor <= last:
        buckets.append(cursor)
        cursor = _next(cursor, granularity)
    index = {b: i for i, b in enumerate(buckets)}
    per_platform: dict[str, list[int]] = defaultdict(lambda: [0] * len(buckets))
    for day, platform in days:
        per_platform[platform][index[_bucket(day, granularity)]] += 1
    series = sorted(per_platform.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    return {
        "granularity": granularity,
        "buckets": [b.isoformat() for b in buckets],
        "series": [{"platform": p, "counts": counts} for p, counts in series],
        "total": [sum(counts[i] for _, counts in series) for i in range(len(buckets))],
    }


def _place(place_id: str | None) -> str:
    if not place_id:
        return "unknown"
    return place_names().get(place_id, place_id)


def _to_eur(prices: list[Any]) -> list[float]:
    from pipeline.es_index import EUR_PER_UNIT

    out = []
    for price in prices:
        if not isinstance(price, dict):
            continue
        rate = EUR_PER_UNIT.get(str(price.get("currency", "")).upper())
        amount = price.get("amount")
        if rate is not None and isinstance(amount, int | float) and amount > 0:
            out.append(float(amount) * rate)
    return out


def collect(store: Store, period: str | None = None) -> dict[str, Any]:
    """The report's figures for posts published in `period` (a year, month or day), or all."""
    period = check_period(period)
    where = "p.published_at LIKE ? || '%'" if period else "1=1"
    args: list[Any] = [period] if period else []
    db = store.db

    posts_total = db.execute(f"SELECT COUNT(*) FROM posts p WHERE {where}", args).fetchone()[0]
    analysed = db.execute(
        f"SELECT COUNT(*) FROM analysis a JOIN posts p ON p.key = a.post_key WHERE {where}", args
    ).fetchone()[0]
    flagged: list[dict[str, Any]] = []
    for row in db.execute(
        "SELECT p.key, p.platform, p.channel, p.url, p.text, p.published_at, a.lang, a.score,"
        " a.entities, a.cluster_id FROM analysis a JOIN posts p ON p.key = a.post_key"
        f" WHERE a.is_advert = 1 AND {where} ORDER BY p.published_at, p.key",
        args,
    ):
        moment = _when(row["published_at"])
        flagged.append(
            {
                **dict(row),
                "entities": _json(row["entities"], {}),
                "moment": moment,
                "day": moment.date() if moment else None,
            }
        )

    # Languages.
    langs = Counter(row["lang"] or "und" for row in flagged)
    languages: list[dict[str, Any]] = [
        {"lang": code, "label": LANGUAGES.get(code, code), "count": n}
        for code, n in sorted(langs.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    if len(languages) > TOP["languages"]:
        rest = sum(int(item["count"]) for item in languages[TOP["languages"] - 1 :])
        languages = [*languages[: TOP["languages"] - 1], {"lang": "", "label": "Other", "count": rest}]

    # Routes and prices by route.
    routes: Counter[tuple[str | None, str | None]] = Counter()
    route_prices: dict[tuple[str | None, str | None], list[float]] = defaultdict(list)
    for row in flagged:
        ent = row["entities"]
        origin, destination = ent.get("origin"), ent.get("destination")
        if not origin and not destination:
            continue
        key = (origin, destination)
        routes[key] += 1
        eur = _to_eur(ent.get("prices") or [])
        if eur:
            route_prices[key].append(statistics.median(eur))  # one observation per post

    def route_label(key: tuple[str | None, str | None]) -> str:
        return f"{_place(key[0])} → {_place(key[1])}"

    top_routes = [
        {"origin": o, "destination": d, "label": route_label((o, d)), "count": n}
        for (o, d), n in sorted(routes.items(), key=lambda kv: (-kv[1], route_label(kv[0])))
    ][: TOP["routes"]]
    prices = []
    for key, values in sorted(route_prices.items(), key=lambda kv: (-len(kv[1]), route_label(kv[0]))):
        quart = _quartiles(values)
        prices.append(
            {
                "origin": key[0],
                "destination": key[1],
                "label": route_label(key),
                "median_eur": round(statistics.median(values)),
                "p25_eur": round(quart[0]) if quart else None,
                "p75_eur": round(quart[1]) if quart else None,
                "n": len(values),
            }
        )
    prices = prices[: TOP["prices"]]

    # Contacts and channels.
    contact_posts: dict[str, set[str]] = defaultdict(set)
    contact_channels: dict[str, set[str]] = defaultdict(set)
    contact_platforms: dict[str, set[str]] = defaultdict(set)
    contact_last: dict[str, str] = {}
    channel_posts: Counter[tuple[str, str]] = Counter()
    channel_contacts: dict[tuple[str, str], set[str]] = defaultdict(set)
    channel_last: dict[tuple[str, str], str] = {}
    for row in flagged:
        source = (row["platform"], row["channel"])
        channel_posts[source] += 1
        seen = row["day"].isoformat() if row["day"] else ""
        channel_last[source] = max(channel_last.get(source, ""), seen)
        ent = row["entities"]
        contacts = ent.get("contacts")
        if not isinstance(contacts, list):
            contacts = [
                *ent.get("phones", []),
                *(f"@{h}" for h in ent.get("handles", [])),
                *ent.get("links", []),
            ]
        for contact in dict.fromkeys(str(c) for c in contacts if c):
            contact_posts[contact].add(row["key"])
            contact_channels[contact].add(f"{row['platform']}:{row['channel']}")
            contact_platforms[contact].add(row["platform"])
            contact_last[contact] = max(contact_last.get(contact, ""), seen)
            channel_contacts[source].add(contact)
    top_contacts = [
        {
            "contact": c,
            "posts": len(contact_posts[c]),
            "channels": len(contact_channels[c]),
            "platforms": sorted(contact_platforms[c]),
            "last_seen": contact_last[c] or None,
        }
        for c in sorted(contact_posts, key=lambda c: (-len(contact_channels[c]), -len(contact_posts[c]), c))
    ][: TOP["contacts"]]
    top_channels = [
        {
            "platform": platform,
            "channel": channel,
            "adverts": n,
            "contacts": len(channel_contacts[(platform, channel)]),
            "last_seen": channel_last[(platform, channel)] or None,
        }
        for (platform, channel), n in sorted(channel_posts.items(), key=lambda kv: (-kv[1], kv[0]))
    ][: TOP["channels"]]

    # Repost clusters: the same advert in several places.
    cluster_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in flagged:
        if row["cluster_id"]:
            cluster_rows[row["cluster_id"]].append(row)
    clusters = []
    for cluster_id, members in cluster_rows.items():
        if len(members) < 2:
            continue
        dated = sorted(members, key=lambda r: (r["moment"] is None, r["moment"] or datetime.min, r["key"]))
        example = dated[0]
        days = [r["day"] for r in members if r["day"]]
        clusters.append(
            {
                "cluster_id": cluster_id,
                "copies": len(members),
                "channels": len({(r["platform"], r["channel"]) for r in members}),
                "platforms": sorted({r["platform"] for r in members}),
                "example_url": example["url"],
                "example_text": (example["text"] or "")[:240],
                "first_seen": min(days).isoformat() if days else None,
                "last_seen": max(days).isoformat() if days else None,
            }
        )
    clusters.sort(key=lambda c: (-c["copies"], -c["channels"], c["cluster_id"]))
    cluster_count = len(clusters)
    clusters = clusters[: TOP["clusters"]]

    # Referrals: outcomes and time to removal.
    by_status: Counter[str] = Counter()
    by_platform: dict[str, Counter[str]] = defaultdict(Counter)
    hours: dict[str, list[float]] = defaultdict(list)
    for row in db.execute(
        "SELECT r.status, r.platform, r.referred_at, r.removed_at FROM referrals r"
        f" JOIN posts p ON p.key = r.post_key WHERE {where}",
        args,
    ):
        by_status[row["status"]] += 1
        by_platform[row["platform"]][row["status"]] += 1
        if row["status"] == "removed":
            referred, removed = _when(row["referred_at"]), _when(row["removed_at"])
            if referred and removed and removed >= referred:
                hours[row["platform"]].append((removed - referred).total_seconds() / 3600)
    statuses = [s for s in STATUSES if by_status[s]] + sorted(s for s in by_status if s not in STATUSES)
    outcomes = {
        "statuses": statuses,
        "by_status": {s: by_status[s] for s in statuses},
        "by_platform": [
            {
                "platform": platform,
                "counts": {s: counts[s] for s in statuses if counts[s]},
                "total": sum(counts.values()),
            }
            for platform, counts in sorted(by_platform.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        ],
    }
    all_hours = sorted(h for values in hours.values() for h in values)
    removal = {
        "median_hours": _median(all_hours),
        "n": len(all_hours),
        "by_platform": [
            {"platform": platform, "median_hours": _median(values), "n": len(values)}
            for platform, values in sorted(hours.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        ],
        "distribution": [
            {"label": label, "count": sum(1 for h in all_hours if low <= h < high)}
            for low, high, label in REMOVAL_BINS
        ],
    }

    sent = sum(by_status[s] for s in SENT)
    published = [row["moment"] for row in flagged if row["moment"]]
    totals = {
        "posts": posts_total,
        "analysed": analysed,
        "flagged": len(flagged),
        "channels": len(channel_posts),
        "platforms": len({row["platform"] for row in flagged}),
        "contacts": len(contact_posts),
        "clusters": cluster_count,
        "referrals": sum(by_status.values()),
        "sent": sent,
        "removed": by_status["removed"],
        "online": by_status["online"],
        "removal_rate": round(by_status["removed"] / sent, 4) if sent else None,
        "median_hours_to_removal": removal["median_hours"],
        "first_published": min(published).date().isoformat() if published else None,
        "last_published": max(published).date().isoformat() if published else None,
    }
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": __version__,
        "period": period,
        "totals": totals,
        "timeline": _timeline(flagged),
        "languages": languages,
        "routes": top_routes,
        "prices": prices,
        "contacts": top_contacts,
        "channels": top_channels,
        "clusters": clusters,
        "outcomes": outcomes,
        "removal": removal,
    }


# -- rendering -----------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _n(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _hours(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f} h" if value < 48 else f"{value / 24:.1f} days"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def script_json(data: Any) -> str:
    """JSON safe inside a <script> element: no `<`, `>` or `&` can end it or open a tag."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _link(url: str | None) -> str:
    if not url:
        return "–"
    if re.match(r"https?://", url, re.IGNORECASE):
        return f'<a href="{_e(url)}" rel="noopener noreferrer">{_e(url)}</a>'
    return f"<span>{_e(url)}</span>"  # never a javascript: or data: link


def _table(headers: list[tuple[str, str]], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{_e(empty)}</p>'
    head = "".join(f'<th class="{cls}" scope="col">{_e(label)}</th>' for label, cls in headers)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{cls}">{cell}</td>' for (_, cls), cell in zip(headers, row, strict=True))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _chart(name: str, title: str, caption: str, wide: bool = False) -> str:
    return (
        f'<section class="card{" wide" if wide else ""}"><h3>{_e(title)}</h3>'
        f'<p class="caption">{_e(caption)}</p>'
        f'<div class="chart" data-chart="{_e(name)}"></div></section>'
    )


def render(figures: dict[str, Any], title: str) -> str:
    """The whole page. Strings from the data are escaped here or drawn with textContent."""
    t = figures.get("totals", {})
    period = figures.get("period")
    if period:
        scope = f"Posts published in {period}"
    elif t.get("first_published"):
        scope = f"All posts, adverts published {t['first_published']} to {t['last_published']}"
    else:
        scope = "All posts in the store"
    generated = str(figures.get("generated_at", ""))[:16].replace("T", " ")
    kpis = [
        ("Flagged adverts", _n(t.get("flagged")), f"of {_n(t.get('analysed'))} posts analysed"),
        ("Channels", _n(t.get("channels")), f"on {_n(t.get('platforms'))} platform(s)"),
        ("Contacts", _n(t.get("contacts")), "phones, handles and links"),
        ("Repost clusters", _n(t.get("clusters")), "adverts copied 2+ times"),
        ("Referred", _n(t.get("sent")), f"{_n(t.get('referrals'))} referral records"),
        (
            "Removed",
            _n(t.get("removed")),
            f"{_pct(t.get('removal_rate'))} of referred" if t.get("sent") else "nothing referred",
        ),
        ("Median time to removal", _hours(t.get("median_hours_to_removal")), "from referral to removal"),
    ]
    kpi_html = "".join(
        f'<div class="kpi"><div class="kpi-label">{_e(label)}</div><div class="kpi-value">{_e(value)}</div>'
        f'<div class="kpi-note">{_e(note)}</div></div>'
        for label, value, note in kpis
    )
    empty_notice = (
        '<p class="notice">No flagged adverts or referrals for this selection: the charts and tables below are empty.</p>'
        if not t.get("flagged") and not t.get("referrals")
        else ""
    )

    contacts = _table(
        [
            ("Contact", "text"),
            ("Posts", "num"),
            ("Channels", "num"),
            ("Platforms", "text"),
            ("Last seen", "date"),
        ],
        [
            [
                f'<code dir="ltr">{_e(c["contact"])}</code>',
                _n(c["posts"]),
                _n(c["channels"]),
                _e(", ".join(c.get("platforms", []))),
                _e(c.get("last_seen") or "–"),
            ]
            for c in figures.get("contacts", [])
        ],
        "No contacts in flagged adverts.",
    )
    channels = _table(
        [
            ("Channel", "text"),
            ("Platform", "text"),
            ("Adverts", "num"),
            ("Contacts", "num"),
            ("Last advert", "date"),
        ],
        [
            [
                f'<span dir="auto">{_e(c["channel"])}</span>',
                _e(c["platform"]),
                _n(c["adverts"]),
                _n(c["contacts"]),
                _e(c.get("last_seen") or "–"),
            ]
            for c in figures.get("channels", [])
        ],
        "No channels with flagged adverts.",
    )
    clusters = _table(
        [
            ("Cluster", "text"),
            ("Copies", "num"),
            ("Channels", "num"),
            ("Seen", "date"),
            ("Example", "example"),
        ],
        [
            [
                f"<code>{_e(c['cluster_id'])}</code>",
                _n(c["copies"]),
                _n(c["channels"]),
                _e(f"{c.get('first_seen') or '?'} – {c.get('last_seen') or '?'}"),
                f'<div class="url">{_link(c.get("example_url"))}</div>'
                f'<div class="excerpt" dir="auto">{_e(c.get("example_text") or "(text minimised)")}</div>',
            ]
            for c in figures.get("clusters", [])
        ],
        "No advert was found copied in more than one post.",
    )
    body = f"""
<header>
  <div class="brand">Vigie · migrant-smuggling advert monitoring</div>
  <h1>{_e(title)}</h1>
  <p class="scope">{_e(scope)} · generated {_e(generated)} UTC · Vigie {_e(figures.get("version", ""))}</p>
</header>
<main>
{empty_notice}
<section class="kpis" aria-label="Totals">{kpi_html}</section>

<h2>Adverts found</h2>
<div class="grid">
{_chart("timeline", "Flagged adverts over time", "Posts the classifier flagged as smuggling adverts, by publication date and platform.", wide=True)}
{_chart("languages", "Languages", "Flagged adverts by detected language.")}
{_chart("routes", "Top routes", "Origin → destination named in adverts (“unknown” when only one end is named).")}
{_chart("prices", "Prices by route", "Median advertised price in EUR (approximate fixed rates); the line spans the middle half of prices; n = adverts with a price.", wide=True)}
</div>

<h2>Who advertises</h2>
<section class="card wide"><h3>Top contacts</h3>
<p class="caption">Phone numbers, messenger handles and links in flagged adverts, by number of channels they appear in.</p>
{contacts}</section>
<section class="card wide"><h3>Most active channels</h3>
<p class="caption">Channels with the most flagged adverts.</p>
{channels}</section>
<section class="card wide"><h3>Top repost clusters</h3>
<p class="caption">The same advert, exactly or lightly edited, posted several times; the example is the earliest copy.</p>
{clusters}</section>

<h2>Referrals and removals</h2>
<div class="grid">
{_chart("outcomes", "Referral outcomes", "Every referral record by current status.")}
{_chart("outcomes_by_platform", "Outcomes by platform", "Share of each platform's referrals by status.")}
{_chart("removal_by_platform", "Median time to removal", "Hours from referral to removal, per platform (removed posts only).")}
{_chart("removal_distribution", "Time to removal", "Removed posts by hours between referral and removal.")}
</div>
<p class="note">Flagged adverts are classifier decisions; only referred posts have been reviewed by an analyst.
“Online” means a referred post was still reachable at the last check.</p>
</main>
<footer>Generated by Vigie {_e(figures.get("version", ""))} from the local store. Contains contact details taken from public posts: handle according to your data-protection rules.</footer>
"""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n"
        f"<body>{body}\n"
        f'<script type="application/json" id="vigie-data">{script_json(figures)}</script>\n'
        f"<script>{JS}</script>\n</body></html>\n"
    )


CSS = """
:root { --ink:#1d2330; --muted:#5b6474; --line:#dde1e8; --bg:#f5f6f8; --card:#fff; --accent:#1f5fa8; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin:0; background:var(--bg); color:var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", "Liberation Sans", sans-serif; }
header { background:#fff; border-bottom:3px solid var(--accent); padding:20px 32px 14px; }
.brand { font-size:12px; letter-spacing:.08em; text-transform:uppercase; color:var(--accent); font-weight:600; }
h1 { margin:4px 0 2px; font-size:26px; }
.scope { margin:0; color:var(--muted); }
main { max-width:1180px; margin:0 auto; padding:8px 24px 24px; }
h2 { font-size:18px; margin:26px 4px 10px; padding-bottom:4px; border-bottom:1px solid var(--line); }
h3 { font-size:15px; margin:0 0 2px; }
.caption { margin:0 0 10px; color:var(--muted); font-size:12.5px; }
.kpis { display:grid; grid-template-columns:repeat(auto-fit, minmax(140px, 1fr)); gap:10px; margin-top:16px; }
.kpi { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:10px 12px; }
.kpi-label { font-size:12px; color:var(--muted); }
.kpi-value { font-size:24px; font-weight:650; font-variant-numeric:tabular-nums; }
.kpi-note { font-size:11.5px; color:var(--muted); }
.grid { display:grid; grid-template-columns:1fr 1fr; gap:14px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:14px 16px; margin-bottom:14px;
  break-inside:avoid; page-break-inside:avoid; min-width:0; }
.grid .card { margin-bottom:0; }
.card.wide { grid-column:1 / -1; }
.chart svg { display:block; width:100%; height:auto; overflow:visible; }
.chart text { font-family:inherit; fill:var(--ink); font-size:12px; }
.chart .axis text, .chart text.muted { fill:var(--muted); font-size:11px; }
.chart text.val { paint-order:stroke; stroke:#fff; stroke-width:3px; stroke-linejoin:round; }
.chart text.on-bar { fill:#fff; font-size:11px; font-weight:600; }
.chart text.big { font-size:26px; font-weight:650; }
.chart .marker { stroke:#c9453c; stroke-width:1; stroke-dasharray:4 3; }
.chart text.marker-label { fill:#c9453c; font-size:11px; }
.chart .grid-line { stroke:#e6e9ee; stroke-width:1; }
.chart .baseline { stroke:#9aa3b2; stroke-width:1; }
.legend { display:flex; flex-wrap:wrap; gap:6px 16px; margin-top:8px; font-size:12px; color:var(--muted); }
.legend span.sw { display:inline-block; width:11px; height:11px; border-radius:2px; margin-right:5px; vertical-align:-1px; }
.empty { color:var(--muted); font-style:italic; margin:8px 0; }
.notice { background:#fff7e0; border:1px solid #f0d58a; border-radius:6px; padding:10px 14px; margin-top:16px; }
.note { color:var(--muted); font-size:12.5px; }
table { width:100%; border-collapse:collapse; font-size:13px; }
th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; color:var(--muted); font-weight:600; background:#fafbfc; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
td.date { white-space:nowrap; color:var(--muted); }
td.example { max-width:520px; }
tbody tr:nth-child(even) td { background:#fbfcfd; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size:12.5px; }
.url a, .url span { color:var(--accent); word-break:break-all; font-size:12.5px; }
.excerpt { color:var(--muted); font-size:12.5px; overflow-wrap:anywhere; white-space:pre-line; max-height:4.4em; overflow:hidden; }
footer { max-width:1180px; margin:0 auto; padding:10px 24px 30px; color:var(--muted); font-size:12px; }
@media (max-width: 820px) { .grid { grid-template-columns:1fr; } }
@media print {
  body { background:#fff; font-size:12px; }
  header { padding:0 0 8px; }
  main, footer { max-width:none; padding:0; }
  .card { border-color:#ccc; }
  a { color:inherit; text-decoration:none; }
  h2 { break-after:avoid; page-break-after:avoid; }
}
@page { margin:14mm; }
"""

# Hand-written chart drawing: reads the embedded figures and draws SVG with DOM calls
# (textContent only, never innerHTML), marks each container data-drawn="true" and sets
# body[data-charts-drawn] to the number of charts drawn.
JS = r"""
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("vigie-data").textContent);
  var PALETTE = ["#1f5fa8", "#e07b39", "#2e9e6b", "#8a5cc2", "#c9453c", "#3fa7b5", "#b08a2e", "#6b7280"];
  var STATUS = {
    removed: ["Removed", "#2e9e6b"], online: ["Still online", "#c9453c"], referred: ["Referred, awaiting", "#1f5fa8"],
    confirmed: ["Confirmed, not yet referred", "#e0a43a"], rejected: ["Rejected on review", "#9aa3b2"]
  };
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) { if (Object.prototype.hasOwnProperty.call(attrs, k)) node.setAttribute(k, attrs[k]); }
    if (parent) parent.appendChild(node);
    return node;
  }
  function txt(parent, x, y, str, attrs) {
    var a = attrs || {}; a.x = x; a.y = y;
    var node = el("text", a, parent);
    node.textContent = str;
    return node;
  }
  function tip(node, str) { el("title", {}, node).textContent = str; }
  function fmt(v, digits) {
    if (v === null || v === undefined || isNaN(v)) return "–";
    var s = Number(v).toFixed(digits || 0), parts = s.split(".");
    parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return parts.join(".");
  }
  function hours(h) { return h === null || h === undefined ? "–" : (h < 48 ? fmt(h, 1) + " h" : fmt(h / 24, 1) + " days"); }
  function cut(str, n) { str = String(str); return str.length > n ? str.slice(0, n - 1) + "…" : str; }
  function svg(box, w, h, label) {
    var s = el("svg", { viewBox: "0 0 " + w + " " + h, width: w, height: h, role: "img", "aria-label": label }, null);
    s.setAttribute("preserveAspectRatio", "xMinYMin meet");
    box.appendChild(s);
    return s;
  }
  function empty(box, msg) {
    var p = document.createElement("p"); p.className = "empty"; p.textContent = msg; box.appendChild(p);
  }
  function legend(box, items) {
    var div = document.createElement("div"); div.className = "legend";
    items.forEach(function (it) {
      var span = document.createElement("span"), sw = document.createElement("span");
      sw.className = "sw"; sw.style.background = it[1];
      span.appendChild(sw); span.appendChild(document.createTextNode(it[0]));
      div.appendChild(span);
    });
    box.appendChild(div);
  }
  function niceStep(max, count) {
    var raw = Math.max(max, 1) / count, mag = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / mag;
    var step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    return Math.max(step, 1);
  }
  function dayLabel(iso, gran) {
    var p = iso.split("-"), m = MONTHS[Number(p[1]) - 1];
    return gran === "month" ? m + " " + p[0] : Number(p[2]) + " " + m;
  }

  // Horizontal bars: items [{label, value, text, title, lo, hi}].
  function hbars(box, items, o) {
    var W = o.width || 560, rowH = 26, labelW = o.labelW || 190, valueW = o.valueW || 90, top = o.marker ? 18 : 4;
    var H = top + items.length * rowH + 6, plotW = W - labelW - valueW;
    var s = svg(box, W, H, o.label);
    var max = 0;
    items.forEach(function (it) { max = Math.max(max, it.hi || 0, it.value); });
    if (o.marker) max = Math.max(max, o.marker.value * 1.1);
    max = max || 1;
    el("line", { x1: labelW, x2: labelW, y1: top, y2: H - 4, "class": "baseline" }, s);
    if (o.marker) {
      var mx = (labelW + plotW * o.marker.value / max).toFixed(1);
      el("line", { x1: mx, x2: mx, y1: top - 4, y2: H - 4, "class": "marker" }, s);
      txt(s, mx, top - 10, o.marker.label, { "text-anchor": "middle", "class": "marker-label" });
    }
    items.forEach(function (it, i) {
      var y = top + i * rowH, g = el("g", {}, s), w = Math.max(2, plotW * it.value / max);
      var lab = txt(g, labelW - 8, y + rowH / 2, cut(it.label, o.cut || 30), { "text-anchor": "end", "dominant-baseline": "central" });
      tip(lab, it.label);
      var r = el("rect", { x: labelW, y: y + 5, width: w.toFixed(1), height: rowH - 10, rx: 2, fill: o.color, "class": "bar" }, g);
      tip(r, it.title || (it.label + ": " + it.text));
      var end = w;
      if (it.lo !== null && it.lo !== undefined && it.hi !== null && it.hi !== undefined) {
        var x1 = labelW + plotW * it.lo / max, x2 = labelW + plotW * it.hi / max, cy = y + rowH / 2;
        el("line", { x1: x1.toFixed(1), x2: x2.toFixed(1), y1: cy, y2: cy, stroke: "#1d2330", "stroke-width": 1.5, "class": "range" }, g);
        el("line", { x1: x1.toFixed(1), x2: x1.toFixed(1), y1: cy - 5, y2: cy + 5, stroke: "#1d2330", "stroke-width": 1.5 }, g);
        el("line", { x1: x2.toFixed(1), x2: x2.toFixed(1), y1: cy - 5, y2: cy + 5, stroke: "#1d2330", "stroke-width": 1.5 }, g);
        end = Math.max(end, x2 - labelW);
      }
      txt(g, labelW + end + 6, y + rowH / 2, it.text, { "dominant-baseline": "central", "class": "muted val" });
    });
  }

  // Columns, optionally stacked: buckets [labels], series [{name, color, values}].
  function columns(box, labels, series, o) {
    var W = o.width || 1100, H = o.height || 280, L = 44, R = 10, T = 12, B = 34;
    var n = labels.length, plotW = W - L - R, plotH = H - T - B;
    var totals = labels.map(function (_, i) { return series.reduce(function (a, se) { return a + se.values[i]; }, 0); });
    var max = Math.max.apply(null, totals.concat([1])), step = niceStep(max, 4), top = Math.ceil(max / step) * step;
    var s = svg(box, W, H, o.label), axis = el("g", { "class": "axis" }, s);
    for (var v = 0; v <= top + 1e-9; v += step) {
      var y = T + plotH - plotH * v / top;
      el("line", { x1: L, x2: W - R, y1: y.toFixed(1), y2: y.toFixed(1), "class": v ? "grid-line" : "baseline" }, axis);
      txt(axis, L - 6, y, fmt(v), { "text-anchor": "end", "dominant-baseline": "central" });
    }
    var bw = plotW / n, gap = Math.min(bw * 0.2, 6), every = Math.max(1, Math.ceil(n / Math.floor(plotW / (o.labelW || 56))));
    labels.forEach(function (label, i) {
      var x = L + i * bw, base = T + plotH;
      series.forEach(function (se) {
        var value = se.values[i];
        if (!value) return;
        var h = plotH * value / top;
        var r = el("rect", { x: (x + gap / 2).toFixed(1), y: (base - h).toFixed(1), width: Math.max(1, bw - gap).toFixed(1),
          height: h.toFixed(1), fill: se.color, "class": "bar" }, s);
        tip(r, (o.tipLabel ? o.tipLabel(label) : label) + " — " + se.name + ": " + fmt(value));
        base -= h;
      });
      if (o.showValues && totals[i]) txt(s, x + bw / 2, base - 5, fmt(totals[i]), { "text-anchor": "middle", "class": "muted" });
      if (i % every === 0) txt(axis, x + bw / 2, T + plotH + 16, o.xLabel ? o.xLabel(label) : label, { "text-anchor": "middle" });
    });
    if (series.length > 1 || o.forceLegend) legend(box, series.map(function (se) { return [se.name, se.color]; }));
  }

  function arc(cx, cy, R, r, a0, a1) {
    function pt(rad, a) { return (cx + rad * Math.sin(a)).toFixed(2) + " " + (cy - rad * Math.cos(a)).toFixed(2); }
    var large = a1 - a0 > Math.PI ? 1 : 0;
    return "M" + pt(R, a0) + " A" + R + " " + R + " 0 " + large + " 1 " + pt(R, a1) +
      " L" + pt(r, a1) + " A" + r + " " + r + " 0 " + large + " 0 " + pt(r, a0) + " Z";
  }

  function donut(box, parts, o) {
    var W = 560, H = 230, cx = 115, cy = 115, R = 105, r = 64;
    var total = parts.reduce(function (a, p) { return a + p.value; }, 0);
    var s = svg(box, W, H, o.label), a = 0;
    parts.forEach(function (p) {
      var share = p.value / total, a1 = a + share * 2 * Math.PI, d;
      if (share >= 0.9999) d = arc(cx, cy, R, r, 0, Math.PI) + " " + arc(cx, cy, R, r, Math.PI, 2 * Math.PI - 1e-6);
      else d = arc(cx, cy, R, r, a, a1);
      var path = el("path", { d: d, fill: p.color, stroke: "#fff", "stroke-width": 1.5, "class": "slice" }, s);
      tip(path, p.label + ": " + fmt(p.value) + " (" + fmt(100 * share) + "%)");
      a = a1;
    });
    txt(s, cx, cy - 8, fmt(total), { "text-anchor": "middle", "dominant-baseline": "central", "class": "big" });
    txt(s, cx, cy + 16, o.unit || "", { "text-anchor": "middle", "dominant-baseline": "central", "class": "muted" });
    parts.forEach(function (p, i) {
      var y = 30 + i * 30;
      el("rect", { x: 250, y: y - 7, width: 14, height: 14, rx: 2, fill: p.color, "class": "swatch" }, s);
      txt(s, 272, y, p.label, { "dominant-baseline": "central" });
      txt(s, W - 6, y, fmt(p.value) + "  (" + fmt(100 * p.value / total) + "%)", { "text-anchor": "end", "dominant-baseline": "central", "class": "muted" });
    });
  }

  // 100% stacked horizontal bars: rows [{label, total, parts: [{name, value, color}]}].
  function stacked(box, rows, o) {
    var W = 560, rowH = 34, labelW = 110, valueW = 60, top = 4, H = top + rows.length * rowH + 4, plotW = W - labelW - valueW;
    var s = svg(box, W, H, o.label);
    rows.forEach(function (row, i) {
      var y = top + i * rowH, x = labelW;
      tip(txt(s, labelW - 8, y + rowH / 2, cut(row.label, 16), { "text-anchor": "end", "dominant-baseline": "central" }), row.label);
      row.parts.forEach(function (p) {
        if (!p.value) return;
        var w = plotW * p.value / row.total;
        var r = el("rect", { x: x.toFixed(1), y: y + 6, width: w.toFixed(1), height: rowH - 12, fill: p.color, "class": "bar" }, s);
        tip(r, row.label + " — " + p.name + ": " + fmt(p.value) + " (" + fmt(100 * p.value / row.total) + "%)");
        if (w > 26) txt(s, x + w / 2, y + rowH / 2, fmt(p.value), { "text-anchor": "middle", "dominant-baseline": "central", "class": "on-bar" });
        x += w;
      });
      txt(s, W - 4, y + rowH / 2, "n = " + fmt(row.total), { "text-anchor": "end", "dominant-baseline": "central", "class": "muted" });
    });
    legend(box, o.legend);
  }

  var platformColor = {}, nextColor = 0;
  function colorFor(platform) {
    if (!(platform in platformColor)) platformColor[platform] = PALETTE[nextColor++ % PALETTE.length];
    return platformColor[platform];
  }
  function status(name) { return STATUS[name] || [name, "#6b7280"]; }

  var draw = {
    timeline: function (box) {
      var tl = data.timeline;
      if (!tl.buckets.length) return empty(box, "No flagged adverts with a publication date in this period.");
      var unit = tl.granularity;
      columns(box, tl.buckets, tl.series.map(function (se) { return { name: se.platform, color: colorFor(se.platform), values: se.counts }; }), {
        label: "Flagged adverts per " + unit, forceLegend: true, showValues: tl.buckets.length <= 40,
        xLabel: function (b) { return dayLabel(b, unit); },
        tipLabel: function (b) { return (unit === "week" ? "Week of " : "") + b; }
      });
      var note = document.createElement("p"); note.className = "caption";
      note.textContent = "One column per " + unit + ".";
      box.appendChild(note);
    },
    languages: function (box) {
      if (!data.languages.length) return empty(box, "No flagged adverts.");
      var total = data.languages.reduce(function (a, l) { return a + l.count; }, 0);
      hbars(box, data.languages.map(function (l) {
        return { label: l.label + (l.lang ? " (" + l.lang + ")" : ""), value: l.count, text: fmt(l.count) + " · " + fmt(100 * l.count / total) + "%" };
      }), { color: PALETTE[0], label: "Flagged adverts by language", valueW: 90 });
    },
    routes: function (box) {
      if (!data.routes.length) return empty(box, "No routes named in flagged adverts.");
      hbars(box, data.routes.map(function (r) { return { label: r.label, value: r.count, text: fmt(r.count) }; }),
        { color: PALETTE[2], label: "Top routes", labelW: 230, cut: 34, valueW: 50 });
    },
    prices: function (box) {
      if (!data.prices.length) return empty(box, "No prices in adverts that name a route.");
      hbars(box, data.prices.map(function (p) {
        return { label: p.label, value: p.median_eur, lo: p.p25_eur, hi: p.p75_eur, text: "€" + fmt(p.median_eur) + "  n=" + fmt(p.n),
          title: p.label + ": median €" + fmt(p.median_eur) + (p.p25_eur !== null ? " (middle half €" + fmt(p.p25_eur) + "–€" + fmt(p.p75_eur) + ")" : "") + ", " + fmt(p.n) + " adverts" };
      }), { color: PALETTE[1], label: "Median price by route in EUR", width: 1100, labelW: 260, cut: 40, valueW: 130 });
    },
    outcomes: function (box) {
      var oc = data.outcomes;
      if (!oc.statuses.length) return empty(box, "No referrals for this period.");
      donut(box, oc.statuses.map(function (st) { return { label: status(st)[0], value: oc.by_status[st], color: status(st)[1] }; }),
        { label: "Referral outcomes", unit: "referrals" });
    },
    outcomes_by_platform: function (box) {
      var oc = data.outcomes;
      if (!oc.by_platform.length) return empty(box, "No referrals for this period.");
      stacked(box, oc.by_platform.map(function (row) {
        return { label: row.platform, total: row.total, parts: oc.statuses.map(function (st) { return { name: status(st)[0], value: row.counts[st] || 0, color: status(st)[1] }; }) };
      }), { label: "Referral outcomes by platform", legend: oc.statuses.map(function (st) { return status(st); }) });
    },
    removal_by_platform: function (box) {
      var rm = data.removal;
      if (!rm.by_platform.length) return empty(box, "No removals with referral and removal times.");
      hbars(box, rm.by_platform.map(function (p) {
        return { label: p.platform, value: p.median_hours, text: hours(p.median_hours) + "  n=" + fmt(p.n) };
      }), { color: "#2e9e6b", label: "Median hours to removal by platform", labelW: 110, valueW: 110, marker: { value: 24, label: "24 h" } });
      var note = document.createElement("p"); note.className = "caption";
      note.textContent = "All platforms: median " + hours(rm.median_hours) + " over " + fmt(rm.n) + " removed posts.";
      box.appendChild(note);
    },
    removal_distribution: function (box) {
      var rm = data.removal;
      if (!rm.n) return empty(box, "No removals with referral and removal times.");
      columns(box, rm.distribution.map(function (b) { return b.label; }),
        [{ name: "Removed posts", color: "#2e9e6b", values: rm.distribution.map(function (b) { return b.count; }) }],
        { width: 560, height: 230, label: "Removed posts by time to removal", showValues: true, labelW: 40 });
    }
  };

  var drawn = 0;
  Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), function (box) {
    var fn = draw[box.getAttribute("data-chart")];
    if (!fn) return;
    try {
      fn(box);
      box.setAttribute("data-drawn", "true");
      drawn += 1;
    } catch (err) {
      empty(box, "This chart could not be drawn.");
      box.setAttribute("data-drawn", "error");
      if (window.console) console.error(err);
    }
  });
  document.body.dataset.chartsDrawn = String(drawn);
})();
"""

# Nothing is fetched; the one script runs by its hash, so an injected inline handler could not.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    f"script-src 'sha256-{base64.b64encode(hashlib.sha256(JS.encode('utf-8')).digest()).decode('ascii')}'"
)
