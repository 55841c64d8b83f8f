from __future__ import annotations

from pathlib import Path

import click

from vigie.cli.main import load
from vigie.cli.output import echo


@click.group("import")
def import_group() -> None:
    """Import platform exports into the store."""


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
