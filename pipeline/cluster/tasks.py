"""The bodies of the cluster's jobs, registered by workers (`blueprint`); the leader defers
them by name (`pipeline.cluster.queue`).

Every job is safe to run twice: a crawl is incremental, a batch classifies only those of its
posts still pending, index documents are keyed by post and sent as partial updates once created. A failure raises, and
procrastinate retries it (`job_attempts` in all, backing off). A worker stopping stops its
crawls, which go straight back to the queue (`Interrupted`), and lets a classification in hand
finish (the worker keeps its heartbeat meanwhile: `pipeline.cluster.worker`).

Crawls and the periodic steps run `vigie` children, as the single-machine daemon does: Scrapy's
reactor cannot restart in a long-lived process, a stuck child is killed at the job timeout
without harming the worker and the classifier it holds, and each child records its own run in
the store. Classification runs in the worker, whose classifier stays loaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

import procrastinate
from procrastinate.exceptions import JobAborted
from procrastinate.retry import BaseRetryStrategy, RetryDecision, RetryStrategy

from pipeline.cluster import queue
from vigie.config import VigieConfig
from vigie.errors import ConfigurationError

if TYPE_CHECKING:
    from procrastinate.jobs import Job

    from pipeline.daemon.outcomes import RecordedRun

log = logging.getLogger("vigie.cluster")

CONTEXT_KEY = "vigie"  # the worker's `NodeContext`, in each job's additional context
PROXY_USER_ENV = "VIGIE_PROXY_USER"
PROXY_PASSWORD_ENV = "VIGIE_PROXY_PASSWORD"
# A crawl whose egress is in use elsewhere comes back after 5 s, then 10, 20, 40, 60, 60, ...
EGRESS_BUSY_FIRST_WAIT_SECONDS = 5
EGRESS_BUSY_MAX_WAIT_SECONDS = 60
CLASSIFY_RUN = "cluster classify"
AFTER_CLASSIFY_RUN = "cluster after-classify"


class EgressBusy(Exception):
    """Another crawl leaves by this egress: the job waits in the queue, not in a worker."""


class StepFailed(Exception):
    """A child step failed or timed out; the job is retried."""


class Interrupted(Exception):
    """The worker stopped the job as it stopped itself: the job goes back to the queue at once,
    for another worker (procrastinate's JobAborted would make it final)."""


def egress_busy_wait(bounces: int) -> int:
    """Seconds a crawl waits after `bounces` earlier attempts (mostly egress-busy ones): the
    wait doubles from EGRESS_BUSY_FIRST_WAIT_SECONDS up to EGRESS_BUSY_MAX_WAIT_SECONDS, so
    crawls queued behind a long one do not poll the queue every few seconds for its whole
    length."""
    doublings = min(max(bounces, 0), 8)  # 5 * 2**8 is past the cap already
    return min(EGRESS_BUSY_FIRST_WAIT_SECONDS * 2**doublings, EGRESS_BUSY_MAX_WAIT_SECONDS)


class JobRetry(BaseRetryStrategy):
    """Failures are retried with a growing wait until `max_attempts` attempts in all; a crawl
    waiting for its egress comes back after a wait that grows with its attempts, however often
    it waited; a job the worker interrupted as it stopped comes back at once. procrastinate
    counts every attempt towards `max_attempts`, those bounces and interruptions too."""

    def __init__(self, max_attempts: int) -> None:
        self.failures = RetryStrategy(max_attempts=max_attempts, exponential_wait=2)

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, EgressBusy):
            return RetryDecision(retry_in={"seconds": egress_busy_wait(job.attempts)})
        if isinstance(exception, Interrupted):
            return RetryDecision(retry_in={"seconds": 0})
        return self.failures.get_retry_decision(exception=exception, job=job)


RETRY = JobRetry(max_attempts=5)  # the worker sets it from cluster.job_attempts

blueprint = procrastinate.Blueprint()


@dataclass
class NodeContext:
    """What the worker's jobs share: the configuration, the node's name, and the classifier,
    loaded once per process at the first classification."""

    config: VigieConfig
    config_path: str | None
    node: str
    verbose: bool = False
    log_format: str = "text"
    stopping: threading.Event = field(default_factory=threading.Event)
    _clf: Any = None
    _loading: threading.Lock = field(default_factory=threading.Lock)
    classifying: threading.Lock = field(default_factory=threading.Lock)  # one batch at a time

    def classifier(self) -> Any:
        with self._loading:
            if self._clf is None:
                from pipeline.stages import load_classifier

                began = time.monotonic()
                self._clf = load_classifier(self.config)
                log.info("classifier loaded in %.1f s", time.monotonic() - began, extra={"node": self.node})
            return self._clf

    def argv(self, config_path: str | None, *args: str) -> list[str]:
        argv = [sys.executable, "-m", "vigie"]
        if config_path:
            argv += ["--config", config_path]
        if self.verbose:
            argv.append("-v")
        if self.log_format != "text":
            argv += ["--log-format", self.log_format]
        return [*argv, *args]


