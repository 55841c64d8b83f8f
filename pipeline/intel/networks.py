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
import itertools
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import phonenumbers

from classifier.cues import place_name
from pipeline.enrich.payments import payment_offices_in, wallet_address, wallets_in
from pipeline.enrich.routes import country_of
from pipeline.intel.trends import Post as TrendPost
from pipeline.intel.trends import country_routes, posts_from_rows, price_eur
from pipeline.intel.trends import route_label as trend_route
from vigie.errors import VigieError
from vigie.store import DECIDED, utcnow
from vigie.store import networks as stored

if TYPE_CHECKING:
    from vigie.config import VigieConfig
    from vigie.store import Store


# Member kinds, in the order profiles list them.
class UnknownNetworkError(VigieError):
    """A network id that names no stored network, nor one merged into another."""


KINDS = ("source", "phone", "handle", "link", "payment", "wallet", "cluster", "image")
# Kinds that are contacts of the network (the others say how its sources are related).
CONTACT_KINDS = ("phone", "handle", "link", "payment", "wallet")
_EPSILON = 1e-9
UNKNOWN_ROUTE = "unknown route"  # where the prices of posts that name no crossing go


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
    # {"month": "2026-09", "route": "France → United Kingdom" (or UNKNOWN_ROUTE), "currency",
    # "min", "max", "median", "median_eur", "posts"}: per leg, dated posts only, as trends count
    prices: list[dict[str, Any]]
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
        """The lowest and highest monthly median in EUR on a named route."""
        values = [
            p["median_eur"]
            for p in self.prices
            if p.get("median_eur") is not None and p.get("route") != UNKNOWN_ROUTE
        ]
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
    """A number written with its country code ("+33 4 86…", "0033 4 86…", "33486…") in E.164."""
    digits = re.sub(r"[\s().-]", "", value)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    try:
        number = phonenumbers.parse(digits if digits.startswith("+") else "+" + digits)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def member(kind: str, value: str) -> tuple[str, str]:
    """A contact as members are compared: handles "@" and lowercase, links lowercase
    without their scheme or trailing "/" and ".", the rest as extracted."""
    if kind == "handle":
        return kind, "@" + value.strip().lower().lstrip("@")
    if kind == "link":
        return kind, re.sub(r"^https?://", "", value.strip().lower()).rstrip("/.")
    return kind, value


def hotline_members(hotlines: Iterable[str]) -> set[tuple[str, str]]:
    """The configured hotlines as members (see `member`): phones in E.164 with their wa.me
    links, @handles, links with the handle or number a t.me or wa.me link names."""
    out: set[tuple[str, str]] = set()
    for raw in hotlines:
        value = raw.strip()
        if value.startswith("@"):
            out.add(member("handle", value))
        elif re.fullmatch(r"\+?[\d\s().-]{7,}", value) and (phone := _phone(value)):
            out |= {("phone", phone), ("link", "wa.me/" + phone[1:])}
        elif value:
            link = member("link", value)
            out.add(link)
            if handle := re.fullmatch(r"(?:t|telegram)\.me/([a-z]\w{3,31})", link[1]):
                out.add(("handle", "@" + handle.group(1)))
            elif (number := re.fullmatch(r"wa\.me/(\d{8,15})", link[1])) and (
                phone := _phone(number.group(1))
            ):
                out.add(("phone", phone))
    return out


def hotline_contacts(hotlines: Iterable[str]) -> set[str]:
    """The configured hotlines as contacts are written ("+33486517161", "@handle", "wa.me/…"),
    for the views that list contacts: a hotline is nobody's contact."""
    return {value for _, value in hotline_members(hotlines)}


def post_members(row: dict[str, Any]) -> list[tuple[str, str]]:
    """A flagged post's contacts as (kind, value): the stored entities', and the payment
    offices and wallets in its text and images when the entities do not carry them."""
    entities = row.get("entities") or {}
    found: list[tuple[str, str]] = [("phone", p) for p in entities.get("phones") or []]
    found += [member("handle", str(h)) for h in entities.get("handles") or []]
    found += [member("link", str(link)) for link in entities.get("links") or []]
    text = "\n".join(filter(None, [row.get("text") or "", row.get("ocr_text") or ""]))
    offices = entities.get("payments")
    wallets = entities.get("wallets")
    found += [("payment", o) for o in (offices if offices is not None else payment_offices_in(text))]
    found += [("wallet", wallet_address(w)) for w in (wallets if wallets is not None else wallets_in(text))]
    return list(dict.fromkeys(found))


