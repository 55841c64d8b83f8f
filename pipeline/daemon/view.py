"""What `vigie daemon status` shows: the daemon, its jobs and the sources (configured, and
approved in the store), read from the status file the daemon keeps and from the store."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, tzinfo
from typing import Any

from pipeline.daemon.children import describe_children, process_alive
from pipeline.daemon.jobs import timezone_of
from pipeline.daemon.status import DaemonPaths, read_status_file
from vigie.config import VigieConfig
from vigie.errors import ConfigurationError, VigieError

HEARTBEAT_SECONDS = 5.0  # how often the daemon refreshes its heartbeat


def _parse_time(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def _daemon(raw: dict[str, Any]) -> dict[str, Any] | None:
    if not isinstance(raw.get("daemon"), dict):
        return None
    daemon = dict(raw["daemon"])
    heartbeat = _parse_time(daemon.get("heartbeat_at"))
    age = (datetime.now(UTC) - heartbeat).total_seconds() if heartbeat else None
    daemon["heartbeat_age_s"] = round(age, 1) if age is not None else None
    pid = daemon.get("pid")
    alive = isinstance(pid, int) and process_alive(pid)
    if daemon.get("stopped_at"):
        state = "stopped"
    elif alive and age is not None and age <= 3 * HEARTBEAT_SECONDS:
        state = "running"
    elif alive:
        state = "unresponsive"  # no heartbeat for a while
    else:
        state = "dead"  # killed without stopping: the next start resumes its jobs
    daemon["state"] = state
    children = raw.get("children")
    daemon["children"] = describe_children(children if isinstance(children, dict) else {})
    return daemon


def _store_sources(config: VigieConfig) -> list[dict[str, Any]]:
    from vigie.store import Store
    from vigie.store.discovery import decisions

    try:
        with Store(config.store_url(), read_only=True) as store:
            rows = [asdict(s) for s in store.sources()]
            approved = {(d["platform"], d["channel"]) for d in decisions(store, "approved")}
    except VigieError:
        rows, approved = [], set()
    for r in rows:
        r.pop("pending_top", None)
    configured = {(s.platform, s.channel) for s in config.sources}
    known = {(r["platform"], r["channel"]) for r in rows}
    for platform, channel in sorted((configured | approved) - known):
        rows.append(
            {
                "platform": platform,
                "channel": channel,
                "cursor": None,
                "pending_before": None,
                "last_attempt_at": None,
                "last_success_at": None,
                "last_error": None,
            }
        )
    for r in rows:
        r["configured"] = (r["platform"], r["channel"]) in configured
        r["approved"] = (r["platform"], r["channel"]) in approved and not r["configured"]
    return rows


def _alert_backlog(config: VigieConfig) -> dict[str, int] | None:
    """Alert deliveries pending and dead in the store, or None when it cannot be read."""
    from vigie.store import Store
    from vigie.store.alerts import counts

    try:
        with Store(config.store_url(), read_only=True) as store:
            found = counts(store)
    except VigieError:
        return None
    return {"pending": found["pending"], "dead": found["dead"], "sent": found["sent"]}


def _next_run(value: Any, tz: tzinfo) -> str | None:
    when = _parse_time(value) if isinstance(value, str) else None
    return when.astimezone(tz).isoformat(timespec="seconds") if when else None


def read_status(config: VigieConfig) -> dict[str, Any]:
    """The daemon, its jobs (what the scheduler last had scheduled, with each job's last
    outcome) and the sources (from the store)."""
    paths = DaemonPaths.of(config)
    raw = read_status_file(paths.status)
    try:
        tz: tzinfo = timezone_of(config)
    except ConfigurationError:
        tz = UTC
    scheduled: dict[str, Any] = raw["scheduled"] if isinstance(raw.get("scheduled"), dict) else {}
    infos: dict[str, Any] = raw["jobs"] if isinstance(raw.get("jobs"), dict) else {}
    jobs = []
    for job_id in sorted(scheduled):
        info = infos.get(job_id, {})
        jobs.append(
            {
                "id": job_id,
                "name": info.get("name"),
                "schedule": info.get("schedule"),
                "next_run_time": _next_run(scheduled[job_id], tz),
                "running_since": info.get("running_since"),
                "last_outcome": info.get("last_outcome"),
                "last_started_at": info.get("last_started_at"),
                "last_finished_at": info.get("last_finished_at"),
                "last_duration_s": info.get("last_duration_s"),
                "last_error": info.get("last_error"),
                "last_note": info.get("last_note"),
                "last_failure": info.get("last_failure"),
                "last_steps": info.get("last_steps", []),
                "last_missed_at": info.get("last_missed_at"),
                "runs": info.get("runs", 0),
                "failures": info.get("failures", 0),
                "log": info.get("log") or str(paths.job_log(job_id)),
            }
        )
    return {
        "daemon": _daemon(raw),
        "jobs_store": str(paths.jobs),
        "status_file": str(paths.status),
        "jobs": jobs,
        "sources": _store_sources(config),
        "alerts": _alert_backlog(config),
    }
