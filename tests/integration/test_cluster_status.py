"""`vigie cluster status` on a real PostgreSQL store with procrastinate's queue: real jobs
deferred, fetched by a registered queue worker and failed; node rows whose heartbeats make
them live or dead; source lag, claims and a failed job's error as the CLI prints them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import procrastinate
import pytest
from sqlalchemy import insert, update

from tests.conftest import run_vigie
from vigie.store import Store
from vigie.store.runs import finish_run, start_run
from vigie.store.schema import classify_claims, cluster_nodes, sources

pytestmark = pytest.mark.postgres

HOSTILE_ERROR = "RuntimeError: boom \x1b[31mred\x1b[0m\nsecond line"


def _ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat(timespec="seconds")


def _conninfo(store_url: str) -> str:
    return store_url.replace("postgresql+psycopg://", "postgresql://", 1)


async def _queue(store_url: str) -> dict[str, Any]:
    """Install procrastinate's schema and make a queue: two crawls waiting (one of them due
    only tomorrow), a classification held by a registered worker, a control job failed."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=_conninfo(store_url)))
    async with app.open_async():
        await app.schema_manager.apply_schema_async()

        def task(name: str, queue: str, **options: Any) -> Any:
            return app.configure_task(name=name, queue=queue, lock=options.pop("lock", None), **options)

        await task("vigie.crawl", "crawl.default", queueing_lock="crawl:telegram:alpha_chan").defer_async(
            platform="telegram", channel="alpha_chan", egress="default"
        )
        await task(
            "vigie.crawl", "crawl.default", queueing_lock="crawl:telegram:bravo_chan", schedule_in={"days": 1}
        ).defer_async(platform="telegram", channel="bravo_chan", egress="default")
        classify = await task("vigie.classify", "classify").defer_async(batch_id="batch-1")
        failing = await task("vigie.alerts", "control", queueing_lock="vigie.alerts").defer_async()

        manager = app.job_manager
        worker_id = await manager.register_worker()
        held = await manager.fetch_job(["classify"], worker_id)
        assert held is not None and held.id == classify
        failed = await manager.fetch_job(["control"], worker_id)
        assert failed is not None and failed.id == failing
        await manager.finish_job(failed, procrastinate.jobs.Status.FAILED, delete_job=False)
    return {"worker_id": worker_id, "classify": classify, "failed": failing}


def _node(node_id: str, role: str, heartbeat_at: str, **extra: Any) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "role": role,
        "host": "host-" + node_id,
        "pid": 100,
        "started_at": _ago(hours=1),
        "heartbeat_at": heartbeat_at,
        "egress": None,
        "detail": "{}",
        **extra,
    }


@pytest.fixture
def cluster_store(fresh_pg_url: str) -> dict[str, Any]:
    with Store(fresh_pg_url):
        pass  # the store's own schema
    queue = asyncio.run(_queue(fresh_pg_url))
    with Store(fresh_pg_url) as store:
        with store.transaction() as c:
            c.execute(
                insert(cluster_nodes),
                [
                    _node("daemon-1", "leader", _ago(seconds=300), detail='{"leader_since": "2026-01-01T00:00:00+00:00"}'),
                    _node("daemon-2", "standby", _ago(seconds=2)),
                    _node("worker-a", "worker", _ago(seconds=3), egress="default",
                          detail=json.dumps({"procrastinate_worker_id": queue["worker_id"]})),
                    _node("worker-b", "worker", _ago(seconds=400), egress="eu-2"),
                ],
            )  # fmt: skip
            c.execute(
                insert(classify_claims),
                [
                    {
                        "post_key": f"telegram:alpha_chan:{i}",
                        "batch_id": f"batch-{i % 2}",
                        "claimed_at": _ago(),
                    }
                    for i in range(3)
                ],
            )
            c.execute(
                insert(sources),
                [
                    {
                        "platform": "telegram",
                        "channel": "alpha_chan",
                        "last_success_at": _ago(hours=2),
                        "last_error": None,
                    },
                    {
                        "platform": "telegram",
                        "channel": "bravo_chan",
                        "last_success_at": None,
                        "last_error": "blocked \x1b[2J",
                    },
                ],
            )
        run = start_run(store, "worker vigie.alerts")
        finish_run(store, run, "failed", {"job_id": queue["failed"], "error": HOSTILE_ERROR})
    return {"url": fresh_pg_url, **queue}


def _config(config_file: Any) -> Any:
    return config_file(
        cluster={"lease_seconds": 30},
        sources=[
            {"platform": "telegram", "channel": "alpha_chan"},
            {"platform": "telegram", "channel": "charlie_chan"},
        ],
    )


