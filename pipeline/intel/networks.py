"""Smuggling networks: sources (channels, accounts) linked by what their flagged posts share.

The linking rule:
- a source's members are what its flagged posts carry: phone numbers (E.164), messenger
  handles and links, payment offices, wallet addresses, and the repost clusters and PDQ
  image groups it shares with another source;
- a member found in n sources weighs 1/(n-1) between each two of them (a 2-source member
  1.0, a 5-source one 0.25); members listed in `networks.hotlines` (an NGO's number,
  normalised to E.164) and members in more than `networks.max_sources_per_contact` sources
  weigh nothing;
- two sources are linked when what they share weighs `networks.min_weight` or more, and a
  network is a connected component of those links with at least two sources: one channel
  alone is a source, not a network.

Only flagged posts count: sure adverts an analyst has not rejected, and posts an analyst
confirmed. A network's id is "net-" and 12 hex digits of a hash of its earliest source (by
first flagged post, ties by name), and stays with it: on refresh a network takes the id of
the stored network it shares most sources with; when stored networks merge, the elder keeps
its id and the others point to it.
"""

from __future__ import annotations

import hashlib
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import phonenumbers

from classifier.cues import gazetteer
from pipeline.enrich.payments import payment_offices_in, wallet_address, wallets_in
from pipeline.intel.money import to_eur
from vigie.store import DECIDED, utcnow
from vigie.store import networks as stored

if TYPE_CHECKING:
    from vigie.config import VigieConfig
    from vigie.store import Store

# Member kinds, in the order profiles list them.
KINDS = ("source", "phone", "handle", "link", "payment", "wallet", "cluster", "image")
# Kinds that are contacts of the network (the others say how its sources are related).
CONTACT_KINDS = ("phone", "handle", "link", "payment", "wallet")
_EPSILON = 1e-9


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
    joined_at: dict[str, str] = field(default_factory=dict)  # "kind:value" -> when it joined
    sources_since: dict[str, str] = field(default_factory=dict)  # source -> its first flagged post
    merged_into: str | None = None

    @property
    def contacts(self) -> list[str]:
        return [v for kind in CONTACT_KINDS for v in self.members.get(kind, [])]

    def price_range_eur(self) -> tuple[float, float] | None:
        values = [p["median_eur"] for p in self.prices if p.get("median_eur") is not None]
        return (min(values), max(values)) if values else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["contacts"] = self.contacts
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Network:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["links"] = [Link(**link) for link in data.get("links", [])]
        return cls(**values)


@dataclass
class Refresh:
    """What one refresh of the stored networks changed."""

    networks: list[Network]
    new: list[Network]  # networks not stored before
    joined: list[tuple[str, str, str]]  # (network_id, kind, value) new in a known network
    merged: list[tuple[str, str]]  # (absorbed id, surviving id)
    dissolved: list[str] = field(default_factory=list)  # stored ids no longer two sources


# --- members -------------------------------------------------------------------------


def _phone(value: str) -> str | None:
    try:
        number = phonenumbers.parse(value if value.strip().startswith("+") else "+" + value.strip())
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def hotline_members(hotlines: Iterable[str]) -> set[tuple[str, str]]:
    """The configured hotlines as members: phones in E.164, @handles lowercase, links
    without their scheme."""
    out: set[tuple[str, str]] = set()
    for raw in hotlines:
        value = raw.strip()
        if value.startswith("@"):
            out.add(("handle", value.lower()))
        elif re.fullmatch(r"\+?[\d\s().-]{7,}", value) and (phone := _phone(value)):
            out.add(("phone", phone))
        elif value:
            link = re.sub(r"^https?://", "", value, flags=re.IGNORECASE).rstrip("/.")
            out.add(("link", link))
            if handle := re.fullmatch(r"(?:t|telegram)\.me/([A-Za-z]\w{3,31})", link, re.IGNORECASE):
                out.add(("handle", "@" + handle.group(1).lower()))
    return out


def post_members(row: dict[str, Any]) -> list[tuple[str, str]]:
    """A flagged post's contacts as (kind, value): the stored entities', and the payment
    offices and wallets in its text and images when the entities do not carry them."""
    entities = row.get("entities") or {}
    found: list[tuple[str, str]] = [("phone", p) for p in entities.get("phones") or []]
    found += [("handle", "@" + str(h).lower().lstrip("@")) for h in entities.get("handles") or []]
    found += [("link", str(link).lower()) for link in entities.get("links") or []]
    text = "\n".join(filter(None, [row.get("text") or "", row.get("ocr_text") or ""]))
    offices = entities.get("payments")
    wallets = entities.get("wallets")
    found += [("payment", o) for o in (offices if offices is not None else payment_offices_in(text))]
    found += [("wallet", wallet_address(w)) for w in (wallets if wallets is not None else wallets_in(text))]
    return list(dict.fromkeys(found))


