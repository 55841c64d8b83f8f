"""Connecting to the store's database, named by a URL: a SQLite file (the default) or a
PostgreSQL server (`postgresql+psycopg://user@host:port/db`, for a team sharing one store).

SQLite runs in WAL mode with foreign keys on; a write transaction starts with
`BEGIN IMMEDIATE`, so two writers queue instead of failing halfway. A file is checked once
per process (`PRAGMA quick_check`, within a time budget) and refused when damaged, and a
read-only store is opened so that nothing, not even SQLite's side files, is written.
Messages never show a password: URLs are printed masked."""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import QueuePool, StaticPool

from vigie.errors import StoreError

# `PRAGMA quick_check` reads the whole file: past this many seconds it stops, unfinished.
CHECK_SECONDS = 10.0
BUSY_SECONDS = 30  # how long a writer waits for another to finish before giving up
EXPECTED = "expected sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DATABASE"
# Execution option of connections that only read: on SQLite they take no write lock.
READ_ONLY_OPTION = "vigie_read_only"

log = logging.getLogger(__name__)
_checked: set[Path] = set()  # SQLite files found intact by this process


@dataclass(frozen=True)
class Location:
    """Where a store lives: its URL, and for SQLite its file (None in memory)."""

    url: URL
    path: Path | None = None

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    @property
    def shown(self) -> str:
        """How messages name the store: the file, or the URL with its password masked."""
        if self.backend == "sqlite":
            return str(self.path) if self.path else ":memory:"
        return mask(self.url)


def mask(url: URL | str) -> str:
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "<unparsable URL>"
    return parsed.render_as_string(hide_password=True)


def locate(target: str | Path) -> Location:
    """A store URL, or a bare path standing for a SQLite file."""
    if isinstance(target, Path) or "://" not in target:
        path = Path(target).expanduser()
        return Location(URL.create("sqlite", database=str(path)), path)
    try:
        url = make_url(target)
    except ArgumentError:
        raise StoreError(f"store URL {mask(target)}: not a database URL; {EXPECTED}") from None
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend == "sqlite" and driver in ("pysqlite", ""):
        database = url.database or ""
        if database in ("", ":memory:"):
            return Location(URL.create("sqlite"), None)
        return Location(url, Path(database).expanduser())
    if backend in ("postgresql", "postgres") and driver in ("psycopg", "psycopg2", ""):
        if not url.host and not url.query.get("host"):
            raise StoreError(f"store URL {mask(url)}: no host; {EXPECTED}")
        if not url.database:
            raise StoreError(f"store URL {mask(url)}: no database name; {EXPECTED}")
        return Location(url.set(drivername="postgresql+psycopg"))
    raise StoreError(f"store URL {mask(url)}: unsupported database {url.drivername!r}; {EXPECTED}")


def connect(where: Location, read_only: bool) -> Engine:
    if where.backend == "sqlite":
        return _sqlite_engine(where, read_only)
    engine = create_engine(
        where.url,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 10, "application_name": "vigie"},
    )
    if read_only:
        event.listen(engine, "connect", _postgresql_read_only)
    return engine


def _postgresql_read_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.read_only = True


def _sqlite_engine(where: Location, read_only: bool) -> Engine:
    path = where.path
    if path is None or (read_only and not path.exists()):
        # One connection, shared: an in-memory database lives as long as it does.
        engine = create_engine("sqlite://", creator=_memory, poolclass=StaticPool)
    elif read_only:
        engine = create_engine(where.url, creator=lambda: _read_only_file(path), poolclass=QueuePool)
    else:
        engine = create_engine(where.url, creator=lambda: _writable_file(path), poolclass=QueuePool)

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # The driver's implicit transactions are off (isolation_level=None): the store says
        # when one starts, and a writer takes the write lock at once.
        reading = read_only or connection.get_execution_options().get(READ_ONLY_OPTION)
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

    return engine


def _memory() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _writable_file(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _read_only_file(path: Path) -> sqlite3.Connection:
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
    try:
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc) and "unable to open" not in str(exc):
            raise
        # A WAL store in a directory we cannot write: SQLite cannot make the shared-memory
        # file it coordinates with writers through. None can be writing (they would have
        # made it), so read the file as it is: what its last writer checkpointed.
        db.close()
        db = sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None, check_same_thread=False)
    return db


def check_sqlite_file(path: Path) -> None:
    """Refuse a damaged file: a quick structural check, once per process per file, on a
    read-only connection of its own (a writable one would switch the file to WAL first)."""
    key = path.resolve()
    if key in _checked:
        return
    try:
        db = _read_only_file(path)
    except sqlite3.DatabaseError as exc:
        raise damaged(path, str(exc)) from None
    try:
        deadline = time.monotonic() + CHECK_SECONDS
        db.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            rows = [str(r[0]) for r in db.execute("PRAGMA quick_check(3)")]
        except sqlite3.OperationalError as exc:
            if "interrupted" not in str(exc):
                raise
            log.warning("%s: integrity check stopped after %.0f s, unfinished", path, CHECK_SECONDS)
            _checked.add(key)  # not again in this process: the budget is spent
            return
        except sqlite3.DatabaseError as exc:
            raise damaged(path, str(exc)) from None
    finally:
        db.close()
    if rows != ["ok"]:
        raise damaged(path, "; ".join(" ".join(r.split()) for r in rows)[:300])
    _checked.add(key)


def damaged(path: Path, detail: str) -> StoreError:
    what = "is not a SQLite database or its header is damaged" if "not a database" in detail else "is damaged"
    recovered = path.with_name(path.stem + "-recovered" + path.suffix)
    return StoreError(
        f"{path}: cannot open the store: the file {what} ({detail}); nothing was written to it. "
        f"Restore it from a backup, or copy what is readable into a new file with "
        f"`sqlite3 {path} .recover | sqlite3 {recovered}` and point store.path at that file"
    )


def driver_error(exc: BaseException) -> BaseException:
    """The database driver's own error inside SQLAlchemy's wrapper (whose text quotes the
    statement and its parameters: post text, never to be printed)."""
    return exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc


def one_line(exc: BaseException, where: Location | None = None) -> str:
    text = " ".join(str(driver_error(exc)).split()) or type(exc).__name__
    if where is not None and where.url.password:
        text = text.replace(str(where.url.password), "***")
    return text[:300]


def opening_error(exc: BaseException, where: Location) -> StoreError:
    """A clear line for a store that cannot be opened: missing, damaged, unreachable, refused."""
    error = driver_error(exc)
    if where.backend == "sqlite" and where.path is not None:
        if isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError):
            return damaged(where.path, str(error))  # "malformed", "not a database"
        return StoreError(f"{where.path}: cannot open the store: {one_line(error, where)}")
    return StoreError(f"{where.shown}: cannot open the store: {one_line(error, where)}")


# What store functions raise when the database fails mid-work (locked, disk full, gone).
DatabaseError = DBAPIError


def is_database_error(exc: BaseException) -> bool:
    """Whether `exc` comes from the database (through SQLAlchemy or a driver)."""
    return isinstance(exc, DBAPIError | sqlite3.Error) or type(exc).__module__.startswith("psycopg")
