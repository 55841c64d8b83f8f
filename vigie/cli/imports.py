from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vigie.cli.main import load
from vigie.cli.output import echo


@click.group("import")
def import_group() -> None:
    """Import platform and research-tool exports into the store."""


@import_group.command("telegram-export")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--channel", help="Source name to file the posts under when the export has no @username.")
@click.option(
    "--timezone",
    metavar="ZONE",
    help="IANA time zone of the machine that exported (e.g. Europe/Istanbul), for older exports "
    "whose messages carry only local times; default: telegram.export_timezone.",
)
@click.pass_context
def telegram_export(ctx: click.Context, path: str, channel: str | None, timezone: str | None) -> None:
    """Import a Telegram Desktop "Export chat history" JSON file (result.json)."""
    from crawlers.pipelines import clean_post
    from crawlers.telegram.export import export_timezone, read_export
    from pipeline.enrich.media import hold_export_files
    from vigie.config import channel_name
    from vigie.errors import ConfigurationError, InputFormatError
    from vigie.store import Store

    if channel:
        try:
            channel = channel_name(channel)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--channel") from None
    if timezone is not None:
        try:
            export_timezone(timezone.strip())
        except InputFormatError as exc:
            raise click.BadParameter(str(exc), param_hint="--timezone") from None
    config = load(ctx)
    zone = timezone.strip() if timezone is not None else config.telegram.export_timezone
    if timezone is None:
        try:
            export_timezone(zone)
        except InputFormatError as exc:
            raise ConfigurationError(f"telegram.export_timezone: {exc}") from None
    result = read_export(path, channel, zone)
    for post in result.posts:
        clean_post(post)
    # The export's own files (photos, thumbnails…) go into the media store first: the posts
    # that name them are then read like fetched ones by the next `vigie run`.
    held, left_out = (
        hold_export_files(config, result.posts, Path(path).parent) if config.media.fetch else (0, [])
    )
    with Store(config.store_url()) as store, store.run(f"import telegram-export {path}") as run:
        run.stats = {"chats": result.chats, "skipped": len(result.skipped), "files": held}
        counts = store.upsert_posts(result.posts)
        run.stats.update({str(k): v for k, v in counts.items()})
    for reason in result.skipped[:20]:
        echo(f"skipped {reason}", err=True)
    for warning in result.warnings:
        echo(f"warning: {warning}", err=True)
    for reason in left_out[:20]:
        echo(f"file left out: {reason}", err=True)
    echo(
        f"imported {len(result.posts)} messages from {result.chats} chat(s): {counts['new']} new, "
        f"{counts['updated']} updated, {counts['unchanged']} unchanged, {len(result.skipped)} skipped; "
        f"{held} files held for reading"
    )


_BATCH = 5000


def _store_posts(ctx: click.Context, command: str, result: Any) -> None:
    """Clean, store (one transaction, recorded as a run) and report what a reader gave."""
    from crawlers.pipelines import clean_post
    from vigie.errors import InputFormatError
    from vigie.store import Store

    config = load(ctx)
    for post in result.posts:
        clean_post(post)
    for reason in result.skipped[:20]:
        echo(f"skipped {reason}", err=True)
    if len(result.skipped) > 20:
        echo(f"skipped {len(result.skipped) - 20} more records", err=True)
    for warning in result.warnings:
        echo(f"warning: {warning}", err=True)
    if result.records and not result.posts:
        raise InputFormatError(f"no post could be read from {result.records} record(s); nothing was imported")
    counts = {"new": 0, "updated": 0, "unchanged": 0}
    with Store(config.store_url()) as store, store.run(command) as run:
        # In transactions of a few thousand posts: a large import never holds the write lock
        # for long, and one cut short is completed by importing the file again.
        for start in range(0, len(result.posts), _BATCH):
            for outcome, n in store.upsert_posts(result.posts[start : start + _BATCH]).items():
                counts[outcome] += n
        run.stats = {"records": result.records, "skipped": len(result.skipped)}
        run.stats.update({str(k): v for k, v in counts.items()})
    platforms = sorted({p.platform for p in result.posts})
    echo(
        f"imported {len(result.posts)} posts ({', '.join(platforms) or 'none'}) from {result.records} records: "
        f"{counts['new']} new, {counts['updated']} updated, {counts['unchanged']} unchanged, "
        f"{len(result.skipped)} skipped; `vigie run --no-crawl` classifies them"
    )


