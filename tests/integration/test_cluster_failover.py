"""Cluster mode under failure: a real two-node Elasticsearch cluster, then a whole Vigie cluster
(two `vigie daemon --cluster`, three `vigie worker`, PostgreSQL) losing its leader, a worker in the
middle of a classification and an Elasticsearch node, and still storing, classifying and indexing
every post of the mirror exactly once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import elasticsearch
import psycopg
import pytest
from psycopg.rows import dict_row

from classifier.model import META_FILE
from crawlers.telegram.mirror import load_channels
from pipeline.cluster.queue import conninfo
from tests.conftest import run_vigie
from tests.support.es_cluster import ElasticsearchCluster, es_cluster, health
from tests.support.es_fixtures import wipe
from tests.support.waiting import wait_for
from vigie.paths import default_classifier_dir

__all__ = ["es_cluster"]  # the session fixture, imported for pytest


def _client(url: str) -> elasticsearch.Elasticsearch:
    return elasticsearch.Elasticsearch(url, max_retries=0, retry_on_timeout=False, request_timeout=30)


def _shards(url: str) -> str:
    """`_cat/shards`, to show where each copy was when a health check surprises."""
    try:
        with urllib.request.urlopen(f"{url}/_cat/shards?h=index,prirep,state,node", timeout=10) as resp:
            return str(resp.read().decode())
    except (urllib.error.URLError, OSError) as exc:
        return f"(no answer: {exc})"


def _nodes(url: str) -> dict[str, list[str]]:
    with urllib.request.urlopen(f"{url}/_nodes/_all/none", timeout=10) as resp:
        answer: dict[str, Any] = json.loads(resp.read())
    return {n["name"]: sorted(n["roles"]) for n in answer["nodes"].values()}


@pytest.mark.elasticsearch
def test_two_node_cluster_keeps_answering_and_indexing_without_its_data_node(
    es_cluster: ElasticsearchCluster,
) -> None:
    if not es_cluster.data_node.running:
        es_cluster.start()
    master_url, data_url = es_cluster.urls
    assert _nodes(master_url) == {"vigie-node-1": ["data", "master"], "vigie-node-2": ["data"]}
    assert _nodes(data_url) == _nodes(master_url)  # one cluster, seen from either node
    es = _client(master_url)
    index = "vigie-failover-check"
    es.indices.create(index=index, settings={"number_of_shards": 1, "number_of_replicas": 1})
    try:
        assert health(master_url, index=index, wait_for_status="green", timeout="60s")["status"] == "green"
        es.bulk(operations=[{"index": {"_index": index, "_id": "a"}}, {"text": "before"}], refresh=True)
        shards = cast(
            list[dict[str, str]], es.cat.shards(index=index, format="json", h="prirep,state,node").body
        )
        assert sorted(s["prirep"] for s in shards) == ["p", "r"]
        assert {s["state"] for s in shards} == {"STARTED"}
        assert {s["node"] for s in shards} == {"vigie-node-1", "vigie-node-2"}  # a copy on each

        es_cluster.data_node.kill()
        state = health(master_url, index=index, wait_for_nodes="1", timeout="30s")
        assert state["number_of_nodes"] == 1 and state["status"] == "yellow", state
        done = es.bulk(
            operations=[
                {"index": {"_index": index, "_id": "b"}},
                {"text": "after"},
                {"update": {"_index": index, "_id": "a"}},
                {"doc": {"text": "before"}},
            ],
            refresh=True,
        )
        assert not done["errors"], done
        assert [i.get("index", i.get("update"))["result"] for i in done["items"]] == ["created", "noop"]
        assert es.count(index=index)["count"] == 2
        assert es.get(index=index, id="a")["_version"] == 1

        es_cluster.start()  # node 2 back: its copy catches up with what was written without it
        back = health(master_url, index=index, wait_for_status="green", timeout="60s")
        assert back["status"] == "green" and back["number_of_nodes"] == 2, back
        assert es.count(index=index, preference="_only_nodes:vigie-node-2")["count"] == 2
    finally:
        es.indices.delete(index=index)


# -- the whole cluster under failure ---------------------------------------------------------

# Enough posts for a dozen classification batches of 8; the planted network is among them.
CHANNELS = ("rebaz_safar_uk", "safar_omid_van", "kurd_game_dunkirk", "uk_boat_express")
BATCH = 8
HEARTBEAT = 1.0
LEASE = 6.0
LEADER_POLL = 1.0
# After the leader's session ends: the standby's next try, its row saying so, and slack for 2 cores.
TAKEOVER_BOUND = LEADER_POLL + HEARTBEAT + 3.0
# A dead worker's job goes back to the queue once its heartbeat is LEASE old (it beat at most
# HEARTBEAT before the kill), at the leader's next sweep (every HEARTBEAT), with the same slack.
RETRY_AFTER = (LEASE - HEARTBEAT - 0.5, LEASE + 2 * HEARTBEAT + 3.0)
# A deadline against a hang, not a speed figure: three workers load the classifier at once on
# two cores beside two Elasticsearch nodes and PostgreSQL.
BUDGET = 300.0
# Sure adverts not yet acknowledged by the index (the review band is indexed only once an
# analyst confirms a post, and nobody reviews here).
UNINDEXED = "SELECT count(*) FROM analysis WHERE is_advert = 1 AND indexed_sha256 IS NULL"


class Nodes:
    """The `vigie` processes of the test, each in its own process group; what still runs at
    the end is stopped, then killed."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.tmp_path / f"{name}.out").open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "vigie", "--debug", *args],  # a crash shows its traceback
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> float:
        """SIGKILL the process and its group, as a crash would; when it happened (monotonic)."""
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        proc.wait(timeout=10)
        return killed

    def name_of(self, pid: int) -> str | None:
        return next((name for name, proc in self.procs.items() if proc.pid == pid), None)

    def tails(self, lines: int = 15) -> str:
        shown = []
        for name in self.procs:
            text = (self.tmp_path / f"{name}.out").read_text("utf-8", "replace").splitlines()
            shown.append(f"--- {name} (exit {self.procs[name].poll()}):\n" + "\n".join(text[-lines:]))
        return "\n".join(shown)

    def cleanup(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


class Database:
    """Read-only looks at the store's and the queue's tables, as an operator would with psql."""

    def __init__(self, store_url: str) -> None:
        self.conn = psycopg.connect(conninfo(store_url), autocommit=True, row_factory=dict_row)

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except psycopg.errors.UndefinedTable:  # the queue's tables, before the first node installs them
            return []

    def value(self, sql: str, *params: Any) -> Any:
        found = self.rows(sql, *params)
        return next(iter(found[0].values())) if found else None

    def live_nodes(self, role: str) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM cluster_nodes WHERE role = %s AND stopped_at IS NULL", role)

    def jobs(self) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT id, task_name, status::text AS status, worker_id, attempts, args FROM procrastinate_jobs"
        )

    def close(self) -> None:
        self.conn.close()


