"""`vigie worker` on a real PostgreSQL store with the trained classifier: queued batches are
classified, every post once, their claims released; a worker killed in the middle of a batch
loses nothing and classifies nothing twice once its job is retried; a worker the queue forgot
registers again; SIGTERM stops it cleanly. One test: each worker process loads the classifier,
which is most of its time."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text

from pipeline.cluster import queue
from pipeline.cluster.tasks import CLASSIFY_RUN
from vigie.config_file import load_config
from vigie.records import Post
from vigie.store import Store, claims
from vigie.store.cluster import SessionLock, list_nodes

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SAMPLES = Path(__file__).resolve().parents[2] / "crawlers" / "telegram" / "samples" / "channels"
CHANNELS = ("uk_boat_express", "kurd_game_dunkirk", "safe_routes_info")
BATCH = 6


def _sample_posts(limit: int) -> list[Post]:
    found: list[Post] = []
    for channel in CHANNELS:
        data = json.loads((SAMPLES / f"{channel}.json").read_text(encoding="utf-8"))
        for item in data["posts"]:
            if item.get("text"):
                found.append(
                    Post(
                        "telegram",
                        channel,
                        item["id"],
                        f"https://t.me/{channel}/{item['id']}",
                        item["text"],
                        item["date"],
                    )
                )
    return found[:limit]


def _model_id() -> str:
    meta = Path.home() / ".cache" / "vigie" / "classifiers" / "default" / "vigie_classifier.json"
    if not meta.is_file():
        pytest.skip("no trained classifier in ~/.cache/vigie/classifiers/default")
    loaded = json.loads(meta.read_text(encoding="utf-8"))
    return str(loaded.get("fingerprint") or loaded.get("trained_at"))


@pytest.fixture
def cluster(tmp_path: Path, fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("VIGIE_STORE_URL", fresh_pg_url)  # a URL with a password: never in a file
    config_path = tmp_path / "vigie.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "data"),
                "pipeline": {"batch_size": 2},  # three saves per batch: a kill lands between them
                "cluster": {"heartbeat_seconds": 1, "lease_seconds": 5, "egresses": {"default": {}}},
            }
        ),
        encoding="utf-8",
    )
    config = load_config(config_path)
    queue.ensure_schema(config)
    with Store(fresh_pg_url) as store:
        store.upsert_posts(_sample_posts(2 * BATCH))
    return {"config": config, "path": config_path, "url": fresh_pg_url, "tmp": tmp_path}


def _defer(config: Any, batch_ids: list[str]) -> list[int]:
    app = queue.make_app(config)
    with app.open():
        return [job for b in batch_ids if (job := queue.defer_classify(app, b)) is not None]


def _start_worker(c: dict[str, Any], name: str, *flags: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")}
    env["VIGIE_CONFIG"] = str(c["path"])
    env["VIGIE_STORE_URL"] = c["url"]
    log = open(c["tmp"] / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "vigie", *flags, "worker", "--name", name, "--concurrency", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _jobs(url: str) -> dict[int, tuple[str, str]]:
    with Store(url, read_only=True) as store:
        rows = store.db.execute("SELECT id, task_name, status::text FROM procrastinate_jobs").fetchall()
    return {int(r[0]): (r[1], r[2]) for r in rows}


def _analysed(url: str) -> dict[str, str]:
    with Store(url, read_only=True) as store:
        rows = store.db.execute("SELECT post_key, processed_at FROM analysis").fetchall()
    return {r[0]: r[1] for r in rows}


def _wait(
    what: str, check: Any, timeout: float, workers: dict[str, subprocess.Popen[bytes]], tmp: Path
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := check()) is not None and found is not False:
            return found
        for name, worker in workers.items():
            if worker.poll() is not None:
                log = (tmp / f"{name}.log").read_text()[-3000:]
                pytest.fail(f"worker {name} exited ({worker.returncode}) waiting for {what}:\n{log}")
        time.sleep(0.2)
    logs = "\n".join(f"-- {name}:\n{(tmp / f'{name}.log').read_text()[-2000:]}" for name in workers)
    pytest.fail(f"timed out waiting for {what}:\n{logs}")


def _retry_stalled(config: Any) -> list[int]:
    """What the leader's sweep does: jobs of silent workers go back to the queue."""

    async def retry() -> list[int]:
        app = queue.make_app(config)
        async with app.open_async():
            manager = app.job_manager
            stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=2))
            for job in stalled:
                await manager.retry_job(job)
            return [int(job.id) for job in stalled if job.id is not None]

    return asyncio.run(retry())


def _succeeded(url: str, job: int) -> bool:
    return _jobs(url)[job][1] == "succeeded"


def _stop(worker: subprocess.Popen[bytes], sig: signal.Signals) -> int:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
    return worker.wait(90)  # a process that loaded torch takes seconds to exit


