"""Select, build and write an export: the file appears whole or not at all (a temporary
file in the same directory, flushed, then renamed over the target)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.share.markings import markings_of
from pipeline.share.selection import Selection, select

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


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _summary(selection: Selection, path: Path, fmt: str, objects: int, marking: str) -> Export:
    return Export(
        path=path,
        format=fmt,
        posts=len(selection.posts),
        sources=len(selection.sources),
        phones=len(selection.phones),
        networks=len(selection.networks),
        objects=objects,
        marking=marking,
    )


def export_misp(
    store: Store, config: VigieConfig, out: Path | None, period: str | None, network_id: str | None
) -> Export:
    from pipeline.share.misp import build_event, event_json

    selection = select(store, config, period, network_id)
    markings = markings_of(config.sharing)
    event = build_event(selection, markings, organisation_of(config))
    path = out or default_path(config, "misp", selection.period, network_id)
    write_atomically(path, event_json(event))
    return _summary(selection, path, "misp", len(event.objects), f"{markings.tlp_name}, {markings.pap_name}")


def export_stix(
    store: Store, config: VigieConfig, out: Path | None, period: str | None, network_id: str | None
) -> Export:
    from pipeline.share.stix import build_bundle, bundle_json

    selection = select(store, config, period, network_id)
    markings = markings_of(config.sharing)
    bundle = build_bundle(selection, markings, organisation_of(config))
    path = out or default_path(config, "stix", selection.period, network_id)
    write_atomically(path, bundle_json(bundle))
    return _summary(selection, path, "stix", len(bundle.objects), f"{markings.tlp_name}, {markings.pap_name}")
