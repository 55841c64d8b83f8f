"""`vigie worker`: one cluster worker process. It loads its classifier first, then takes jobs
from the queues of its egress's crawls, of classification and of the control jobs, says it is
alive (procrastinate's worker heartbeat, and its row in `cluster_nodes`), and stops cleanly on
SIGTERM or SIGINT: crawls in hand are stopped and go back to the queue at once (they are
incremental), a classification in hand finishes first, and the worker keeps its queue heartbeat
until it has (`run_beating`): procrastinate stops its own heartbeat before it waits for the
jobs in hand, and a batch longer than `lease_seconds` would otherwise be handed to another
worker by the leader's sweep while this one still saves it.

The classifier is loaded before the worker announces itself: a load that takes a minute on a
busy machine would otherwise outlast `lease_seconds`, and the leader's sweep would hand the
worker's jobs to others and forget it. A worker the queue forgot all the same (silent too
long) registers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from typing import TYPE_CHECKING, Any

from pipeline.cluster import queue
from vigie.config import VigieConfig
from vigie.errors import ConfigurationError

if TYPE_CHECKING:
    import procrastinate
    from procrastinate.worker import Worker

log = logging.getLogger("vigie.cluster")


def choose_egress(config: VigieConfig, egress: str | None) -> str:
    """The egress this worker crawls by: the one named, else the only one configured."""
    names = sorted(config.cluster.egresses)
    if egress is None:
        if len(names) == 1:
            return names[0]
        raise ConfigurationError(f"name this worker's egress with --egress (one of {', '.join(names)})")
    if egress not in config.cluster.egresses:
        raise ConfigurationError(
            f"--egress {egress!r}: not in cluster.egresses (expected one of {', '.join(names)})"
        )
    return egress


def worker_queues(egress: str) -> list[str]:
    return [queue.crawl_queue(egress), queue.CLASSIFY_QUEUE, queue.CONTROL_QUEUE]


def node_name(name: str | None) -> str:
    return name or f"{socket.gethostname()}-{os.getpid()}"


def node_detail(concurrency: int, queues: list[str], clf: Any | None) -> dict[str, Any]:
    """The worker's `cluster_nodes` detail; `model_id`: the fingerprint of the classifier it
    holds (what the leader's planner claims batches for)."""
    detail: dict[str, Any] = {"concurrency": concurrency, "queues": queues}
    if clf is not None:
        from pipeline.enrich.process import model_id

        detail["model_id"] = model_id(clf)
    return detail


async def run_beating(app: procrastinate.App, worker: Worker, interval: float) -> None:
    """`worker.run()`, with a heartbeat of its own every `interval` seconds for as long as it
    runs. procrastinate cancels its heartbeat first when the worker stops, then waits for the
    jobs in hand without a limit: this one goes on until they have ended, so the leader's
    sweep does not take a classification from a worker still finishing it."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(interval)
            worker_id = worker.worker_id
            if worker_id is None:
                continue
            try:
                await app.job_manager.update_heartbeat(worker_id)
            except Exception as exc:  # the next beat tries again; the lease is several beats
                log.warning("queue heartbeat failed: %s: %s", type(exc).__name__, exc)

    beating = asyncio.create_task(beat(), name="vigie-heartbeat")
    try:
        await worker.run()
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


def register_tasks(app: procrastinate.App) -> None:
    """The job bodies, under the contract's names (no namespace prefix)."""
    from pipeline.cluster.tasks import blueprint

    for name, task in blueprint.tasks.items():
        task.blueprint = app
        app.tasks[name] = task


class _NodeBeat(threading.Thread):
    """The node's row in `cluster_nodes`: registered, kept alive every `heartbeat_seconds`
    with the queue's worker id once it has one, and marked stopped at the end."""

    def __init__(self, config: VigieConfig, node: str, egress: str, detail: dict[str, Any]) -> None:
        super().__init__(name="node-heartbeat", daemon=True)
        self.config, self.node, self.egress, self.detail = config, node, egress, detail
        self.worker: Worker | None = None
        self.done = threading.Event()

    def register(self) -> None:
        from vigie.store import Store
        from vigie.store.cluster import register_node

        with Store(self.config.store_url()) as store:
            register_node(
                store, self.node, "worker", socket.gethostname(), os.getpid(), self.egress, self.detail
            )

    def run(self) -> None:
        from vigie.store import Store
        from vigie.store.cluster import heartbeat_node

        store: Store | None = None  # this thread's own, kept open between beats
        while not self.done.wait(self.config.cluster.heartbeat_seconds):
            worker_id = self.worker.worker_id if self.worker is not None else None
            if worker_id is not None:
                self.detail["procrastinate_worker_id"] = worker_id
            try:
                store = store or Store(self.config.store_url())
                heartbeat_node(store, self.node, detail=self.detail)
            except Exception as exc:  # the queue's own heartbeat decides about the jobs
                log.warning(
                    "node heartbeat failed: %s: %s", type(exc).__name__, exc, extra={"node": self.node}
                )
                if store is not None:
                    store.close()
                store = None
        if store is not None:
            store.close()

    def stop(self) -> None:
        from vigie.store import Store
        from vigie.store.cluster import stop_node

        self.done.set()
        try:
            with Store(self.config.store_url()) as store:
                stop_node(store, self.node)
        except Exception as exc:
            log.warning("node not marked stopped: %s: %s", type(exc).__name__, exc, extra={"node": self.node})


def run_worker(
    config: VigieConfig,
    config_path: str | None,
    egress: str | None,
    name: str | None,
    concurrency: int,
    metrics_port: int | None,
    verbose: bool = False,
    log_format: str = "text",
) -> int:
    """Run the worker until SIGTERM or SIGINT; its exit status."""
    from pipeline.cluster import tasks

    queue.conninfo(config.store_url())  # a clear error for a store that is not PostgreSQL
    egress = choose_egress(config, egress)
    node = node_name(name)
    queue.ensure_schema(config)
    tasks.set_attempts(config.cluster.job_attempts)
    port = config.cluster.metrics_port if metrics_port is None else metrics_port
    if port:
        from pipeline.cluster import metrics

        metrics.serve(port)
    queues = worker_queues(egress)
    context = tasks.NodeContext(
        config=config, config_path=config_path, node=node, verbose=verbose, log_format=log_format
    )
    clf = context.classifier() if queue.CLASSIFY_QUEUE in queues else None  # before it says it can work
    beat = _NodeBeat(config, node, egress, node_detail(concurrency, queues, clf))
    beat.register()
    beat.start()
    try:
        asyncio.run(_work(config, context, queues, concurrency, beat))
    finally:
        beat.stop()
    log.info("worker %s stopped", node, extra={"node": node})
    return 0


def _forgotten(exc: BaseException) -> bool:
    """Whether a queue error says this worker's registration is gone (the leader's sweep
    forgot a worker silent longer than `lease_seconds`): its id no longer exists."""
    from psycopg.errors import ForeignKeyViolation

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ForeignKeyViolation):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def _work(
    config: VigieConfig, context: Any, queues: list[str], concurrency: int, beat: _NodeBeat
) -> None:
    from procrastinate.exceptions import ConnectorException
    from procrastinate.worker import Worker

    from pipeline.cluster.tasks import CONTEXT_KEY
    from vigie.store import one_line

    app = queue.make_app(config)
    register_tasks(app)
    extra = {"node": context.node}
    async with app.open_async():
        while True:
            worker = Worker(
                app=app,
                queues=queues,
                name=context.node,
                concurrency=concurrency,
                additional_context={CONTEXT_KEY: context},
                install_signal_handlers=False,
                update_heartbeat_interval=config.cluster.heartbeat_seconds,
                stalled_worker_timeout=config.cluster.lease_seconds,
            )
            beat.worker = worker
            loop = asyncio.get_running_loop()

            def stop(worker: Worker = worker) -> None:
                if not context.stopping.is_set():
                    log.info(
                        "stopping: crawls in hand go back to the queue, a classification in hand "
                        "finishes first",
                        extra=extra,
                    )
                context.stopping.set()
                worker.stop()

            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop)
            try:
                await run_beating(app, worker, config.cluster.heartbeat_seconds)
                return
            except ConnectorException as exc:
                if context.stopping.is_set():
                    log.warning(
                        "the job queue failed while stopping (%s); this worker's jobs are retried "
                        "by the leader's sweep",
                        "it had forgotten this worker" if _forgotten(exc) else one_line(exc),
                        extra=extra,
                    )
                    return
                if not _forgotten(exc):
                    raise
                log.warning(
                    "the job queue forgot this worker (silent longer than cluster.lease_seconds, "
                    "its jobs given to others): registering again",
                    extra=extra,
                )
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
