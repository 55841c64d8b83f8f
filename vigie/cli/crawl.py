from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vigie.cli.main import load
from vigie.cli.output import print_crawl_report
from vigie.errors import VigieError


@click.group(invoke_without_command=True)
@click.pass_context
def crawl(ctx: click.Context) -> None:
    """Collect public posts. Without a subcommand, crawl every source in the configuration."""
    if ctx.invoked_subcommand is None:
        config = load(ctx)
        channels = _watched(config)
        if not channels:
            raise click.UsageError(
                "no sources in the configuration or approved (`vigie sources add`); "
                "name channels: vigie crawl telegram NAME..."
            )
        _run(ctx, channels, None, None, None)


@crawl.command("telegram")
@click.argument("channels", nargs=-1)
@click.option("--base-url", help="Preview host for mirrors and tests (default from config: https://t.me).")
@click.option(
    "--max-pages", type=click.IntRange(min=1), help="Pages per channel at most (default from config)."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write the posts fetched to this JSON Lines file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def telegram(
    ctx: click.Context,
    channels: tuple[str, ...],
    base_url: str | None,
    max_pages: int | None,
    out: str | None,
    as_json: bool,
) -> None:
    """Crawl Telegram public channel previews (t.me/s/CHANNEL). Without CHANNELS, crawl
    the Telegram sources of the configuration and the approved ones."""
    from vigie.config import channel_name, http_url

    if base_url:
        try:
            base_url = http_url(base_url, "https://t.me")
        except ValueError as exc:
            raise click.BadParameter(f"{base_url!r}: expected {exc}", param_hint="--base-url") from None
    names = []
    for raw in channels:
        try:
            names.append(channel_name(raw))
        except ValueError as exc:
            raise click.BadParameter(f"{raw!r}: expected {exc}", param_hint="CHANNELS") from None
    if not names:
        names = _watched(load(ctx))
        if not names:
            raise click.UsageError(
                "name at least one channel, or list sources in the configuration (or approve some: `vigie sources add`)"
            )
    if out:
        _check_out(Path(out))
    _run(ctx, names, base_url, max_pages, out, as_json)


def _check_out(out: Path) -> None:
    """--out is written once the crawl runs: find out now whether it can be."""
    if not out.parent.is_dir():
        raise click.BadParameter(f"{out}: the directory {out.parent} does not exist", param_hint="--out")
    try:
        with open(out, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise click.BadParameter(f"{out}: cannot write: {exc.strerror}", param_hint="--out") from None


def _run(
    ctx: click.Context,
    channels: list[str],
    base_url: str | None,
    max_pages: int | None,
    out: str | None,
    as_json: bool = False,
) -> None:
    from pydantic import ValidationError

    from crawlers.run import crawl_telegram
    from vigie.config_file import describe_errors

    config = load(ctx)
    try:
        report = crawl_telegram(
            config, channels, base_url, max_pages, out, "INFO" if ctx.obj.get("verbose") else "WARNING"
        )
    except ValidationError as exc:
        raise click.BadParameter(describe_errors("arguments", exc)) from None
    print_crawl_report(report, as_json)
    if report.unexpected:
        raise VigieError(f"the crawl failed, recorded as a failed run: {report.unexpected[0]}")
    if report.sources and len(report.failed) == len(report.sources):
        raise VigieError("every source failed; see the errors above")


def _watched(config: Any) -> list[str]:
    """The Telegram channels to crawl: the configured ones and those approved since."""
    from pipeline.discovery import telegram_channels
    from vigie.store import Store

    with Store(config.store_url()) as store:
        return telegram_channels(config, store)
