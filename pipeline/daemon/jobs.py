"""The jobs the configuration asks for: ids, schedules, executors, and what each runs.

Job functions are module-level, so the persistent job store holds references to them, not
pickles of code; they hand the work to the daemon running in this process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from vigie.config import VigieConfig
from vigie.errors import ConfigurationError

if TYPE_CHECKING:
    from pipeline.daemon.runner import JobRunner

log = logging.getLogger("vigie.daemon")

CRAWL_PREFIX = "crawl:"
REMOVAL_CHECKS = "removal-checks"
ES_REPLAY = "es-replay"
ALERTS = "alerts"  # evaluates the alert rules and retries the deliveries due
# Re-reads the approved sources so that their crawl jobs follow (in the transient store:
# the daemon's bookkeeping, added at each start, not a job of the configuration).
APPROVED_SOURCES = "approved-sources"
CLASSIFY = "classify"  # asked for by each crawl, never scheduled on its own

# Executors, one per resource. Crawls and removal checks fetch the platform's pages: one at
# a time, in the order they came due, keeps one request at a time per domain across sources.
CRAWL_EXECUTOR = "crawl"
WRITER_EXECUTOR = "writer"  # classification: the classifier, the store's analysis, the index
ES_EXECUTOR = "es"
CONTROL_EXECUTOR = "control"  # the daemon's own bookkeeping, never behind a long crawl
ALERTS_EXECUTOR = "alerts"  # webhook and SMTP servers, never behind a crawl or the index
EXECUTOR_WORKERS = {
    CRAWL_EXECUTOR: 1,
    WRITER_EXECUTOR: 1,
    ES_EXECUTOR: 1,
    CONTROL_EXECUTOR: 1,
    ALERTS_EXECUTOR: 1,
}
# Approved sources are re-read this often, or every crawl interval when shorter, and
# after each classification (which may follow new ones).
APPROVED_EVERY_SECONDS = 60.0


def approved_every_seconds(config: VigieConfig) -> float:
    return min(APPROVED_EVERY_SECONDS, config.daemon.crawl_every_minutes * 60)


PERSISTENT_STORE = "default"  # schedules survive restarts
TRANSIENT_STORE = "transient"  # classification requests: the next crawl asks again

# The command each step records in the store's `runs` table, as the child names it.
CLASSIFY_COMMAND = ("run", "--no-crawl")
CHECK_COMMAND = ("referrals", "check")
REPLAY_COMMAND = ("es", "replay")
# One attempt per due delivery: the job's interval spaces the retries.
ALERTS_COMMAND = ("alerts", "send", "--wait", "0")


def crawl_run_name(channel: str) -> str:
    """What `vigie crawl telegram CHANNEL` records its run as (crawlers/run.py)."""
    return f"crawl telegram {channel}"


def recorded_run_name(command: tuple[str, ...]) -> str:
    """What `vigie daemon recorded COMMAND...` records its run as."""
    return " ".join(command)


def es_configured(config: VigieConfig) -> bool:
    return bool(os.environ.get("VIGIE_ES_URL") or config.elasticsearch.url)


def timezone_of(config: VigieConfig) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = config.daemon.timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"daemon.timezone = {name!r}: expected an IANA timezone such as UTC or Europe/Paris"
        ) from None


def crawl_job_id(platform: str, channel: str) -> str:
    return f"{CRAWL_PREFIX}{platform}:{channel}"


def managed(job_id: str) -> bool:
    """Ids this daemon owns in the job store."""
    return job_id.startswith(CRAWL_PREFIX) or job_id in (REMOVAL_CHECKS, ES_REPLAY, ALERTS)


def _every(minutes: float) -> str:
    seconds = minutes * 60
    if seconds < 120:
        return f"every {seconds:g} s"
    if minutes < 120:
        return f"every {minutes:g} min"
    return f"every {minutes / 60:g} h"


@dataclass(frozen=True)
class JobSpec:
    """A job as the configuration wants it."""

    id: str
    name: str
    func: Any
    args: tuple[Any, ...]
    trigger: Any
    schedule: str
    run_at_once: bool  # first registration runs now rather than one interval later
    executor: str
    approved: bool = False  # the crawl of a source approved in the store, not configured


def trigger_key(trigger: Any) -> tuple[str, str, str]:
    """What makes two triggers the same schedule (an interval's start date does not)."""
    from apscheduler.triggers.interval import IntervalTrigger

    if isinstance(trigger, IntervalTrigger):
        return ("interval", repr(trigger.interval_length), str(trigger.timezone))
    return (type(trigger).__name__, str(trigger), str(getattr(trigger, "timezone", "")))


def job_specs(config: VigieConfig, approved: Sequence[str] = ()) -> list[JobSpec]:
    """The jobs the configuration asks for, and a crawl of each approved Telegram channel
    (`approved`, from the store: `vigie sources add`, automatic following) on the default
    interval; a bad schedule is a configuration error."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    tz = timezone_of(config)
    specs: list[JobSpec] = []
    seen: set[str] = set()
    for i, source in enumerate(config.sources):
        job_id = crawl_job_id(source.platform, source.channel)
        if job_id in seen:
            log.warning("sources[%d]: %s is listed twice; its first entry is used", i, job_id)
            continue
        seen.add(job_id)
        if source.cron:
            try:
                trigger: Any = CronTrigger.from_crontab(source.cron, timezone=tz)
            except ValueError as exc:
                raise ConfigurationError(
                    f"sources[{i}].cron = {source.cron!r}: expected a crontab expression "
                    f"(minute hour day-of-month month day-of-week): {exc}"
                ) from None
            schedule, at_once = f"cron '{source.cron}' ({tz})", False
        else:
            minutes = source.every_minutes or config.daemon.crawl_every_minutes
            trigger = IntervalTrigger(seconds=minutes * 60, timezone=tz)
            schedule, at_once = _every(minutes), True
        name = f"crawl {source.platform}:{source.channel}"
        args = (source.platform, source.channel)
        specs.append(JobSpec(job_id, name, crawl_job, args, trigger, schedule, at_once, CRAWL_EXECUTOR))
    minutes = config.daemon.crawl_every_minutes
    for channel in approved:
        job_id = crawl_job_id("telegram", channel)
        if job_id in seen:
            continue
        seen.add(job_id)
        trigger = IntervalTrigger(seconds=minutes * 60, timezone=tz)
        name = f"crawl telegram:{channel} (approved)"
        args = ("telegram", channel)
        specs.append(
            JobSpec(
                job_id, name, crawl_job, args, trigger, _every(minutes), True, CRAWL_EXECUTOR, approved=True
            )
        )
    minutes = config.daemon.removal_check_every_minutes
    trigger = IntervalTrigger(seconds=minutes * 60, timezone=tz)
    specs.append(
        JobSpec(
            REMOVAL_CHECKS,
            "removal checks",
            removal_checks_job,
            (),
            trigger,
            _every(minutes),
            True,
            CRAWL_EXECUTOR,
        )
    )
    if es_configured(config):
        minutes = config.daemon.replay_every_minutes
        trigger = IntervalTrigger(seconds=minutes * 60, timezone=tz)
        name = "Elasticsearch spool replay"
        specs.append(JobSpec(ES_REPLAY, name, es_replay_job, (), trigger, _every(minutes), True, ES_EXECUTOR))
    if alerts_configured(config):
        minutes = config.daemon.alerts_every_minutes
        trigger = IntervalTrigger(seconds=minutes * 60, timezone=tz)
        name = "alert rules and deliveries"
        specs.append(JobSpec(ALERTS, name, alerts_job, (), trigger, _every(minutes), True, ALERTS_EXECUTOR))
    return specs


def alerts_configured(config: VigieConfig) -> bool:
    """Whether alerts go anywhere: a webhook or an email server is configured."""
    from pipeline.alerts.deliver import configured_channels

    return bool(configured_channels(config))


# -- job functions -------------------------------------------------------------------

_ACTIVE: JobRunner | None = None


def activate(runner: JobRunner | None) -> None:
    global _ACTIVE
    _ACTIVE = runner


def active() -> JobRunner:
    if _ACTIVE is None:
        raise RuntimeError("no vigie daemon runs in this process")
    return _ACTIVE


def crawl_job(platform: str, channel: str) -> None:
    active().crawl(platform, channel)


def classify_job(requested_by: str, crawled_at: float) -> None:
    active().classify_after(requested_by, crawled_at)


def removal_checks_job() -> None:
    active().removal_checks()


def es_replay_job() -> None:
    active().es_replay()


def alerts_job() -> None:
    active().alerts()


def approved_sources_job() -> None:
    active().refresh_sources()
