"""No command prints a traceback without `--debug`: a failure is one line on stderr and a
non-zero exit, or, where a command degrades on purpose, one warning."""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import sys
from collections.abc import Iterator

import click
import pytest
import sqlalchemy.exc

from tests.conftest import run_vigie
from tests.support.hostile import fill_store
from vigie.cli import main as cli_module
from vigie.cli.main import OneLineFormatter, describe_error, main
from vigie.errors import StoreError


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def assert_one_line(result, code: int | None = None) -> str:
    """The failure's message: one line (after Click's usage lines), no traceback."""
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    assert result.returncode != 0 if code is None else result.returncode == code, (
        result.returncode,
        result.stderr,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if lines and lines[0].startswith("Usage:"):
        lines = [line for line in lines if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_es_commands_with_elasticsearch_down(config_file, closed_port):
    config = config_file(elasticsearch={"url": f"http://127.0.0.1:{closed_port}"})
    for args in (["es", "setup"], ["es", "replay"]):
        line = assert_one_line(run_vigie(*args, config=config), 1)
        assert line.startswith(f"vigie: Elasticsearch at http://127.0.0.1:{closed_port} unavailable: ")
        assert "Connection refused" in line
    # A dry run shows what it would install, and says what it could not check.
    dry = run_vigie("es", "setup", "--dry-run", config=config)
    assert dry.returncode == 0 and "would put index template: vigie-posts-template" in dry.stdout
    assert "warning:" in assert_one_line(dry, 0) and "existing indices were not checked" in dry.stderr


@pytest.fixture
def refusing_cluster() -> Iterator[str]:
    """An HTTP server that answers like a secured cluster asked without credentials."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(
                {
                    "error": {"type": "security_exception", "reason": "missing authentication credentials"},
                    "status": 401,
                }
            ).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_PUT = do_POST = do_GET

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_es_setup_refused_by_the_cluster(config_file, refusing_cluster):
    config = config_file(elasticsearch={"url": refusing_cluster})
    line = assert_one_line(run_vigie("es", "setup", config=config), 1)
    assert line == (
        f"vigie: Elasticsearch at {refusing_cluster} answered HTTP 401: missing authentication credentials; "
        "nothing was installed"
    )


def test_es_setup_dry_run_without_a_cluster_configured(config_file):
    dry = run_vigie("es", "setup", "--dry-run", config=config_file(), env={"VIGIE_ES_URL": ""})
    assert dry.returncode == 0 and "would put index template" in dry.stdout and not dry.stderr


def test_deciding_with_elasticsearch_down_warns_in_one_line(tmp_path, config_file, closed_port):
    """Reindexing after a review decision meets the outage the way `vigie run` does."""
    config = config_file(elasticsearch={"url": f"http://127.0.0.1:{closed_port}"})
    (tmp_path / "data").mkdir()
    [key, *_] = fill_store(
        tmp_path / "data" / "vigie.db", ["boat to Italy, WhatsApp +90 536 741 22 90"], confirm=False
    )
    result = run_vigie("review", "confirm", key, "--reason", "offer", "--reviewer", "ana", config=config)
    assert result.returncode == 0 and f"confirmed 1 post(s) of {key}" in result.stdout
    line = assert_one_line(result, 0)
    assert "WARNING" in line and "unavailable: Connection refused" in line and "vigie es replay" in line


def test_run_with_elasticsearch_down_spools_and_warns_once(tmp_path, config_file, closed_port, shipped):
    config = config_file(elasticsearch={"url": f"http://127.0.0.1:{closed_port}"})
    (tmp_path / "data").mkdir()
    fill_store(tmp_path / "data" / "vigie.db", ["boat to Italy, WhatsApp +90 536 741 22 90"], confirm=False)
    result = run_vigie("run", "--no-crawl", config=config, timeout=600)
    assert result.returncode == 0 and "Traceback" not in result.stderr + result.stdout, result.stderr
    assert "elastic_transport" not in result.stderr and "urllib3" not in result.stderr
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "unavailable: Connection refused" in warnings[0], result.stdout


def test_user_mistakes(tmp_path, config_file, busy_port):
    config = config_file()
    missing_dir = tmp_path / "nonexistent" / "dir"
    posts = tmp_path / "posts.jsonl"
    posts.write_text(json.dumps({"id": 1, "text": "boat to Italy"}) + "\n", encoding="utf-8")
    cases = [
        (["kibana", "install", "--url", "notaurl"], 1, "vigie: Kibana URL 'notaurl': expected http(s)://"),
        (["kibana", "install", "--url", "notaurl", "--dry-run"], 1, "expected http(s)://"),
        (["mirror", "--port", str(busy_port)], 1, f"cannot serve on 127.0.0.1:{busy_port}"),
        (["report", "--out", str(missing_dir / "r.html")], 2, f"the directory {missing_dir} does not exist"),
        (["report", "--out", str(tmp_path / "r.html"), "--period", "2026-02-30"], 2, "no such day"),
        (["referrals", "stats", "--period", "2026-02-30"], 2, "expected YYYY or YYYY-MM"),
        (["referrals", "stats", "--period", "2026-13"], 2, "expected YYYY or YYYY-MM"),
        (
            ["referrals", "export", "--platform", "telegram", "--out", str(missing_dir / "x")],
            2,
            "does not exist",
        ),
        (["classify", "--input", str(posts), "--output", str(missing_dir / "x")], 2, "--output"),
        (["classify", "some text", "--output", str(missing_dir / "x")], 2, "--output"),
        (["evaluate", "--out", str(missing_dir / "m.json")], 2, "--out"),
    ]
    for args, code, needle in cases:
        line = assert_one_line(run_vigie(*args, config=config, timeout=60), code)
        assert needle in line, (args, line)
    assert not missing_dir.parent.exists()  # nothing was created on the way


def test_crawl_of_an_unreachable_host(config_file, closed_port):
    result = run_vigie(
        "crawl",
        "telegram",
        "some_channel",
        "--base-url",
        f"http://127.0.0.1:{closed_port}",
        config=config_file(),
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "vigie: every source failed" in result.stderr


def test_debug_shows_the_traceback(config_file, closed_port):
    config = config_file(elasticsearch={"url": f"http://127.0.0.1:{closed_port}"})
    result = run_vigie("--debug", "es", "replay", config=config)
    assert result.returncode == 1 and "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("vigie: Elasticsearch at")


# -- the boundary itself, in this process ---------------------------------------------------


@click.command()
@click.argument("what")
def boom(what: str) -> None:
    """Fails as asked."""
    errors: dict[str, BaseException] = {
        "bug": KeyError("no such key"),
        "os": PermissionError(13, "Permission denied", "/etc/vigie.db"),
        "sqlite": sqlite3.OperationalError("database is locked"),
        # Through SQLAlchemy: its text quotes the statement and the post text it carried.
        "sqlalchemy": sqlalchemy.exc.OperationalError(
            "UPDATE posts SET text = ?",
            ("=HYPERLINK(post text)",),
            sqlite3.OperationalError("disk I/O error"),
        ),
        "store": StoreError("/x/vigie.db: cannot open the store: file is not a database"),
        "control": ValueError("bad \x1b[2J\x1b]0;title\x07 value"),
    }
    raise errors[what]


@pytest.fixture
def with_boom(monkeypatch):
    monkeypatch.setitem(cli_module.COMMANDS, "boom", f"{__name__}:boom")
    monkeypatch.setitem(cli_module.DEBUG, "on", False)
    monkeypatch.delenv("VIGIE_DEBUG", raising=False)


def call_main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["vigie", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("bug", "vigie: unexpected error: KeyError: 'no such key' (a bug: run again with --debug"),
        ("os", "vigie: /etc/vigie.db: Permission denied"),
        ("sqlite", "vigie: the store failed: database is locked"),
        ("sqlalchemy", "vigie: the store failed: disk I/O error"),
        ("store", "vigie: /x/vigie.db: cannot open the store: file is not a database"),
        ("control", "vigie: unexpected error: ValueError: bad [2J]0;title value"),
    ],
)
def test_every_error_is_one_line(with_boom, monkeypatch, capsys, what, message):
    code, err = call_main(monkeypatch, capsys, "boom", what)
    assert code == 1 and err.startswith(message) and err.count("\n") == 1, err
    assert "\x1b" not in err and "Traceback" not in err


def test_debug_flag_prints_the_traceback_in_process(with_boom, monkeypatch, capsys):
    code, err = call_main(monkeypatch, capsys, "--debug", "boom", "bug")
    assert code == 1 and "Traceback (most recent call last)" in err and "KeyError: 'no such key'" in err
    assert err.rstrip().splitlines()[-1].startswith("vigie: unexpected error: KeyError")


def test_describe_error_knows_the_libraries(closed_port):
    from elasticsearch import Elasticsearch, TransportError

    client = Elasticsearch(f"http://127.0.0.1:{closed_port}", max_retries=0)
    with pytest.raises(TransportError) as refused:
        client.info()
    assert describe_error(refused.value) == "Elasticsearch unavailable: Connection refused (ConnectionError)"
    assert describe_error(FileNotFoundError(2, "No such file or directory", "/x")) == (
        "/x: No such file or directory"
    )
    assert describe_error(RuntimeError("a bug")) is None


def test_log_records_drop_tracebacks_unless_debug():
    def record(logger: str, message: str) -> logging.LogRecord:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError:
            return logging.getLogger(logger).makeRecord(
                logger, logging.WARNING, __file__, 1, message, (), sys.exc_info()
            )

    quiet = OneLineFormatter("%(name)s: %(message)s", tracebacks=False)
    line = quiet.format(record("elastic_transport.transport", "Retrying request after failure"))
    assert line == (
        "elastic_transport.transport: Retrying request after failure "
        "(ConnectionRefusedError: [Errno 111] Connection refused)"
    )
    # Twisted writes the traceback into the message itself.
    twisted = quiet.format(
        record(
            "twisted",
            "Unhandled error\nTraceback (most recent call last):\n  File 'x'\nValueError: deep \x1b[2J",
        )
    )
    assert "Traceback" not in twisted and "(ValueError: deep [2J)" in twisted and "\x1b" not in twisted
    loud = OneLineFormatter("%(name)s: %(message)s", tracebacks=True)
    assert "Traceback (most recent call last)" in loud.format(record("urllib3", "failed"))


def test_library_loggers_are_quiet_unless_verbose():
    from vigie.cli.main import configure_logging

    try:
        configure_logging(verbose=False)
        assert not logging.getLogger("elastic_transport.node_pool").isEnabledFor(logging.WARNING)
        assert logging.getLogger("elastic_transport").isEnabledFor(logging.ERROR)
        assert not logging.getLogger("apscheduler.scheduler").isEnabledFor(logging.WARNING)
        assert not logging.getLogger("scrapy.core").isEnabledFor(logging.INFO)
        assert logging.getLogger("vigie.daemon").isEnabledFor(logging.WARNING)
        configure_logging(verbose=True)
        assert logging.getLogger("elastic_transport.node_pool").isEnabledFor(logging.INFO)
    finally:
        configure_logging(verbose=False)


def test_help_mentions_debug():
    result = run_vigie("--help")
    assert "--debug" in result.stdout and "traceback" in result.stdout


def test_several_bad_fields_are_one_line_naming_the_file_once(tmp_path):
    path = tmp_path / "vigie.yaml"
    path.write_text("alerts:\n  email:\n    from: a@example.org\n    to: [b@example.org]\n", encoding="utf-8")
    line = assert_one_line(run_vigie("config", "check", str(path), config=path, timeout=60), 1)
    hint = "no such field (check the spelling against config/example.yaml)"
    assert line == f"vigie: {path}: alerts.email.from: {hint}; alerts.email.to: {hint}"
