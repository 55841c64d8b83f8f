"""Mapping changes the indices cannot take in place (a field's type or analyzer, the number
of shards): every month of the current generation is copied into a new generation under the
new mapping, and the alias moves to the copies in one atomic request. Writers wait on the store's index lock meanwhile, so the copies hold exactly what
the store says was indexed; readers keep the old generation until the alias moves. The old
indices are then made read-only and kept, or deleted."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.index.template import (
    available_analyzers,
    current_generation,
    current_indices,
    incompatibilities,
    index_name,
    index_settings,
    mapping,
    parse_index_name,
    template_body,
    template_name,
)
from vigie.config import ElasticsearchConfig
from vigie.errors import VigieError
from vigie.store import Store, outbox

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

log = logging.getLogger(__name__)

COPY_CHUNK = 1000  # documents per scroll page and per bulk request
# How long the migration waits for the syncs in flight to finish their chunk.
LOCK_WAIT_SECONDS = 600.0


@dataclass
class Copy:
    source: str
    target: str
    documents: int = 0


@dataclass
class Migration:
    from_generation: int
    to_generation: int
    reasons: list[str]
    copies: list[Copy] = field(default_factory=list)
    old_indices: str = "kept read-only"  # or "deleted"


def staging_template_name(config: ElasticsearchConfig) -> str:
    return f"{config.index_prefix}-staging-template"


def plan(es: Elasticsearch, config: ElasticsearchConfig) -> Migration:
    """What `migrate` would do now: the reasons (none: nothing to do) and the copies."""
    indices = current_indices(es, config)
    generation = current_generation(es, config)
    reasons = incompatibilities(indices, config, available_analyzers(es))
    migration = Migration(generation, generation + 1, reasons)
    months: dict[str, str] = {}
    for name in indices:
        parsed = parse_index_name(config, name)
        assert parsed is not None  # current_indices keeps monthly indices only
        if parsed[1] in months:
            raise VigieError(
                f"the alias {config.index_prefix} holds two indices for {parsed[1]}: {months[parsed[1]]} and "
                f"{name}; remove the one that should not be read from it, then migrate"
            )
        months[parsed[1]] = name
        migration.copies.append(Copy(name, index_name(config, generation + 1, parsed[1]), _count(es, name)))
    return migration


def migrate(
    store: Store,
    es: Elasticsearch,
    config: ElasticsearchConfig,
    *,
    force: bool = False,
    delete_old: bool = False,
    progress: Callable[[str], None] = lambda line: None,
) -> Migration:
    """Copy the current generation into the next under the configured mapping and move the
    alias, when a change needs it (or `force`). On any failure before the alias moves, the
    copies are deleted and the current generation stays as it was (the error is raised)."""
    analyzers = available_analyzers(es)
    progress("waiting for the syncs in flight (the index lock)")
    with outbox.index_lock_for_long_job(store, LOCK_WAIT_SECONDS) as still_held:
        migration = plan(es, config)
        if not migration.copies or not (migration.reasons or force):
            return migration
        created: list[str] = []
        staging = staging_template_name(config)
        try:
            # The copies take the new mapping but not yet the alias: readers would see twice.
            es.indices.put_index_template(
                name=staging,
                index_patterns=[f"{config.index_prefix}-g{migration.to_generation}-*"],
                priority=300,
                template={"settings": index_settings(config), "mappings": mapping(analyzers)},
                meta={"managed_by": "vigie", "staging": True},
            )
            for copy in migration.copies:
                # Left by a migration that died before its alias moved: never read, so rebuilt.
                es.indices.delete(index=copy.target, ignore_unavailable=True)
                es.indices.create(index=copy.target)
                created.append(copy.target)
                _copy(es, config, copy, progress)
            # From here the template gives new months the new mapping and the alias.
            body = template_body(config, analyzers, migration.to_generation)
            es.indices.put_index_template(name=template_name(config), **body)
            es.indices.delete_index_template(name=staging)
            still_held()  # writers were kept out all along: the copies are complete
            _move_alias(es, config, migration)
        except BaseException:
            _undo(es, config, created, migration.from_generation, analyzers)
            raise
        sources = ",".join(c.source for c in migration.copies)
        try:
            if delete_old:
                es.indices.delete(index=sources)
                migration.old_indices = "deleted"
            else:  # a writer that still named them is refused, and spools for the current generation
                es.indices.put_settings(index=sources, settings={"index.blocks.write": True})
        except Exception as exc:
            migration.old_indices = f"left as they were ({type(exc).__name__}: {exc})"
    return migration


def _move_alias(es: Elasticsearch, config: ElasticsearchConfig, migration: Migration) -> None:
    """One atomic request; if its answer is lost, the alias itself tells whether it moved."""
    alias = config.index_prefix
    try:
        es.indices.update_aliases(
            actions=[{"remove": {"index": c.source, "alias": alias}} for c in migration.copies]
            + [{"add": {"index": c.target, "alias": alias}} for c in migration.copies]
        )
    except Exception:
        try:
            behind = set(es.indices.get_alias(name=alias).body)
        except Exception:
            behind = set()
        if not {c.target for c in migration.copies} <= behind:
            raise
        log.warning("the alias move's answer was lost, but the alias holds the new generation")


def _copy(
    es: Elasticsearch, config: ElasticsearchConfig, copy: Copy, progress: Callable[[str], None]
) -> None:
    """Every document of `copy.source` into `copy.target`, through a scroll and bulk requests
    (the `_reindex` API is a module that minimal distributions lack); counted at the end."""
    from elasticsearch.helpers import scan, streaming_bulk

    es.indices.refresh(index=copy.source)
    copy.documents = _count(es, copy.source)
    hits = scan(es, index=copy.source, query={"query": {"match_all": {}}}, size=COPY_CHUNK, scroll="10m")
    actions = (
        {"_op_type": "create", "_index": copy.target, "_id": h["_id"], "_source": h["_source"]} for h in hits
    )
    refused = []
    results = streaming_bulk(
        es, actions, chunk_size=COPY_CHUNK, max_retries=config.max_retries, raise_on_error=False
    )
    for done, (ok, item) in enumerate(results, 1):
        if not ok:
            refused.append(next(iter(item.values())))
        if done % (COPY_CHUNK * 20) == 0:
            progress(f"{copy.source} -> {copy.target}: {done}/{copy.documents}")
    if refused:
        first = refused[0]
        error = first.get("error") or {}
        reason = error.get("reason", error) if isinstance(error, dict) else error
        raise VigieError(
            f"copying {copy.source} to {copy.target}: {len(refused)} document(s) refused by the new "
            f"mapping (first: {first.get('_id', '?')}: {reason})"
        )
    es.indices.refresh(index=[copy.source, copy.target])
    copied, now = _count(es, copy.target), _count(es, copy.source)
    if now != copy.documents:  # something wrote there without the index lock
        raise VigieError(
            f"{copy.source} changed during the copy ({copy.documents} then {now} documents): a process "
            "indexes without the store's index lock (an older Vigie, or another store); stop it, then migrate"
        )
    if copied != copy.documents:
        raise VigieError(
            f"copying {copy.source} to {copy.target}: {copied} of {copy.documents} documents arrived"
        )
    progress(f"{copy.source} -> {copy.target}: {copied} documents")


def _undo(
    es: Elasticsearch,
    config: ElasticsearchConfig,
    created: list[str],
    generation: int,
    analyzers: dict[str, str],
) -> None:
    """Back to the generation as it was: the copies and the staging template go (never an
    index the alias holds)."""

    def delete_copies() -> None:
        behind = set(es.indices.get_alias(name=config.index_prefix, ignore_unavailable=True).body)
        if unread := [name for name in created if name not in behind]:
            es.indices.delete(index=",".join(unread), ignore_unavailable=True)

    steps: list[Callable[[], Any]] = [
        delete_copies,
        lambda: es.options(ignore_status=404).indices.delete_index_template(
            name=staging_template_name(config)
        ),
        lambda: es.indices.put_index_template(
            name=template_name(config), **template_body(config, analyzers, generation)
        ),
    ]
    for step in steps:
        try:
            step()
        except Exception:  # the cluster may be what failed; the next migration cleans up
            log.warning("could not undo part of a failed migration", exc_info=True)


def _count(es: Elasticsearch, index: str) -> int:
    return int(es.count(index=index)["count"])
