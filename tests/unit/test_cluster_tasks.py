"""The worker's jobs on procrastinate's own in-memory queue: a crawl stopped because the worker
stops goes back to the queue, a worker finishing its jobs in hand keeps its heartbeat, a crawl
waiting for a busy egress waits longer each time, and the node says which classifier it holds."""

from __future__ import annotations

import asyncio
import datetime
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import procrastinate
import pytest
from procrastinate.jobs import Job
from procrastinate.testing import InMemoryConnector
from procrastinate.worker import Worker

from pipeline.cluster import queue, tasks
from pipeline.cluster.worker import node_detail, register_tasks, run_beating
from vigie.config_file import parse_config
from vigie.store import Store

BEAT = 0.05


def _job(attempts: int) -> Job:
    return Job(
        id=1,
        queue="crawl.default",
        lock=None,
        queueing_lock=None,
        task_name=queue.CRAWL,
        attempts=attempts,
    )


def _seconds_until(decision: Any) -> float:
    assert decision is not None and decision.retry_at is not None
    return (decision.retry_at - datetime.datetime.now(datetime.UTC)).total_seconds()


def test_a_crawl_waiting_for_its_egress_waits_longer_each_time_up_to_a_minute() -> None:
    assert [tasks.egress_busy_wait(n) for n in range(7)] == [5, 10, 20, 40, 60, 60, 60]
    assert tasks.egress_busy_wait(1000) == 60
    retry = tasks.JobRetry(max_attempts=3)
    # Past `max_attempts` too: a crawl never fails for having waited.
    for attempts, wait in ((0, 5), (2, 20), (9, 60)):
        seconds = _seconds_until(
            retry.get_retry_decision(exception=tasks.EgressBusy("busy"), job=_job(attempts))
        )
        assert wait - 2 < seconds <= wait
    assert retry.get_retry_decision(exception=RuntimeError("boom"), job=_job(3)) is None


def test_an_interrupted_job_comes_back_at_once_however_often_it_was_tried() -> None:
    retry = tasks.JobRetry(max_attempts=2)
    seconds = _seconds_until(retry.get_retry_decision(exception=tasks.Interrupted("stopping"), job=_job(5)))
    assert -2 < seconds <= 0


class _SleepingChild(tasks.NodeContext):
    """A node whose `vigie` children are a process that sleeps until it is stopped."""

    def argv(self, config_path: str | None, *args: str) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(60)"]


async def _until_async(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


def _worker(app: procrastinate.App, **kwargs: Any) -> Worker:
    return Worker(
        app=app,
        install_signal_handlers=False,
        update_heartbeat_interval=BEAT,
        fetch_job_polling_interval=BEAT,
        abort_job_polling_interval=BEAT,
        **kwargs,
    )


def test_a_crawl_stopped_with_the_worker_goes_back_to_the_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = parse_config({"data_dir": str(tmp_path), "cluster": {"egresses": {"default": {}}}})
    Store(config.store_url()).close()  # the runs the child would record are read from it
    node = _SleepingChild(config=config, config_path=None, node="n1")
    monkeypatch.setattr(tasks, "_egress", lambda config, egress: _no_lock())
    connector = InMemoryConnector()
    app = procrastinate.App(connector=connector)
    register_tasks(app)

    async def scenario() -> int:
        async with app.open_async():
            job_id = await queue_crawl(app)
            worker = _worker(
                app, queues=[queue.crawl_queue("default")], additional_context={tasks.CONTEXT_KEY: node}
            )
            running = asyncio.create_task(run_beating(app, worker, BEAT))
            await _until_async(lambda: connector.jobs[job_id]["status"] == "doing")
            await asyncio.sleep(0.5)  # the child runs
            node.stopping.set()  # what the worker's SIGTERM handler does
            worker.stop()
            await asyncio.wait_for(running, 30)
            return job_id

    job_id = asyncio.run(scenario())
    row = connector.jobs[job_id]
    assert row["status"] == "todo"  # not `aborted`: another worker takes it
    assert row["attempts"] == 1
    assert row["scheduled_at"] <= datetime.datetime.now(datetime.UTC)
    assert [e["type"] for e in connector.events[job_id]][-1] == "deferred_for_retry"


def test_a_crawl_aborted_on_request_is_final(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config({"data_dir": str(tmp_path), "cluster": {"egresses": {"default": {}}}})
    Store(config.store_url()).close()
    node = _SleepingChild(config=config, config_path=None, node="n1")
    monkeypatch.setattr(tasks, "_egress", lambda config, egress: _no_lock())
    connector = InMemoryConnector()
    app = procrastinate.App(connector=connector)
    register_tasks(app)

    async def scenario() -> int:
        async with app.open_async():
            job_id = await queue_crawl(app)
            worker = _worker(
                app, queues=[queue.crawl_queue("default")], additional_context={tasks.CONTEXT_KEY: node}
            )
            running = asyncio.create_task(run_beating(app, worker, BEAT))
            await _until_async(lambda: connector.jobs[job_id]["status"] == "doing")
            await app.job_manager.cancel_job_by_id_async(job_id, abort=True)
            await _until_async(lambda: connector.jobs[job_id]["status"] != "doing")
            worker.stop()
            await asyncio.wait_for(running, 30)
            return job_id

    job_id = asyncio.run(scenario())
    assert connector.jobs[job_id]["status"] == "aborted"


class _no_lock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


async def queue_crawl(app: procrastinate.App) -> int:
    job_id = await app.configure_task(name=queue.CRAWL, queue=queue.crawl_queue("default")).defer_async(
        platform="telegram", channel="some_channel", egress="default"
    )
    return int(job_id)


def test_the_worker_keeps_its_heartbeat_until_the_jobs_in_hand_end() -> None:
    connector = InMemoryConnector()
    app = procrastinate.App(connector=connector)
    started, release = threading.Event(), threading.Event()

    @app.task(name="test.long_batch")
    def long_batch() -> None:
        started.set()
        release.wait(20)

    async def scenario() -> None:
        async with app.open_async():
            job_id = await long_batch.defer_async()
            worker = _worker(app)
            running = asyncio.create_task(run_beating(app, worker, BEAT))
            try:
                await _until_async(started.is_set)
                worker.stop()
                await asyncio.sleep(10 * BEAT)  # procrastinate's own heartbeat is cancelled by now
                worker_id = worker.worker_id
                assert worker_id is not None  # still waiting for its job
                seen = connector.workers[worker_id]
                await asyncio.sleep(10 * BEAT)
                assert connector.workers[worker_id] > seen
            finally:
                release.set()
            await asyncio.wait_for(running, 20)
            assert connector.jobs[job_id]["status"] == "succeeded"
            assert connector.workers == {}  # unregistered once its job ended

    asyncio.run(scenario())


def test_the_node_detail_names_the_classifier_it_holds() -> None:
    clf: Any = SimpleNamespace(meta={"fingerprint": "3f2a9c", "trained_at": "2026-11-30T10:00:00+00:00"})
    queues = ["crawl.default", "classify", "control"]
    assert node_detail(2, queues, clf) == {"concurrency": 2, "queues": queues, "model_id": "3f2a9c"}
    older: Any = SimpleNamespace(meta={"trained_at": "2026-11-30T10:00:00+00:00"})
    assert node_detail(1, queues, older)["model_id"] == "2026-11-30T10:00:00+00:00"
    assert "model_id" not in node_detail(1, ["crawl.default"], None)