def _chunks(distance: int) -> list[tuple[int, int]]:
    """Bit ranges of a 256-bit hash such that two hashes within `distance` bits agree on at
    least one whole range: `distance` differing bits spoil at most `distance` ranges."""
    count = min(distance + 1, 256)
    edges = [round(i * 256 / count) for i in range(count + 1)]
    return list(itertools.pairwise(edges))


_POPCOUNT = bytes(bin(i).count("1") for i in range(256))


def _near_pairs(packed: Any, distance: int) -> list[tuple[int, int]]:
    """Rows of `packed` (n x 32 bytes) within `distance` bits of one another, as index pairs."""
    import numpy as np

    n = len(packed)
    bits = np.unpackbits(packed, axis=1)
    candidates = []
    for start, end in _chunks(distance):
        keys = bits[:, start:end].astype(np.int64) @ (1 << np.arange(end - start, dtype=np.int64))
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        # Rows with one key sit together once sorted: pair each with those `step` places on.
        step = 1
        while step < n and (same := np.flatnonzero(ordered[step:] == ordered[:-step])).size:
            a, b = order[same], order[same + step]
            candidates.append(np.minimum(a, b) * n + np.maximum(a, b))
            step += 1
    if not candidates:
        return []
    pairs = np.unique(np.concatenate(candidates))
    popcount = np.frombuffer(_POPCOUNT, dtype=np.uint8)
    near = []
    for batch in np.array_split(pairs, max(1, len(pairs) // 500_000)):
        a, b = batch // n, batch % n
        differing = popcount[np.bitwise_xor(packed[a], packed[b])].sum(axis=1)
        keep = differing <= distance
        near += list(zip(a[keep].tolist(), b[keep].tolist(), strict=True))
    return near


def image_groups(images: list[dict[str, Any]], distance: int) -> dict[str, set[str]]:
    """PDQ groups: images within `distance` bits of one another (transitively) are one
    flyer, named by the SHA-256 of the group's first file (`images` come oldest first).
    Returns {group: post keys}.

    Multi-index hashing: only images that agree on a whole bit range (see `_chunks`) are
    compared, so the work follows the near pairs rather than all pairs."""
    import numpy as np

    if not images:
        return {}
    parent = list(range(len(images)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(a: int, b: int) -> None:
        a, b = root(a), root(b)
        parent[max(a, b)] = min(a, b)  # the root is the oldest

    # Identical hashes (a reposted flyer) are one before any comparison.
    first_with: dict[str, int] = {}
    for i, image in enumerate(images):
        join(first_with.setdefault(image["pdq"].lower(), i), i)
    unique = np.array(list(first_with.values()))
    packed = np.frombuffer(b"".join(bytes.fromhex(images[i]["pdq"]) for i in unique), dtype=np.uint8)
    packed = packed.reshape(-1, 32)
    for a, b in _near_pairs(packed, distance):
        join(int(unique[a]), int(unique[b]))
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
        key=lambda i: (by_key[i["post_key"]]["seen_at"] or "", i["sha256"]),
    )
    for group, keys in image_groups(images, config.media.pdq_distance).items():
        for key in keys:
            carried[key].append(("image", group))

    hotlines = hotline_members(config.networks.hotlines)
    sources_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    first_post: dict[tuple[str, str], str] = {}
    rows_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:  # oldest first
        rows_of[source_of[row["key"]]].append(row)
        for found in carried[row["key"]]:
            if found in hotlines:
                continue
            sources_of[found].add(source_of[row["key"]])
            first_post.setdefault(found, row["seen_at"] or "")

    limit = config.networks.max_sources_per_contact
    shared: dict[tuple[str, str], list[str]] = defaultdict(list)
    weights: dict[tuple[str, str], float] = defaultdict(float)
    for (kind, value), carriers in sorted(sources_of.items()):
        n = len(carriers)
        if n < 2 or n > limit:
            continue
        for a, b in itertools.combinations(sorted(carriers), 2):
            weights[(a, b)] += 1.0 / (n - 1)
            shared[(a, b)].append(f"{kind}:{value}")

    graph = nx.Graph()
    for (a, b), weight in weights.items():
        if weight + _EPSILON >= config.networks.min_weight:
            graph.add_edge(a, b, weight=weight)

    first_of_source = {source: found[0]["seen_at"] or "" for source, found in rows_of.items()}
    position = {row["key"]: i for i, row in enumerate(rows)}
    out = []
    for component in nx.connected_components(graph):
        sources = sorted(component)
        posts = sorted((row for s in sources for row in rows_of[s]), key=lambda r: position[r["key"]])
        members: dict[tuple[str, str], str] = {("source", s): first_of_source[s] for s in sources}
        for row in posts:
            for found in carried[row["key"]]:
                if found in hotlines:
                    continue
                # Clusters and images say how sources are related: only those shared count.
                if found[0] in ("cluster", "image") and len(sources_of[found]) < 2:
                    continue
                members.setdefault(found, first_post[found])
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


def route_words(route: Mapping[str, Any], unknown: str = "?") -> str:
    """One of a network's routes in words: its countries' names, else their codes."""
    origin = route.get("origin_name") or route.get("origin") or unknown
    destination = route.get("destination_name") or route.get("destination") or unknown
    return f"{origin} → {destination}"


def _post_routes(
    row: dict[str, Any], post: TrendPost | None
) -> tuple[list[Any], list[tuple[str | None, str | None]]]:
    """The post's crossings leg by leg, as trends read them ((origin, destination), prices),
    and the routes it names: those crossings, else the one end or two it names."""
    crossings = country_routes(post) if post else []
    if crossings:
        return crossings, [key for key, _ in crossings]
    entities = row.get("entities") or {}
    origin, destination = country_of(entities.get("origin")), country_of(entities.get("destination"))
    if origin == destination:  # two towns of one country ("from Dunkirk and Calais"): no crossing named
        destination = None
    return [], [(origin, destination)] if origin or destination else []


def _price_rows(found: dict[tuple[str, str, str], list[tuple[float, float]]]) -> list[dict[str, Any]]:
    rows = []
    for (month, route, currency), prices in sorted(found.items()):
        amounts = [amount for _, amount in prices]
        rows.append(
            {
                "month": month,
                "route": route,
                "currency": currency,
                "min": min(amounts),
                "max": max(amounts),
                "median": statistics.median(amounts),
                "median_eur": round(statistics.median(eur for eur, _ in prices), 2),
                "posts": len(prices),
            }
        )
    return rows


def _profile(computed: _Computed, config: VigieConfig, network_id: str) -> Network:
    posts = computed.posts
    # As trends read them: a post's time when it was published, never when it was crawled.
    dated = {p.key: p for p in posts_from_rows(posts)}
    routes: Counter[tuple[str | None, str | None]] = Counter()
    # (month, route name, currency) -> (EUR, amount) of each post's price on that route
    prices: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
    languages: Counter[str] = Counter()
    transport: Counter[str] = Counter()
    guarantees: Counter[str] = Counter()
    payment_terms: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for row in posts:
        entities = row.get("entities") or {}
        languages[row.get("lang") or "und"] += 1
        post = dated.get(row["key"])
        crossings, named = _post_routes(row, post)
        routes.update(named)
        if post is not None:
            legs = [(trend_route(*key), leg) for key, leg in crossings]
            if not crossings:
                legs = [(UNKNOWN_ROUTE, [p for p in entities.get("prices") or [] if isinstance(p, dict)])]
            for route, leg_prices in legs:
                if price := price_eur(leg_prices, post.published.date(), config):
                    eur, currency, amount = price
                    prices[(post.month, route, currency)].append((eur, amount))
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
    dates = [row["seen_at"] for row in posts if row.get("seen_at")]
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
                "origin_name": place_name(o),
                "destination_name": place_name(d),
                "posts": n,
            }
            for (o, d), n in sorted(routes.items(), key=lambda r: (-r[1], r[0][0] or "?", r[0][1] or "?"))
        ],
        prices=_price_rows(prices),
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
    # The elder stored network first, to the computed one it shares most sources with: when
    # networks merge, the elder's id survives, whichever of them brings more sources.
    for _, _, i, network_id in sorted(overlaps, key=lambda o: (o[1], o[0], o[2])):
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
    return stored.merged_map(store)


def surviving_id(merged: Mapping[str, str], network_id: str) -> str:
    """The id of the network that now holds `network_id`: itself, or the one it was merged
    into (`merged`: {absorbed: absorber}), followed however many merges ago; a cycle in the
    stored ids stops the walk at the last id not seen before."""
    seen = {network_id}
    while network_id in merged and merged[network_id] not in seen:
        network_id = merged[network_id]
        seen.add(network_id)
    return network_id
