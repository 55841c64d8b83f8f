"""The throwaway PostgreSQL server: start, connections, separate databases, teardown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy

from tests.support.pg_node import PostgresMissingError, PostgresServer, PostgresServerError, bindir
from tests.support.server_process import port_in_use

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def libpq(url: str) -> str:
    """The libpq URI psycopg takes for a postgresql+psycopg:// SQLAlchemy URL."""
    assert url.startswith("postgresql+psycopg://"), url
    return "postgresql://" + url.removeprefix("postgresql+psycopg://")


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def test_url_reaches_the_session_database_over_tcp_with_a_password(
    pg_server: PostgresServer, pg_url: str
) -> None:
    assert pg_url.startswith(f"postgresql+psycopg://vigie:{pg_server.password}@127.0.0.1:{pg_server.port}/")
    engine = sqlalchemy.create_engine(pg_url)  # the URL the store will be given
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sqlalchemy.text(
                    "SELECT current_database(), current_setting('listen_addresses'),"
                    " current_setting('unix_socket_directories'), inet_server_addr()::text"
                )
            ).one()
    finally:
        engine.dispose()
    assert tuple(row) == ("vigie", "127.0.0.1", str(pg_server.base_dir), "127.0.0.1/32")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(libpq(pg_url).replace(pg_server.password, "wrong"), connect_timeout=5)


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as ourselves unless we are root")
def test_as_root_the_server_runs_unprivileged(pg_server: PostgresServer) -> None:
    assert pg_server.pid is not None
    assert uid_of(pg_server.pid) != 0


def test_committed_rows_are_seen_by_another_connection(fresh_pg_url: str) -> None:
    hostile = "'); DROP TABLE posts; -- \x01 <b>&amp;</b> 🚤"
    with psycopg.connect(libpq(fresh_pg_url)) as writer, psycopg.connect(libpq(fresh_pg_url)) as reader:
        writer.execute("CREATE TABLE posts (id int PRIMARY KEY, text text NOT NULL)")
        writer.commit()
        writer.execute("INSERT INTO posts VALUES (%s, %s)", (1, hostile))
        assert reader.execute("SELECT count(*) FROM posts").fetchone() == (0,)  # not committed yet
        reader.rollback()
        writer.commit()
        assert reader.execute("SELECT id, text FROM posts").fetchall() == [(1, hostile)]


def test_databases_of_two_fixtures_are_separate(pg_url: str, fresh_pg_url: str) -> None:
    assert fresh_pg_url != pg_url
    with psycopg.connect(libpq(fresh_pg_url), autocommit=True) as fresh:
        fresh.execute("CREATE TABLE only_here (x int)")
        fresh.execute("INSERT INTO only_here VALUES (1)")
    with psycopg.connect(libpq(pg_url)) as session:
        assert session.execute("SELECT to_regclass('only_here')").fetchone() == (None,)


def test_stop_ends_every_process_and_removes_the_cluster() -> None:
    server = PostgresServer()
    started = time.monotonic()
    server.start()
    took = time.monotonic() - started
    print(f"PostgreSQL test server up in {took:.2f}s")
    assert server.running and server.pid is not None and server.base_dir is not None
    pid, base, port = server.pid, server.base_dir, server.port
    open_session = psycopg.connect(server.conninfo())  # a backend the shutdown must end
    backend = open_session.info.backend_pid
    assert (base / "data" / "PG_VERSION").is_file()

    server.stop()

    assert not server.running and server.pid is None
    for gone in (pid, backend):
        with pytest.raises(ProcessLookupError):
            os.kill(gone, 0)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert not base.exists()
    assert not port_in_use(port)
    with pytest.raises(psycopg.OperationalError):
        open_session.execute("SELECT 1")
    open_session.close()


def test_a_busy_port_is_refused_before_anything_starts(pg_server: PostgresServer) -> None:
    with pytest.raises(PostgresServerError, match=rf"port {pg_server.port} is already in use"):
        PostgresServer(port=pg_server.port).start()


def test_bindir_takes_the_newest_complete_version(tmp_path: Path) -> None:
    for version, binaries in (
        ("13", ("initdb", "postgres")),
        ("15", ("initdb", "postgres")),
        ("16", ("initdb",)),
    ):
        (tmp_path / version / "bin").mkdir(parents=True)
        for name in binaries:
            (tmp_path / version / "bin" / name).touch(mode=0o755)
    (tmp_path / "common").mkdir()
    assert bindir(tmp_path) == tmp_path / "15" / "bin"
    with pytest.raises(
        PostgresMissingError, match=r"^no PostgreSQL server binaries under .*: run `make system-deps`$"
    ):
        bindir(tmp_path / "absent")


def run_pytest(
    tmp_path: Path, test_source: str, conftest: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    """A separate pytest session that loads only the PostgreSQL fixtures."""
    (tmp_path / "test_inner.py").write_text(test_source)
    (tmp_path / "conftest.py").write_text(conftest)
    environ = {k: v for k, v in os.environ.items() if k != "CI"}
    environ.update(PYTHONPATH=str(ROOT), **env)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "tests.support.pg_fixtures",
        "-p",
        "no:cacheprovider",
        "-q",
        "-ra",
        "test_inner.py",
    ]
    return subprocess.run(cmd, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=180)


INNER_SESSION = """
import json, os
from pathlib import Path
import psycopg

OUT = Path(os.environ["PROBE_OUT"])

def test_first(pg_server, pg_url, fresh_pg_url):
    OUT.write_text(json.dumps({"pid": pg_server.pid, "base_dir": str(pg_server.base_dir),
                               "port": pg_server.port, "fresh": fresh_pg_url.rsplit("/", 1)[1]}))

def test_second(pg_server, pg_url):
    fresh = json.loads(OUT.read_text())["fresh"]
    with psycopg.connect(pg_server.conninfo()) as conn:
        names = {name for (name,) in conn.execute("SELECT datname FROM pg_database")}
    assert "vigie" in names and fresh.startswith("test_") and fresh not in names
"""


def test_session_end_stops_the_server_and_fresh_databases_are_dropped(tmp_path: Path) -> None:
    probe = tmp_path / "probe.json"
    done = run_pytest(tmp_path, INNER_SESSION, PROBE_OUT=str(probe))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    seen = json.loads(probe.read_text())
    with pytest.raises(ProcessLookupError):
        os.killpg(seen["pid"], 0)
    assert not Path(seen["base_dir"]).exists()
    assert not port_in_use(seen["port"])


NO_POSTGRES = "from pathlib import Path\nimport tests.support.pg_node\ntests.support.pg_node.PG_ROOT = Path('/nonexistent/postgresql')\n"


@pytest.mark.parametrize(
    ("ci", "outcome", "code"), [("", "1 skipped", 0), ("true", "1 error", 1)], ids=["local", "ci"]
)
def test_missing_postgres_skips_locally_and_fails_in_ci(
    tmp_path: Path, ci: str, outcome: str, code: int
) -> None:
    env = {"CI": ci} if ci else {}
    done = run_pytest(tmp_path, "def test_needs_it(pg_url):\n    pass\n", conftest=NO_POSTGRES, **env)
    assert done.returncode == code, done.stdout + done.stderr
    assert outcome in done.stdout
    assert (
        "no PostgreSQL server binaries under /nonexistent/postgresql/<version>/bin: run `make system-deps`"
        in (done.stdout)
    )
