from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from vigie.cli.main import load
from vigie.cli.output import cell, echo, echo_json

if TYPE_CHECKING:
    from pipeline.intel.networks import Network


@click.command("networks")
@click.argument("network_id", required=False)
@click.option("--min-sources", type=click.IntRange(min=2), default=2, show_default=True)
@click.option("--refresh", "recompute", is_flag=True, help="Recompute the networks and store them first")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def networks(
    ctx: click.Context, network_id: str | None, min_sources: int, recompute: bool, as_json: bool
) -> None:
    """Smuggling networks: sources linked by shared contacts, payment offices, wallets and
    images. Shows what the last refresh stored (computed on the spot, without storing, if
    nothing is stored yet); with an ID, that network's profile."""
    from pipeline.intel import networks as intel
    from vigie.store import Store

    config = load(ctx)
    note = None
    if recompute:
        with Store(config.store_url()) as store:
            result = intel.refresh(store, config)
            merged = intel.merged_ids(store)
        found = result.networks
        note = (
            f"refreshed: {len(found)} networks, {len(result.new)} new, {len(result.joined)} members joined, "
            f"{len(result.merged)} merged"
        )
        note += _index(config, found)
    else:
        with Store(config.store_url(), read_only=True) as store:
            found = intel.stored_networks(store)
            merged = intel.merged_ids(store)
            if not found and not merged:
                found = intel.find_networks(store, config)
                note = "no networks stored yet: computed now, not stored (`vigie networks --refresh` stores them)"
    if network_id:
        wanted = intel.surviving_id(merged, network_id.strip())
        chosen = next((n for n in found if n.network_id == wanted), None)
        if chosen is None:
            raise intel.UnknownNetworkError(f"no network {network_id!r}; `vigie networks` lists them")
        if as_json:
            echo_json(
                {**chosen.to_json(), **({"requested": network_id} if wanted != network_id else {})}, indent=1
            )
            return
        if wanted != network_id:
            echo(f"{network_id} was merged into {wanted}")
        _profile(chosen)
        return
    shown = [n for n in found if len(n.sources) >= min_sources]
    if as_json:
        echo_json({"networks": [n.to_json() for n in shown], **({"note": note} if note else {})}, indent=1)
        return
    if note:
        echo(note)
    if not shown:
        echo("no networks (a network is two or more sources linked by what their flagged posts share)")
        return
    _table(shown)


def _index(config: Any, found: list[Network]) -> str:
    from pipeline.index.networks import index_networks
    from pipeline.index.template import es_url

    if not es_url(config.elasticsearch):
        return ""
    return f"; {index_networks(config, found)} indexed"


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False, width=200)


def _money(value: float | None) -> str:
    return "-" if value is None else f"€{value:,.0f}"


def _table(found: list[Network]) -> None:
    table = Table(title="Smuggling networks")
    for column in (
        "id",
        "sources",
        "contacts",
        "languages",
        "routes",
        "price (EUR)",
        "first seen",
        "last seen",
    ):
        table.add_column(column)
    table.add_column("flagged", justify="right")
    table.add_column("outcomes")
    for n in found:
        prices = n.price_range_eur()
        table.add_row(
            cell(n.network_id),
            cell("\n".join(n.sources)),
            str(len(n.contacts)),
            cell(", ".join(f"{lang} {count}" for lang, count in n.languages.items())),
            cell(", ".join(_route(r) for r in n.routes[:3])),
            "-" if prices is None else f"{_money(prices[0])}–{_money(prices[1])}",
            n.first_seen[:10],
            n.last_seen[:10],
            str(n.flagged_posts),
            cell(", ".join(f"{k} {v}" for k, v in n.referral_outcomes.items()) or "-"),
        )
    _console().print(table)


def _route(route: dict[str, Any]) -> str:
    from pipeline.intel.networks import route_words

    return f"{route_words(route)} ({route['posts']})"


def _profile(n: Network) -> None:
    from pipeline.intel.networks import KINDS

    console = _console()
    echo(f"network {n.network_id}: {len(n.sources)} sources, {n.flagged_posts} flagged posts")
    echo(f"first seen {n.first_seen}, last seen {n.last_seen}; platforms: {', '.join(n.platforms)}")
    members = Table(title="Members")
    for column in ("kind", "value", "joined"):
        members.add_column(column)
    for kind in KINDS:
        for value in n.members.get(kind, []):
            members.add_row(kind, cell(value), cell(n.joined_at.get(f"{kind}:{value}", "-")))
    console.print(members)
    links = Table(title="Links")
    for column in ("source", "source", "weight", "shared"):
        links.add_column(column)
    for link in n.links:
        links.add_row(cell(link.a), cell(link.b), f"{link.weight:g}", cell("\n".join(link.via)))
    console.print(links)
    routes = Table(title="Routes")
    for column in ("route", "posts"):
        routes.add_column(column)
    for route in n.routes:
        routes.add_row(cell(_route(route).rsplit(" (", 1)[0]), str(route["posts"]))
    console.print(routes)
    prices = Table(title="Prices per month")
    for column in ("month", "route", "currency", "min", "max", "median", "median EUR", "posts"):
        prices.add_column(column)
    for p in n.prices:
        prices.add_row(
            p["month"],
            cell(p["route"]),
            cell(p["currency"]),
            f"{p['min']:g}",
            f"{p['max']:g}",
            f"{p['median']:g}",
            _money(p["median_eur"]),
            str(p["posts"]),
        )
    console.print(prices)
    for title, counts in (
        ("languages", n.languages),
        ("transport", n.transport),
        ("guarantees", n.guarantees),
        ("payment terms", n.payment_terms),
        ("referral outcomes", n.referral_outcomes),
    ):
        echo(f"{title}: {', '.join(f'{k} {v}' for k, v in counts.items()) or '-'}")
