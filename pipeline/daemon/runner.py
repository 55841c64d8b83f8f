"""What each job does, step by step: which `vigie` child runs, and how its outcome (read
from the run the child recorded in the store) becomes the job's."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pipeline.daemon import jobs
from pipeline.daemon.children import Supervisor
from pipeline.daemon.jobs import ALERTS, CLASSIFY, ES_REPLAY, REMOVAL_CHECKS, crawl_job_id
from pipeline.daemon.outcomes import StepResult, job_outcome, latest_run_id, run_after, step_result
from pipeline.daemon.status import DaemonPaths, StatusBook, utcnow
from pipeline.daemon.worker import WORKER_COMMAND, ClassifierWorker
from vigie.config import SourceConfig, VigieConfig

log = logging.getLogger("vigie.daemon")

PROBE_TIMEOUT_SECONDS = 120.0


class JobRunner:
    def __init__(
        self,
        config: VigieConfig,
        config_path: str | None,
        status: StatusBook,
        supervisor: Supervisor,
        stopping: threading.Event,
        classify: bool,
        verbose: bool,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.paths = DaemonPaths.of(config)
        self.store = config.store_url()
        self.status = status
        self.supervisor = supervisor
        self.stopping = stopping
        self.classify = classify
        self.verbose = verbose
        self.timeout = float(config.daemon.job_timeout_seconds)
        self.scheduler: Any = None  # set once the scheduler exists: crawls ask it for classifications
        self.configured: dict[str, SourceConfig] = {}
        for source in config.sources:  # a source listed twice: its first entry, as in job_specs
            self.configured.setdefault(crawl_job_id(source.platform, source.channel), source)
        self.sources = dict(self.configured)  # and the approved ones (`set_approved`)
        # Set by the daemon: re-reads the approved sources and brings their crawl jobs in line.
        self.on_sources: Callable[[], None] | None = None
        self.worker = ClassifierWorker(self._argv(*WORKER_COMMAND), supervisor, self.paths.job_log(CLASSIFY))
        self.last_classify_ok: float | None = None  # monotonic start of the last good classification
        self._busy = 0  # job bodies running
        self._busy_changed = threading.Condition()

    # -- steps -----------------------------------------------------------------------

    def _argv(self, *args: str) -> list[str]:
        argv = [sys.executable, "-m", "vigie"]
        if self.config_path:
            argv += ["--config", self.config_path]
        if self.verbose:
            argv.append("-v")
        return [*argv, *args]

    def run_step(self, job_id: str, step: str, args: list[str], run_name: str | None) -> StepResult:
        """Run `vigie ARGS` for a job's step and read its outcome from the run it recorded
        as `run_name` (None: a step that records no run)."""
        before = latest_run_id(self.store) if run_name else 0
        timeout = PROBE_TIMEOUT_SECONDS if run_name is None else self.timeout
        ended = self.supervisor.run(job_id, step, self._argv(*args), self.paths.job_log(job_id), timeout)
        run = run_after(self.store, run_name, before) if run_name else None
        return step_result(step, ended, run, self.store)

    def close(self) -> None:
        """Once no job runs any more: end the classifier worker."""
        self.worker.stop()

    def wait_idle(self) -> None:
        """Until no job body runs."""
        with self._busy_changed:
            self._busy_changed.wait_for(lambda: self._busy == 0)

    def set_approved(self, channels: Sequence[str]) -> None:
        """The approved Telegram channels crawled beside the configured sources."""
        sources = dict(self.configured)
        for channel in channels:
            sources.setdefault(
                crawl_job_id("telegram", channel), SourceConfig(platform="telegram", channel=channel)
            )
        self.sources = sources  # one assignment: a crawl starting now sees the old or the new

    @contextlib.contextmanager
    def _working(self) -> Iterator[None]:
        """Count a job body as running: shutdown waits for it (`wait_idle`)."""
        with self._busy_changed:
            self._busy += 1
        try:
            yield
        finally:
            with self._busy_changed:
                self._busy -= 1
                self._busy_changed.notify_all()

    @contextlib.contextmanager
    def _job(self, job_id: str) -> Iterator[list[StepResult] | None]:
        """Mark the job running, collect its steps' results and record its outcome; None
        when the daemon is stopping (the job does nothing)."""
        with self._working():
            if self.stopping.is_set():
                yield None
                return
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
        if not steps:  # stopped before anything ran: the last outcome stands
            with self.status.change():
                self.status.job(job_id).pop("running_since", None)
            return
        outcome, error, notes = job_outcome(steps)
        duration = round(time.monotonic() - started, 3)
        self.status.record_job(
            job_id, outcome, started_at, duration, error, notes, [s.to_json() for s in steps]
        )
        if outcome in ("failed", "timeout"):
            where = self.paths.job_log(job_id)
            log.warning("job %s %s after %.1f s: %s (output in %s)", job_id, outcome, duration, error, where)
        else:
            log.info("job %s %s after %.1f s%s", job_id, outcome, duration, f" ({notes})" if notes else "")

    # -- jobs --------------------------------------------------------------------------

    def crawl(self, platform: str, channel: str) -> None:
        job_id = crawl_job_id(platform, channel)
        source = self.sources.get(job_id)
        if source is None:
            return
        with self._job(job_id) as steps:
            if steps is None:
                return
            args = ["crawl", platform, channel]
            if source.max_pages:
                args += ["--max-pages", str(source.max_pages)]
            crawl = self.run_step(job_id, "crawl", args, jobs.crawl_run_name(channel))
            steps.append(crawl)
            # Classify even after a failed crawl: what a partial walk stored needs it too.
            if self.classify and crawl.outcome in ("ok", "failed") and not self.stopping.is_set():
                self._ask_classification(job_id, time.monotonic())

    def _ask_classification(self, requested_by: str, crawled_at: float) -> None:
        self.scheduler.add_job(
            jobs.classify_job,
            args=(requested_by, crawled_at),
            id=CLASSIFY,
            name="classify and index",
            jobstore=jobs.TRANSIENT_STORE,
            executor=jobs.WRITER_EXECUTOR,
            replace_existing=True,  # one waiting request covers every crawl before it
            max_instances=2,  # one running, one waiting for it
            misfire_grace_time=None,  # however long it waits for the writer
        )

    def classify_after(self, requested_by: str, crawled_at: float) -> None:
        with self._job(CLASSIFY) as steps:
            if steps is None:
                return
            if self.last_classify_ok is not None and self.last_classify_ok >= crawled_at:
                note = "classified by a run that started after this crawl"
                steps.append(StepResult("classify", "ok", note=note))
                return
            began = time.monotonic()
            before = latest_run_id(self.store)
            ended = self.worker.classify(requested_by, self.timeout)
            run = run_after(self.store, jobs.recorded_run_name(jobs.CLASSIFY_COMMAND), before)
            result = step_result("classify", ended, run, self.store)
            if result.outcome == "ok":
                self.last_classify_ok = began
            steps.append(result)
            self._deliver_soon()
        # Once the classification is recorded (the status shows it done): it may have
        # followed new sources.
        self.refresh_sources()

    def refresh_sources(self) -> None:
        """The approved-sources job: bring the crawl jobs in line with the store's approvals."""
        with self._working():
            if not self.stopping.is_set():
                self._refresh()

    def _refresh(self) -> None:
        if self.on_sources is not None:
            self.on_sources()

    def removal_checks(self) -> None:
        with self._job(REMOVAL_CHECKS) as steps:
            if steps is None:
                return
            probe = self.run_step(REMOVAL_CHECKS, "probe", [*jobs.CHECK_COMMAND, "--help"], None)
            if probe.outcome == "ok":
                command = ["daemon", "recorded", *jobs.CHECK_COMMAND]
                run_name = jobs.recorded_run_name(jobs.CHECK_COMMAND)
                steps.append(self.run_step(REMOVAL_CHECKS, "check", command, run_name))
            elif probe.outcome == "failed" and probe.exit_code == 2:  # click: no such command
                note = "`vigie referrals check` is not available in this Vigie"
                log.info("removal checks skipped: %s", note)
                steps.append(StepResult("check", "skipped", note=note))
            else:
                steps.append(probe)

    def es_replay(self) -> None:
        with self._job(ES_REPLAY) as steps:
            if steps is None:
                return
            if jobs.es_configured(self.config):
                command = ["daemon", "recorded", *jobs.REPLAY_COMMAND]
                run_name = jobs.recorded_run_name(jobs.REPLAY_COMMAND)
                steps.append(self.run_step(ES_REPLAY, "replay", command, run_name))
            else:
                steps.append(StepResult("replay", "skipped", note="no Elasticsearch URL configured"))

    def _deliver_soon(self) -> None:
        """Bring the `alerts` job forward: what the classification raised goes out now."""
        if self.scheduler is None or self.stopping.is_set() or not jobs.alerts_configured(self.config):
            return
        from datetime import datetime

        try:
            job = self.scheduler.get_job(ALERTS)
            if job is not None:
                job.modify(next_run_time=datetime.now(job.trigger.timezone))
        except Exception as exc:  # the interval runs it anyway
            log.warning("alerts job not brought forward: %s: %s", type(exc).__name__, exc)

    def alerts(self) -> None:
        with self._job(ALERTS) as steps:
            if steps is None:
                return
            command = ["daemon", "recorded", *jobs.ALERTS_COMMAND]
            run_name = jobs.recorded_run_name(jobs.ALERTS_COMMAND)
            steps.append(self.run_step(ALERTS, "send", command, run_name))
