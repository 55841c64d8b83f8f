"""`vigie daemon --cluster` on a real PostgreSQL store: one leader among two daemons, a
takeover within the poll interval when the leader is killed, the jobs it enqueues (once per
source while one waits), the classification batches it plans, and the retry of a stalled job."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from procrastinate.jobs import Status
from sqlalchemy import text

from pipeline.cluster import queue
from tests.support import waiting
from vigie.config_file import parse_config
from vigie.records import Post
from vigie.store import Store, utcnow
from vigie.store.cluster import (
    SessionLock,
    active_classify_batches,
    list_nodes,
    lock_holder_pids,
)
from vigie.store.cluster_status import queue_depths
from vigie.store.discovery import decide

pytestmark = pytest.mark.postgres

POLL = 1.0
CHANNEL = "alpha_chan"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20, every: float = 0.1) -> Any:
    return waiting.wait_for(what, check, timeout, every)


class Nodes:
    """`vigie daemon --cluster` processes of one test; whatever still runs at the end is killed."""

    def __init__(self, tmp_path: Path, store_url: str) -> None:
        self.tmp_path = tmp_path
        self.store_url = store_url
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, config: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIGIE_ES_URL", "VIGIE_CONFIG")}
        env.update(PYTHONUNBUFFERED="1", VIGIE_STORE_URL=self.store_url)
        with open(self.tmp_path / f"{name}.out", "wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "vigie",
                    "-v",
                    "--config",
                    str(config),
                    "daemon",
                    "--cluster",
                    "--name",
                    name,
                    *args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def output(self, name: str) -> str:
        return (self.tmp_path / f"{name}.out").read_text("utf-8", "replace")

    def cleanup(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture
def nodes(tmp_path: Path, fresh_pg_url: str) -> Iterator[Nodes]:
    n = Nodes(tmp_path, fresh_pg_url)
    yield n
    n.cleanup()


def write_config(tmp_path: Path) -> Path:
    model_dir = tmp_path / "classifier"
    model_dir.mkdir()
    # Only the metadata: the leader reads the model's fingerprint, never the model.
    (model_dir / "vigie_classifier.json").write_text(json.dumps({"fingerprint": "model-under-test"}))
    data = {
        "data_dir": str(tmp_path / "data"),
        "classifier": {"model_dir": str(model_dir)},
        "sources": [{"platform": "telegram", "channel": CHANNEL, "every_minutes": 0.03}],  # ~2 s
        # Approved sources are re-read every crawl interval when that is under a minute.
        "daemon": {"removal_check_every_minutes": 600, "crawl_every_minutes": 0.05},
        "cluster": {
            "heartbeat_seconds": 0.5,
            "leader_poll_seconds": POLL,
            "lease_seconds": 5,
            "plan_every_seconds": 0.5,
            "classify_batch": 2,
        },
    }
    path = tmp_path / "vigie.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def holder_names(store: Store) -> list[str]:
    """The application names of the sessions holding the leader lock."""
    pids = lock_holder_pids(store, "vigie:leader")
    with store.reading() as c:
        rows = c.execute(
            text("SELECT application_name FROM pg_stat_activity WHERE pid = ANY(:pids)"), {"pids": pids}
        )
        return sorted(r[0] for r in rows)


def leaders(store: Store) -> list[str]:
    return [n["node_id"] for n in list_nodes(store) if n["role"] == "leader" and not n["stopped_at"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metrics_text(port: int) -> str:
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except requests.RequestException:
        return ""


def claimed(store: Store) -> dict[str, str]:
    """Post key -> the batch holding it."""
    with store.reading() as c:
        return {r[0]: r[1] for r in c.execute(text("SELECT post_key, batch_id FROM classify_claims"))}


def jobs(store: Store, task: str) -> list[dict[str, Any]]:
    with store.reading() as c:
        rows = c.execute(
            text(
                "SELECT id, status::text AS status, queue_name, lock, queueing_lock, args, attempts "
                "FROM procrastinate_jobs WHERE task_name = :task ORDER BY id"
            ),
            {"task": task},
        )
        return [dict(r._mapping) for r in rows]


def test_one_leader_takeover_enqueues_and_retries_stalled(
    tmp_path: Path, fresh_pg_url: str, nodes: Nodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    began = time.monotonic()
    monkeypatch.setenv("VIGIE_STORE_URL", fresh_pg_url)
    config_path = write_config(tmp_path)
    store = Store(fresh_pg_url)
    store.upsert_posts(
        Post("telegram", CHANNEL, i, f"https://t.me/{CHANNEL}/{i}", f"post {i}", "2026-10-01T00:00:00+00:00")
        for i in range(1, 6)
    )
    try:
        ports = {"node-a": free_port(), "node-b": free_port()}
        for name, port in ports.items():
            nodes.start(config_path, name, "--metrics-port", str(port))
        first = wait_for("a leader", lambda: leaders(store), timeout=30)
        assert len(first) == 1
        wait_for("both nodes' rows", lambda: len(list_nodes(store)) == 2)
        assert holder_names(store) == [f"vigie leader {first[0]}"]
        other = "node-b" if first[0] == "node-a" else "node-a"
        time.sleep(2 * POLL)  # the standby keeps trying: still one leader
        assert leaders(store) == first
        assert {n["node_id"]: n["role"] for n in list_nodes(store)}[other] == "standby"

        # The source's crawl is enqueued once: its next run finds it waiting.
        crawl = wait_for("the crawl job", lambda: jobs(store, queue.CRAWL))
        assert crawl[0]["queue_name"] == "crawl.default"
        assert crawl[0]["lock"] == f"crawl:telegram:{CHANNEL}"
        assert crawl[0]["queueing_lock"] is None  # see pipeline.cluster.queue
        assert crawl[0]["args"] == {"platform": "telegram", "channel": CHANNEL, "egress": "default"}
        wait_for(
            "the crawl's second run", lambda: "a job waits already" in nodes.output(first[0]), timeout=10
        )
        assert len(jobs(store, queue.CRAWL)) == 1

        # The leader's metrics show the queue.
        gauge = 'vigie_queue_jobs{status="todo",task="vigie.crawl"} 1.0'
        wait_for("the queue gauge", lambda: gauge in metrics_text(ports[first[0]]), timeout=10)

        # Five pending posts in batches of two: three classification jobs, every post claimed once.
        wait_for("three classify jobs", lambda: len(jobs(store, queue.CLASSIFY)) == 3)
        batches = {j["args"]["batch_id"] for j in jobs(store, queue.CLASSIFY)}
        assert active_classify_batches(store) == batches
        claims = claimed(store)
        assert len(claims) == 5 and set(claims.values()) == batches
        time.sleep(1.5)  # more planning rounds claim nothing new
        assert len(jobs(store, queue.CLASSIFY)) == 3

        # kill -9 the leader: the standby leads within a poll (and a margin for the box).
        nodes.procs[first[0]].kill()
        killed = time.monotonic()
        wait_for("the lock taken over", lambda: holder_names(store) == [f"vigie leader {other}"], timeout=10)
        took = time.monotonic() - killed
        print(f"takeover took {took:.2f} s")
        assert took < POLL + 2.5, f"takeover took {took:.1f} s"
        wait_for("the new leader's row", lambda: leaders(store) == [other] or None, timeout=5)
        assert len(jobs(store, queue.CRAWL)) == 1  # the new leader's first crawl found it waiting

        # A worker that went silent while running a batch: the sweep puts the job back.
        stalled = jobs(store, queue.CLASSIFY)[0]
        with store.transaction() as c:
            worker = c.execute(
                text(
                    "INSERT INTO procrastinate_workers (last_heartbeat) "
                    "VALUES (NOW() - INTERVAL '1 hour') RETURNING id"
                )
            ).scalar_one()
            c.execute(
                text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w WHERE id = :id"),
                {"w": worker, "id": stalled["id"]},
            )

        def retried() -> bool:
            job = next(j for j in jobs(store, queue.CLASSIFY) if j["id"] == stalled["id"])
            return job["status"] == "todo" and job["attempts"] == 1

        wait_for("the stalled job retried", retried, timeout=10)

        def workers() -> int:
            with store.reading() as c:
                return int(c.execute(text("SELECT count(*) FROM procrastinate_workers")).scalar_one())

        wait_for("the silent worker forgotten", lambda: workers() == 0, timeout=5)
        assert len(jobs(store, queue.CLASSIFY)) == 3  # retried, not enqueued again

        # A batch whose job ended (failed for good here) gives its posts back.
        ended = jobs(store, queue.CLASSIFY)[1]
        with store.transaction() as c:
            c.execute(
                text("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = :id"), {"id": ended["id"]}
            )
        wait_for(
            "its claims released",
            lambda: ended["args"]["batch_id"] not in claimed(store).values(),
            timeout=10,
        )

        # A source approved in the store gets crawls of its own, without a restart.
        decide(store, "telegram", "beta_chan", "approved", "analyst", utcnow())

        def approved_crawl() -> list[dict[str, Any]]:
            return [j for j in jobs(store, queue.CRAWL) if j["args"]["channel"] == "beta_chan"]

        assert (
            wait_for("the approved source's crawl", approved_crawl, timeout=10)[0]["lock"]
            == "crawl:telegram:beta_chan"
        )

        proc = nodes.procs[other]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        row = {n["node_id"]: n for n in list_nodes(store)}[other]
        assert row["stopped_at"] and row["role"] == "standby"
        assert lock_holder_pids(store, "vigie:leader") == []
    finally:
        store.close()
    assert time.monotonic() - began < 60


def test_queue_schema_defers_and_the_leader_lock(fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIE_STORE_URL", fresh_pg_url)
    config = parse_config({"sources": [{"platform": "telegram", "channel": CHANNEL}]})
    queue.ensure_schema(config)
    queue.ensure_schema(config)  # installed already: nothing to do
    app = queue.make_app(config).open()
    try:
        with Store(fresh_pg_url) as store:
            first = queue.defer_crawl(app, store, config, "telegram", CHANNEL)
            assert first is not None
            assert queue.defer_crawl(app, store, config, "telegram", CHANNEL) is None
            assert queue.defer_classify(app, "batch-1") is not None
            assert queue.defer_control(app, store, queue.ALERTS) is not None
            assert queue.defer_control(app, store, queue.ALERTS) is None
    finally:
        app.close()
    with Store(fresh_pg_url) as store:
        assert queue_depths(store) == {
            (queue.CRAWL, "todo"): 1,
            (queue.CLASSIFY, "todo"): 1,
            (queue.ALERTS, "todo"): 1,
        }
        assert active_classify_batches(store) == {"batch-1"}
        info = queue.conninfo(fresh_pg_url)
        lock, other = SessionLock(info, "vigie:leader"), SessionLock(info, "vigie:leader")
        try:
            assert lock.try_acquire() and lock.alive()
            # The server drops a silent holder's session (and its lock) within ~30 s.
            assert lock._conn is not None
            settings = [
                lock._conn.execute(f"SHOW {name}").fetchone()
                for name in ("tcp_keepalives_idle", "tcp_keepalives_count")
            ]
            assert settings == [("10",), ("3",)]
            assert not other.try_acquire()
            assert lock_holder_pids(store, "vigie:leader") == [lock.backend_pid()]
            lock.close()  # the session ends: the server frees the lock as its backend exits
            wait_for("the lock freed", other.try_acquire, timeout=5, every=0.05)
        finally:
            lock.close()
            other.close()


def test_a_crawl_sent_back_to_the_queue_while_the_next_one_waits_does_not_stall_its_source(
    fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crawl goes back to the queue (its egress in use, its worker stopping, a failure)
    while the leader's next crawl of the same source waits: both stay in the queue and run
    one after the other. (With procrastinate's queueing lock the retry broke its unique
    index, and the first job stayed `doing` on its live worker, holding the source's lock.)"""
    monkeypatch.setenv("VIGIE_STORE_URL", fresh_pg_url)
    config = parse_config({"sources": [{"platform": "telegram", "channel": CHANNEL}]})
    queue.ensure_schema(config)
    crawls = [queue.crawl_queue("default")]

    def defer() -> int | None:
        with Store(fresh_pg_url) as store:
            return queue.defer_crawl(app, store, config, "telegram", CHANNEL)

    def statuses() -> dict[int, str]:
        with Store(fresh_pg_url) as store:
            return {j["id"]: j["status"] for j in jobs(store, queue.CRAWL)}

    async def scenario() -> None:
        async with app.open_async():
            manager = app.job_manager
            worker = await manager.register_worker()
            first = await asyncio.to_thread(defer)
            taken = await manager.fetch_job(crawls, worker)
            assert taken is not None and taken.id == first
            second = await asyncio.to_thread(defer)  # the first is running: the next one waits
            assert second is not None and second != first
            assert await asyncio.to_thread(defer) is None  # one waits already
            await manager.retry_job(taken)  # back to the queue beside the waiting one
            assert await asyncio.to_thread(statuses) == {first: "todo", second: "todo"}
            assert await asyncio.to_thread(defer) is None
            # One at a time, in order: the source's lock holds the second back.
            again = await manager.fetch_job(crawls, worker)
            assert again is not None and again.id == first
            assert await manager.fetch_job(crawls, worker) is None
            await manager.finish_job(again, status=Status.SUCCEEDED, delete_job=False)
            last = await manager.fetch_job(crawls, worker)
            assert last is not None and last.id == second
            await manager.finish_job(last, status=Status.SUCCEEDED, delete_job=False)
            assert await asyncio.to_thread(statuses) == {first: "succeeded", second: "succeeded"}

    app = queue.make_app(config)
    asyncio.run(scenario())