def image_groups(images: list[dict[str, Any]], distance: int) -> dict[str, set[str]]:
    """PDQ groups: images within `distance` bits of one another (transitively) are one
    flyer, named by the SHA-256 of the group's first file (by its earliest post). Returns
    {group: post keys}."""
    import numpy as np

    if not images:
        return {}
    matrix = np.frombuffer(b"".join(bytes.fromhex(i["pdq"]) for i in images), dtype=np.uint8).reshape(-1, 32)
    parent = list(range(len(images)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(images)):
        bits = np.unpackbits(np.bitwise_xor(matrix[i + 1 :], matrix[i]), axis=1).sum(axis=1)
        for j in np.flatnonzero(bits <= distance):
            a, b = root(i), root(i + 1 + int(j))
            parent[max(a, b)] = min(a, b)  # images come oldest first: the root is the first
    groups: dict[str, set[str]] = defaultdict(set)
    for i, image in enumerate(images):
        groups[images[root(i)]["sha256"]].add(image["post_key"])
    return dict(groups)


# --- the graph -------------------------------------------------------------------------


@dataclass
class _Computed:
    sources: list[str]
    posts: list[dict[str, Any]]
    members: dict[tuple[str, str], str]  # (kind, value) -> first flagged post carrying it
    links: list[Link]
    sources_since: dict[str, str]


def _compute(store: Store, config: VigieConfig) -> list[_Computed]:
    import networkx as nx

    rows = stored.flagged_posts(store, DECIDED)
    by_key = {row["key"]: row for row in rows}
    source_of = {row["key"]: f"{row['platform']}:{row['channel']}" for row in rows}
    carried: dict[str, list[tuple[str, str]]] = {row["key"]: post_members(row) for row in rows}
    for row in rows:
        if row.get("cluster_id"):
            carried[row["key"]].append(("cluster", row["cluster_id"]))
    images = sorted(
        stored.flagged_images(store, DECIDED),
        key=lambda i: (by_key[i["post_key"]]["published_at"] or "", i["sha256"]),
    )
    for group, keys in image_groups(images, config.media.pdq_distance).items():
        for key in keys:
            carried[key].append(("image", group))

    hotlines = hotline_members(config.networks.hotlines)
    sources_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    first_post: dict[tuple[str, str], str] = {}
    for row in rows:  # oldest first
        for member in carried[row["key"]]:
            if member in hotlines:
                continue
            sources_of[member].add(source_of[row["key"]])
            first_post.setdefault(member, row["published_at"] or "")

    limit = config.networks.max_sources_per_contact
    shared: dict[tuple[str, str], list[str]] = defaultdict(list)
    weights: dict[tuple[str, str], float] = defaultdict(float)
    for member, carriers in sorted(sources_of.items()):
        n = len(carriers)
        if n < 2 or n > limit:
            continue
        for a in sorted(carriers):
            for b in sorted(carriers):
                if a < b:
                    weights[(a, b)] += 1.0 / (n - 1)
                    shared[(a, b)].append(f"{member[0]}:{member[1]}")

    graph = nx.Graph()
    for (a, b), weight in weights.items():
        if weight + _EPSILON >= config.networks.min_weight:
            graph.add_edge(a, b, weight=weight)

    first_of_source: dict[str, str] = {}
    for row in rows:
        first_of_source.setdefault(source_of[row["key"]], row["published_at"] or "")
    out = []
    for component in nx.connected_components(graph):
        sources = sorted(component)
        posts = [row for row in rows if source_of[row["key"]] in component]
        members: dict[tuple[str, str], str] = {("source", s): first_of_source[s] for s in sources}
        for row in posts:
            for member in carried[row["key"]]:
                if member in hotlines:
                    continue
                # Clusters and images say how sources are related: only those shared count.
                if member[0] in ("cluster", "image") and len(sources_of[member]) < 2:
                    continue
                members.setdefault(member, first_post[member])
        pairs = sorted((min(a, b), max(a, b)) for a, b in graph.subgraph(component).edges())
        links = [Link(a, b, sorted(shared[(a, b)]), round(weights[(a, b)], 4)) for a, b in pairs]
        since = {s: first_of_source[s] for s in sources}
        out.append(_Computed(sources, posts, members, links, since))
    return out


def earliest_source(sources_since: dict[str, str]) -> str:
    return min(sources_since, key=lambda s: (sources_since[s], s))


def network_id_for(source: str, salt: int = 0) -> str:
    seed = source if not salt else f"{source}\n{salt}"
    return "net-" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:12]


