"""What `vigie cluster status` shows: the leader and standby daemons, the workers and the job
each holds, the queue's depth and oldest wait, each source's lag, claims and recent failures.

A node is live while its heartbeat is younger than `cluster.lease_seconds` and it has not
said it stopped: a leader row older than that is a leader that died, not the leader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from vigie.config import VigieConfig
from vigie.errors import ConfigurationError
from vigie.store import Store
from vigie.store import cluster_status as queries
from vigie.store.core import stored_time

FAILED_WINDOW = timedelta(hours=24)
STATUSES = ("todo", "doing", "failed")


def require_postgresql(store: Store) -> None:
    if store.backend != "postgresql":
        raise ConfigurationError(
            f"cluster mode needs a PostgreSQL store (store.url: postgresql+psycopg://USER@HOST/DB); "
            f"this one is {store.backend}: {store.where.shown}"
        )


def _age(moment: datetime | str | None, now: datetime) -> float | None:
    when = stored_time(moment) if isinstance(moment, str) or moment is None else moment.astimezone(UTC)
    return None if when is None else round((now - when).total_seconds(), 1)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def _state(node: dict[str, Any], age: float | None, lease_seconds: float) -> str:
    if node["stopped_at"]:
        return "stopped"
    return "alive" if age is not None and age <= lease_seconds else "dead"


def _job(job: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "id": job["id"],
        "task": job["task"],
        "queue": job["queue"],
        "args": job["args"],
        "attempts": job["attempts"],
        "worker_id": job["worker_id"],
        "running_seconds": _age(job["started_at"], now),
        "worker_heartbeat_age_seconds": _age(job["worker_heartbeat"], now),
    }


def _nodes(
    store: Store, lease_seconds: float, running: list[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    held: dict[Any, dict[str, Any]] = {}
    for job in running:
        if job["worker_id"] is not None:
            held.setdefault(str(job["worker_id"]), job)
    leader = None
    standby, workers = [], []
    for node in queries.nodes(store):
        age = _age(node["heartbeat_at"], now)
        state = _state(node, age, lease_seconds)
        shown = {
            "node": node["node_id"],
            "host": node["host"],
            "pid": node["pid"],
            "started_at": node["started_at"],
            "heartbeat_age_seconds": age,
            "state": state,
        }
        if node["role"] == "leader" and state == "alive" and leader is None:
            since = node["detail"].get("leader_since") or node["started_at"]
            leader = {**shown, "since": since}
        elif node["role"] in ("leader", "standby"):
            standby.append({**shown, "role": node["role"]})
        else:
            queue_worker = node["detail"].get("procrastinate_worker_id")
            in_hand = held.get(str(queue_worker)) if queue_worker is not None else None
            workers.append(
                {**shown, "egress": node["egress"], "job": _job(in_hand, now) if in_hand else None}
            )
    return {"leader": leader, "standby": standby, "workers": workers}


def _queue(depths: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    tasks = sorted({task for task, _ in depths})
    return [
        {"task": task, **{("failed_24h" if s == "failed" else s): depths.get((task, s), 0) for s in STATUSES}}
        for task in tasks
    ]


def _sources(config: VigieConfig, store: Store, now: datetime) -> list[dict[str, Any]]:
    known = {(s.platform, s.channel): s for s in store.sources()}
    keys = list(known) + [
        (s.platform, s.channel) for s in config.sources if (s.platform, s.channel) not in known
    ]
    shown = []
    for platform, channel in keys:
        state = known.get((platform, channel))
        last = state.last_success_at if state else None
        shown.append(
            {
                "source": f"{platform}:{channel}",
                "last_success_at": last,
                "lag_seconds": _age(last, now) if last else None,
                "last_error": state.last_error if state else None,
            }
        )
    # Never crawled first, then the most behind.
    return sorted(shown, key=lambda s: (s["lag_seconds"] is not None, -(s["lag_seconds"] or 0), s["source"]))


def _errors(store: Store, now: datetime) -> list[dict[str, Any]]:
    since = now - FAILED_WINDOW
    by_job = {}
    for run in queries.failed_runs(store, since.isoformat(timespec="seconds")):
        job_id = run["stats"].get("job_id")
        if job_id is not None and job_id not in by_job:
            by_job[job_id] = str(run["stats"].get("error") or "")
    return [
        {
            "job_id": job["id"],
            "task": job["task"],
            "args": job["args"],
            "attempts": job["attempts"],
            "failed_at": _iso(job["failed_at"]),
            "error": by_job.get(job["id"], by_job.get(str(job["id"]), "")),
        }
        for job in queries.failed_jobs(store, since)
    ]


def cluster_status(config: VigieConfig, now: datetime | None = None) -> dict[str, Any]:
    """The cluster as its store sees it. Raises ConfigurationError for a store that is not
    PostgreSQL; `queue_installed` is False when no cluster has run on the store."""
    now = now or datetime.now(UTC)
    lease = config.cluster.lease_seconds
    with Store(config.store_url(), read_only=True) as store:
        require_postgresql(store)
        status: dict[str, Any] = {
            "store": store.where.shown,
            "at": _iso(now),
            "lease_seconds": lease,
            "queue_installed": queries.queue_installed(store),
        }
        if not status["queue_installed"]:
            return status
        running = queries.running_jobs(store)
        oldest = queries.oldest_pending_since(store, now)
        status.update(_nodes(store, lease, running, now))
        status.update(
            {
                "queue": _queue(queries.queue_depths(store, now - FAILED_WINDOW)),
                "oldest_pending_seconds": _age(oldest, now) if oldest else None,
                "running": [_job(job, now) for job in running],
                "claims": queries.claims_outstanding(store),
                "sources": _sources(config, store, now),
                "errors": _errors(store, now),
            }
        )
        return status
