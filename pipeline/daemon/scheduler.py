"""The daemon: one APScheduler BlockingScheduler in the foreground, with one executor per
resource, running each job's steps as `vigie` child processes.

Jobs live in a persistent store (`<data_dir>/jobs.sqlite`) so schedules survive restarts;
a child runs each step because Scrapy's reactor cannot restart in one process and because a
crashing or hanging step must never take the daemon with it:

- `crawl:<platform>:<channel>`, one per source: `vigie crawl telegram CHANNEL`; then it asks
  for `classify`: what `vigie run --no-crawl` does (classify, entities, reposts, index), in
  the classifier worker, a long-lived child that loads the model once;
- `removal-checks`: `vigie referrals check`, when this Vigie has that command;
- `es-replay`: `vigie es replay`, when Elasticsearch is configured;
- `alerts`: `vigie alerts send --wait 0`, when a webhook or an email server is configured,
  every `daemon.alerts_every_minutes` and at once after each classification: the rules
  again (a referred post still online is a matter of time) and the deliveries due. A
  classification only raises its alerts (stores them); this job, in an executor of its own,
  is what sends them, so a receiver that is slow or down never holds up classification.

Sources approved in the store (`vigie sources add`, automatic following after a
classification) get crawl jobs of their own without a restart: the daemon re-reads them
after each classification and every minute (`approved-sources`, a job of its own).

Each step's child records its run in the store's `runs` table; the daemon reads the outcome
from there. One daemon per data directory (a file lock).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.daemon import jobs
from pipeline.daemon.children import Supervisor
from pipeline.daemon.jobs import CLASSIFY, job_specs, timezone_of
from pipeline.daemon.runner import JobRunner
from pipeline.daemon.status import DaemonPaths, StatusBook, read_status_file, utcnow
from pipeline.daemon.view import HEARTBEAT_SECONDS
from vigie.config import VigieConfig
from vigie.errors import VigieError
from vigie.sanitize import for_terminal

log = logging.getLogger("vigie.daemon")


class TerminalSafeFormatter(logging.Formatter):
    """Operators read the log in a terminal: messages quoting a channel's text or a child's
    output lose their control characters."""

    def format(self, record: logging.LogRecord) -> str:
        return for_terminal(super().format(record))


class Daemon:
    def __init__(
        self,
        config: VigieConfig,
        config_path: str | None,
        classify: bool = True,
        verbose: bool = False,
        debug: bool = False,
    ) -> None:
        self.config = config
        self.config_path = str(Path(config_path).resolve()) if config_path else None
        self.classify = classify
        self.verbose = verbose
        self.paths = DaemonPaths.of(config)
        self.tz = timezone_of(config)
        self.specs = job_specs(config)
        self.approved: list[str] = []  # approved Telegram channels with crawl jobs
        self._sync_lock = threading.RLock()  # the job store is brought in line by one thread at a time
        self.stopping = threading.Event()
        self.hurry = threading.Event()  # a second signal: no grace for children
        self.halt = threading.Event()  # stops the heartbeat
        self.started = threading.Event()
        self.startup_error: BaseException | None = None
        self.shutdown_thread: threading.Thread | None = None
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **({"VIGIE_DEBUG": "1"} if debug else {})}
        self.scheduler: Any = None
        self.status: StatusBook | None = None
        self.runner: JobRunner | None = None
        self._lock: Any = None
        self._log_handler: logging.Handler | None = None

    # -- lifecycle -----------------------------------------------------------------

    def run(self, announce: Callable[[str], None] = print) -> int:
        """Run until SIGTERM or SIGINT; 0 after a clean shutdown."""
        if jobs._ACTIVE is not None:
            raise VigieError("a vigie daemon already runs in this process")
        self.paths.data_dir.mkdir(parents=True, exist_ok=True)
        (self.paths.logs / "jobs").mkdir(parents=True, exist_ok=True)
        self._take_lock()
        self._setup_logging()
        previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
        heartbeat = threading.Thread(target=self._heartbeat, name="vigie-heartbeat", daemon=True)
        try:
            self.status = StatusBook(self.paths.status)
            supervisor = Supervisor(self.status, self.env, self.stopping, self.hurry)
            supervisor.reap_orphans()
            self.runner = JobRunner(
                self.config,
                self.config_path,
                self.status,
                supervisor,
                self.stopping,
                self.classify,
                self.verbose,
            )
            self._prepare_store()
            self.approved = self._read_approved()
            self.specs = job_specs(self.config, self.approved)
            self.runner.set_approved(self.approved)
            self.runner.on_sources = self._refresh_sources
            with self.status.change() as data:
                data["daemon"] = {
                    "pid": os.getpid(),
                    "started_at": utcnow(),
                    "heartbeat_at": utcnow(),
                    "stopped_at": None,
                    "jobs_synced_at": None,
                    "config_path": self.config_path,
                    "data_dir": str(self.paths.data_dir),
                    "jobs_store": str(self.paths.jobs),
                    "log": str(self.paths.daemon_log),
                    "classify": self.classify,
                    "timezone": str(self.tz),
                }
                data["children"] = {}
            self.scheduler = self.runner.scheduler = self._make_scheduler()
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
            jobs.activate(self.runner)
            heartbeat.start()
            log.info("daemon %d starting: %d jobs, store %s", os.getpid(), len(self.specs), self.paths.jobs)
            announce(
                f"vigie daemon (pid {os.getpid()}): {len(self.specs)} jobs in {self.paths.jobs}; "
                f"logs in {self.paths.logs}; stop with SIGTERM or Ctrl-C"
            )
            self.scheduler.start()  # blocks until shutdown
            if self.shutdown_thread is not None:
                self.shutdown_thread.join()
            if self.startup_error is not None:
                raise VigieError(f"daemon: cannot schedule the jobs: {self.startup_error}")
            log.info("daemon %d stopped", os.getpid())
            return 0
        finally:
            jobs.activate(None)
            self.halt.set()
            if self.runner is not None:
                self.runner.close()
            signal.signal(signal.SIGTERM, previous[0])
            signal.signal(signal.SIGINT, previous[1])
            if self.status is not None:
                with self.status.change() as data:
                    if isinstance(data.get("daemon"), dict):
                        data["daemon"]["stopped_at"] = utcnow()
                    data["children"] = {}
            self._release_lock()
            if self._log_handler is not None:
                for name in ("vigie.daemon", "apscheduler"):
                    logging.getLogger(name).removeHandler(self._log_handler)
                self._log_handler.close()

    def _take_lock(self) -> None:
        from filelock import FileLock, Timeout

        lock = FileLock(self.paths.lock, timeout=0, thread_local=False)
        try:
            lock.acquire()
        except Timeout:
            holder = (read_status_file(self.paths.status).get("daemon") or {}).get("pid") or "?"
            raise VigieError(
                f"another vigie daemon (pid {holder}) is running on {self.paths.data_dir}; "
                "stop it first (one daemon per data directory)"
            ) from None
        self._lock = lock

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _setup_logging(self) -> None:
        handler = logging.handlers.RotatingFileHandler(
            self.paths.daemon_log, maxBytes=10_000_000, backupCount=5, encoding="utf-8"
        )
        handler.setLevel(logging.INFO)
        handler.setFormatter(TerminalSafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        for name in ("vigie.daemon", "apscheduler"):
            logger = logging.getLogger(name)
            logger.setLevel(logging.INFO)
            logger.addHandler(handler)
        self._log_handler = handler

    def _prepare_store(self) -> None:
        """Create or migrate the store here, once: children started together would race to."""
        from vigie.store import Store

        with Store(self.config.store_url()):
            pass

    def _read_approved(self) -> list[str]:
        """The approved Telegram channels that are not configured ones, from the store."""
        from pipeline.discovery import telegram_channels
        from vigie.store import Store

        configured = {s.channel for s in self.config.sources if s.platform == "telegram"}
        with Store(self.config.store_url()) as store:
            return [c for c in telegram_channels(self.config, store) if c not in configured]

    def _refresh_sources(self) -> None:
        """Crawl jobs for newly approved sources, none for dismissed ones. A store that
        cannot be read now is tried again at the next refresh."""
        from vigie.store import is_database_error, one_line

        with self._sync_lock:
            try:
                approved = self._read_approved()
            except Exception as exc:
                if not (isinstance(exc, VigieError) or is_database_error(exc)):
                    raise
                log.warning("cannot read the approved sources (tried again later): %s", one_line(exc))
                return
            if approved == self.approved:
                return
            assert self.runner is not None
            self.approved = approved
            self.specs = job_specs(self.config, approved)
            self.runner.set_approved(approved)
            self._sync_jobs()

    def _make_scheduler(self) -> Any:
        from apscheduler.events import (
            EVENT_JOB_ERROR,
            EVENT_JOB_MAX_INSTANCES,
            EVENT_JOB_MISSED,
            EVENT_JOB_SUBMITTED,
            EVENT_SCHEDULER_STARTED,
        )
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.memory import MemoryJobStore
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.blocking import BlockingScheduler

        scheduler = BlockingScheduler(
            jobstores={
                jobs.PERSISTENT_STORE: SQLAlchemyJobStore(url=f"sqlite:///{self.paths.jobs}"),
                jobs.TRANSIENT_STORE: MemoryJobStore(),
            },
            executors={name: ThreadPoolExecutor(n) for name, n in jobs.EXECUTOR_WORKERS.items()},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": self.config.daemon.misfire_grace_seconds,
            },
            timezone=self.tz,
        )
        scheduler.add_listener(self._on_started, EVENT_SCHEDULER_STARTED)
        scheduler.add_listener(self._on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        # Next run times move when jobs are submitted (or skipped), in the scheduler's thread.
        scheduler.add_listener(
            lambda event: self._save_schedule(), EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES
        )
        return scheduler

    def _on_started(self, event: Any) -> None:
        """The job store is open: bring it in line with the configuration."""
        try:
            self._sync_jobs()
            self._schedule_refresh()
        except Exception as exc:
            log.exception("cannot synchronise the job store %s", self.paths.jobs)
            self.startup_error = exc
            self.scheduler.shutdown(wait=False)
        finally:
            self.started.set()

    def _schedule_refresh(self) -> None:
        from apscheduler.triggers.interval import IntervalTrigger

        self.scheduler.add_job(
            jobs.approved_sources_job,
            IntervalTrigger(seconds=jobs.approved_every_seconds(self.config), timezone=self.tz),
            id=jobs.APPROVED_SOURCES,
            name="approved sources",
            jobstore=jobs.TRANSIENT_STORE,
            executor=jobs.CONTROL_EXECUTOR,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )

    def _sync_jobs(self) -> None:
        with self._sync_lock:
            self._sync_jobs_locked()

    def _sync_jobs_locked(self) -> None:
        from apscheduler.util import undefined

        assert self.status is not None
        existing = {job.id: job for job in self.scheduler.get_jobs(jobstore=jobs.PERSISTENT_STORE)}
        now = datetime.now(self.tz)
        for spec in self.specs:
            old = existing.pop(spec.id, None)
            trigger, next_run = spec.trigger, (now if spec.run_at_once else undefined)
            if old is not None:
                if trigger_unchanged(old, spec.trigger):
                    trigger, next_run = old.trigger, old.next_run_time  # keep its place in time
                else:
                    next_run = undefined
                    log.info("job %s: schedule changed to %s", spec.id, spec.schedule)
            else:
                log.info(
                    "job %s: added%s, %s",
                    spec.id,
                    " (approved source)" if spec.approved else "",
                    spec.schedule,
                )
            self.scheduler.add_job(
                spec.func,
                trigger,
                args=spec.args,
                id=spec.id,
                name=spec.name,
                jobstore=jobs.PERSISTENT_STORE,
                executor=spec.executor,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=self.config.daemon.misfire_grace_seconds,
                next_run_time=next_run,
            )
        for job_id in existing:
            if jobs.managed(job_id):
                self.scheduler.remove_job(job_id, jobstore=jobs.PERSISTENT_STORE)
                log.info("job %s: removed (no longer configured or approved)", job_id)
            else:
                log.warning("job %s in %s is not one of Vigie's; left alone", job_id, self.paths.jobs)
        described = {spec.id: (spec.name, spec.schedule) for spec in self.specs}
        if self.classify:
            described[CLASSIFY] = ("classify and index", "after each crawl")
        with self.status.change() as data:
            data["jobs"] = {k: v for k, v in data["jobs"].items() if k in described}
            for job_id, (name, schedule) in described.items():
                entry = self.status.job(job_id)
                entry.update(name=name, schedule=schedule, log=str(self.paths.job_log(job_id)))
                entry.pop("running_since", None)
        self._save_schedule()
        with self.status.change() as data:
            data["daemon"]["jobs_synced_at"] = utcnow()  # the job store matches the configuration

    def _save_schedule(self) -> None:
        """What is scheduled, from the scheduler, for `vigie daemon status`."""
        if self.status is None or self.scheduler is None:
            return
        scheduled: dict[str, str | None] = {
            job.id: job.next_run_time.isoformat() if job.next_run_time else None
            for job in self.scheduler.get_jobs(jobstore=jobs.PERSISTENT_STORE)
        }
        if self.classify:
            scheduled[CLASSIFY] = None  # runs when a crawl asks for it
        with self.status.change() as data:
            data["scheduled"] = scheduled

    def _on_job_event(self, event: Any) -> None:
        from apscheduler.events import EVENT_JOB_ERROR

        if event.code == EVENT_JOB_ERROR:  # recorded as failed by `_job`; the daemon goes on
            log.error("job %s raised %s: %s", event.job_id, type(event.exception).__name__, event.exception)
            return
        log.warning(
            "job %s missed its run at %s (more than %d s late); it runs at its next time",
            event.job_id,
            event.scheduled_run_time,
            self.config.daemon.misfire_grace_seconds,
        )
        if self.status is not None:
            with self.status.change():
                self.status.job(event.job_id)["last_missed_at"] = utcnow()

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.stopping.is_set():
            log.warning("%s again: stopping children without grace", name)
            self.hurry.set()
            return
        log.info("%s: shutting down", name)
        self.stopping.set()
        # Not from the handler itself: it may have interrupted code holding scheduler locks.
        self.shutdown_thread = threading.Thread(target=self._shutdown, name="vigie-shutdown", daemon=True)
        self.shutdown_thread.start()

    def _shutdown(self) -> None:
        self.started.wait()  # or the scheduler has stopped on its own already
        with contextlib.suppress(Exception):  # SchedulerNotRunningError
            self.scheduler.pause()
        # Running jobs see `stopping` and stop their children. Wait for them before the
        # scheduler's shutdown, which holds its job store lock while it waits for executors:
        # a job finishing then (asking for a classification) would wait for that lock forever.
        if self.runner is not None:
            self.runner.wait_idle()
        with contextlib.suppress(Exception):
            self.scheduler.shutdown(wait=True)  # jobs still queued start, see `stopping` and return
        if self.runner is not None:
            self.runner.close()

    def _heartbeat(self) -> None:
        while not self.halt.wait(HEARTBEAT_SECONDS):
            if self.status is not None:
                with self.status.change() as data:
                    data["daemon"]["heartbeat_at"] = utcnow()


def trigger_unchanged(job: Any, trigger: Any) -> bool:
    return jobs.trigger_key(job.trigger) == jobs.trigger_key(trigger) and job.next_run_time is not None