# --- the profile -------------------------------------------------------------------------


def _country(place_id: str | None) -> str | None:
    if not place_id:
        return None
    place = gazetteer().get(place_id)
    return str(place.get("country") or place_id) if place else place_id


def _country_name(code: str | None) -> str | None:
    if not code:
        return None
    return str(gazetteer().get(code, {}).get("name") or code)


def route_label(origin: str | None, destination: str | None) -> str:
    return f"{origin or '?'} → {destination or '?'}"


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "")[:10])
    except ValueError:
        return None


def _profile(computed: _Computed, config: VigieConfig, network_id: str) -> Network:
    posts = computed.posts
    routes: Counter[tuple[str | None, str | None]] = Counter()
    prices: dict[tuple[str, str, str], list[tuple[float, float | None]]] = defaultdict(list)
    languages: Counter[str] = Counter()
    transport: Counter[str] = Counter()
    guarantees: Counter[str] = Counter()
    payment_terms: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for row in posts:
        entities = row.get("entities") or {}
        languages[row.get("lang") or "und"] += 1
        origin, destination = _country(entities.get("origin")), _country(entities.get("destination"))
        if origin == destination:  # two towns of one country ("from Dunkirk and Calais"): no crossing named
            destination = None
        if origin or destination:
            routes[(origin, destination)] += 1
        day = _day(row.get("published_at"))
        for price in entities.get("prices") or []:
            try:
                amount, currency = float(price["amount"]), str(price["currency"])
            except (KeyError, TypeError, ValueError):
                continue
            eur = to_eur(amount, currency, day, config) if day else None
            month = day.strftime("%Y-%m") if day else "unknown"
            prices[(month, route_label(origin, destination), currency)].append((amount, eur))
        transport.update(dict.fromkeys(entities.get("transport") or [], 1))
        guarantees.update(dict.fromkeys((str(g).lower() for g in entities.get("guarantees") or []), 1))
        payment_terms.update(dict.fromkeys((str(t).lower() for t in entities.get("payment_terms") or []), 1))
        if row.get("referral_status"):
            outcomes[row["referral_status"]] += 1
        if row.get("referral_outcome"):
            outcomes[f"platform {row['referral_outcome']}"] += 1
    members: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for (kind, value), _ in sorted(computed.members.items(), key=lambda m: (m[1], m[0])):
        members[kind].append(value)
    members["source"] = list(computed.sources)
    price_rows = []
    for (month, route, currency), found in sorted(prices.items()):
        amounts = [a for a, _ in found]
        euros = [e for _, e in found if e is not None]
        price_rows.append(
            {
                "month": month,
                "route": route,
                "currency": currency,
                "min": min(amounts),
                "max": max(amounts),
                "median": statistics.median(amounts),
                "median_eur": round(statistics.median(euros), 2) if euros else None,
                "posts": len(found),
            }
        )
    dates = [row["published_at"] for row in posts if row.get("published_at")]
    return Network(
        network_id=network_id,
        first_seen=min(dates) if dates else "",
        last_seen=max(dates) if dates else "",
        sources=list(computed.sources),
        members={kind: values for kind, values in members.items() if values},
        links=computed.links,
        post_keys=[row["key"] for row in posts],
        flagged_posts=len(posts),
        languages=dict(languages.most_common()),
        routes=[
            {
                "origin": o,
                "destination": d,
                "origin_name": _country_name(o),
                "destination_name": _country_name(d),
                "posts": n,
            }
            for (o, d), n in sorted(routes.items(), key=lambda r: (-r[1], route_label(*r[0])))
        ],
        prices=price_rows,
        transport=dict(transport.most_common()),
        guarantees=dict(guarantees.most_common()),
        payment_terms=dict(payment_terms.most_common()),
        referral_outcomes=dict(sorted(outcomes.items())),
        platforms=sorted({s.split(":", 1)[0] for s in computed.sources}),
        sources_since=dict(computed.sources_since),
    )


# --- ids, against the stored networks ----------------------------------------------------------


