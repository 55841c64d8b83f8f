"""Bringing a database to the current schema with the Alembic revisions shipped in
`migrations/versions/`, on open, without any alembic.ini.

A SQLite store made before Vigie used Alembic carries its schema number in
`PRAGMA user_version` (1 to 4) and no `alembic_version` table: it is stamped with the
revision of that number first, then upgraded like any other."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from vigie.errors import StoreError
from vigie.store.engine import READ_ONLY_OPTION

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"
# `PRAGMA user_version` of stores made before Alembic -> the revision that made that schema.
LEGACY_REVISIONS = {1: "0001", 2: "0002", 3: "0003", 4: "0004"}
# Serialises PostgreSQL migrations of concurrent first opens (any fixed number will do).
_PG_LOCK = 0x76696769


@cache
def _scripts() -> ScriptDirectory:  # built once per process
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    return str(_scripts().get_current_head())


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at: Alembic's, or a pre-Alembic store's user_version."""
    from alembic.runtime.migration import MigrationContext

    revision = MigrationContext.configure(connection).get_current_revision()
    if revision is not None or connection.dialect.name != "sqlite":
        return revision
    version = int(connection.exec_driver_sql("PRAGMA user_version").scalar() or 0)
    if version == 0:
        return None
    if version not in LEGACY_REVISIONS:
        raise _newer(f"schema {version}")
    return LEGACY_REVISIONS[version]


def _newer(what: str) -> StoreError:
    return StoreError(
        f"written by a newer Vigie ({what}, this one knows up to revision {head()}); "
        "upgrade Vigie or use another store"
    )


def _known(revision: str) -> None:
    from alembic.util import CommandError

    try:
        if _scripts().get_revision(revision) is None:
            raise _newer(f"revision {revision}")
    except CommandError:
        raise _newer(f"revision {revision}") from None


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema. The revision is read again inside the write lock, so
    two processes opening a new store at once do not both migrate it."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with engine.connect().execution_options(**{READ_ONLY_OPTION: True}) as connection:
        stamped = MigrationContext.configure(connection).get_current_revision()
        connection.rollback()
    if stamped == head():
        return

    with engine.connect() as connection, _references_checked_at_the_end(connection), connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        now = current_revision(connection)
        if now is not None:
            _known(now)
        config = _config()
        config.attributes["connection"] = connection
        if now is not None and not inspect(connection).has_table("alembic_version"):
            command.stamp(config, now)  # a store from before Alembic: it is at `now` already
        command.upgrade(config, "head")
        if connection.dialect.name == "sqlite":
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:  # rolled back: the store stays as it was
                raise StoreError(f"the upgrade would leave {len(broken)} rows referring to nothing")


@contextmanager
def _references_checked_at_the_end(connection: Connection) -> Iterator[None]:
    """SQLite rebuilds a table to change a column's type (schema 6: post ids as text), and a
    dropped table's rows count as deleted for the rows that refer to them, even once the new
    table has its name. Foreign keys are off for the upgrade (the pragma only takes outside a
    transaction) and checked before it commits, then on again."""
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def check_current(engine: Engine) -> None:
    """For a store opened read-only, which cannot be upgraded: it must be at the head."""
    with engine.connect().execution_options(**{READ_ONLY_OPTION: True}) as connection:
        now = current_revision(connection)
        connection.rollback()
    if now is None:
        raise StoreError(
            "not a Vigie store (no schema); a command that writes (for example `vigie crawl`) makes one"
        )
    _known(now)
    if now != head():
        raise StoreError(
            f"made by an older Vigie (revision {now}); it is upgraded the next time a command that "
            "writes opens it (for example `vigie crawl`)"
        )
