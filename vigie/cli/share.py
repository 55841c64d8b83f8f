"""`vigie share`: a MISP event or a STIX 2.1 bundle of the flagged posts, for intelligence partners."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from vigie.cli.main import load
from vigie.cli.output import echo, echo_json
from vigie.errors import VigieError

if TYPE_CHECKING:
    from pipeline.share import Export

_OUT = click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: share/vigie-<period>[-<network>].<format>.json under the data directory).",
)
_PERIOD = click.option(
    "--period",
    help="Only posts published in this year, quarter, month or day: 2026, 2026-Q3, 2026-11, 2026-11-05.",
)
_NETWORK = click.option(
    "--network",
    "network_id",
    help="Only the posts of this network (see `vigie networks`); an id merged into another follows it.",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")


@click.group("share")
def share_group() -> None:
    """Exports for intelligence partners, marked with the configuration's TLP and PAP
    (`sharing.tlp`, `sharing.pap`; TLP:AMBER and PAP:AMBER by default). They hold flagged
    posts only (never one an analyst rejected), their accounts, contacts, payment offices,
    wallets, images and evidence hashes, and the networks they belong to; the texts of
    flagged posts unless `sharing.include_text` is false. Ids stay the same from one export
    to the next, so partners update rather than duplicate."""


def _run(
    ctx: click.Context, fmt: str, out: Path | None, period: str | None, network_id: str | None
) -> Export:
    from pipeline.intel.networks import UnknownNetworkError
    from pipeline.report.period import check_span
    from pipeline.share import export_misp, export_stix
    from vigie.store import Store

    try:
        period = check_span(period) if period else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None
    if out is not None and not out.parent.is_dir():
        raise click.BadParameter(f"{out}: the directory {out.parent} does not exist", param_hint="--out")
    config = load(ctx)
    export = export_misp if fmt == "misp" else export_stix
    try:
        with Store(config.store_url(), read_only=True) as store:
            return export(store, config, out, period, network_id)
    except UnknownNetworkError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="--network") from None
    except OSError as exc:
        raise VigieError(f"cannot write {out or 'the export'}: {exc.strerror or exc}") from None


def _print(export: Export, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "path": str(export.path.resolve()),
                "format": export.format,
                "posts": export.posts,
                "sources": export.sources,
                "phones": export.phones,
                "networks": export.networks,
                "objects": export.objects,
                "marking": export.marking,
            },
            indent=1,
        )
        return
    kind = "MISP objects" if export.format == "misp" else "STIX objects"
    echo(
        f"Wrote {export.path.resolve()} ({export.marking}): {export.posts} flagged posts from "
        f"{export.sources} sources, {export.phones} phones, {export.networks} networks, {export.objects} {kind}"
    )


@share_group.command("misp")
@_OUT
@_PERIOD
@_NETWORK
@_JSON
@click.pass_context
def misp(
    ctx: click.Context, out: Path | None, period: str | None, network_id: str | None, as_json: bool
) -> None:
    """A MISP event (the JSON a MISP instance imports): microblog objects for posts, accounts,
    channels, phones, wallets, payment offices, OCR'd images and their relationships."""
    _print(_run(ctx, "misp", out, period, network_id), as_json)


@share_group.command("stix")
@_OUT
@_PERIOD
@_NETWORK
@_JSON
@click.pass_context
def stix(
    ctx: click.Context, out: Path | None, period: str | None, network_id: str | None, as_json: bool
) -> None:
    """A STIX 2.1 bundle: the sharing identity, user accounts, observed data per post, URLs,
    a grouping and a note per network, and the analysts' assessments as notes."""
    _print(_run(ctx, "stix", out, period, network_id), as_json)