def test_the_leader_prunes_jobs_ended_a_week_ago_every_hour(
    fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from pipeline.cluster.leader import PRUNE_JOBS, Leader

    monkeypatch.setenv("VIGIE_STORE_URL", fresh_pg_url)
    config = parse_config({"sources": [{"platform": "telegram", "channel": CHANNEL}]})
    queue.ensure_schema(config)
    app = queue.make_app(config).open()
    try:
        ids = {
            name: queue.defer_classify(app, name) for name in ("old-ok", "old-failed", "old-todo", "new-ok")
        }
    finally:
        app.close()
    ended = {
        "old-ok": ("succeeded", 8),
        "old-failed": ("failed", 8),
        "old-todo": ("todo", 8),
        "new-ok": ("succeeded", 1),
    }
    with Store(fresh_pg_url) as store, store.transaction() as c:
        for name, (status, days) in ended.items():
            c.execute(
                text(
                    "UPDATE procrastinate_jobs SET status = CAST(:s AS procrastinate_job_status) WHERE id = :id"
                ),
                {"s": status, "id": ids[name]},
            )
            c.execute(
                text(
                    "UPDATE procrastinate_events SET at = NOW() - make_interval(days => :d) WHERE job_id = :id"
                ),
                {"d": days, "id": ids[name]},
            )
    leader = Leader(config, None, announce=lambda _line: None)
    leader.prune_jobs()
    with Store(fresh_pg_url) as store:
        left = {batch for (batch,) in store.db.execute("SELECT args->>'batch_id' FROM procrastinate_jobs")}
    assert left == {"old-todo", "new-ok"}

    leader.scheduler = leader._make_scheduler()
    leader._add_jobs()
    assert leader.scheduler.get_job(PRUNE_JOBS).trigger.interval == timedelta(hours=1)


def _analysed_by(store: Store, key: str, model: str) -> None:
    from vigie.store import analysis

    sha = next(p["content_sha256"] for p in store.posts() if p["key"] == key)
    analysis.save_analysis(
        store,
        {
            "post_key": key, "content_sha256": sha, "model_id": model, "lang": "en",
            "lang_confidence": 0.9, "score": 0.1, "is_advert": 0, "needs_review": 0, "cues": "[]",
            "entities": "{}", "cluster_id": None, "processed_at": "2026-10-01T00:00:00+00:00",
        },
    )  # fmt: skip


def test_the_leader_plans_for_the_live_workers_model_and_sweeps_safely(
    tmp_path: Path, fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    from datetime import timedelta

    from procrastinate.manager import JobManager

    from pipeline.cluster.leader import Leader
    from vigie.store.cluster import register_node, stop_node

    caplog.set_level(logging.INFO, logger="vigie.cluster.leader")
    monkeypatch.setenv("VIGIE_STORE_URL", fresh_pg_url)
    config = parse_config(yaml.safe_load(write_config(tmp_path).read_text("utf-8")))
    queue.ensure_schema(config)
    store = Store(fresh_pg_url)
    store.upsert_posts(
        Post("telegram", CHANNEL, i, f"https://t.me/{CHANNEL}/{i}", f"post {i}", "2026-10-01T00:00:00+00:00")
        for i in range(1, 7)
    )
    key = f"telegram:{CHANNEL}:%d".__mod__
    for i in (1, 2):  # done by the workers' model; pending for this node's ("model-under-test")
        _analysed_by(store, key(i), "worker-model")
    for node, model in (("w1", "worker-model"), ("w2", "worker-model"), ("w3", "other"), ("old", "old")):
        register_node(store, node, "worker", "host", 1, detail={"model_id": model})
    with store.transaction() as c:  # silent for longer than the lease: not a live worker
        c.execute(
            text("UPDATE cluster_nodes SET heartbeat_at = '2026-01-01T00:00:00+00:00' WHERE node_id = 'old'")
        )

    leader = Leader(config, None, node_name="leader", announce=lambda _line: None)
    leader.app = queue.make_app(config).open()
    leader.lock = SessionLock(leader.conninfo, "vigie:leader")
    try:
        assert leader.lock.try_acquire()
        # Most live workers run "worker-model": posts 1 and 2 are not claimed again.
        planned = leader.plan()
        assert sorted(claimed(store)) == [key(i) for i in (3, 4, 5, 6)]
        assert len(planned) == 2
        leader.plan()
        warnings = [r for r in caplog.records if "different classifiers" in r.getMessage()]
        assert len(warnings) == 1 and "planning for worker-model" in warnings[0].getMessage()

        # No live worker says its model: this node's classifier is planned for.
        for node in ("w1", "w2", "w3"):
            stop_node(store, node)
        leader.plan()
        assert sorted(claimed(store)) == sorted(key(i) for i in range(1, 7))

        # Claims of ended batches go back only once older than the grace.
        ended = {j["args"]["batch_id"] for j in jobs(store, queue.CLASSIFY)}
        assert len(ended) == 3
        with store.transaction() as c:
            c.execute(text("UPDATE procrastinate_jobs SET status = 'succeeded'"))
        assert leader.sweep()["released"] == 0  # fresh: perhaps another leader's, not enqueued yet
        old = (datetime.now(UTC) - timedelta(seconds=leader.claim_grace_seconds() + 5)).isoformat()
        with store.transaction() as c:
            c.execute(text("UPDATE classify_claims SET claimed_at = :old"), {"old": old})
        assert leader.sweep()["released"] == 6 and claimed(store) == {}

        # Two stalled jobs and one that ended meanwhile: the ended one fails its calls alone.
        stalled = [queue.defer_classify(leader.app, f"stalled-{i}") for i in (1, 2)]
        with store.transaction() as c:
            worker = c.execute(
                text(
                    "INSERT INTO procrastinate_workers (last_heartbeat) "
                    "VALUES (NOW() - INTERVAL '1 hour') RETURNING id"
                )
            ).scalar_one()
            c.execute(
                text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w WHERE id = ANY(:ids)"),
                {"w": worker, "ids": stalled},
            )
        finished = jobs(store, queue.CLASSIFY)[0]["id"]
        real = JobManager.get_stalled_jobs

        async def with_an_ended_job(self: JobManager, *args: Any, **kwargs: Any) -> list[Any]:
            gone = list(await self.list_jobs_async(id=finished))
            return gone + list(await real(self, *args, **kwargs))

        monkeypatch.setattr(JobManager, "get_stalled_jobs", with_an_ended_job)
        assert leader.sweep()["retried"] == 2
        assert {j["id"]: j["status"] for j in jobs(store, queue.CLASSIFY)}[finished] == "succeeded"
        assert any(
            f"job {finished} " in r.getMessage() and "cannot be" in r.getMessage() for r in caplog.records
        )

        # The lock went (its connection dropped): nothing is scheduled, said once.
        store.upsert_posts(
            [Post("telegram", CHANNEL, 7, f"https://t.me/{CHANNEL}/7", "new", "2026-10-02T00:00:00+00:00")]
        )
        leader.lock.close()
        assert leader.plan() == []
        assert leader.sweep() == {"retried": 0, "failed": 0, "released": 0}
        assert leader.enqueue("es-replay", ()) is None
        assert claimed(store) == {}
        lost = [r for r in caplog.records if "no longer holds the leader lock" in r.getMessage()]
        assert len(lost) == 1
    finally:
        leader.app.close()
        leader.lock.close()
        store.close()
