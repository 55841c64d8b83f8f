"""Run history: every command that changes the store records when it ran and how it ended."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update

from vigie.store.core import utcnow
from vigie.store.engine import is_database_error, one_line
from vigie.store.schema import runs

if TYPE_CHECKING:
    from vigie.store.core import Store


@dataclass
class Run:
    """A run being recorded: its body sets `status` and `stats` before it ends."""

    id: int
    status: str = "ok"
    stats: dict[str, Any] = field(default_factory=dict)


def start_run(store: Store, command: str) -> int:
    with store.transaction() as connection:
        result = connection.execute(
            insert(runs).values(command=command, started_at=utcnow()).returning(runs.c.id)
        )
        return int(result.scalar_one())


def finish_run(store: Store, run_id: int, status: str, stats: dict[str, Any]) -> None:
    with store.transaction() as connection:
        connection.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(finished_at=utcnow(), status=status, stats=json.dumps(stats, ensure_ascii=False))
        )


@contextmanager
def recorded(store: Store, command: str) -> Iterator[Run]:
    """Record a run of `command`. It ends with the status and stats its body set, or as
    failed, with the error, when the body raises: it is never left `running`."""
    run = Run(start_run(store, command))
    try:
        yield run
    except BaseException as exc:
        # A database error's text quotes the statement and its parameters (post text).
        detail = one_line(exc) if is_database_error(exc) else str(exc)
        error = f"{type(exc).__name__}: {detail}"
        finish_run(store, run.id, "failed", {**run.stats, "error": error[:500]})
        raise
    finish_run(store, run.id, run.status, run.stats)


def recent_runs(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    with store.reading() as connection:
        rows = connection.execute(select(runs).order_by(runs.c.id.desc()).limit(limit)).mappings()
        return [dict(row) for row in rows]


def latest_run_id(store: Store) -> int:
    """The newest run's id (0 when none): a run started later has a larger one."""
    with store.reading() as connection:
        return int(connection.scalar(select(func.coalesce(func.max(runs.c.id), 0))) or 0)


def runs_after(store: Store, after_id: int, command: str) -> list[dict[str, Any]]:
    """The runs of `command` started after run `after_id`, newest first."""
    query = select(runs).where(runs.c.id > after_id, runs.c.command == command).order_by(runs.c.id.desc())
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