def _node(context: procrastinate.JobContext) -> NodeContext:
    node = context.additional_context.get(CONTEXT_KEY)
    if not isinstance(node, NodeContext):
        raise RuntimeError("cluster jobs run in `vigie worker`, which gives them their configuration")
    return node


@contextlib.contextmanager
def _measured(task: str, context: procrastinate.JobContext) -> Iterator[dict[str, Any]]:
    """Time the job, log how it ended, and count it (`vigie_job_seconds{task,outcome}`)."""
    node = _node(context)
    extra: dict[str, Any] = {"task": task, "job_id": context.job.id, "node": node.node}
    began, outcome = time.monotonic(), "failed"
    try:
        yield extra
        outcome = "ok"
    except EgressBusy:
        outcome = "waiting"
        raise
    except (Interrupted, JobAborted):
        outcome = "interrupted"
        raise
    finally:
        seconds = time.monotonic() - began
        _metrics("job_finished", task, outcome, seconds)
        level = logging.INFO if outcome in ("ok", "waiting") else logging.WARNING
        log.log(level, "%s %s after %.1f s", task, outcome, seconds, extra=extra)


def _metrics(name: str, *args: Any) -> None:
    try:
        from pipeline.cluster import metrics
    except ImportError:  # a node without the metrics module counts nothing
        return
    getattr(metrics, name)(*args)


# -- children --------------------------------------------------------------------------


def _run_child(
    node: NodeContext,
    context: procrastinate.JobContext,
    step: str,
    args: list[str],
    run_name: str,
    env: dict[str, str] | None = None,
    config_path: str | None = None,
) -> RecordedRun | None:
    """Run `vigie ARGS` in a process group of its own, stopped at the job timeout, when the
    job is aborted (JobAborted: final) or when the worker stops (Interrupted: back to the
    queue), and read its outcome from the run it recorded as `run_name`."""
    from pipeline.daemon.children import POLL_SECONDS, Exit, Stopper, parent_death_signal, stopped_reason
    from pipeline.daemon.outcomes import latest_run_id, run_after, step_result

    store = node.config.store_url()
    timeout = float(node.config.daemon.job_timeout_seconds)
    before = latest_run_id(store)
    argv = node.argv(config_path if config_path is not None else node.config_path, *args)
    began = time.monotonic()
    stopping, hurry = threading.Event(), threading.Event()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr,  # the worker's log; its own stdout stays quiet
        stderr=sys.stderr,
        env=env,
        start_new_session=True,
        preexec_fn=parent_death_signal(),
    )
    stopper = Stopper(proc.pid, f"job {context.job.id} {step}", began, timeout, stopping, hurry)
    while True:
        try:
            code = proc.wait(timeout=POLL_SECONDS)
            break
        except subprocess.TimeoutExpired:
            if context.should_abort() or node.stopping.is_set():
                stopping.set()
            stopper.check()
    outcome = stopper.outcome or ("ok" if code == 0 else "failed")
    ended = Exit(code, outcome, time.monotonic() - began, stopped_reason(outcome, timeout, code))
    run = run_after(store, run_name, before)
    result = step_result(step, ended, run, store)
    if run is not None and run.status != "running":
        _note_job(node, context, run)
    if result.outcome == "interrupted":
        if node.stopping.is_set():
            raise Interrupted(f"{step}: stopped with the worker; back to the queue")
        raise JobAborted(f"{step}: aborted")
    if result.outcome != "ok":
        raise StepFailed(f"{step}: {result.outcome}: {result.error or 'no error recorded'}")
    return run


def _note_job(node: NodeContext, context: procrastinate.JobContext, run: RecordedRun) -> None:
    """Add the job id and node to the run the child recorded (what `vigie cluster status`
    shows for a job)."""
    from vigie.store import Store, runs

    with Store(node.config.store_url()) as store:
        runs.finish_run(store, run.id, run.status, {**run.stats, "job_id": context.job.id, "node": node.node})


