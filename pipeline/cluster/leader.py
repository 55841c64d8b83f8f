"""`vigie daemon --cluster`: the one scheduler of a cluster, elected by an advisory lock.

Every daemon waits for a session-level PostgreSQL advisory lock on a connection of its own,
trying every `cluster.leader_poll_seconds`; the one holding it is the leader, the others are
standbys. The server releases the lock the moment the leader's session ends (its process
killed, its host gone: TCP keepalives on that connection notice a silent peer), so a standby
takes over within one poll.

The leader runs an APScheduler BackgroundScheduler (in memory: the queue is what survives)
with the single-machine daemon's job specs, each of which enqueues a job instead of running
a child, plus:
- the planner (every `plan_every_seconds`): pending posts claimed into batches of
  `classify_batch`, one `vigie.classify` job per batch;
- the sweep (every `heartbeat_seconds`): jobs of workers silent for `lease_seconds` are
  retried (or failed, after `job_attempts`), those workers forgotten, the claims of finished
  batches released, the queue gauge updated;
- approved sources (`vigie sources add`, automatic following) re-read every minute.
Each daemon keeps its `cluster_nodes` row (role and heartbeat) up to date. A leader that
loses its lock stops scheduling and is a standby again; SIGTERM releases it and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.cluster import queue
from pipeline.daemon import jobs
from vigie.config import VigieConfig
from vigie.errors import VigieError

log = logging.getLogger("vigie.cluster.leader")

LEADER_LOCK = "vigie:leader"
# Classification jobs kept waiting at most: enough for every worker to find one, few
# enough that posts crawled meanwhile are not stuck behind a long queue.
MAX_WAITING_BATCHES = 8
ENQUEUE_EXECUTOR = "enqueue"  # defers of scheduled jobs
STORE_EXECUTOR = "store"  # planner, sweep, approved sources: one thread, so one Store
PLANNER = "planner"
SWEEP = "sweep"
PRUNE_JOBS = "prune-jobs"
PRUNE_EVERY_SECONDS = 3600
FINISHED_JOBS_KEPT_HOURS = 7 * 24  # succeeded, failed and cancelled jobs: kept a week, then deleted


def classifier_model_id(config: VigieConfig) -> str | None:
    """The fingerprint classifications are recorded under (what `pipeline.enrich.process.
    model_id` says of the loaded model), read from the classifier's metadata file without
    loading the model; None when no classifier is there."""
    from vigie.paths import default_classifier_dir

    directory = (
        Path(config.classifier.model_dir).expanduser()
        if config.classifier.model_dir
        else default_classifier_dir()
    )
    try:
        meta = json.loads((directory / "vigie_classifier.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    return str(meta.get("fingerprint") or meta.get("trained_at"))


def default_node_name(role: str = "daemon") -> str:
    return f"{socket.gethostname()}:{role}:{os.getpid()}"


class Leader:
    def __init__(
        self,
        config: VigieConfig,
        config_path: str | None,
        node_name: str | None = None,
        metrics_port: int | None = None,
        announce: Callable[[str], None] = print,
    ) -> None:
        self.config = config
        self.config_path = str(Path(config_path).resolve()) if config_path else None
        self.node_id = node_name or default_node_name()
        self.metrics_port = config.cluster.metrics_port if metrics_port is None else metrics_port
        self.announce = announce
        self.conninfo = queue.conninfo(config.store_url())  # a clear error before anything starts
        self.stopping = threading.Event()
        self.role = "standby"
        self.app: Any = None
        self.scheduler: Any = None
        self.approved: list[str] = []
        self._local = threading.local()  # a Store per thread (a Store is not shared)
        self._stores: list[Any] = []
        self._stores_lock = threading.Lock()
        self.lock: Any = None  # the leader lock's SessionLock, while this node runs
        self._warned_no_model = False
        self._warned_fallback = False
        self._warned_models: frozenset[str] = frozenset()
        self._warned_lost = False

    # -- lifecycle ---------------------------------------------------------------------

    def run(self) -> int:
        """Stand by or lead until SIGTERM or SIGINT; 0 after a clean shutdown."""
        from vigie.store.cluster import SessionLock, register_node, stop_node

        jobs.job_specs(self.config)  # a bad schedule is an error now, not once leading
        queue.ensure_schema(self.config)  # creates or migrates the store first
        store = self._store()
        detail = {"config_path": self.config_path, "kind": "daemon"}
        register_node(store, self.node_id, "standby", socket.gethostname(), os.getpid(), detail=detail)
        self._serve_metrics()
        previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        heartbeat = threading.Thread(target=self._heartbeat, name="vigie-node-heartbeat", daemon=True)
        heartbeat.start()
        lock = self.lock = SessionLock(
            self.conninfo,
            LEADER_LOCK,
            keepalive_seconds=self.config.cluster.heartbeat_seconds,
            holder=f"leader {self.node_id}",
        )
        self.announce(
            f"vigie daemon --cluster (node {self.node_id}, pid {os.getpid()}): standing by for the "
            f"leader lock (tried every {self.config.cluster.leader_poll_seconds:g} s); stop with SIGTERM or Ctrl-C"
        )
        try:
            while not self.stopping.is_set():
                if self._try_lock(lock):
                    self._lead_until_lost(lock)
                else:
                    self.stopping.wait(self.config.cluster.leader_poll_seconds)
            return 0
        finally:
            signal.signal(signal.SIGTERM, previous[0])
            signal.signal(signal.SIGINT, previous[1])
            lock.release()
            lock.close()
            self.role = "standby"
            with contextlib.suppress(Exception):
                stop_node(store, self.node_id)
            heartbeat.join(timeout=5)
            self._close_stores()
            log.info("node %s stopped", self.node_id)

    def _try_lock(self, lock: Any) -> bool:
        from vigie.store import one_line

        try:
            return bool(lock.try_acquire())
        except Exception as exc:  # the server is down or unreachable: try again later
            log.warning("cannot reach the store for the leader lock (tried again later): %s", one_line(exc))
            lock.close()
            return False

    def _lead_until_lost(self, lock: Any) -> None:
        """Lead; a store that fails meanwhile ends the term (the lock is let go with its
        connection) and this node stands by again."""
        from procrastinate.exceptions import ConnectorException

        from vigie.store import is_database_error, one_line

        try:
            self._lead(lock)
        except Exception as exc:
            if not (is_database_error(exc) or isinstance(exc, ConnectorException)):
                raise
            log.warning("node %s stops leading: the store failed: %s", self.node_id, one_line(exc))
            self.announce(f"node {self.node_id}: the store failed, standing by")
            lock.close()
            self.stopping.wait(self.config.cluster.leader_poll_seconds)

    def _lead(self, lock: Any) -> None:
        from vigie.store.cluster import become_leader, set_node_role

        self.role = "leader"
        self._warned_lost = False
        become_leader(self._store(), self.node_id)
        log.info("node %s is the leader (lock session pid %s)", self.node_id, lock.backend_pid())
        self.announce(f"node {self.node_id}: leader")
        self.app = queue.make_app(self.config).open()
        try:
            self.approved = self._read_approved()
            self.scheduler = self._make_scheduler()
            self._add_jobs()
            self.scheduler.start()
            while not self.stopping.wait(self.config.cluster.leader_poll_seconds):
                if not lock.alive():
                    log.warning(
                        "node %s lost the leader lock (its connection ended): standing by", self.node_id
                    )
                    self.announce(f"node {self.node_id}: lost the leader lock, standing by")
                    break
        finally:
            if self.scheduler is not None:
                with contextlib.suppress(Exception):  # SchedulerNotRunningError
                    self.scheduler.shutdown(wait=True)
                self.scheduler = None
            with contextlib.suppress(Exception):
                self.app.close()
            self.app = None
            self.role = "standby"
            with contextlib.suppress(Exception):
                set_node_role(self._store(), self.node_id, "standby")

    def _on_signal(self, signum: int, frame: Any) -> None:
        log.info("%s: shutting down", signal.Signals(signum).name)
        self.stopping.set()

    def _serve_metrics(self) -> None:
        if not self.metrics_port:
            return
        from pipeline.cluster import metrics

        served = metrics.serve(self.metrics_port)
        if served:
            self.announce(f"metrics on http://0.0.0.0:{served}/metrics")

    def _heartbeat(self) -> None:
        from vigie.store import one_line
        from vigie.store.cluster import heartbeat_node

        while not self.stopping.wait(self.config.cluster.heartbeat_seconds):
            try:
                heartbeat_node(self._store(), self.node_id, role=self.role)
            except Exception as exc:
                log.warning("cannot record the heartbeat of node %s: %s", self.node_id, one_line(exc))

    # -- stores ------------------------------------------------------------------------

    def _store(self) -> Any:
        """This thread's Store."""
        from vigie.store import Store

        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = Store(self.config.store_url())
            with self._stores_lock:
                self._stores.append(store)
        return store

    def _close_stores(self) -> None:
        with self._stores_lock:
            for store in self._stores:
                with contextlib.suppress(Exception):
                    store.close()
            self._stores.clear()

    # -- the schedule ------------------------------------------------------------------

    def _make_scheduler(self) -> Any:
        from apscheduler.events import EVENT_JOB_ERROR
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.memory import MemoryJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={ENQUEUE_EXECUTOR: ThreadPoolExecutor(1), STORE_EXECUTOR: ThreadPoolExecutor(1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": self.config.daemon.misfire_grace_seconds,
            },
            timezone=jobs.timezone_of(self.config),
        )
        scheduler.add_listener(self._on_job_error, EVENT_JOB_ERROR)
        return scheduler

    def _on_job_error(self, event: Any) -> None:
        from vigie.store import one_line

        log.error("job %s failed (tried again at its next time): %s", event.job_id, one_line(event.exception))

    def _add_jobs(self) -> None:
        from apscheduler.triggers.interval import IntervalTrigger
        from apscheduler.util import undefined

        tz = jobs.timezone_of(self.config)
        now = datetime.now(tz)
        cluster = self.config.cluster
        self._sync_crawls(first=True)
        for job_id, func, seconds in (
            (PLANNER, self.plan, cluster.plan_every_seconds),
            (SWEEP, self.sweep, cluster.heartbeat_seconds),
            (jobs.APPROVED_SOURCES, self.refresh_sources, jobs.approved_every_seconds(self.config)),
            (PRUNE_JOBS, self.prune_jobs, PRUNE_EVERY_SECONDS),
        ):
            self.scheduler.add_job(
                func,
                IntervalTrigger(seconds=seconds, timezone=tz),
                id=job_id,
                name=job_id,
                executor=STORE_EXECUTOR,
                replace_existing=True,
                next_run_time=now if job_id != jobs.APPROVED_SOURCES else undefined,
            )

    def _sync_crawls(self, first: bool = False) -> None:
        """The scheduler's enqueuing jobs in line with the job specs (configured and approved
        sources); a job already there keeps its place in time."""
        from apscheduler.util import undefined

        specs = jobs.job_specs(self.config, self.approved)
        now = datetime.now(jobs.timezone_of(self.config))
        wanted = {spec.id for spec in specs}
        for job in self.scheduler.get_jobs():
            if jobs.managed(job.id) and job.id not in wanted:
                self.scheduler.remove_job(job.id)
                log.info("job %s: removed (no longer configured or approved)", job.id)
        for spec in specs:
            if self.scheduler.get_job(spec.id) is not None:
                continue
            if not first:
                log.info(
                    "job %s: added%s, %s",
                    spec.id,
                    " (approved source)" if spec.approved else "",
                    spec.schedule,
                )
            self.scheduler.add_job(
                self.enqueue,
                spec.trigger,
                args=(spec.id, spec.args),
                id=spec.id,
                name=spec.name,
                executor=ENQUEUE_EXECUTOR,
                next_run_time=now if spec.run_at_once else undefined,
            )

    # -- what the jobs do ------------------------------------------------------------------

    def still_leading(self, what: str) -> bool:
        """Whether this node still holds the leader lock, checked before `what` runs: a
        leader whose lock went (its connection dropped) must not schedule beside the new one
        until its main loop notices. Logged once per term."""
        if self.lock is not None and self.lock.alive():
            return True
        if not self._warned_lost:
            log.warning("node %s no longer holds the leader lock: %s skipped", self.node_id, what)
            self._warned_lost = True
        return False

    def enqueue(self, spec_id: str, args: tuple[Any, ...]) -> int | None:
        """Defer the queue job a scheduled job stands for; its id, None if one waits already
        (or if this node no longer leads)."""
        if not self.still_leading(spec_id):
            return None
        if spec_id.startswith(jobs.CRAWL_PREFIX):
            platform, channel = args
            job_id = queue.defer_crawl(self.app, self._store(), self.config, platform, channel)
        else:
            task = {
                jobs.REMOVAL_CHECKS: queue.REMOVAL_CHECKS,
                jobs.ES_REPLAY: queue.ES_REPLAY,
                jobs.ALERTS: queue.ALERTS,
            }[spec_id]
            job_id = queue.defer_control(self.app, self._store(), task)
        if job_id is None:
            log.info("%s: a job waits already; not enqueued again", spec_id)
        else:
            log.info("%s: enqueued as job %d", spec_id, job_id)
        return job_id

    def plan(self) -> list[str]:
        """Claim pending posts into new classification batches and enqueue one job each."""
        from vigie.store import claims
        from vigie.store.cluster_status import queue_depths

        if not self.still_leading(PLANNER):
            return []
        store = self._store()
        model = self.planning_model(store)
        if model is None:
            return []
        waiting = queue_depths(store).get((queue.CLASSIFY, "todo"), 0)
        room = MAX_WAITING_BATCHES - waiting
        if room <= 0:
            return []
        batch_ids = claims.claim_pending(store, model, self.config.cluster.classify_batch, room)
        for batch_id in batch_ids:
            queue.defer_classify(self.app, batch_id)
        if batch_ids:
            log.info("planned %d classification batches", len(batch_ids))
        return batch_ids

    def planning_model(self, store: Any) -> str | None:
        """The model id posts are planned for: the one the live workers classify with (the
        one most of them run when they differ), else this node's classifier's; None when
        neither is known. Workers skip posts their model has classified, so planning for
        another model would claim the same posts again and again."""
        from vigie.store.cluster import live_worker_models

        models = live_worker_models(store, self.config.cluster.lease_seconds)
        if models:
            chosen = min(models, key=lambda m: (-models[m], m))
            if len(models) > 1 and frozenset(models) != self._warned_models:
                self._warned_models = frozenset(models)
                running = ", ".join(f"{m} ({n})" for m, n in sorted(models.items()))
                log.warning(
                    "live workers run different classifiers (%s): planning for %s only", running, chosen
                )
            return chosen
        model = classifier_model_id(self.config)
        if model is None:
            if not self._warned_no_model:
                log.warning(
                    "no live worker reports its classifier and none is on this node: "
                    "pending posts are not planned for classification"
                )
                self._warned_no_model = True
        elif not self._warned_fallback:
            log.info("no live worker reports its classifier: planning for this node's (%s)", model)
            self._warned_fallback = True
        return model

    def claim_grace_seconds(self) -> float:
        """How old a claim must be before the sweep may release it: a leader's planning round
        claims then enqueues, so a claim younger than this may be another leader's whose job
        is not in the queue yet."""
        cluster = self.config.cluster
        return 2 * cluster.plan_every_seconds + cluster.lease_seconds

    def sweep(self) -> dict[str, int]:
        """Retry the jobs of silent workers, release the claims of ended batches, measure the
        queue; one step failing does not stop the others. (Same thread as the planner: a
        batch is never released between its claim and its job's enqueuing.)"""
        from datetime import UTC, timedelta

        from pipeline.cluster import metrics
        from vigie.store import claims, one_line
        from vigie.store.cluster import active_classify_batches
        from vigie.store.cluster_status import queue_depths

        if not self.still_leading(SWEEP):
            return {"retried": 0, "failed": 0, "released": 0}
        retried = failed = 0
        try:
            retried, failed = asyncio.run(self._retry_stalled())
        except Exception as exc:
            log.warning("sweep: cannot read the stalled jobs: %s", one_line(exc))
        store = self._store()
        released = 0
        try:
            before = datetime.now(UTC) - timedelta(seconds=self.claim_grace_seconds())
            released = claims.release_finished(
                store, active_classify_batches(store), claimed_before=before.isoformat(timespec="seconds")
            )
        except Exception as exc:
            log.warning("sweep: cannot release the claims of ended batches: %s", one_line(exc))
        try:
            metrics.set_queue(queue_depths(store))
        except Exception as exc:
            log.warning("sweep: cannot measure the queue: %s", one_line(exc))
        if retried or failed or released:
            log.info(
                "sweep: %d stalled jobs retried, %d failed, %d claims released", retried, failed, released
            )
        return {"retried": retried, "failed": failed, "released": released}

    async def _retry_stalled(self) -> tuple[int, int]:
        import procrastinate
        from procrastinate.jobs import Status

        from vigie.store import one_line

        cluster = self.config.cluster
        app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=self.conninfo, min_size=1, max_size=1)
        )
        retried = failed = 0
        async with app.open_async():
            manager = app.job_manager
            for job in await manager.get_stalled_jobs(seconds_since_heartbeat=cluster.lease_seconds):
                # Each job on its own: one that ended meanwhile (its worker was only slow)
                # makes these calls fail, and the others are still handled.
                if job.attempts + 1 < cluster.job_attempts:
                    try:
                        await manager.retry_job(job)
                        retried += 1
                        log.warning(
                            "job %s (%s) of a silent worker: retried (attempt %d of %d)",
                            job.id,
                            job.task_name,
                            job.attempts + 2,
                            cluster.job_attempts,
                        )
                        continue
                    except Exception as exc:  # another job of the same queueing lock waits already
                        log.warning("job %s (%s) cannot be retried: %s", job.id, job.task_name, one_line(exc))
                try:
                    await manager.finish_job(job, status=Status.FAILED, delete_job=False)
                except Exception as exc:
                    log.warning("job %s (%s) cannot be failed: %s", job.id, job.task_name, one_line(exc))
                    continue
                failed += 1
                log.error("job %s (%s) of a silent worker: failed for good", job.id, job.task_name)
            try:
                await manager.prune_stalled_workers(seconds_since_heartbeat=cluster.lease_seconds)
            except Exception as exc:
                log.warning("sweep: cannot forget the silent workers: %s", one_line(exc))
        return retried, failed

    def prune_jobs(self) -> None:
        """Delete the jobs that ended (succeeded, failed, cancelled) more than a week ago."""
        asyncio.run(self._delete_old_jobs())

    async def _delete_old_jobs(self) -> None:
        import procrastinate

        app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=self.conninfo, min_size=1, max_size=1)
        )
        async with app.open_async():
            await app.job_manager.delete_old_jobs(
                nb_hours=FINISHED_JOBS_KEPT_HOURS, include_failed=True, include_cancelled=True
            )

    def refresh_sources(self) -> None:
        """Crawl jobs for newly approved sources, none for dismissed ones."""
        from vigie.store import is_database_error, one_line

        try:
            approved = self._read_approved()
        except Exception as exc:
            if not (isinstance(exc, VigieError) or is_database_error(exc)):
                raise
            log.warning("cannot read the approved sources (tried again later): %s", one_line(exc))
            return
        if approved != self.approved:
            self.approved = approved
            self._sync_crawls()

    def _read_approved(self) -> list[str]:
        from pipeline.discovery import telegram_channels

        configured = {s.channel for s in self.config.sources if s.platform == "telegram"}
        return [c for c in telegram_channels(self.config, self._store()) if c not in configured]
