"""The alert rules (`alerts.rules`), evaluated over what is stored:

- `new_network`: a network not seen before, `new_network:<network id>`;
- `new_member`: a source or a contact (phone, handle, link, payment office, wallet; not a
  repost or image cluster) new in a known network, `new_member:<network id>:<kind>:<value>`;
  a network's members are known from its own alert and from the member alerts after it, and
  those of networks merged into it count as its own, so a member is told once;
- `cluster`: a repost cluster with `cluster_min_posts` flagged posts whose best score
  reaches `cluster_score`, `cluster:<cluster id>`; a cluster sharing a post with one already
  told about (clusters merge) is not told again;
- `route_week`: a route between two countries whose adverts (repost clusters, a post
  outside any counting alone) in the current or the last ISO week are at least
  `route_min_posts` and more than `route_weekly_factor` times its mean over the 8 weeks
  before, `route_week:<origin country>><destination country>:<YYYY-Www>`;
- `still_online`: a referred post not removed `still_online_hours` after its referral,
  `still_online:<post key>`.

Each alert is raised once: its key is stored, and matching again changes nothing. Each
rule's first evaluation without error on a store that already held classified posts sends
nothing: what it matches then is recorded as known (its baseline), so switching alerts (or
one rule) on over months of data does not flood anyone; from then on only what is new is
sent (`raise_new(..., baseline=False)` sends everything). The network rules are first
evaluated only once networks have been refreshed. Payloads name posts by URL and key,
never with their text.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pipeline.intel.networks import CONTACT_KINDS, surviving_id
from vigie.config import AlertRules, VigieConfig
from vigie.store import DECIDED, Store, is_database_error, one_line, stored_time
from vigie.store import alerts as stored

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from pipeline.intel.networks import Network

RULES = ("new_network", "new_member", "cluster", "route_week", "still_online")
NETWORK_RULES = ("new_network", "new_member")
BASELINE_WEEKS = 8


@dataclass(frozen=True)
class Alert:
    key: str
    rule: str
    subject: str
    summary: str  # one line
    details: dict[str, Any]
    created_at: str

    def payload(self) -> dict[str, Any]:
        """What channels deliver: JSON, with the alert's key as `alert_id` for receivers to
        de-duplicate on."""
        return {
            "alert_id": self.key,
            "rule": self.rule,
            "subject": self.subject,
            "summary": self.summary,
            "details": self.details,
            "created_at": self.created_at,
        }

    def to_store(self) -> stored.NewAlert:
        return stored.NewAlert(self.key, self.rule, self.subject, self.created_at, self.payload())


def _members(network: Network) -> list[str]:
    """A network's members as `kind:value`, its sources first."""
    found = [f"source:{s}" for s in network.sources]
    for kind, values in sorted(network.members.items()):
        if kind != "source":
            found += [f"{kind}:{v}" for v in values]
    return sorted(set(found), key=lambda m: (not m.startswith("source:"), m))


def _watched(network: Network) -> list[str]:
    """The members whose arrival the `new_member` rule tells: sources and contacts."""
    return [m for m in _members(network) if m.partition(":")[0] in ("source", *CONTACT_KINDS)]


def network_profile(network: Network) -> dict[str, Any]:
    """The part of a network's profile an alert carries: who, what they share, where to."""
    return {
        "network_id": network.network_id,
        "sources": list(network.sources),
        "platforms": list(network.platforms),
        "members": _members(network),
        "flagged_posts": network.flagged_posts,
        "languages": dict(network.languages),
        "routes": [
            {"origin": r.get("origin"), "destination": r.get("destination"), "posts": r.get("posts")}
            for r in network.routes
        ],
        "prices": list(network.prices[-6:]),
        "first_seen": network.first_seen,
        "last_seen": network.last_seen,
    }


def known_members(store: Store, merged: dict[str, str] | None = None) -> dict[str, set[str]]:
    """Network id -> the members alerts have already told about (or recorded as known).
    `merged` ({absorbed id: id merged into}): an absorbed network's known members are its
    survivor's too, so that a merge raises no alert for what was told already."""
    known: dict[str, set[str]] = defaultdict(set)
    for payload in stored.payloads(store, "new_network"):
        details = payload.get("details") or {}
        known[str(details.get("network_id"))].update(details.get("members") or [])
    for payload in stored.payloads(store, "new_member"):
        details = payload.get("details") or {}
        known[str(details.get("network_id"))].add(str(details.get("member")))
    return fold_merged(dict(known), merged or {})