def _wait(
    what: str, check: Callable[[], Any], timeout: float, state: Callable[[], str], every: float = 0.1
) -> Any:
    return wait_for(what, check, timeout, every, state)


def _detail(row: dict[str, Any]) -> dict[str, Any]:
    detail = row.get("detail") or "{}"
    return json.loads(detail) if isinstance(detail, str) else dict(detail)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.elasticsearch
def test_cluster_loses_its_leader_a_busy_worker_and_an_es_node_and_still_does_everything_once(
    tmp_path: Path,
    fresh_pg_url: str,
    es_cluster: ElasticsearchCluster,
    mirror_factory: Callable[..., Any],
    config_file: Callable[..., Path],
) -> None:
    if not (default_classifier_dir() / META_FILE).is_file():
        pytest.skip(
            "no trained classifier in the cache (`make test` trains it with `vigie train --if-stale`)"
        )
    began = time.monotonic()
    if not es_cluster.data_node.running:
        es_cluster.start()
    es_url = es_cluster.urls[0]
    samples = load_channels()
    mirror = mirror_factory({name: samples[name] for name in CHANNELS})
    expected = {name: sorted(str(p["id"]) for p in samples[name]["posts"]) for name in CHANNELS}
    total = sum(len(ids) for ids in expected.values())
    config = config_file(
        telegram={"base_url": mirror.url},
        sources=[{"platform": "telegram", "channel": name} for name in CHANNELS],
        media={"ocr": False},
        # Each crawl runs once (at the leader's start, and again at the new leader's).
        daemon={
            "crawl_every_minutes": 30,
            "removal_check_every_minutes": 60,
            "alerts_every_minutes": 60,
            "replay_every_minutes": 0.1,
            "job_timeout_seconds": 120,
        },
        cluster={
            "classify_batch": BATCH,
            "plan_every_seconds": 1,
            "heartbeat_seconds": HEARTBEAT,
            "lease_seconds": LEASE,
            "leader_poll_seconds": LEADER_POLL,
        },
        elasticsearch={"url": es_url, "replicas": 1},
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIGIE_ES_URL", "VIGIE_CONFIG", "VIGIE_STORE_URL")
    }
    env.update(VIGIE_CONFIG=str(config), VIGIE_STORE_URL=fresh_pg_url, PYTHONUNBUFFERED="1")
    nodes = Nodes(tmp_path, env)
    db = Database(fresh_pg_url)
    es = _client(es_url)

    def state() -> str:
        jobs = [(j["id"], j["task_name"], j["status"], j["worker_id"], j["attempts"]) for j in db.jobs()]
        return (
            f"nodes: {db.rows('SELECT node_id, role, pid, heartbeat_at, stopped_at, detail FROM cluster_nodes')}\n"
            f"jobs: {jobs}\nclaims: {db.value('SELECT count(*) FROM classify_claims')}, posts: "
            f"{db.value('SELECT count(*) FROM posts')}, analysed: {db.value('SELECT count(*) FROM analysis')}, "
            f"spooled: {db.value('SELECT count(*) FROM spool')}, flagged unindexed: "
            f"{db.value(UNINDEXED)}\n"
            f"{nodes.tails()}"
        )

    try:
        for n in (1, 2):
            nodes.start(f"daemon-{n}", "daemon", "run", "--cluster", "--name", f"daemon-{n}")
        for n in (1, 2, 3):
            nodes.start(f"worker-{n}", "worker", "--name", f"worker-{n}")

        # One leader, the other daemon standing by.
        def one_leader() -> str | None:
            leaders = [nodes.name_of(r["pid"]) for r in db.live_nodes("leader")]
            standby = [nodes.name_of(r["pid"]) for r in db.live_nodes("standby")]
            return leaders[0] if len(leaders) == 1 and len(standby) == 1 and None not in leaders else None

        leader = _wait("one leader and one standby", one_leader, 60, state)
        standby = "daemon-2" if leader == "daemon-1" else "daemon-1"
        assert len(db.live_nodes("worker")) <= 3

        # The leader dies while the first crawls store their posts.
        _wait(
            "the first posts stored", lambda: db.value("SELECT count(*) FROM posts"), 120, state, every=0.05
        )
        killed_leader_at = nodes.kill(leader)

        def taken_over() -> bool:
            rows = db.live_nodes("leader")
            return [nodes.name_of(r["pid"]) for r in rows] == [standby]

        _wait("the standby to take over", taken_over, TAKEOVER_BOUND + 10, state, every=0.05)
        takeover = time.monotonic() - killed_leader_at
        assert takeover <= TAKEOVER_BOUND, f"took over after {takeover:.1f} s"
        new_leader_pid = nodes.procs[standby].pid

        # A worker dies in the middle of a classification batch (its classifier loaded: it did one).
        def worker_ids() -> dict[int, str]:
            found = {}
            for row in db.live_nodes("worker"):
                queue_id = _detail(row).get("procrastinate_worker_id")
                name = nodes.name_of(row["pid"])
                if queue_id is not None and name is not None:
                    found[int(queue_id)] = name
            return found

        def busy_worker() -> tuple[int, int, str] | None:
            jobs = [j for j in db.jobs() if j["task_name"] == "vigie.classify"]
            warm = {j["worker_id"] for j in jobs if j["status"] == "succeeded"}
            names = worker_ids()
            for job in jobs:
                if job["status"] == "doing" and job["worker_id"] in warm and job["worker_id"] in names:
                    return job["id"], job["worker_id"], names[job["worker_id"]]
            return None

        job_id, queue_worker, victim = _wait(
            "a warm worker classifying a batch", busy_worker, 90, state, 0.02
        )
        nodes.kill(victim)
        killed_worker_wall = time.time()
        analysed_before = {
            r["post_key"]: r["processed_at"] for r in db.rows("SELECT post_key, processed_at FROM analysis")
        }

        # Then Elasticsearch loses its data-only node: the cluster goes on yellow on node 1. (Its
        # indices green first: a shard whose only started copy was on node 2 would be red. And
        # there first: health on a pattern that matches no index is green at once.)
        _wait("the posts index on the cluster", lambda: "vigie-posts" in _shards(es_url), 90, state, 0.5)
        assert (
            health(es_url, index="vigie-posts*", wait_for_status="green", timeout="30s")["status"] == "green"
        )
        placed = _shards(es_url)
        es_cluster.data_node.kill()
        degraded = health(es_url, wait_for_nodes="1", timeout="30s")
        assert degraded.get("number_of_nodes") == 1 and degraded.get("status") == "yellow", (
            f"{degraded}\nshards before the kill:\n{placed}\nafter:\n{_shards(es_url)}"
        )

        active = ("todo", "doing")

        def done() -> bool:
            if db.value("SELECT count(*) FROM posts") != total:
                return False
            pending = db.value(
                "SELECT count(*) FROM posts p LEFT JOIN analysis a ON a.post_key = p.key WHERE a.post_key IS NULL"
            )
            backlog = [
                j
                for j in db.jobs()
                if j["status"] in active
                and j["task_name"] in ("vigie.crawl", "vigie.classify", "vigie.after_classify")
            ]
            claims = db.value("SELECT count(*) FROM classify_claims")
            spooled = db.value("SELECT count(*) FROM spool")
            unindexed = db.value(UNINDEXED)
            return pending == 0 and not backlog and claims == 0 and spooled == 0 and unindexed == 0

        _wait(
            "every post stored, classified and indexed",
            done,
            BUDGET - (time.monotonic() - began),
            state,
            0.25,
        )
        finished = time.monotonic() - began

        # The dead worker's batch went back to the queue after the lease and was done by another.
        (job,) = [j for j in db.jobs() if j["id"] == job_id]
        assert job["status"] == "succeeded" and job["worker_id"] != queue_worker, job
        events = db.rows(
            "SELECT type::text AS type, extract(epoch FROM at) AS at FROM procrastinate_events"
            " WHERE job_id = %s ORDER BY id",
            job_id,
        )
        # What came after the kill: back to the queue once, taken again, done.
        # ("scheduled" marks when a job may start, not a move between states.)
        since_kill = [e for e in events if float(e["at"]) >= killed_worker_wall and e["type"] != "scheduled"]
        kinds = [e["type"] for e in since_kill]
        assert kinds == ["deferred_for_retry", "started", "succeeded"], [e["type"] for e in events]
        retried_after = float(since_kill[0]["at"]) - killed_worker_wall
        assert RETRY_AFTER[0] <= retried_after <= RETRY_AFTER[1], retried_after

        # Every post of the mirror stored once, and analysed once.
        stored = db.rows("SELECT channel, post_id FROM posts")
        assert len(stored) == total
        by_channel = {name: sorted(r["post_id"] for r in stored if r["channel"] == name) for name in CHANNELS}
        assert by_channel == expected
        per_post = db.rows(
            "SELECT p.key, count(a.post_key) AS n FROM posts p LEFT JOIN analysis a ON a.post_key = p.key GROUP BY p.key"
        )
        assert {r["n"] for r in per_post} == {1}
        # What was saved before the worker died was not classified again by the retry.
        after = {
            r["post_key"]: r["processed_at"] for r in db.rows("SELECT post_key, processed_at FROM analysis")
        }
        assert {k: after[k] for k in analysed_before} == analysed_before

        # Every flagged post in Elasticsearch once, never rewritten (a repeat is a noop).
        flagged = {r["post_key"] for r in db.rows("SELECT post_key FROM analysis WHERE is_advert = 1")}
        assert flagged
        es.indices.refresh(index="vigie-posts")
        found = es.search(index="vigie-posts", size=1000, version=True, query={"match_all": {}})
        assert found["_shards"]["failed"] == 0, found["_shards"]  # every shard answered
        hits = found["hits"]["hits"]
        ids = [h["_id"] for h in hits]
        assert len(ids) == len(set(ids)) and set(ids) == flagged
        rewritten = {h["_id"]: h["_version"] for h in hits if h["_version"] != 1}
        assert not rewritten, rewritten
        assert health(es_url)["status"] == "yellow"

        # The operator's view: the new leader, the dead worker.
        status = json.loads(run_vigie("cluster", "status", "--json", env=env, timeout=60, check=True).stdout)
        assert status["leader"]["pid"] == new_leader_pid, status["leader"]
        workers = {nodes.name_of(w["pid"]): w for w in status["workers"]}
        assert workers[victim]["state"] == "dead", workers
        assert sorted(w["state"] for w in workers.values()) == ["alive", "alive", "dead"]
        # The old leader's row: no longer the leader, and dead.
        assert [(nodes.name_of(s["pid"]), s["state"]) for s in status["standby"]] == [(leader, "dead")]
        print(
            f"{total} posts, {len(flagged)} flagged; takeover after {takeover:.1f} s; "
            f"batch {job_id} retried {retried_after:.1f} s after its worker died; "
            f"done after {finished:.1f} s"
        )
    finally:
        nodes.cleanup()
        db.close()
        wipe(es_url)  # node 2 stays down: a later test that needs it starts it again