_FILES = click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))


@import_group.command("zeeschuimer")
@_FILES
@click.pass_context
def zeeschuimer(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Import Zeeschuimer's NDJSON captures (TikTok, Instagram, X, Threads)."""
    from crawlers.imports.zeeschuimer import read_zeeschuimer

    _store_posts(ctx, f"import zeeschuimer {' '.join(paths)}", read_zeeschuimer([Path(p) for p in paths]))


@import_group.command("4cat")
@_FILES
@click.option(
    "--platform", help="The dataset's platform, when the export does not say (tiktok, instagram, x…)."
)
@click.pass_context
def fourcat(ctx: click.Context, paths: tuple[str, ...], platform: str | None) -> None:
    """Import 4CAT dataset exports (CSV, or NDJSON of the original items)."""
    from crawlers.imports.fourcat import read_4cat

    name = _platform(platform)
    _store_posts(ctx, f"import 4cat {' '.join(paths)}", read_4cat([Path(p) for p in paths], name or None))


@import_group.command("meta-content-library")
@_FILES
@click.pass_context
def meta_content_library(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Import Meta Content Library exports of Facebook and Instagram posts (CSV or JSON)."""
    from crawlers.imports.meta_content_library import read_meta_content_library

    result = read_meta_content_library([Path(p) for p in paths])
    _store_posts(ctx, f"import meta-content-library {' '.join(paths)}", result)


@import_group.command("tiktok-research")
@_FILES
@click.pass_context
def tiktok_research(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Import TikTok Research API video query results (JSON responses, or JSON Lines of them)."""
    from crawlers.imports.tiktok_research import read_tiktok_research

    result = read_tiktok_research([Path(p) for p in paths])
    _store_posts(ctx, f"import tiktok-research {' '.join(paths)}", result)


@import_group.command("x-api")
@_FILES
@click.pass_context
def x_api(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Import X API v2 search results (response pages, or JSON Lines of pages or tweets)."""
    from crawlers.imports.x_api import read_x_api

    _store_posts(ctx, f"import x-api {' '.join(paths)}", read_x_api([Path(p) for p in paths]))


@import_group.command("csv")
@_FILES
@click.option(
    "--map",
    "mapping",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Which column fills a post field (text, post_id, channel, published_at, url, …); "
    "repeatable, over imports.csv.columns.",
)
@click.option(
    "--platform", help="The platform of every row, when no column names it (over imports.csv.platform)."
)
@click.option(
    "--timezone",
    metavar="ZONE",
    help="IANA time zone of times without an offset (over imports.csv.timezone).",
)
@click.pass_context
def csv_import(
    ctx: click.Context,
    paths: tuple[str, ...],
    mapping: tuple[str, ...],
    platform: str | None,
    timezone: str | None,
) -> None:
    """Import plain CSV or JSON Lines from other tools, with a column mapping."""
    from crawlers.imports.common import zone
    from crawlers.imports.mapped import read_mapped
    from vigie.config import CSV_FIELDS
    from vigie.errors import InputFormatError

    columns: dict[str, str] = {}
    for item in mapping:
        name, sep, column = item.partition("=")
        if not sep or not column.strip() or name.strip() not in CSV_FIELDS:
            raise click.BadParameter(
                f"{item!r}: expected FIELD=COLUMN with FIELD one of {', '.join(CSV_FIELDS)}",
                param_hint="--map",
            )
        columns[name.strip()] = column.strip()
    config = load(ctx)
    chosen = {**config.imports.csv.columns, **columns}
    name = _platform(platform) if platform else config.imports.csv.platform
    zone_name = timezone if timezone is not None else config.imports.csv.timezone
    try:
        zone(zone_name)
    except InputFormatError as exc:
        raise click.BadParameter(str(exc), param_hint="--timezone") from None
    result = read_mapped([Path(p) for p in paths], chosen, name or "", zone_name or "")
    _store_posts(ctx, f"import csv {' '.join(paths)}", result)


def _platform(value: str | None) -> str:
    from vigie.platforms import platform_name

    if not value:
        return ""
    try:
        return platform_name(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--platform") from None