def fold_merged(known: dict[str, set[str]], merged: dict[str, str]) -> dict[str, set[str]]:
    """Add each absorbed network's members to the network it ended in (merges chain)."""
    out = {nid: set(members) for nid, members in known.items()}
    for nid, members in known.items():
        survivor = surviving_id(merged, nid)
        if survivor != nid:
            out.setdefault(survivor, set()).update(members)
    return out


def network_alerts(
    networks: Iterable[Network], known: dict[str, set[str]], rules: AlertRules, now: str
) -> tuple[list[Alert], list[Alert]]:
    """Alerts for networks not known yet and for members new in known ones, and the silent
    ones: a new network's record when `new_network` is off (its members become known)."""
    alerts: list[Alert] = []
    silent: list[Alert] = []
    for network in networks:
        members = _members(network)
        watched = _watched(network)
        profile = network_profile(network)
        nid = network.network_id
        if nid not in known:
            contacts = [m for m in members if not m.startswith("source:")]
            shown = ", ".join(network.sources[:3]) + (" …" if len(network.sources) > 3 else "")
            summary = (
                f"new network {nid}: {len(network.sources)} sources ({shown}), {len(contacts)} shared "
                f"contacts and marks, {network.flagged_posts} flagged posts"
            )
            alert = Alert(f"new_network:{nid}", "new_network", nid, summary, profile, now)
            (alerts if rules.new_network else silent).append(alert)
            continue
        if not rules.new_contact:
            continue
        for member in watched:
            if member in known[nid]:
                continue
            kind, _, value = member.partition(":")
            summary = (
                f"{'source' if kind == 'source' else kind} {value} joined network {nid} "
                f"({len(network.sources)} sources, {network.flagged_posts} flagged posts)"
            )
            details = {"network_id": nid, "member": member, "kind": kind, "value": value, "network": profile}
            alerts.append(
                Alert(f"new_member:{nid}:{member}", "new_member", f"{nid}:{member}", summary, details, now)
            )
    return alerts, silent


