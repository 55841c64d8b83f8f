"""Pytest fixtures for a throwaway PostgreSQL server (see `tests.support.pg_node`).

`pg_server` starts one server for the session and removes it at the end; `pg_url` is the
SQLAlchemy URL of a database that lives as long; `fresh_pg_url` gives one test an empty
database of its own and drops it afterwards. Mark such tests `@pytest.mark.postgres`.
Without PostgreSQL installed they are skipped, or fail when the CI variable is set.
A test must not stop `pg_server`: one that needs a server going down starts its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pg_node import PostgresMissingError, PostgresServer, bindir

SESSION_DATABASE = "vigie"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs the throwaway PostgreSQL server (one per session)")


def require_bindir() -> Path:
    """The server binaries, or a skip (a failure when CI is set: a CI run must not pass
    by skipping every PostgreSQL test)."""
    try:
        return bindir()
    except PostgresMissingError as exc:
        reason = str(exc)
    # Outside the except block, so the report is the one line, not a chained traceback.
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer(bin_dir=require_bindir())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_url(pg_server: PostgresServer) -> str:
    return pg_server.create_database(SESSION_DATABASE)


@pytest.fixture
def fresh_pg_url(pg_server: PostgresServer) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name)
    yield url
    pg_server.drop_database(name)
