"""The store handle: an open database, its transactions, and the post, cursor and run
operations most callers need (the others live in this package's modules, one per aggregate).

With `read_only=True` nothing is ever written, not even the schema: a SQLite store that does
not exist yet reads as empty, and one made by an older Vigie must be opened once for
writing (any crawl) to be upgraded."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from vigie.errors import StoreError
from vigie.store import engine as engines
from vigie.store import migrate

if TYPE_CHECKING:
    from vigie.records import Post
    from vigie.store.posts import Outcome, SourceState
    from vigie.store.runs import Run


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def json_object(value: Any) -> dict[str, Any]:
    """A stored JSON object (entities, profiles) decoded: {} for none, or for a value that
    is not JSON or not an object; one already decoded is returned as it is."""
    if isinstance(value, dict):
        return value
    try:
        found = json.loads(value) if value else {}
    except (TypeError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def stored_time(value: str | None) -> datetime | None:
    """A stored ISO 8601 time as an aware UTC datetime (one without an offset is UTC); None
    for none or a value that is not a time."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Store:
    """One open store. Not shared between threads.

    `target` is a store URL (`sqlite:///PATH`, `postgresql+psycopg://USER@HOST/DB`) or the
    path of a SQLite file."""

    def __init__(self, target: str | Path, read_only: bool = False) -> None:
        self.where = engines.locate(target)
        self.path = self.where.path  # the SQLite file, None for a server
        self.read_only = read_only
        self._transaction: Connection | None = None
        self.absent = False
        self.engine = engines.connect(self.where, read_only)
        try:
            self._open()
        except BaseException as exc:
            self.engine.dispose()
            if isinstance(exc, StoreError):
                if exc.args and not str(exc.args[0]).startswith(self.where.shown):
                    raise StoreError(f"{self.where.shown}: {exc.args[0]}") from None
                raise
            if engines.is_database_error(exc):
                raise engines.opening_error(exc, self.where) from None
            raise

    def _open(self) -> None:
        path = self.where.path
        if path is not None and path.exists():
            engines.check_sqlite_file(path)
        # A read-only look at a SQLite file that does not exist: nothing was collected there.
        self.absent = self.read_only and path is not None and not path.exists()
        if self.absent:
            migrate.upgrade(self.engine)  # an empty store, in memory only
        elif self.read_only:
            migrate.check_current(self.engine)
        else:
            migrate.upgrade(self.engine)

    @property
    def backend(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.where.backend

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction: everything in it is stored, or nothing. Store functions
        called inside join it."""
        if self._transaction is not None:
            yield self._transaction
            return
        with self.engine.begin() as connection:
            self._transaction = connection
            try:
                yield connection
            finally:
                self._transaction = None

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection to read from: the open transaction's, else one that takes no lock."""
        if self._transaction is not None:
            yield self._transaction
            return
        with self.engine.connect() as connection:
            yield connection.execution_options(**{engines.READ_ONLY_OPTION: True})

    @property
    def db(self) -> LegacySQL:
        """Raw text SQL in the driver's own placeholders, for tests that set up or inspect
        states no store function makes (a damaged row, a schema revision). Vigie's own code
        never uses it: it calls the store's functions."""
        return LegacySQL(self)

    # -- posts and crawl cursors (vigie.store.posts) ----------------------------------

    def upsert_posts(self, posts: Iterable[Post]) -> dict[Outcome, int]:
        from vigie.store import posts as posts_

        return posts_.upsert_posts(self, posts)

    def count_posts(self, platform: str | None = None, channel: str | None = None) -> int:
        from vigie.store import posts as posts_

        return posts_.count_posts(self, platform, channel)

    def posts(self, platform: str | None = None, channel: str | None = None) -> Iterator[dict[str, Any]]:
        from vigie.store import posts as posts_

        return posts_.iter_posts(self, platform, channel)

    def source_state(self, platform: str, channel: str) -> SourceState:
        from vigie.store import posts as posts_

        return posts_.source_state(self, platform, channel)

    def sources(self) -> list[SourceState]:
        from vigie.store import posts as posts_

        return posts_.sources_list(self)

    def store_page(
        self,
        platform: str,
        channel: str,
        posts: list[Post],
        highest: int | None,
        lowest: int | None,
        complete: bool = False,
    ) -> dict[Outcome, int]:
        from vigie.store import posts as posts_

        return posts_.store_page(self, platform, channel, posts, highest, lowest, complete)

    def record_source_error(self, platform: str, channel: str, reason: str) -> None:
        from vigie.store import posts as posts_

        posts_.record_source_error(self, platform, channel, reason)

    # -- runs (vigie.store.runs) -----------------------------------------------------

    def start_run(self, command: str) -> int:
        from vigie.store import runs

        return runs.start_run(self, command)

    def finish_run(self, run_id: int, status: str, stats: dict[str, Any]) -> None:
        from vigie.store import runs

        runs.finish_run(self, run_id, status, stats)

    @contextmanager
    def run(self, command: str) -> Iterator[Run]:
        from vigie.store import runs

        with runs.recorded(self, command) as run:
            yield run

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        from vigie.store import runs

        return runs.recent_runs(self, limit)


class LegacyRow(tuple[Any, ...]):
    """A result row read by position or by column name, and `dict(row)`-able."""

    _names: tuple[str, ...]

    def __new__(cls, values: Sequence[Any], names: tuple[str, ...]) -> LegacyRow:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._names.index(key))
            except ValueError:
                raise IndexError(f"no such column: {key}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self._names else default


class LegacyResult:
    def __init__(self, rows: list[LegacyRow], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Any:  # a LegacyRow or None, typed loosely like sqlite3's
        return self.rows.pop(0) if self.rows else None

    def fetchall(self) -> list[LegacyRow]:
        rows, self.rows = self.rows, []
        return rows

    def __iter__(self) -> Iterator[LegacyRow]:
        return iter(self.fetchall())


class LegacySQL:
    """`execute(sql, params)` in the driver's own dialect and placeholders (SQLite: `?`),
    rows fetched at once. A statement outside a transaction runs in its own."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> LegacyResult:
        reads = sql.lstrip().split(None, 1)[0].upper() in ("SELECT", "WITH", "PRAGMA", "EXPLAIN")
        opened = self.store.reading() if reads else self.store.transaction()
        with opened as connection:
            result = connection.exec_driver_sql(sql, params if isinstance(params, Mapping) else tuple(params))
            if not result.returns_rows:
                return LegacyResult([], result.rowcount)
            names = tuple(result.keys())
            return LegacyResult([LegacyRow(r, names) for r in result], result.rowcount)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.store.transaction() as connection:
            connection.exec_driver_sql(sql, [tuple(r) for r in rows])