def cluster_alerts(
    clusters: Iterable[dict[str, Any]],
    rules: AlertRules,
    now: str,
    told: dict[str, set[str]] | None = None,
) -> list[Alert]:
    """Repost clusters (as `vigie.store.alerts.flagged_clusters` gives them) big and sure
    enough. `told`: cluster id -> URLs of the cluster alerts raised before; a cluster under
    another id holding one of those posts (two clusters merged) is the same advert."""
    if rules.cluster_score is None:
        return []
    told = told or {}
    found = []
    for c in clusters:
        if c["posts"] < rules.cluster_min_posts or c["best_score"] < rules.cluster_score:
            continue
        urls = set(c["urls"])
        if any(cid != c["cluster_id"] and urls & known for cid, known in told.items()):
            continue
        summary = (
            f"repost cluster {c['cluster_id']}: {c['posts']} flagged posts from {len(c['sources'])} sources, "
            f"best score {c['best_score']:.2f}"
        )
        details = {
            "cluster_id": c["cluster_id"],
            "flagged_posts": c["posts"],
            "best_score": round(float(c["best_score"]), 4),
            "sources": list(c["sources"]),
            "urls": list(c["urls"])[:50],
            "first_published": c.get("first_published"),
            "last_published": c.get("last_published"),
        }
        found.append(
            Alert(f"cluster:{c['cluster_id']}", "cluster", str(c["cluster_id"]), summary, details, now)
        )
    return found


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def iso_week(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def route_week_alerts(
    rows: Iterable[dict[str, Any]], rules: AlertRules, today: date, now: str
) -> list[Alert]:
    """Routes between two countries whose adverts this week or last week stand out against
    the 8 weeks before. `rows`: flagged posts as `vigie.store.alerts.flagged_route_posts`
    gives them; each post's routes are its legs between two countries
    (`pipeline.intel.trends.country_routes`), and the reposts of one cluster count once in a
    week, in the week of its first."""
    from pipeline.intel.trends import country_routes, posts_from_rows

    factor = rules.route_weekly_factor
    if factor is None:
        return []
    rows = list(rows)
    clusters = {str(row["key"]): row.get("cluster_id") for row in rows}
    adverts: dict[tuple[str, str], dict[str, date]] = defaultdict(dict)
    for post in posts_from_rows(rows):
        day = post.published.date()
        advert = str(clusters.get(post.key) or f"post:{post.key}")
        for route, _ in country_routes(post):
            adverts[route][advert] = min(adverts[route].get(advert, day), day)
    counts: dict[tuple[str, str], dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for route, first_days in adverts.items():
        for day in first_days.values():
            counts[route][_monday(day)] += 1
    this_week = _monday(today)
    found = []
    for (origin, destination), weeks in sorted(counts.items()):
        for monday in (this_week - timedelta(weeks=1), this_week):
            count = weeks.get(monday, 0)
            before = [weeks.get(monday - timedelta(weeks=n), 0) for n in range(1, BASELINE_WEEKS + 1)]
            mean = sum(before) / BASELINE_WEEKS
            if count < rules.route_min_posts or count <= factor * mean:
                continue
            week = iso_week(monday)
            pair = f"{origin}>{destination}"
            against = f"{count / mean:.1f}× its weekly mean of {mean:.1f}" if mean else "none in"
            summary = (
                f"route {origin} → {destination}: {count} adverts in {week}, {against} "
                f"the {BASELINE_WEEKS} weeks before"
            )
            details = {
                "origin": origin,
                "destination": destination,
                "week": week,
                "adverts": count,
                "baseline_weeks": BASELINE_WEEKS,
                "baseline_mean": round(mean, 3),
                "baseline_counts": before[::-1],
                "factor": factor,
            }
            found.append(
                Alert(f"route_week:{pair}:{week}", "route_week", f"{pair}:{week}", summary, details, now)
            )
    return found


def still_online_alerts(referrals: Iterable[dict[str, Any]], rules: AlertRules, at: datetime) -> list[Alert]:
    """Referred posts (as `vigie.store.alerts.referred_unremoved` gives them) not removed
    `still_online_hours` after their referral."""
    if rules.still_online_hours is None:
        return []
    found = []
    now = stored.timestamp(at)
    for r in referrals:
        referred = stored_time(r["referred_at"])
        if referred is None:
            continue
        hours = (at - referred).total_seconds() / 3600
        if hours < rules.still_online_hours:
            continue
        checked = f", last checked {r['last_check_at']}" if r.get("last_check_at") else ", never checked"
        summary = f"{r['url']} still online {hours:.0f} h after its referral to {r['platform']}{checked}"
        details = {
            "post_key": r["post_key"],
            "url": r["url"],
            "platform": r["platform"],
            "notice_id": r.get("notice_id"),
            "status": r["status"],
            "referred_at": r["referred_at"],
            "hours_since_referral": round(hours, 1),
            "last_check": r.get("last_check"),
            "last_check_at": r.get("last_check_at"),
        }
        found.append(
            Alert(f"still_online:{r['post_key']}", "still_online", r["post_key"], summary, details, now)
        )
    return found


@dataclass
class Evaluation:
    alerts: list[Alert] = field(default_factory=list)
    silent: list[Alert] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one line per rule that could not be evaluated
    evaluated: set[str] = field(default_factory=set)  # the rules evaluated without error


def _networks_ready(store: Store) -> bool:
    """Whether networks were ever stored (a refresh ran and found some)."""
    from vigie.store.networks import count_networks

    return count_networks(store) > 0


def _network_rule(
    store: Store, rules: AlertRules, now: str, networks: list[Network] | None
) -> tuple[list[Alert], list[Alert]]:
    from pipeline.intel.networks import stored_networks
    from vigie.store.networks import merged_map

    if networks is None:
        networks = stored_networks(store)
    return network_alerts(networks, known_members(store, merged_map(store)), rules, now)


def _cluster_rule(store: Store, rules: AlertRules, now: str) -> list[Alert]:
    told = {}
    for payload in stored.payloads(store, "cluster"):
        details = payload.get("details") or {}
        told[str(details.get("cluster_id"))] = set(details.get("urls") or [])
    clusters = stored.flagged_clusters(store, DECIDED, rules.cluster_min_posts)
    return cluster_alerts(clusters, rules, now, told)


def evaluate(
    store: Store,
    config: VigieConfig,
    at: datetime | None = None,
    networks_ready: bool | None = None,
    networks: list[Network] | None = None,
) -> Evaluation:
    """Every rule over the store, each on its own: one that fails is reported and the others
    go on. Already-raised alerts are among the results (storing them changes nothing).
    `networks_ready`: whether the networks were refreshed (default: whether any is stored,
    or True when `networks` is given); until then the network rules are not evaluated.
    `networks`: the networks just refreshed, instead of reading them back from the store."""
    at = at or datetime.now(UTC)
    now = stored.timestamp(at)
    rules = config.alerts.rules
    result = Evaluation()

    def attempt(names: tuple[str, ...], what: str, run: Any) -> None:
        try:
            alerts = run()
        except Exception as exc:
            log.debug("alert rule %s failed", what, exc_info=True)
            result.errors.append(
                f"alerts: {what} not evaluated ({failure_line(exc)}); the next pass tries again"
            )
        else:
            if isinstance(alerts, tuple):
                result.alerts.extend(alerts[0])
                result.silent.extend(alerts[1])
            else:
                result.alerts.extend(alerts)
            result.evaluated.update(names)

    if rules.new_network or rules.new_contact:
        ready = networks_ready
        if ready is None:
            ready = networks is not None or _networks_ready(store)
        if ready:
            attempt(NETWORK_RULES, "network rules", lambda: _network_rule(store, rules, now, networks))
    if rules.cluster_score is not None:
        attempt(("cluster",), "the cluster rule", lambda: _cluster_rule(store, rules, now))
    if rules.route_weekly_factor is not None:
        since = _monday(at.date()) - timedelta(weeks=BASELINE_WEEKS + 1)
        attempt(
            ("route_week",),
            "the route rule",
            lambda: route_week_alerts(
                stored.flagged_route_posts(store, DECIDED, since.isoformat()), rules, at.date(), now
            ),
        )
    if rules.still_online_hours is not None:
        before = stored.timestamp(at - timedelta(hours=rules.still_online_hours))
        attempt(
            ("still_online",),
            "the still-online rule",
            lambda: still_online_alerts(stored.referred_unremoved(store, before), rules, at),
        )
    return result


def failure_line(exc: BaseException) -> str:
    """An error in one line for a report: a database's own message (never the statement,
    which may hold a post's text), or the exception's type and message."""
    return one_line(exc) if is_database_error(exc) else f"{type(exc).__name__}: {exc}"


@dataclass
class Raised:
    new: list[Alert] = field(default_factory=list)  # raised now, one delivery per channel each
    baseline: int = 0  # recorded as known by a rule's first evaluation, not sent
    errors: list[str] = field(default_factory=list)
    redelivered: int = 0  # deliveries added for a channel configured after their alert was raised


def raise_new(
    store: Store,
    config: VigieConfig,
    at: datetime | None = None,
    held_before: bool | None = None,
    baseline: bool = True,
    networks_ready: bool | None = None,
    networks: list[Network] | None = None,
) -> Raised:
    """Evaluate the rules and store the alerts not raised before, each with a pending
    delivery per configured channel. `held_before`: whether the store held classified posts
    before the data just processed (default: whether it holds any); a rule's first
    evaluation without error on such a store, with `baseline`, records what it matches as
    known and sends none of it. Alerts raised in the last `alerts.give_up_hours` get a
    delivery by a channel configured since. `networks`: those just refreshed (see `evaluate`)."""
    from pipeline.alerts.deliver import configured_channels

    at = at or datetime.now(UTC)
    now = stored.timestamp(at)
    found = evaluate(store, config, at, networks_ready=networks_ready, networks=networks)
    raised = Raised(errors=list(found.errors))
    enabled = stored.enabled_rules(store, found.evaluated)
    first = found.evaluated - enabled
    if held_before is None:
        held_before = stored.classified_posts(store) > 0
    quiet = first if baseline and held_before else set()
    sent = [a for a in found.alerts if a.rule not in quiet]
    known = [a for a in found.alerts if a.rule in quiet]
    channels = configured_channels(config)
    by_key = {a.key: a for a in sent}
    keys = stored.raise_alerts(
        store,
        [a.to_store() for a in sent],
        channels,
        now,
        silent=[a.to_store() for a in known + found.silent],
        enable=sorted(first),
    )
    raised.new = [by_key[k] for k in keys]
    raised.baseline = len(known)
    since = stored.timestamp(at - timedelta(hours=config.alerts.give_up_hours))
    raised.redelivered = stored.add_deliveries(store, channels, since, now)
    return raised


def trial_alert(at: datetime | None = None) -> Alert:
    """The alert `vigie alerts test` sends: never stored, its rule says it is a test."""
    now = stored.timestamp(at or datetime.now(UTC))
    return Alert(
        f"test:{now}",
        "test",
        "delivery test",
        "test alert from Vigie: this channel receives alerts",
        {"test": True},
        now,
    )