def test_status_json_shows_nodes_queue_lag_claims_and_errors(cluster_store, config_file):
    config = _config(config_file)
    env = {"VIGIE_STORE_URL": cluster_store["url"]}
    result = run_vigie("cluster", "status", "--json", config=config, env=env, check=True)
    status = json.loads(result.stdout)

    assert status["queue_installed"] is True
    assert status["leader"] is None  # daemon-1's heartbeat is older than the lease
    assert {(n["node"], n["role"], n["state"]) for n in status["standby"]} == {
        ("daemon-1", "leader", "dead"),
        ("daemon-2", "standby", "alive"),
    }
    workers = {w["node"]: w for w in status["workers"]}
    assert workers["worker-a"]["state"] == "alive" and workers["worker-b"]["state"] == "dead"
    assert workers["worker-a"]["job"]["id"] == cluster_store["classify"]
    assert workers["worker-a"]["job"]["args"] == {"batch_id": "batch-1"}
    assert workers["worker-b"]["job"] is None and workers["worker-b"]["egress"] == "eu-2"

    queue = {q["task"]: q for q in status["queue"]}
    assert queue["vigie.crawl"] == {"task": "vigie.crawl", "todo": 2, "doing": 0, "failed_24h": 0}
    assert queue["vigie.classify"]["doing"] == 1
    assert queue["vigie.alerts"]["failed_24h"] == 1
    # The crawl due tomorrow is not waiting yet: the oldest wait is the other's, seconds old.
    assert status["oldest_pending_seconds"] is not None and 0 <= status["oldest_pending_seconds"] < 120

    assert status["claims"] == {"posts": 3, "batches": 2}
    lag = {s["source"]: s for s in status["sources"]}
    assert (
        lag["telegram:charlie_chan"]["lag_seconds"] is None
        and lag["telegram:bravo_chan"]["lag_seconds"] is None
    )
    assert 7100 < lag["telegram:alpha_chan"]["lag_seconds"] < 7400
    assert [e["job_id"] for e in status["errors"]] == [cluster_store["failed"]]
    assert status["errors"][0]["error"] == HOSTILE_ERROR  # JSON carries it as it is


def test_status_table_names_a_live_leader_and_keeps_hostile_text_inert(cluster_store, config_file):
    with Store(cluster_store["url"]) as store, store.transaction() as c:
        c.execute(
            update(cluster_nodes)
            .where(cluster_nodes.c.node_id == "daemon-1")
            .values(heartbeat_at=_ago(seconds=1))
        )
    config = _config(config_file)
    env = {"VIGIE_STORE_URL": cluster_store["url"]}
    out = run_vigie("cluster", "status", config=config, env=env, check=True).stdout

    assert "leader: daemon-1 on host-daemon-1 pid 100, since 2026-01-01T00:00:00+00:00" in out
    assert "standby: daemon-2" in out
    assert "worker-a" in out and f"#{cluster_store['classify']} vigie.classify batch_id=batch-1" in out
    assert "classification claims: 3 posts in 2 batches" in out
    assert "never crawled" in out and "2h 0" in out
    assert "RuntimeError: boom" in out and "second line" in out
    assert "\x1b" not in out


def test_status_without_a_queue_says_no_cluster_ran(fresh_pg_url, config_file):
    with Store(fresh_pg_url):
        pass
    config = _config(config_file)
    env = {"VIGIE_STORE_URL": fresh_pg_url}
    result = run_vigie("cluster", "status", config=config, env=env, check=True)
    assert result.stdout.startswith("No cluster has run on this store")
    assert (
        json.loads(run_vigie("cluster", "status", "--json", config=config, env=env, check=True).stdout)[
            "queue_installed"
        ]
        is False
    )


def test_status_on_sqlite_is_one_clear_line(config_file):
    result = run_vigie("cluster", "status", config=_config(config_file), env={"VIGIE_STORE_URL": ""})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cluster mode needs a PostgreSQL store" in lines[0], result.stderr


def test_a_takeover_shows_the_new_leader_since_it_took_the_lock(cluster_store, config_file):
    from vigie.store.cluster import become_leader

    with Store(cluster_store["url"]) as store:
        took = become_leader(store, "daemon-2")  # a standby started an hour ago takes over now
    config = _config(config_file)
    env = {"VIGIE_STORE_URL": cluster_store["url"]}
    status = json.loads(run_vigie("cluster", "status", "--json", config=config, env=env, check=True).stdout)
    assert status["leader"]["node"] == "daemon-2"
    assert status["leader"]["since"] == took != status["leader"]["started_at"]
    assert abs((datetime.fromisoformat(took) - datetime.now(UTC)).total_seconds()) < 60
    assert {n["node"]: n["role"] for n in status["standby"]} == {"daemon-1": "standby"}


def test_queue_depths_count_waiting_running_and_failed_jobs(cluster_store):
    from vigie.store.cluster_status import queue_depths

    with Store(cluster_store["url"]) as store:
        everything = queue_depths(store)
        assert everything == {
            ("vigie.crawl", "todo"): 2,
            ("vigie.classify", "doing"): 1,
            ("vigie.alerts", "failed"): 1,
        }
        assert queue_depths(store, datetime.now(UTC) + timedelta(hours=1)) == {
            ("vigie.crawl", "todo"): 2,
            ("vigie.classify", "doing"): 1,
        }