def _with_credentials(proxy: str) -> str:
    user, password = os.environ.get(PROXY_USER_ENV), os.environ.get(PROXY_PASSWORD_ENV)
    if not user:
        return proxy
    parts = urlsplit(proxy)
    login = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    host = parts.hostname or ""
    netloc = f"{login}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def egress_env(config: VigieConfig, egress: str) -> dict[str, str]:
    """The environment of a crawl leaving by `egress`: its proxy (with the credentials from
    $VIGIE_PROXY_USER/$VIGIE_PROXY_PASSWORD) for every HTTP client, else the worker's own."""
    env = dict(os.environ)
    spec = config.cluster.egresses[egress]
    if spec.proxy:
        proxy = _with_credentials(spec.proxy)
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
            env[name] = proxy
    return env


def egress_config_file(config: VigieConfig, egress: str, directory: Path) -> str | None:
    """A configuration file for the crawl child with the egress's `download_delay`, when it
    has one of its own (None: the worker's configuration stands)."""
    import yaml

    delay = config.cluster.egresses[egress].download_delay
    if delay is None or delay == config.crawl.download_delay:
        return None
    derived = config.model_copy(update={"crawl": config.crawl.model_copy(update={"download_delay": delay})})
    path = directory / "vigie.yaml"
    path.write_text(yaml.safe_dump(derived.model_dump(mode="json", exclude_defaults=True)), encoding="utf-8")
    return str(path)


@contextlib.contextmanager
def _egress(config: VigieConfig, egress: str) -> Iterator[None]:
    """Hold the cluster-wide lock of `egress` (one crawl at a time leaves by it); EgressBusy
    when another crawl holds it."""
    from vigie.store.cluster import SessionLock

    lock = SessionLock(queue.conninfo(config.store_url()), f"egress:{egress}")
    try:
        if not lock.try_acquire():
            raise EgressBusy(f"egress {egress} is in use by another crawl")
        yield
    finally:
        lock.release()
        lock.close()


# -- the tasks -------------------------------------------------------------------------


@blueprint.task(name=queue.CRAWL, pass_context=True, retry=RETRY)
def crawl(context: procrastinate.JobContext, platform: str, channel: str, egress: str) -> None:
    """`vigie crawl PLATFORM CHANNEL` by the egress's proxy and politeness, then the media of
    what waits for them (read before a post can be classified)."""
    node = _node(context)
    config = node.config
    with _measured(queue.CRAWL, context) as extra:
        extra.update(source=f"{platform}:{channel}", egress=egress)
        if egress not in config.cluster.egresses:
            raise ConfigurationError(f"egress {egress!r} is not in this worker's cluster.egresses")
        args = [platform, channel]
        for source in config.sources:
            if source.platform == platform and source.channel.lower() == channel.lower() and source.max_pages:
                args += ["--max-pages", str(source.max_pages)]
                break
        from pipeline.daemon.jobs import crawl_run_name

        with _egress(config, egress), tempfile.TemporaryDirectory(prefix="vigie-crawl-") as scratch:
            run = _run_child(
                node,
                context,
                "crawl",
                ["crawl", *args],
                crawl_run_name(channel) if platform == "telegram" else f"crawl {platform} {channel}",
                env=egress_env(config, egress),
                config_path=egress_config_file(config, egress, Path(scratch)),
            )
            _count_crawled(run)
            _read_media(node)


def _count_crawled(run: RecordedRun | None) -> None:
    totals = (run.stats.get("totals") if run is not None else None) or {}
    if isinstance(totals, dict):
        _metrics("crawled", int(totals.get("new", 0)) + int(totals.get("updated", 0)))


def _read_media(node: NodeContext) -> None:
    """Fetch and read the media posts wait for: until then they are not classified."""
    from pipeline.enrich.media import fetch_and_read
    from vigie.store import Store

    with Store(node.config.store_url()) as store:
        report = fetch_and_read(node.config, store)
    for error in report.errors:
        log.warning("media: %s", error, extra={"node": node.node})


