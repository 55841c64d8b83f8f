"""`vigie daemon`: crawl, classify, check removals and replay the spool on a schedule.

One APScheduler BlockingScheduler in the foreground. Jobs live in a persistent store
(`<data_dir>/jobs.sqlite`) so schedules survive restarts; each job runs the `vigie` command
in a child process, because Scrapy's reactor cannot restart in one process and because a
crashing or hanging step must never take the daemon with it:

- `crawl:<platform>:<channel>`, one per source: `vigie crawl telegram CHANNEL`, then
  `vigie run --no-crawl` (classify, entities, reposts, index);
- `removal-checks`: `vigie referrals check`, when this Vigie has that command;
- `es-replay`: `vigie es replay`, when Elasticsearch is configured.

Crawls and removal checks run one at a time, in the order they came due (one request at a
time per domain holds across sources too), and so do classifications. A child runs in its own
process group: a timeout or a shutdown sends it SIGTERM, then SIGKILL after a grace period. On
Linux a child also dies with the daemon (PR_SET_PDEATHSIG), so a daemon killed with SIGKILL
leaves no crawl behind to race the next one; children recorded by a daemon that died anyway
are killed when the next one starts.

What the daemon is doing goes to `<data_dir>/daemon-status.json` (written atomically): pid,
heartbeat, each job's last outcome and the children running. `vigie daemon status` reads it
together with the job store (next run times) and the store's `sources` table.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import logging.handlers
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import IO, Any

from vigie.config import SourceConfig, VigieConfig
from vigie.errors import ConfigurationError, VigieError
from vigie.sanitize import for_terminal

log = logging.getLogger("vigie.daemon")

JOBS_FILE = "jobs.sqlite"
JOBS_TABLE = "apscheduler_jobs"
STATUS_FILE = "daemon-status.json"
LOCK_FILE = "daemon.lock"
LOG_DIR = "logs"
CRAWL_PREFIX = "crawl:"
REMOVAL_CHECKS = "removal-checks"
ES_REPLAY = "es-replay"
MANAGED = (CRAWL_PREFIX, REMOVAL_CHECKS, ES_REPLAY)  # ids (prefixes) this daemon owns in the job store

HEARTBEAT_SECONDS = 5.0  # how often the status file's heartbeat is refreshed
STOP_GRACE_SECONDS = 10.0  # SIGTERM to SIGKILL, for a child being stopped
POLL_SECONDS = 0.25
JOB_LOG_MAX_BYTES = 5_000_000
OUTCOMES = ("ok", "failed", "timeout", "interrupted", "skipped")


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _parse_time(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


# -- paths and configuration ----------------------------------------------------------


class TerminalSafeFormatter(logging.Formatter):
    """Operators read the log in a terminal: messages quoting a channel's text or a child's
    output lose their control characters."""

    def format(self, record: logging.LogRecord) -> str:
        return for_terminal(super().format(record))


@dataclass(frozen=True)
class DaemonPaths:
    data_dir: Path

    @classmethod
    def of(cls, config: VigieConfig) -> DaemonPaths:
        return cls(config.data_path())

    @property
    def jobs(self) -> Path:
        return self.data_dir / JOBS_FILE

    @property
    def status(self) -> Path:
        return self.data_dir / STATUS_FILE

    @property
    def lock(self) -> Path:
        return self.data_dir / LOCK_FILE

    @property
    def logs(self) -> Path:
        return self.data_dir / LOG_DIR

    @property
    def daemon_log(self) -> Path:
        return self.logs / "daemon.log"

    def job_log(self, job_id: str) -> Path:
        return self.logs / "jobs" / (job_id.replace(":", "_").replace("/", "_") + ".log")


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
    func: Callable[..., Any]
    args: tuple[Any, ...]
    trigger: Any
    schedule: str
    run_at_once: bool  # first registration runs now rather than one interval later


def trigger_key(trigger: Any) -> tuple[str, str, str]:
    """What makes two triggers the same schedule (an interval's start date does not)."""
    from apscheduler.triggers.interval import IntervalTrigger

    if isinstance(trigger, IntervalTrigger):
        return ("interval", repr(trigger.interval_length), str(trigger.timezone))
    return (type(trigger).__name__, str(trigger), str(getattr(trigger, "timezone", "")))


def job_specs(config: VigieConfig) -> list[JobSpec]:
    """The jobs the configuration asks for; a bad schedule is a configuration error."""
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
        specs.append(
            JobSpec(
                job_id,
                f"crawl {source.platform}:{source.channel}",
                crawl_job,
                (source.platform, source.channel),
                trigger,
                schedule,
                at_once,
            )
        )
    minutes = config.daemon.removal_check_every_minutes
    specs.append(
        JobSpec(
            REMOVAL_CHECKS,
            "removal checks",
            removal_checks_job,
            (),
            IntervalTrigger(seconds=minutes * 60, timezone=tz),
            _every(minutes),
            True,
        )
    )
    if es_configured(config):
        minutes = config.daemon.replay_every_minutes
        specs.append(
            JobSpec(
                ES_REPLAY,
                "Elasticsearch spool replay",
                es_replay_job,
                (),
                IntervalTrigger(seconds=minutes * 60, timezone=tz),
                _every(minutes),
                True,
            )
        )
    return specs


def managed(job_id: str) -> bool:
    return job_id.startswith(CRAWL_PREFIX) or job_id in (REMOVAL_CHECKS, ES_REPLAY)


# -- the status file -------------------------------------------------------------------


class StatusBook:
    """The daemon's status, kept in memory and rewritten atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.data: dict[str, Any] = read_status_file(path)
        self.data.setdefault("jobs", {})
        self.data.setdefault("children", {})

    def save(self) -> None:
        """Best effort: a full disk must not stop the jobs, only what status shows."""
        with self.lock:
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            try:
                tmp.write_text(json.dumps(self.data, ensure_ascii=False, indent=1), encoding="utf-8")
                os.replace(tmp, self.path)
            except OSError as exc:
                log.warning("cannot write %s: %s", self.path, exc)

    @contextlib.contextmanager
    def change(self) -> Iterator[dict[str, Any]]:
        with self.lock:
            yield self.data
            self.save()

    def job(self, job_id: str) -> dict[str, Any]:
        jobs: dict[str, Any] = self.data["jobs"]
        return jobs.setdefault(job_id, {"runs": 0, "failures": 0})


def read_status_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# -- children --------------------------------------------------------------------------


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec function making the child get SIGKILL when the daemon dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL))
        if os.getppid() != parent:  # the daemon died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def process_alive(pid: int) -> bool:
    """True when `pid` runs and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


class FairLock:
    """A lock taken in the order it was asked for, so no source starves behind another;
    a waiter gives up when `give_up` is set."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: deque[object] = deque()
        self._held = False

    def acquire(self, give_up: threading.Event) -> bool:
        me = object()
        with self._cond:
            self._waiting.append(me)
            while self._held or self._waiting[0] is not me:
                if give_up.is_set():
                    self._waiting.remove(me)
                    self._cond.notify_all()
                    return False
                self._cond.wait(POLL_SECONDS)
            self._waiting.popleft()
            self._held = True
            return True

    def release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()


@dataclass
class Child:
    """A running `vigie` child process in its own process group."""

    job_id: str
    step: str
    argv: list[str]
    proc: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    term_at: float | None = None
    killed: bool = False

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def terminate(self) -> None:
        """SIGTERM once (Scrapy stops gracefully on the first, abruptly on the second)."""
        if self.term_at is None:
            self.term_at = time.monotonic()
            self._signal(signal.SIGTERM)

    def kill(self) -> None:
        if not self.killed:
            self.killed = True
            self._signal(signal.SIGKILL)


@dataclass
class StepResult:
    step: str
    outcome: str
    exit_code: int | None = None
    duration_s: float = 0.0
    error: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


_BORDER = set("─━│┃┏┓┗┛┡┩└┘├┤┬┴┼╇╈┳┻╋═║╭╮╰╯+-|=· ")


def error_line(output: str) -> str | None:
    """The most telling line of a failed command's output."""
    lines = [line.strip() for line in output.splitlines()]
    lines = [line for line in lines if line and not set(line) <= _BORDER and not line.startswith("===")]
    for line in reversed(lines):
        if line.startswith("vigie:") or "Error" in line or "error" in line:
            return line[:500]
    return lines[-1][:500] if lines else None


# -- the daemon ------------------------------------------------------------------------

_ACTIVE: Daemon | None = None


def _active() -> Daemon:
    if _ACTIVE is None:
        raise RuntimeError("no vigie daemon runs in this process")
    return _ACTIVE


# Job functions: module-level so the persistent job store holds references, not pickles of code.


def crawl_job(platform: str, channel: str) -> None:
    _active().crawl(platform, channel)


def removal_checks_job() -> None:
    _active().removal_checks()


def es_replay_job() -> None:
    _active().es_replay()


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
        self.timeout = float(config.daemon.job_timeout_seconds)
        self.sources: dict[str, SourceConfig] = {}
        for source in config.sources:  # a source listed twice: its first entry, as in job_specs
            self.sources.setdefault(crawl_job_id(source.platform, source.channel), source)
        self.stopping = threading.Event()
        self.hurry = threading.Event()  # a second signal: no grace for children
        self.halt = threading.Event()  # stops the heartbeat
        self.started = threading.Event()
        self.crawl_lock = FairLock()  # one crawl (or removal check) at a time: polite to the platform
        self.classify_lock = FairLock()
        self.last_classify_ok: float | None = None  # monotonic start of the last good classification
        self.startup_error: BaseException | None = None
        self.shutdown_thread: threading.Thread | None = None
        self.preexec = _parent_death_signal()
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **({"VIGIE_DEBUG": "1"} if debug else {})}
        self.scheduler: Any = None
        self.status: StatusBook | None = None
        self._lock_fd: IO[str] | None = None
        self._log_handler: logging.Handler | None = None

    # -- lifecycle -----------------------------------------------------------------

    def run(self, announce: Callable[[str], None] = print) -> int:
        """Run until SIGTERM or SIGINT; 0 after a clean shutdown."""
        global _ACTIVE
        if _ACTIVE is not None:
            raise VigieError("a vigie daemon already runs in this process")
        self.paths.data_dir.mkdir(parents=True, exist_ok=True)
        (self.paths.logs / "jobs").mkdir(parents=True, exist_ok=True)
        self._take_lock()
        self._setup_logging()
        previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
        heartbeat = threading.Thread(target=self._heartbeat, name="vigie-heartbeat", daemon=True)
        try:
            self.status = StatusBook(self.paths.status)
            self._reap_orphans()
            self._prepare_store()
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
            self.scheduler = self._make_scheduler()
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
            _ACTIVE = self
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
            _ACTIVE = None
            self.halt.set()
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
        import fcntl

        fd = open(self.paths.lock, "a+", encoding="utf-8")  # noqa: SIM115 - held until shutdown
        try:
            fcntl.flock(fd.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fd.seek(0)
            holder = fd.read().strip() or "?"
            fd.close()
            raise VigieError(
                f"another vigie daemon (pid {holder}) is running on {self.paths.data_dir}; "
                "stop it first (one daemon per data directory)"
            ) from None
        fd.seek(0)
        fd.truncate()
        fd.write(f"{os.getpid()}\n")
        fd.flush()
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            self._lock_fd.close()  # closing releases the flock
            self._lock_fd = None

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

    def _reap_orphans(self) -> None:
        """Kill children a previous daemon left running (it died without stopping them)."""
        assert self.status is not None
        for job_id, info in list(self.status.data.get("children", {}).items()):
            pid, argv = info.get("pid"), info.get("argv")
            if not isinstance(pid, int) or not process_alive(pid) or _cmdline(pid) != argv:
                continue
            log.warning("killing %s (pid %d) left running by a previous daemon", job_id, pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(info.get("pgid", pid)), signal.SIGKILL)
            deadline = time.monotonic() + 5
            while process_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)

    def _prepare_store(self) -> None:
        """Create or migrate the store here, once: children started together would race to."""
        from vigie.store import Store

        with Store(self.config.store_path()):
            pass

    def _make_scheduler(self) -> Any:
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, EVENT_SCHEDULER_STARTED
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.blocking import BlockingScheduler

        scheduler = BlockingScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{self.paths.jobs}")},
            # Each job has at most one instance running: one thread per job never starves one.
            executors={"default": ThreadPoolExecutor(max_workers=max(2, min(64, len(self.specs))))},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": self.config.daemon.misfire_grace_seconds,
            },
            timezone=self.tz,
        )
        scheduler.add_listener(self._on_started, EVENT_SCHEDULER_STARTED)
        scheduler.add_listener(self._on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        return scheduler

    def _on_started(self, event: Any) -> None:
        """The job store is open: bring it in line with the configuration."""
        try:
            self._sync_jobs()
        except Exception as exc:
            log.exception("cannot synchronise the job store %s", self.paths.jobs)
            self.startup_error = exc
            self.scheduler.shutdown(wait=False)
        finally:
            self.started.set()

    def _sync_jobs(self) -> None:
        from apscheduler.util import undefined

        assert self.status is not None
        existing = {job.id: job for job in self.scheduler.get_jobs()}
        now = datetime.now(self.tz)
        for spec in self.specs:
            old = existing.pop(spec.id, None)
            trigger, next_run = spec.trigger, (now if spec.run_at_once else undefined)
            if old is not None:
                if trigger_key(old.trigger) == trigger_key(spec.trigger) and old.next_run_time is not None:
                    trigger, next_run = old.trigger, old.next_run_time  # keep its place in time
                else:
                    next_run = undefined
                    log.info("job %s: schedule changed to %s", spec.id, spec.schedule)
            else:
                log.info("job %s: added, %s", spec.id, spec.schedule)
            self.scheduler.add_job(
                spec.func,
                trigger,
                args=spec.args,
                id=spec.id,
                name=spec.name,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=self.config.daemon.misfire_grace_seconds,
                next_run_time=next_run,
            )
        for job_id in existing:
            if managed(job_id):
                self.scheduler.remove_job(job_id)
                log.info("job %s: removed (no longer in the configuration)", job_id)
            else:
                log.warning("job %s in %s is not one of Vigie's; left alone", job_id, self.paths.jobs)
        with self.status.change() as data:
            wanted = {spec.id: spec for spec in self.specs}
            data["jobs"] = {k: v for k, v in data["jobs"].items() if k in wanted}
            for spec in self.specs:
                entry = self.status.job(spec.id)
                entry.update(name=spec.name, schedule=spec.schedule, log=str(self.paths.job_log(spec.id)))
                entry.pop("running_since", None)
            data["daemon"]["jobs_synced_at"] = utcnow()  # the job store matches the configuration

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
            self.scheduler.shutdown(wait=True)  # jobs see `stopping` and stop their children

    def _heartbeat(self) -> None:
        while not self.halt.wait(HEARTBEAT_SECONDS):
            if self.status is not None:
                with self.status.change() as data:
                    data["daemon"]["heartbeat_at"] = utcnow()

    # -- running children ------------------------------------------------------------

    def _argv(self, *args: str) -> list[str]:
        argv = [sys.executable, "-m", "vigie"]
        if self.config_path:
            argv += ["--config", self.config_path]
        if self.verbose:
            argv.append("-v")
        return [*argv, *args]

    def run_child(self, job_id: str, step: str, args: list[str], timeout: float | None = None) -> StepResult:
        """Run `vigie ARGS` for a job's step; its output is appended to the job's log."""
        assert self.status is not None
        timeout = self.timeout if timeout is None else timeout
        argv = self._argv(*args)
        log_path = self.paths.job_log(job_id)
        if log_path.exists() and log_path.stat().st_size > JOB_LOG_MAX_BYTES:
            os.replace(log_path, log_path.with_suffix(".log.1"))
        started_at = utcnow()
        with open(log_path, "ab") as out:
            out.write(f"\n=== {started_at} {job_id} {step}: {shlex.join(argv)}\n".encode())
            out.flush()
            offset = out.tell()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                close_fds=True,
                preexec_fn=self.preexec,  # one prctl call: safe enough after fork
            )
        child = Child(job_id, step, argv, proc)
        with self.status.change() as data:
            data["children"][job_id] = {
                "pid": proc.pid,
                "pgid": proc.pid,
                "step": step,
                "started_at": started_at,
                "argv": argv,
            }
        outcome = None
        try:
            while True:
                try:
                    code = proc.wait(timeout=POLL_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                if child.term_at is None:
                    if now - child.started >= timeout:
                        outcome = "timeout"
                        log.warning("%s %s: timed out after %g s, stopping it", job_id, step, timeout)
                        child.terminate()
                    elif self.stopping.is_set():
                        outcome = "interrupted"
                        child.terminate()
                elif self.hurry.is_set() or now - child.term_at >= STOP_GRACE_SECONDS:
                    child.kill()
        finally:
            with self.status.change() as data:
                data["children"].pop(job_id, None)
        duration = round(time.monotonic() - child.started, 3)
        if outcome is None:
            outcome = "ok" if code == 0 else "failed"
        with open(log_path, "ab") as out:
            out.write(f"=== exit {code} after {duration:.1f} s: {outcome}\n".encode())
        result = StepResult(step, outcome, code, duration)
        if outcome != "ok":
            result.error = self._error(job_id, log_path, offset, code, outcome, timeout, started_at)
        return result

    def _error(
        self, job_id: str, log_path: Path, offset: int, code: int, outcome: str, timeout: float, since: str
    ) -> str:
        if outcome == "timeout":
            return f"timed out after {timeout:g} s"
        if outcome == "interrupted":
            return "stopped by the daemon's shutdown"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
            return f"killed by signal {-code}"
        if job_id.startswith(CRAWL_PREFIX):
            _, platform, channel = job_id.split(":", 2)
            reason = self._source_error(platform, channel, since)
            if reason:
                return f"@{channel}: {reason}"
        try:
            with open(log_path, "rb") as f:
                f.seek(max(offset, f.seek(0, os.SEEK_END) - 65_536))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            text = ""
        return error_line(text) or f"exit status {code}"

    def _source_error(self, platform: str, channel: str, since: str) -> str | None:
        path = self.config.store_path()
        if not path.exists():
            return None
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
            try:
                row = db.execute(
                    "SELECT last_error, last_attempt_at FROM sources WHERE platform = ? AND channel = ?",
                    (platform, channel),
                ).fetchone()
            finally:
                db.close()
        except sqlite3.Error:
            return None
        if row and row[0] and (row[1] or "") >= since:
            return str(row[0])
        return None

    @contextlib.contextmanager
    def _holding(self, lock: FairLock) -> Iterator[bool]:
        """Hold `lock`, giving up (False) if the daemon starts stopping meanwhile."""
        if not lock.acquire(self.stopping):
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    # -- jobs ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _job(self, job_id: str) -> Iterator[list[StepResult]]:
        """Mark the job running, collect its steps' results and record its outcome."""
        assert self.status is not None
        started, started_at = time.monotonic(), utcnow()
        with self.status.change():
            self.status.job(job_id)["running_since"] = started_at
        steps: list[StepResult] = []
        try:
            yield steps
        except Exception as exc:
            steps.append(StepResult("daemon", "failed", error=f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            self._record(job_id, started, started_at, steps)

    def _record(self, job_id: str, started: float, started_at: str, steps: list[StepResult]) -> None:
        assert self.status is not None
        if not steps:  # stopped before anything ran: the last outcome stands
            with self.status.change():
                self.status.job(job_id).pop("running_since", None)
            return
        if any(s.outcome == "timeout" for s in steps):
            outcome = "timeout"
        elif any(s.outcome == "failed" for s in steps):
            outcome = "failed"
        elif any(s.outcome == "interrupted" for s in steps):
            outcome = "interrupted"
        elif all(s.outcome == "skipped" for s in steps):
            outcome = "skipped"
        else:
            outcome = "ok"
        bad = next((s for s in steps if s.outcome in ("timeout", "failed", "interrupted")), None)
        error = f"{bad.step}: {bad.error}" if bad else None
        notes = "; ".join(s.note for s in steps if s.note) or None
        duration = round(time.monotonic() - started, 3)
        finished_at = utcnow()
        with self.status.change():
            entry = self.status.job(job_id)
            entry.pop("running_since", None)
            entry.update(
                last_outcome=outcome,
                last_started_at=started_at,
                last_finished_at=finished_at,
                last_duration_s=duration,
                last_error=error,
                last_note=notes,
                last_steps=[s.to_json() for s in steps],
                runs=int(entry.get("runs", 0)) + 1,
            )
            if outcome in ("failed", "timeout"):
                entry["failures"] = int(entry.get("failures", 0)) + 1
                entry["last_failure"] = {"at": finished_at, "outcome": outcome, "error": error}
        if outcome in ("failed", "timeout"):
            log.warning(
                "job %s %s after %.1f s: %s (output in %s)",
                job_id,
                outcome,
                duration,
                error,
                self.paths.job_log(job_id),
            )
        else:
            log.info("job %s %s after %.1f s%s", job_id, outcome, duration, f" ({notes})" if notes else "")

    def crawl(self, platform: str, channel: str) -> None:
        job_id = crawl_job_id(platform, channel)
        source = self.sources.get(job_id)
        if source is None or self.stopping.is_set():
            return
        with self._job(job_id) as steps:
            with self._holding(self.crawl_lock) as held:
                if not held:
                    return
                args = ["crawl", platform, channel]
                if source.max_pages:
                    args += ["--max-pages", str(source.max_pages)]
                crawl = self.run_child(job_id, "crawl", args)
                steps.append(crawl)
            crawled = time.monotonic()
            # Classify even after a failed crawl: what a partial walk stored needs it too.
            if not self.classify or crawl.outcome not in ("ok", "failed") or self.stopping.is_set():
                return
            with self._holding(self.classify_lock) as held:
                if not held:
                    return
                if self.last_classify_ok is not None and self.last_classify_ok >= crawled:
                    note = "classified by a run that started after this crawl"
                    steps.append(StepResult("classify", "ok", note=note))
                    return
                began = time.monotonic()
                result = self.run_child(job_id, "classify", ["run", "--no-crawl"])
                if result.outcome == "ok":
                    self.last_classify_ok = began
                steps.append(result)

    def removal_checks(self) -> None:
        if self.stopping.is_set():
            return
        with self._job(REMOVAL_CHECKS) as steps:
            probe = self.run_child(REMOVAL_CHECKS, "probe", ["referrals", "check", "--help"], timeout=120)
            if probe.outcome == "ok":
                with self._holding(self.crawl_lock) as held:  # it fetches the platform's pages too
                    if held:
                        steps.append(self.run_child(REMOVAL_CHECKS, "check", ["referrals", "check"]))
            elif probe.outcome == "failed" and probe.exit_code == 2:  # click: no such command
                note = "`vigie referrals check` is not available in this Vigie"
                log.info("removal checks skipped: %s", note)
                steps.append(StepResult("check", "skipped", note=note))
            else:
                steps.append(probe)

    def es_replay(self) -> None:
        if self.stopping.is_set():
            return
        with self._job(ES_REPLAY) as steps:
            if es_configured(self.config):
                steps.append(self.run_child(ES_REPLAY, "replay", ["es", "replay"]))
            else:
                steps.append(StepResult("replay", "skipped", note="no Elasticsearch URL configured"))


# -- status ----------------------------------------------------------------------------


def _stored_jobs(path: Path) -> dict[str, float | None] | None:
    """Job id -> next run (epoch seconds) from the job store, without unpickling anything."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            rows = db.execute(f"SELECT id, next_run_time FROM {JOBS_TABLE}").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return {str(job_id): (float(t) if t is not None else None) for job_id, t in rows}


def _store_sources(config: VigieConfig) -> list[dict[str, Any]]:
    path = config.store_path()
    rows: list[dict[str, Any]] = []
    if path.exists():
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
            db.row_factory = sqlite3.Row
            try:
                rows = [
                    dict(r)
                    for r in db.execute(
                        "SELECT platform, channel, cursor, pending_before, last_attempt_at, last_success_at,"
                        " last_error FROM sources ORDER BY platform, channel"
                    )
                ]
            finally:
                db.close()
        except sqlite3.Error:
            rows = []
    configured = {(s.platform, s.channel) for s in config.sources}
    known = {(r["platform"], r["channel"]) for r in rows}
    for platform, channel in sorted(configured - known):
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
    return rows


def read_status(config: VigieConfig) -> dict[str, Any]:
    """What `vigie daemon status` shows: the daemon, its jobs, the sources."""
    paths = DaemonPaths.of(config)
    raw = read_status_file(paths.status)
    try:
        tz: tzinfo = timezone_of(config)
    except ConfigurationError:
        tz = UTC
    daemon = raw.get("daemon") if isinstance(raw.get("daemon"), dict) else None
    if daemon:
        daemon = dict(daemon)
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
        daemon["children"] = [{"job": k, **v} for k, v in sorted(raw.get("children", {}).items())]
    stored = _stored_jobs(paths.jobs)
    infos = raw.get("jobs", {}) if isinstance(raw.get("jobs"), dict) else {}
    jobs = []
    for job_id in sorted(stored or {}):
        next_run = (stored or {}).get(job_id)
        info = infos.get(job_id, {})
        jobs.append(
            {
                "id": job_id,
                "name": info.get("name"),
                "schedule": info.get("schedule"),
                "next_run_time": (
                    datetime.fromtimestamp(next_run, tz).isoformat(timespec="seconds")
                    if next_run is not None
                    else None
                ),
                "running_since": info.get("running_since"),
                "last_outcome": info.get("last_outcome"),
                "last_started_at": info.get("last_started_at"),
                "last_finished_at": info.get("last_finished_at"),
                "last_duration_s": info.get("last_duration_s"),
                "last_error": info.get("last_error"),
                "last_note": info.get("last_note"),
                "last_failure": info.get("last_failure"),
                "last_missed_at": info.get("last_missed_at"),
                "runs": info.get("runs", 0),
                "failures": info.get("failures", 0),
                "log": info.get("log") or str(paths.job_log(job_id)),
            }
        )
    return {
        "daemon": daemon,
        "jobs_store": str(paths.jobs),
        "status_file": str(paths.status),
        "jobs": jobs,
        "sources": _store_sources(config),
    }
