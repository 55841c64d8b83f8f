"""SQL that reads the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction


class greatest(GenericFunction[Any]):
    """The largest of its arguments: GREATEST on PostgreSQL, many-argument MAX on SQLite."""

    inherit_cache = True


@compiles(greatest, "sqlite")
def _greatest_sqlite(element: greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


@compiles(greatest)
def _greatest(element: greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"greatest({compiler.process(element.clauses, **kw)})"


def _insert(connection: Connection, table: Table) -> Any:
    return (postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert)(table)


def insert_missing(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]] | Mapping[str, Any]
) -> int:
    """Insert the rows whose key is not stored yet; the others are left as they are.
    Returns how many were inserted."""
    if not rows:
        return 0
    # RETURNING counts what went in: drivers disagree on the rowcount of a skipped conflict.
    key = next(iter(table.primary_key.columns))
    statement = _insert(connection, table).on_conflict_do_nothing().returning(key)
    return len(connection.execute(statement, rows).all())


def insert_missing_keys(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """`insert_missing` for a table with a one-column key: the keys inserted."""
    (key,) = table.primary_key.columns
    statement = _insert(connection, table).on_conflict_do_nothing().returning(key)
    return list(connection.execute(statement, list(rows)).scalars()) if rows else []


def upsert(
    connection: Connection,
    table: Table,
    row: Mapping[str, Any],
    keys: Iterable[str],
    update: Iterable[str] | None = None,
) -> None:
    """Insert `row`, or update the stored row with the same `keys`: the columns `update`
    (default: every column of `row` but the keys) take the new values."""
    keys = list(keys)
    statement = _insert(connection, table).values(**row)
    columns = [c for c in row if c not in keys] if update is None else list(update)
    statement = statement.on_conflict_do_update(
        index_elements=keys, set_={c: statement.excluded[c] for c in columns}
    )
    connection.execute(statement)


def upsert_many(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]], keys: Iterable[str]
) -> None:
    """`upsert` for many rows of the same columns at once."""
    if not rows:
        return
    keys = list(keys)
    statement = _insert(connection, table)
    columns = [c for c in rows[0] if c not in keys]
    statement = statement.on_conflict_do_update(
        index_elements=keys, set_={c: statement.excluded[c] for c in columns}
    )
    connection.execute(statement, list(rows))