@blueprint.task(name=queue.CLASSIFY, pass_context=True, retry=RETRY)
def classify(context: procrastinate.JobContext, batch_id: str) -> None:
    """Classify the batch's posts still pending, index their documents when Elasticsearch is
    configured, release the batch, and ask for the networks and alerts pass."""
    from pipeline.enrich.process import process
    from pipeline.index.template import es_url
    from pipeline.stages import RunReport, index
    from vigie.store import Store, claims
    from vigie.store.alerts import classified_posts

    node = _node(context)
    config = node.config
    with _measured(queue.CLASSIFY, context) as extra:
        extra["batch_id"] = batch_id
        clf = node.classifier()
        report = RunReport()
        with node.classifying, Store(config.store_url()) as store:
            keys = claims.batch_keys(store, batch_id)
            held_before = classified_posts(store) > 0
            with store.run(CLASSIFY_RUN) as run:
                report.process = process(
                    store,
                    clf,
                    batch_size=config.pipeline.batch_size,
                    keep_text=config.pipeline.keep_text_below_threshold,
                    pdq_distance=config.media.pdq_distance,
                    keys=keys,
                )
                if keys and es_url(config.elasticsearch):
                    index(config, store, report, keys=keys)
                stats = {"batch_id": batch_id, "keys": len(keys), "job_id": context.job.id, "node": node.node}
                run.status = "partial" if report.errors else "ok"
                run.stats = {**report.to_json(), **stats}
            claims.release_batch(store, batch_id)
            if report.process.processed:
                # One waits at most: the first batch's `held_before` stands (on a fresh store,
                # the first networks found are alerts, as on a single machine).
                queue.defer_control(context.app, store, queue.AFTER_CLASSIFY, held_before=held_before)
        p = report.process
        _metrics("classified", p.processed)
        _metrics("indexed", report.indexed)
        _metrics("spooled", report.spooled)
        extra.update(posts=len(keys), classified=p.processed, flagged=p.flagged)
        for error in report.errors:
            log.warning("%s", error, extra=extra)


@blueprint.task(name=queue.AFTER_CLASSIFY, pass_context=True, retry=RETRY)
def after_classify(context: procrastinate.JobContext, held_before: bool | None = None) -> None:
    """Networks refreshed (and indexed), alert rules raised; the `alerts` job delivers.
    `held_before`: whether the store held classified posts before the batch that asked for
    this pass (None: whether it holds any now)."""
    from pipeline.stages import RunReport, after_run
    from vigie.store import Store

    node = _node(context)
    with _measured(queue.AFTER_CLASSIFY, context) as extra:
        report = RunReport()
        report.process.processed = 1  # asked for by a batch that classified posts
        report.held_before = held_before
        with Store(node.config.store_url()) as store, store.run(AFTER_CLASSIFY_RUN) as run:
            after_run(node.config, store, report, deliver_alerts=False)
            run.status = "partial" if report.errors else "ok"
            run.stats = {**report.to_json(), "job_id": context.job.id, "node": node.node}
        extra.update(networks=report.networks, alerts_raised=report.alerts_raised)
        for error in report.errors:
            log.warning("%s", error, extra=extra)


def _recorded_step(context: procrastinate.JobContext, task: str, step: str, command: tuple[str, ...]) -> None:
    from pipeline.daemon.jobs import recorded_run_name

    node = _node(context)
    with _measured(task, context):
        _run_child(node, context, step, ["daemon", "recorded", *command], recorded_run_name(command))


@blueprint.task(name=queue.REMOVAL_CHECKS, pass_context=True, retry=RETRY)
def removal_checks(context: procrastinate.JobContext) -> None:
    """`vigie referrals check`: are the referred posts still online."""
    from pipeline.daemon.jobs import CHECK_COMMAND

    _recorded_step(context, queue.REMOVAL_CHECKS, "check", CHECK_COMMAND)


@blueprint.task(name=queue.ES_REPLAY, pass_context=True, retry=RETRY)
def es_replay(context: procrastinate.JobContext) -> None:
    """`vigie es replay`: the spooled documents sent again."""
    from pipeline.daemon.jobs import REPLAY_COMMAND, es_configured

    if not es_configured(_node(context).config):
        log.info("es replay skipped: no Elasticsearch URL configured")
        return
    _recorded_step(context, queue.ES_REPLAY, "replay", REPLAY_COMMAND)


@blueprint.task(name=queue.ALERTS, pass_context=True, retry=RETRY)
def alerts(context: procrastinate.JobContext) -> None:
    """`vigie alerts send --wait 0`: one attempt per due delivery."""
    from pipeline.daemon.jobs import ALERTS_COMMAND

    _recorded_step(context, queue.ALERTS, "send", ALERTS_COMMAND)


def set_attempts(attempts: int) -> None:
    """How many attempts a failing job gets in all (`cluster.job_attempts`)."""
    RETRY.failures = RetryStrategy(max_attempts=attempts, exponential_wait=2)


__all__ = [
    "CONTEXT_KEY",
    "EgressBusy",
    "Interrupted",
    "NodeContext",
    "blueprint",
    "egress_busy_wait",
    "egress_config_file",
    "egress_env",
    "set_attempts",
]
