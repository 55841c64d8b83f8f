"""Read-only views of a cluster for `vigie cluster status`: its nodes, the job queue
(procrastinate's own tables in the store's database), classification claims and failed runs.

The queue tables are procrastinate's, not Vigie's: they are named here with only the columns
read, and exist only once a cluster daemon or worker has installed them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, cast, column, func, inspect, select, table

from vigie.store.core import json_object
from vigie.store.schema import classify_claims, cluster_nodes, runs

if TYPE_CHECKING:
    from vigie.store.core import Store

QUEUE_TABLES = ("procrastinate_jobs", "procrastinate_workers", "procrastinate_events")

jobs = table(
    "procrastinate_jobs",
    column("id"),
    column("queue_name"),
    column("task_name"),
    column("args"),
    column("status"),
    column("scheduled_at"),
    column("attempts"),
    column("worker_id"),
)
queue_workers_table = table("procrastinate_workers", column("id"), column("last_heartbeat"))
events = table("procrastinate_events", column("job_id"), column("type"), column("at"))


def _status(value: str) -> Any:
    # The columns are PostgreSQL enums: compare them as text, whatever the driver binds.
    return cast(jobs.c.status, Text) == value


def _event_times(kind: str, pick: Any = func.max) -> Any:
    """Per job, the time of its first or last event of `kind`."""
    return (
        select(events.c.job_id, pick(events.c.at).label("at"))
        .where(cast(events.c.type, Text) == kind)
        .group_by(events.c.job_id)
        .subquery()
    )


def queue_installed(store: Store) -> bool:
    """Whether procrastinate's tables are in this store (a cluster has run on it)."""
    with store.reading() as connection:
        names = set(inspect(connection).get_table_names())
    return all(name in names for name in QUEUE_TABLES)


def nodes(store: Store) -> list[dict[str, Any]]:
    """Every cluster node ever registered, newest heartbeat first, its detail decoded."""
    query = select(cluster_nodes).order_by(cluster_nodes.c.heartbeat_at.desc(), cluster_nodes.c.node_id)
    with store.reading() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]
    for row in rows:
        row["detail"] = json_object(row["detail"])
    return rows


def queue_depths(store: Store, failed_since: datetime | None = None) -> dict[tuple[str, str], int]:
    """Jobs per (task, status): every one waiting (`todo`) or running (`doing`), and the failed
    ones still in the queue (only those that failed since `failed_since`, when given). Empty on
    a store without the queue (SQLite, or no cluster has run on it)."""
    if store.backend != "postgresql":
        return {}
    status = cast(jobs.c.status, Text)
    waiting = (
        select(jobs.c.task_name, status, func.count())
        .where(status.in_(("todo", "doing")))
        .group_by(jobs.c.task_name, status)
    )
    failed = select(jobs.c.task_name, status, func.count()).where(_status("failed"))
    if failed_since is not None:
        failed_at = _event_times("failed")
        failed = failed.select_from(jobs.join(failed_at, failed_at.c.job_id == jobs.c.id)).where(
            failed_at.c.at >= failed_since
        )
    depths: dict[tuple[str, str], int] = {}
    with store.reading() as connection:
        if connection.scalar(select(func.to_regclass(QUEUE_TABLES[0]))) is None:
            return {}
        for query in (waiting, failed.group_by(jobs.c.task_name, status)):
            for task, state, count in connection.execute(query):
                depths[(str(task), str(state))] = int(count)
    return depths


def oldest_pending_since(store: Store, now: datetime) -> datetime | None:
    """When the longest-waiting job that is due became due (its schedule, else when it was
    deferred); None when no job waits. Jobs scheduled for later are not waiting yet."""
    deferred_at = _event_times("deferred", func.min)
    due = func.coalesce(jobs.c.scheduled_at, deferred_at.c.at)
    query = (
        select(func.min(due))
        .select_from(jobs.outerjoin(deferred_at, deferred_at.c.job_id == jobs.c.id))
        .where(_status("todo"), due <= now)
    )
    with store.reading() as connection:
        found = connection.scalar(query)
    return found if isinstance(found, datetime) else None


def running_jobs(store: Store) -> list[dict[str, Any]]:
    """Jobs in `doing`: id, task, queue, args, attempts, the procrastinate worker holding it,
    that worker's last heartbeat and when the job started."""
    started_at = _event_times("started")
    query = (
        select(
            jobs.c.id, jobs.c.task_name.label("task"), jobs.c.queue_name.label("queue"), jobs.c.args,
            jobs.c.attempts, jobs.c.worker_id, queue_workers_table.c.last_heartbeat.label("worker_heartbeat"),
            started_at.c.at.label("started_at"),
        )
        .select_from(
            jobs.outerjoin(started_at, started_at.c.job_id == jobs.c.id).outerjoin(
                queue_workers_table, queue_workers_table.c.id == jobs.c.worker_id
            )
        )
        .where(_status("doing"))
        .order_by(jobs.c.id)
    )  # fmt: skip
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def failed_jobs(store: Store, since: datetime, limit: int = 10) -> list[dict[str, Any]]:
    """Jobs that failed since `since`, newest first: id, task, args, attempts, failed_at."""
    failed_at = _event_times("failed")
    query = (
        select(
            jobs.c.id, jobs.c.task_name.label("task"), jobs.c.args, jobs.c.attempts,
            failed_at.c.at.label("failed_at"),
        )
        .select_from(jobs.join(failed_at, failed_at.c.job_id == jobs.c.id))
        .where(_status("failed"), failed_at.c.at >= since)
        .order_by(failed_at.c.at.desc(), jobs.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    with store.reading() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def failed_runs(store: Store, since: str, limit: int = 50) -> list[dict[str, Any]]:
    """Runs that ended `failed` since `since` (a stored time), newest first, stats decoded."""
    query = (
        select(runs)
        .where(runs.c.status == "failed", runs.c.started_at >= since)
        .order_by(runs.c.id.desc())
        .limit(limit)
    )
    with store.reading() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]
    for row in rows:
        row["stats"] = json_object(row["stats"])
    return rows


def claims_outstanding(store: Store) -> dict[str, int]:
    """Posts held by classification batches, and how many batches hold them."""
    query = select(func.count(), func.count(func.distinct(classify_claims.c.batch_id)))
    with store.reading() as connection:
        claimed, batches = connection.execute(query).one()
    return {"posts": int(claimed), "batches": int(batches)}
