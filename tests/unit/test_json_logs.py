"""`vigie --log-format json`: every log line one JSON object, extra fields kept, hostile text
inert, tracebacks only with --debug."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from vigie.cli.main import COMMANDS, cli, configure_logging
from vigie.logs import JsonFormatter


@pytest.fixture
def json_logging() -> Iterator[None]:
    configure_logging(verbose=True, log_format="json")
    yield
    configure_logging(verbose=False)


def lines(err: str) -> list[dict]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_each_record_is_one_json_object_with_its_extra_fields(json_logging, capsys):
    log = logging.getLogger("vigie.cluster.worker")
    log.info("job %s done", 17, extra={"task": "vigie.classify", "job_id": 17, "node": "worker-a"})
    log.warning("plain")
    [done, plain] = lines(capsys.readouterr().err)
    assert done["message"] == "job 17 done"
    assert (done["level"], done["logger"]) == ("INFO", "vigie.cluster.worker")
    assert (done["task"], done["job_id"], done["node"]) == ("vigie.classify", 17, "worker-a")
    assert done["ts"].endswith("+00:00") and "T" in done["ts"]
    assert plain["message"] == "plain" and "task" not in plain


def test_post_text_cannot_forge_a_line_or_reach_the_terminal(json_logging, capsys):
    hostile = 'advert\n{"level": "INFO", "message": "forged"}\x1b[2J\u202e'
    logging.getLogger("vigie").warning("skipped %s", hostile, extra={"channel": hostile})
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "\x1b" not in err and "\u202e" not in err
    [entry] = lines(err)
    assert entry["message"] == f"skipped {hostile}" and entry["channel"] == hostile


def test_an_exception_is_one_line_unless_debug(capsys):
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        configure_logging(verbose=False, log_format="json")
        logging.getLogger("vigie").exception("step failed")
        configure_logging(verbose=False, debug=True, log_format="json")
        logging.getLogger("vigie").exception("step failed")
    configure_logging(verbose=False)
    [short, full] = lines(capsys.readouterr().err)
    assert short["error"] == "ValueError: bad value" and "traceback" not in short
    assert full["error"] == short["error"] and "Traceback (most recent call last)" in full["traceback"]


def test_values_json_cannot_hold_become_text():
    record = logging.LogRecord("vigie", logging.INFO, __file__, 1, "m", None, None)
    record.path = __import__("pathlib").Path("/tmp/x")
    record.counts = {"new": 2, "keys": ("a", "b")}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["path"] == "/tmp/x" and entry["counts"] == {"new": 2, "keys": ["a", "b"]}


SEEN: dict[str, list[str]] = {}


@click.command()
def probe_logs() -> None:
    names = [type(h.formatter).__name__ for h in logging.getLogger().handlers]
    SEEN["formatters"] = [name for name in names if name in ("JsonFormatter", "OneLineFormatter")]


@pytest.mark.parametrize("args, env", [(["--log-format", "json"], {}), ([], {"VIGIE_LOG_FORMAT": "json"})])
def test_the_global_option_and_its_variable_switch_the_format(args, env, monkeypatch):
    monkeypatch.setitem(COMMANDS, "probe-logs", f"{__name__}:probe_logs")
    SEEN.clear()
    try:
        result = CliRunner().invoke(cli, [*args, "probe-logs"], env=env)
    finally:
        configure_logging(verbose=False)
    assert result.exit_code == 0, result.output
    assert SEEN["formatters"] == ["JsonFormatter"]


def test_a_bad_log_format_is_a_usage_error():
    result = CliRunner().invoke(cli, ["--log-format", "xml", "status"])
    assert result.exit_code == 2 and "xml" in result.output