def _reconcile(
    computed: list[_Computed], before: list[dict[str, Any]]
) -> tuple[list[tuple[str, _Computed]], dict[str, str], list[str]]:
    """Each computed network's id, the stored ids absorbed ({absorbed: survivor}) and the
    stored ids left with no network."""
    elder = {row["network_id"]: (row["first_seen"], row["network_id"]) for row in before}
    sources_of = {
        row["network_id"]: {value for (kind, value) in row["members"] if kind == "source"} for row in before
    }
    overlaps = []
    for i, network in enumerate(computed):
        for network_id, sources in sources_of.items():
            shared = len(sources & set(network.sources))
            if shared:
                overlaps.append((-shared, elder[network_id], i, network_id))
    ids: dict[int, str] = {}
    taken: set[str] = set()
    for _, _, i, network_id in sorted(overlaps):
        if i not in ids and network_id not in taken:
            ids[i] = network_id
            taken.add(network_id)
    merged: dict[str, str] = {}
    for _, _, i, network_id in sorted(overlaps):
        if network_id not in taken and i in ids:
            merged[network_id] = ids[i]
            taken.add(network_id)
    stored_ids = set(sources_of)
    for i, network in enumerate(computed):
        if i in ids:
            continue
        salt = 0
        while (candidate := network_id_for(earliest_source(network.sources_since), salt)) in taken or (
            candidate in stored_ids
        ):
            salt += 1
        ids[i] = candidate
        taken.add(candidate)
    dissolved = sorted(stored_ids - taken)
    return [(ids[i], network) for i, network in enumerate(computed)], merged, dissolved


def _reconciled(store: Store, config: VigieConfig) -> tuple[list[Network], Refresh, list[dict[str, Any]]]:
    before = stored.stored_networks(store)
    computed = _compute(store, config)
    assigned, merged, dissolved = _reconcile(computed, before)
    known = {row["network_id"]: row for row in before}
    now = utcnow()
    result: list[Network] = []
    new: list[Network] = []
    joined: list[tuple[str, str, str]] = []
    for network_id, raw in assigned:
        network = _profile(raw, config, network_id)
        previous = dict(known.get(network_id, {}).get("members", {}))
        absorbed = {}
        for old, into in merged.items():
            if into == network_id:
                absorbed.update(known[old]["members"])
        for kind, value in raw.members:
            key = (kind, value)
            if key in previous:
                stamp = previous[key]
            elif key in absorbed:
                stamp = absorbed[key]
            else:
                stamp = raw.members[key] or now
                if network_id in known:
                    joined.append((network_id, kind, value))
            network.joined_at[f"{kind}:{value}"] = stamp
        if network_id not in known:
            new.append(network)
        result.append(network)
    result.sort(key=lambda n: (n.first_seen, n.network_id))
    refresh = Refresh(
        networks=result,
        new=new,
        joined=sorted(joined),
        merged=sorted(merged.items()),
        dissolved=dissolved,
    )
    return result, refresh, before


def find_networks(store: Store, config: VigieConfig) -> list[Network]:
    """The networks in the store now, with ids reconciled against the stored ones (read only)."""
    return _reconciled(store, config)[0]


def refresh(store: Store, config: VigieConfig) -> Refresh:
    """Recompute the networks and store them: ids, members (with when each joined), profiles."""
    networks, result, _ = _reconciled(store, config)
    rows = []
    for network in networks:
        members = {}
        for key, joined in network.joined_at.items():
            kind, value = key.split(":", 1)
            members[(kind, value)] = joined
        rows.append(
            {
                "network_id": network.network_id,
                "first_seen": network.first_seen or utcnow(),
                "profile": network.to_json(),
                "members": members,
            }
        )
    stored.save_networks(store, rows, dict(result.merged), result.dissolved, utcnow())
    return result


def stored_networks(store: Store) -> list[Network]:
    """The networks as last refreshed, without recomputing."""
    out = []
    for row in stored.stored_networks(store):
        if not row["profile"]:
            continue
        network = Network.from_json(row["profile"])
        network.network_id = row["network_id"]
        network.joined_at = {f"{kind}:{value}": joined for (kind, value), joined in row["members"].items()}
        out.append(network)
    return out


def merged_ids(store: Store) -> dict[str, str]:
    """Stored networks absorbed by another: {absorbed id: the id it was merged into}."""
    return {
        row["network_id"]: row["merged_into"]
        for row in stored.stored_networks(store, include_merged=True)
        if row["merged_into"]
    }
