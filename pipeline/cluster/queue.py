"""The job queue: procrastinate on the store's PostgreSQL database.

The leader defers jobs by task name (it never imports the task bodies, nor the classifier);
workers register the bodies from `pipeline.cluster.tasks`. Locks make each job kind safe:
one crawl per source in flight (procrastinate's `lock`), one networks-and-alerts pass at a
time, one removal check, one spool replay, one delivery run; and a job is not deferred while
another of its lock waits (`vigie.store.cluster.deferring`).

procrastinate's own `queueing_lock` is not used: its unique index forbids two waiting jobs of
a lock, and a job going back to the queue for a retry (an egress in use, a worker stopping, a
failure) while the leader's next one waits would break it. The retry fails, the job stays
`doing` on its live worker for good, and its `lock` holds back every later job of the source.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

from vigie.config import VigieConfig
from vigie.errors import ConfigurationError

if TYPE_CHECKING:
    import procrastinate

    from vigie.store import Store

log = logging.getLogger("vigie.cluster")

# Task names, as stored in procrastinate_jobs.task_name.
CRAWL = "vigie.crawl"  # (platform: str, channel: str, egress: str)
CLASSIFY = "vigie.classify"  # (batch_id: str): the posts claimed for that batch
# (held_before: bool): networks refreshed and indexed, alerts raised; `held_before`: whether
# the store held classified posts before the batch that asked for it (the alert rules' baseline)
AFTER_CLASSIFY = "vigie.after_classify"
REMOVAL_CHECKS = "vigie.removal_checks"  # ()
ES_REPLAY = "vigie.es_replay"  # ()
ALERTS = "vigie.alerts"  # (): alert rules and due deliveries
CONTROL_TASKS = (AFTER_CLASSIFY, REMOVAL_CHECKS, ES_REPLAY, ALERTS)

CLASSIFY_QUEUE = "classify"
CONTROL_QUEUE = "control"  # after_classify, removal checks, replay, alerts
CRAWL_QUEUE_PREFIX = "crawl."

# The store's connections stay few: a daemon or worker defers from a handful of threads.
POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 4


def crawl_queue(egress: str) -> str:
    """The queue of an egress's crawls: only workers leaving by that egress take them."""
    return f"{CRAWL_QUEUE_PREFIX}{egress}"


def crawl_lock(platform: str, channel: str) -> str:
    """The lock and queueing lock of a source's crawls."""
    return f"crawl:{platform}:{channel}"


def egress_of(config: VigieConfig, platform: str, channel: str) -> str:
    """The egress a source's crawls use: its own `egress`, else one of `cluster.egresses`
    chosen by a stable hash of the source (the same on every machine)."""
    for source in config.sources:
        if source.platform == platform and source.channel.lower() == channel.lower() and source.egress:
            return source.egress
    names = sorted(config.cluster.egresses)
    if not names:  # the configuration's validation forbids it
        raise ConfigurationError("cluster.egresses: at least one egress is needed (e.g. default: {})")
    digest = hashlib.sha256(f"{platform}:{channel.lower()}".encode()).digest()
    return names[int.from_bytes(digest[:8], "big") % len(names)]


def conninfo(store_url: str) -> str:
    """The libpq connection string of a postgresql[+psycopg]:// store URL."""
    from psycopg.conninfo import make_conninfo
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(store_url)
    except ArgumentError:
        url = None
    if url is None or url.get_backend_name() not in ("postgresql", "postgres"):
        raise ConfigurationError(
            "cluster mode needs a PostgreSQL store (store.url or $VIGIE_STORE_URL = "
            "postgresql+psycopg://USER@HOST/DB); this store is not one"
        )
    params: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
    }
    for key, value in url.query.items():
        params[key] = value if isinstance(value, str) else value[-1]
    return make_conninfo("", **{k: v for k, v in params.items() if v not in (None, "")})


def make_app(config: VigieConfig) -> procrastinate.App:
    """The procrastinate app on the store's database (not yet opened)."""
    import procrastinate

    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo(config.store_url()), min_size=POOL_MIN_SIZE, max_size=POOL_MAX_SIZE
    )
    return procrastinate.App(connector=connector)


def ensure_schema(config: VigieConfig) -> None:
    """Install procrastinate's tables in the store's database when they are missing (once,
    under an advisory lock: daemons and workers starting together would race to)."""
    from procrastinate.schema import SchemaManager

    from vigie.store import Store
    from vigie.store.cluster import install_queue_schema

    conninfo(config.store_url())  # a clear error for a store that is not PostgreSQL
    with Store(config.store_url()) as store:
        if install_queue_schema(store, SchemaManager.get_schema()):
            log.info("job queue tables installed in the store's database")


# How long a defer waits for another node deferring a job of the same lock.
DEFER_LOCK_WAIT_SECONDS = 30.0


def defer(
    app: procrastinate.App,
    store: Store,
    task: str,
    queue: str,
    lock: str,
    **kwargs: Any,
) -> int | None:
    """Enqueue TASK (by name) in QUEUE with KWARGS; its job id, or None when a job with the
    same `lock` waits already (to run, or to be retried)."""
    from vigie.store.cluster import deferring

    deferrer = app.configure_task(name=task, queue=queue, lock=lock)
    with deferring(store, lock, DEFER_LOCK_WAIT_SECONDS) as waiting:
        if waiting is not None:
            return None
        return deferrer.defer(**kwargs)


def defer_crawl(
    app: procrastinate.App, store: Store, config: VigieConfig, platform: str, channel: str
) -> int | None:
    egress = egress_of(config, platform, channel)
    return defer(
        app,
        store,
        CRAWL,
        crawl_queue(egress),
        lock=crawl_lock(platform, channel),
        platform=platform,
        channel=channel,
        egress=egress,
    )


def defer_classify(app: procrastinate.App, batch_id: str) -> int:
    """A batch's job: batches are claimed apart, so none waits for another."""
    job_id: int = app.configure_task(name=CLASSIFY, queue=CLASSIFY_QUEUE).defer(batch_id=batch_id)
    return job_id


def defer_control(app: procrastinate.App, store: Store, task: str, **kwargs: Any) -> int | None:
    """One of CONTROL_TASKS: one at a time, at most one waiting (whose KWARGS stand when
    another is deferred meanwhile)."""
    if task not in CONTROL_TASKS:
        raise ValueError(f"{task!r} is not a control task ({', '.join(CONTROL_TASKS)})")
    return defer(app, store, task, CONTROL_QUEUE, lock=task, **kwargs)
