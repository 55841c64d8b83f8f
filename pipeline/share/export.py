"""Select, build and write an export: the file appears whole or not at all (a temporary
file in the same directory, flushed, then renamed over the target)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.share.markings import markings_of
from pipeline.share.selection import select
from vigie.paths import write_atomically

if TYPE_CHECKING:
    from vigie.config import VigieConfig
    from vigie.store import Store

DEFAULT_DIR = "share"  # under the data directory


@dataclass(frozen=True, slots=True)
class Export:
    path: Path
    format: str  # misp or stix
    posts: int
    sources: int
    phones: int
    networks: int
    objects: int  # MISP objects, or STIX objects in the bundle
    marking: str  # "TLP:AMBER, PAP:AMBER"


def organisation_of(config: VigieConfig) -> str:
    return config.sharing.organisation or config.referrals.organisation or "Vigie"


def default_path(config: VigieConfig, fmt: str, period: str | None, network_id: str | None) -> Path:
    scope = "-".join(part for part in (period or "all", network_id) if part)
    suffix = "misp.json" if fmt == "misp" else "stix.json"
    return config.data_path() / DEFAULT_DIR / f"vigie-{scope}.{suffix}"


def _export(
    store: Store, config: VigieConfig, fmt: str, out: Path | None, period: str | None, network_id: str | None
) -> Export:
    selection = select(store, config, period, network_id)
    markings = markings_of(config.sharing)
    if fmt == "misp":
        from pipeline.share.misp import build_event, event_json

        event = build_event(selection, markings, organisation_of(config))
        text, objects = event_json(event), len(event.objects)
    else:
        from pipeline.share.stix import build_bundle, bundle_json

        bundle = build_bundle(selection, markings, organisation_of(config))
        text, objects = bundle_json(bundle), len(bundle.objects)
    path = out or default_path(config, fmt, selection.period, selection.network_id)
    write_atomically(path, text)
    return Export(
        path=path,
        format=fmt,
        posts=len(selection.posts),
        sources=len(selection.sources),
        phones=len(selection.phones),
        networks=len(selection.networks),
        objects=objects,
        marking=f"{markings.tlp_name}, {markings.pap_name}",
    )


def export_misp(
    store: Store, config: VigieConfig, out: Path | None, period: str | None, network_id: str | None
) -> Export:
    """A MISP event of the selection (see `select`), written whole to `out` or the default path."""
    return _export(store, config, "misp", out, period, network_id)


def export_stix(
    store: Store, config: VigieConfig, out: Path | None, period: str | None, network_id: str | None
) -> Export:
    """A STIX 2.1 bundle of the selection (see `select`), written whole to `out` or the default path."""
    return _export(store, config, "stix", out, period, network_id)
