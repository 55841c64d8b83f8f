from __future__ import annotations

import json
from typing import Any

import click

from vigie.cli.main import load
from vigie.cli.output import echo
from vigie.errors import VigieError


def _client_errors() -> tuple[type[Exception], ...]:
    from elasticsearch import ApiError, TransportError

    return (ApiError, TransportError)


@click.group("es")
def es_group() -> None:
    """Elasticsearch: index template, replay of the local spool, mapping migrations."""


@es_group.command("setup")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print what would be installed; change nothing. Works without a cluster: then the "
    "existing indices are not compared.",
)
@click.option("--print-template", is_flag=True, help="Print the index template JSON.")
@click.pass_context
def setup_cmd(ctx: click.Context, dry_run: bool, print_template: bool) -> None:
    """Install or upgrade the index template and alias (idempotent)."""
    from pipeline.index.template import connect, describe_es_error, es_url, setup, template_body

    config = load(ctx).elasticsearch
    url = es_url(config)
    if print_template:
        click.echo(json.dumps(template_body(config), indent=1))
    es: Any = None if dry_run and not url else connect(config)
    try:
        steps = setup(es, config, dry_run=dry_run)
    except _client_errors() as exc:
        if not dry_run:
            raise VigieError(f"{describe_es_error(exc, url)}; nothing was installed") from None
        echo(
            f"warning: {describe_es_error(exc, url)}: showing the template with the built-in "
            "analyzers; the cluster's analyzers and existing indices were not checked",
            err=True,
        )
        steps = setup(None, config, dry_run=True)
    for step in steps:
        echo(f"{'would ' if dry_run else ''}{step.action}: {step.target} ({step.detail})")


@es_group.command("replay")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Send every flagged post's document again, as to an empty index (after the cluster lost "
    "its data or was restored from an older snapshot).",
)
@click.pass_context
def replay(ctx: click.Context, everything: bool) -> None:
    """Send what the spool and the store hold that the cluster has not acknowledged."""
    from pipeline.index.documents import count_indexed, spooled, sync
    from pipeline.index.template import connect, describe_es_error, es_url, setup
    from vigie.store import Store, outbox

    config = load(ctx)
    url = es_url(config.elasticsearch)
    es = connect(config.elasticsearch)
    with Store(config.store_url()) as store:
        before = len(spooled(store))
        try:
            setup(es, config.elasticsearch)
            if everything:  # after the cluster answered: forgotten only when it can take them
                outbox.forget_indexed(store)
            result = sync(store, es, config.elasticsearch)
            total = count_indexed(es, config.elasticsearch)
        except _client_errors() as exc:
            raise VigieError(
                f"{describe_es_error(exc, url)}; {before} spooled document(s) kept for the next replay"
            ) from None
        left = len(spooled(store))
    echo(
        f"spool: {before} before, {left} left; sent {result.indexed + result.replayed} documents, "
        f"removed {result.deleted}; {total} documents in the index"
    )
    for error in result.errors:
        echo(f"error: {error}", err=True)
    if left:
        raise SystemExit(1)


@es_group.command("migrate")
@click.option(
    "--dry-run", is_flag=True, help="Print why a new generation is needed and what would be copied."
)
@click.option("--force", is_flag=True, help="Copy into a new generation even when nothing requires it.")
@click.option(
    "--delete-old", is_flag=True, help="Delete the old generation's indices once the alias has moved."
)
@click.pass_context
def migrate_cmd(ctx: click.Context, dry_run: bool, force: bool, delete_old: bool) -> None:
    """Apply a mapping or shard change the indices cannot take in place: copy every month
    into a new generation under the new mapping, then move the alias in one step. Indexing
    waits meanwhile (nothing is lost: the store keeps what is not sent); searches go on."""
    from pipeline.index.generations import migrate, plan
    from pipeline.index.template import connect, describe_es_error, es_url
    from vigie.store import Store

    config = load(ctx)
    url = es_url(config.elasticsearch)
    es = connect(config.elasticsearch)
    try:
        if dry_run:
            migration = plan(es, config.elasticsearch)
        else:
            with Store(config.store_url()) as store:
                migration = migrate(
                    store, es, config.elasticsearch, force=force, delete_old=delete_old, progress=echo
                )
    except _client_errors() as exc:
        raise VigieError(
            f"{describe_es_error(exc, url)}; the alias still points to the indices it pointed to"
        ) from None
    for reason in migration.reasons:
        echo(f"needs a new generation: {reason}")
    if not migration.copies:
        echo(f"no index behind the alias {config.elasticsearch.index_prefix}: nothing to copy")
        return
    if not (migration.reasons or force):
        echo(f"generation {migration.from_generation} already matches the mapping: nothing to do")
        return
    verb = "would copy" if dry_run else "copied"
    for copy in migration.copies:
        echo(f"{verb} {copy.source} -> {copy.target} ({copy.documents} documents)")
    if dry_run:
        echo(
            f"would move the alias {config.elasticsearch.index_prefix} to generation {migration.to_generation}"
        )
    else:
        echo(
            f"alias {config.elasticsearch.index_prefix} moved to generation {migration.to_generation}; "
            f"generation {migration.from_generation} {migration.old_indices}"
        )