def test_a_killed_worker_loses_nothing_and_a_second_classifies_each_post_once(cluster):
    """One story with two workers, started together (each loads the classifier, the slow
    part): each announces itself once it can classify; the first batch on the fresh store sets
    no alert baseline; the worker that takes the second batch is killed in the middle of it,
    and the other classifies only what was not saved, survives the queue forgetting it, and
    stops cleanly on SIGTERM."""
    config, url, tmp = cluster["config"], cluster["url"], cluster["tmp"]
    model = _model_id()
    with Store(url) as store:
        first_batch, second_batch = (claims.claim_pending(store, model, BATCH, 1)[0] for _ in range(2))
        keys = {b: claims.batch_keys(store, b) for b in (first_batch, second_batch)}
    assert all(len(k) == BATCH for k in keys.values())

    workers = {name: _start_worker(cluster, name, "-v") for name in ("w1", "w2")}
    try:

        def announced() -> bool:
            with Store(url, read_only=True) as store:
                return {n["node_id"] for n in list_nodes(store)} == set(workers)

        _wait("the workers' rows", announced, 180, workers, tmp)
        for name in workers:  # loaded before it said it could work
            assert "classifier loaded" in (tmp / f"{name}.log").read_text()
        _wait("their queue registrations", lambda: _queue_workers(url) == 2, 30, workers, tmp)

        # A fresh store: the first networks found are alerts, not a baseline.
        (first_job,) = _defer(config, [first_batch])
        _wait("the first networks pass", lambda: _after_classify_args(url) or None, 120, workers, tmp)
        assert _after_classify_args(url) == [{"held_before": False}]
        (first_pass,) = (j for j, (task, _) in _jobs(url).items() if task == queue.AFTER_CLASSIFY)
        _wait("the first networks pass done", lambda: _succeeded(url, first_pass), 60, workers, tmp)
        assert _succeeded(url, first_job)

        # The worker that takes the second batch is killed while its save waits for the
        # repost lock (held here): it classified the batch and stored none of it.
        reposts = SessionLock(queue.conninfo(url), "vigie:reposts")
        assert reposts.try_acquire()
        try:
            (second_job,) = _defer(config, [second_batch])
            started = f"Starting job {queue.CLASSIFY}[{second_job}]"
            _wait(
                "the second batch taken",
                lambda: (
                    _jobs(url)[second_job][1] == "doing"
                    and any(started in (tmp / f"{n}.log").read_text() for n in workers)
                ),
                120,
                workers,
                tmp,
            )
            (killed,) = (n for n in workers if started in (tmp / f"{n}.log").read_text())
            time.sleep(1.0)  # its inference done, the save waiting
            _stop(workers[killed], signal.SIGKILL)
        finally:
            reposts.release()
            reposts.close()
        before = _analysed(url)
        assert len(before) == BATCH  # the first batch only
        (survivor,) = set(workers) - {killed}
        time.sleep(2.5)  # the killed worker's heartbeat goes stale
        assert _retry_stalled(config) == [second_job]
        alive = {survivor: workers[survivor]}

        done = _wait(
            "every job done",
            lambda: (
                (j := _jobs(url))
                and all(status == "succeeded" for _, status in j.values())
                and sum(task == queue.AFTER_CLASSIFY for task, _ in j.values()) == 2
                and j
            ),
            120,
            alive,
            tmp,
        )
        assert done[second_job] == (queue.CLASSIFY, "succeeded")
        # The retried batch found the first batch's posts classified: the alert rules' baseline.
        assert _after_classify_args(url) == [{"held_before": False}, {"held_before": True}]
        after = _analysed(url)
        # Every post analysed; those saved before the kill were not classified again.
        assert set(after) == {k for ks in keys.values() for k in ks}
        assert all(after[k] == before[k] for k in before)
        with Store(url, read_only=True) as store:
            assert claims.active_batches(store) == {}
            runs = [r for r in store.runs(100) if r["command"] == CLASSIFY_RUN and r["status"] == "ok"]
            by_job = {s["job_id"]: s for s in (json.loads(r["stats"]) for r in runs)}
            nodes = {n["node_id"]: n for n in list_nodes(store)}
        assert len(runs) == 2 and set(by_job) == {first_job, second_job}
        assert by_job[first_job]["process"]["processed"] == BATCH
        assert by_job[second_job]["node"] == survivor
        assert by_job[second_job]["process"]["processed"] == 2 * BATCH - len(before)
        assert nodes[survivor]["role"] == "worker" and nodes[survivor]["egress"] == "default"
        assert nodes[survivor]["stopped_at"] is None
        assert nodes[survivor]["detail"]["model_id"] == model  # what the planner claims batches for

        # The leader's sweep forgets a worker it thought silent; the worker registers again.
        with Store(url) as store, store.transaction() as c:
            c.execute(text("DELETE FROM procrastinate_workers"))
        app = queue.make_app(config)
        with app.open(), Store(url) as store:
            job = queue.defer_control(app, store, queue.REMOVAL_CHECKS)
        assert job is not None
        _wait("the job taken", lambda: _jobs(url)[job][1] != "todo", 60, alive, tmp)
        assert "registering again" in (tmp / f"{survivor}.log").read_text()
        with Store(url) as store, store.transaction() as c:
            c.execute(text("DELETE FROM procrastinate_workers"))
    finally:
        codes = {name: _stop(worker, signal.SIGTERM) for name, worker in workers.items()}
    out = (tmp / f"{survivor}.log").read_text()
    assert codes[survivor] == 0, out[-3000:]
    assert "unexpected error" not in out
    with Store(url, read_only=True) as store:
        assert {n["node_id"]: n for n in list_nodes(store)}[survivor]["stopped_at"] is not None


def _after_classify_args(url: str) -> list[Any]:
    with Store(url, read_only=True) as store:
        rows = store.db.execute(
            "SELECT args FROM procrastinate_jobs WHERE task_name = 'vigie.after_classify' ORDER BY id"
        ).fetchall()
    return [r[0] for r in rows]


def _queue_workers(url: str) -> int:
    with Store(url, read_only=True) as store:
        return int(store.db.execute("SELECT count(*) FROM procrastinate_workers").fetchone()[0])
