"""`vigie daemon`: a real scheduler in a real process, crawling a local mirror of t.me.

Every wait polls the SQLite store or the daemon's status and is bounded by a timeout.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crawlers.telegram.mirror import Faults
from pipeline.daemon import process_alive, read_status
from tests.conftest import make_channel, run_vigie
from tests.support.waiting import wait_for
from vigie.config_file import load_config


class Daemons:
    """Daemons started by a test; whatever still runs at the end is killed."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, config: Path, *args: str) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIGIE_ES_URL", "VIGIE_CONFIG")}
        env["PYTHONUNBUFFERED"] = "1"
        out = open(self.tmp_path / f"daemon-{len(self.procs)}.out", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "vigie", "--config", str(config), "daemon", "run", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group, to kill it whole
        )
        out.close()
        self.procs.append(proc)
        return proc

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        return (self.tmp_path / f"daemon-{self.procs.index(proc)}.out").read_text("utf-8", "replace")

    def stop(self, proc: subprocess.Popen[bytes], within: float = 20) -> tuple[int, float]:
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=within)
        return code, time.monotonic() - began

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    d = Daemons(tmp_path)
    yield d
    d.cleanup()


def query(tmp_path: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    path = tmp_path / "data" / "vigie.db"
    if not path.exists():
        return []
    db = sqlite3.connect(path, timeout=30)
    db.row_factory = sqlite3.Row
    try:
        return list(db.execute(sql, args))
    except sqlite3.OperationalError as exc:  # a table the first run has not created yet
        if "no such table" in str(exc):
            return []
        raise
    finally:
        db.close()


def post_count(tmp_path: Path, channel: str) -> int:
    rows = query(tmp_path, "SELECT COUNT(*) FROM posts WHERE channel = ?", channel)
    return int(rows[0][0]) if rows else 0


def source(tmp_path: Path, channel: str) -> sqlite3.Row | None:
    rows = query(tmp_path, "SELECT * FROM sources WHERE channel = ?", channel)
    return rows[0] if rows else None


def status_json(config: Path) -> dict[str, Any]:
    result = run_vigie("daemon", "status", "--json", config=config, timeout=60, check=True)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def jobs_of(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["id"]: job for job in status["jobs"]}


def quick_status(config: Path) -> dict[str, Any]:
    """What `vigie daemon status --json` prints, computed in this process: for tight polls."""
    return read_status(load_config(config))


def stored_job_ids(tmp_path: Path) -> dict[str, float | None]:
    """Job id -> next run (epoch seconds), through APScheduler's job store API."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    store = SQLAlchemyJobStore(url=f"sqlite:///{tmp_path / 'data' / 'jobs.sqlite'}")
    store.start(BackgroundScheduler(), "default")
    try:
        return {
            job.id: job.next_run_time.timestamp() if job.next_run_time else None
            for job in store.get_all_jobs()
        }
    finally:
        store.shutdown()


def runs_of(tmp_path: Path, command: str) -> list[sqlite3.Row]:
    """The runs the jobs' children recorded in the store, newest first."""
    return query(tmp_path, "SELECT * FROM runs WHERE command = ? ORDER BY id DESC", command)


def daemon_config(
    config_file: Callable[..., Path], mirror_url: str, sources: list[str | dict[str, Any]], **overrides: Any
) -> Path:
    """Sources crawled every 3 s from the mirror (the config's intervals are minutes)."""
    daemon = {"crawl_every_minutes": 0.05, "misfire_grace_seconds": 30, "job_timeout_seconds": 60}
    daemon.update(overrides.pop("daemon", {}))
    return config_file(
        telegram={"base_url": mirror_url},
        sources=[{"platform": "telegram", "channel": s} if isinstance(s, str) else s for s in sources],
        daemon=daemon,
        **overrides,
    )


def test_daemon_crawls_on_schedule_reports_status_and_restarts_with_its_jobs(
    tmp_path, mirror_factory, config_file, daemons
):
    mirror = mirror_factory(
        {
            "alpha_chan": make_channel("alpha_chan", list(range(1, 31))),
            "beta_chan": make_channel("beta_chan", list(range(1, 26))),
        }
    )
    config = daemon_config(config_file, mirror.url, ["alpha_chan", "beta_chan"])
    began = time.monotonic()
    first = daemons.start(config, "--no-classify")

    wait_for(
        "both channels crawled completely",
        lambda: (
            (source(tmp_path, "alpha_chan") or {"cursor": None})["cursor"] == 30
            and (source(tmp_path, "beta_chan") or {"cursor": None})["cursor"] == 25
        ),
    )
    assert post_count(tmp_path, "alpha_chan") == 30 and post_count(tmp_path, "beta_chan") == 25
    crawled_in = time.monotonic() - began

    # The schedule repeats: a post published now is picked up by a later run.
    with mirror.lock:
        mirror.channels["alpha_chan"]["posts"].extend(make_channel("alpha_chan", [31])["posts"])
    wait_for("the new post", lambda: post_count(tmp_path, "alpha_chan") == 31, timeout=30)

    def reported() -> dict[str, Any] | None:
        status = status_json(config)
        jobs = jobs_of(status)
        crawls = [jobs.get("crawl:telegram:alpha_chan"), jobs.get("crawl:telegram:beta_chan")]
        if all(j and j["last_outcome"] == "ok" and j["runs"] >= 2 for j in crawls) and jobs.get(
            "removal-checks", {}
        ).get("last_outcome"):
            return status
        return None

    status = wait_for("status showing every job's outcome", reported, timeout=45, every=0.5)
    assert status["daemon"]["state"] == "running" and status["daemon"]["pid"] == first.pid
    assert status["daemon"]["heartbeat_age_s"] < 15
    jobs = jobs_of(status)
    assert set(jobs) == {"crawl:telegram:alpha_chan", "crawl:telegram:beta_chan", "removal-checks"}
    for job in jobs.values():
        assert job["next_run_time"], job
        assert job["last_finished_at"] and job["last_duration_s"] is not None
    assert jobs["crawl:telegram:alpha_chan"]["schedule"] == "every 3 s"
    assert jobs["removal-checks"]["last_outcome"] in ("ok", "skipped")  # skipped: no `vigie referrals check`
    by_channel = {s["channel"]: s for s in status["sources"]}
    assert by_channel["alpha_chan"]["last_success_at"] and by_channel["alpha_chan"]["last_error"] is None
    assert Path(jobs["crawl:telegram:beta_chan"]["log"]).read_text("utf-8").count("=== exit 0") >= 2
    # Each crawl recorded its own run in the store; the job's step points at it.
    beta_runs = runs_of(tmp_path, "crawl telegram beta_chan")
    # The daemon goes on crawling every 3 s: the newest run may still be under way.
    under_way = [r for r in beta_runs if r["status"] == "running"]
    assert len(under_way) <= 1 and all(r["id"] == max(x["id"] for x in beta_runs) for r in under_way)
    beta_runs = [r for r in beta_runs if r["status"] != "running"]
    assert len(beta_runs) >= 2 and {r["status"] for r in beta_runs} == {"ok"}
    step = jobs["crawl:telegram:beta_chan"]
    assert step["runs"] <= len(beta_runs)
    if jobs["removal-checks"]["last_outcome"] == "ok":
        assert runs_of(tmp_path, "referrals check")[0]["status"] == "ok"
    # Crawls share one executor worker: one crawl at a time, across sources.
    crawls = query(tmp_path, "SELECT * FROM runs WHERE command LIKE 'crawl telegram %' ORDER BY id")
    assert len(crawls) >= 4
    for earlier, later in itertools.pairwise(crawls):
        assert earlier["finished_at"] and later["started_at"] >= earlier["finished_at"], (earlier, later)

    human = run_vigie("daemon", "status", config=config, check=True).stdout
    assert "running" in human and "crawl:telegram:beta_chan" in human

    # One daemon per data directory.
    second = run_vigie("daemon", "run", "--no-classify", config=config, timeout=60)
    assert second.returncode == 1 and f"another vigie daemon (pid {first.pid})" in second.stderr

    code, took = daemons.stop(first)
    assert code == 0, daemons.output(first)
    assert took < 15
    assert status_json(config)["daemon"]["state"] == "stopped"
    before = stored_job_ids(tmp_path)
    assert set(before) == {"crawl:telegram:alpha_chan", "crawl:telegram:beta_chan", "removal-checks"}

    # Restart without beta_chan and with alpha_chan on a new schedule.
    config = daemon_config(
        config_file, mirror.url, [{"platform": "telegram", "channel": "alpha_chan", "every_minutes": 0.1}]
    )
    second_run = daemons.start(config, "--no-classify")

    def synced() -> dict[str, Any] | None:
        status = quick_status(config)
        daemon = status["daemon"] or {}
        ids = set(jobs_of(status))
        fresh = daemon.get("pid") == second_run.pid and bool(daemon.get("jobs_synced_at"))
        return status if fresh and ids == {"crawl:telegram:alpha_chan", "removal-checks"} else None

    status = wait_for("the restarted daemon with its jobs in sync", synced, timeout=30)
    assert status["daemon"]["state"] == "running"
    jobs = jobs_of(status)
    assert jobs["crawl:telegram:alpha_chan"]["schedule"] == "every 6 s"
    assert jobs["crawl:telegram:alpha_chan"]["runs"] >= 2  # its history survived the restart
    # An unchanged schedule keeps its place in time: no fresh hour of waiting after a restart.
    assert stored_job_ids(tmp_path)["removal-checks"] == pytest.approx(before["removal-checks"])
    code, took = daemons.stop(second_run)
    assert code == 0 and took < 15
    assert set(stored_job_ids(tmp_path)) == {"crawl:telegram:alpha_chan", "removal-checks"}
    print(f"first complete crawl of both channels after {crawled_in:.1f} s")


def test_failing_and_hanging_jobs_are_recorded_and_the_daemon_lives_on(
    tmp_path, mirror_factory, config_file, daemons
):
    mirror = mirror_factory(
        {"slow_chan": make_channel("slow_chan", list(range(1, 201)))},
        page_size=10,
        faults=Faults(hidden={"hidden_chan"}, not_found={"gone_chan"}, delay=2.5),
    )
    config = daemon_config(
        config_file,
        mirror.url,
        ["slow_chan", "gone_chan", "hidden_chan"],
        daemon={"job_timeout_seconds": 10, "replay_every_minutes": 0.05},
        elasticsearch={"url": "http://127.0.0.1:9"},  # nothing listens: `vigie es replay` fails
    )
    proc = daemons.start(config, "--no-classify")

    def failures_seen() -> dict[str, Any] | None:
        status = quick_status(config)
        jobs = jobs_of(status)
        wanted = {
            "crawl:telegram:gone_chan": "failed",
            "crawl:telegram:hidden_chan": "failed",
            "crawl:telegram:slow_chan": "timeout",
            "es-replay": "failed",
        }
        seen = all((jobs.get(j, {}).get("last_failure") or {}).get("outcome") == o for j, o in wanted.items())
        return status if seen and jobs["es-replay"]["runs"] >= 2 else None  # failed, then ran again

    wait_for("every failure recorded", failures_seen, timeout=75, every=0.25)
    assert proc.poll() is None, daemons.output(proc)
    status = status_json(config)
    assert status["daemon"]["state"] == "running"
    jobs = jobs_of(status)
    assert "not found (HTTP 404" in jobs["crawl:telegram:gone_chan"]["last_error"]
    assert "no public preview" in jobs["crawl:telegram:hidden_chan"]["last_error"]
    assert jobs["es-replay"]["failures"] >= 2
    assert jobs["crawl:telegram:slow_chan"]["last_failure"]["error"] == "crawl: timed out after 10 s"
    assert jobs["es-replay"]["last_error"].startswith("replay: ")
    # The outcomes come from the runs the children recorded, not from their output.
    replay_runs = runs_of(tmp_path, "es replay")
    assert len(replay_runs) >= 2 and {r["status"] for r in replay_runs[1:]} == {"failed"}
    recorded_errors = {json.loads(r["stats"])["error"] for r in replay_runs[1:]}
    assert jobs["es-replay"]["last_failure"]["error"].removeprefix("replay: ") in recorded_errors
    assert "127.0.0.1:9" in jobs["es-replay"]["last_failure"]["error"]
    gone = runs_of(tmp_path, "crawl telegram gone_chan")[-1]
    assert gone["status"] == "failed" and "not found (HTTP 404" in gone["stats"]
    sources = {s["channel"]: s for s in status["sources"]}
    assert "not found (HTTP 404" in sources["gone_chan"]["last_error"]
    assert sources["slow_chan"]["cursor"] is None  # the walk never finished
    assert 0 < post_count(tmp_path, "slow_chan") < 200  # but what it read is stored
    daemon_log = (tmp_path / "data" / "logs" / "daemon.log").read_text("utf-8")
    assert "job crawl:telegram:gone_chan failed" in daemon_log
    assert "job crawl:telegram:slow_chan timeout" in daemon_log
    assert "HTTP 404" in Path(jobs["crawl:telegram:gone_chan"]["log"]).read_text("utf-8")

    code, took = daemons.stop(proc)  # maybe mid-crawl: the child gets SIGTERM, then the daemon exits
    assert code == 0, daemons.output(proc)
    assert took < 15
    assert not quick_status(config)["daemon"]["children"]
    # Children stopped by a timeout or the shutdown left no run `running` behind.
    assert not query(tmp_path, "SELECT * FROM runs WHERE status = 'running'")


def _classifier_ready() -> bool:
    from classifier.model import META_FILE
    from vigie.paths import default_classifier_dir

    return (default_classifier_dir() / META_FILE).is_file()


@pytest.mark.parametrize("classify", [False, True], ids=["crawl", "crawl+classify"])
def test_sigkill_at_any_moment_loses_and_duplicates_nothing(
    tmp_path, mirror_factory, config_file, daemons, classify
):
    if classify and not _classifier_ready():
        pytest.skip(
            "no trained classifier in the cache (`make test` trains it with `vigie train --if-stale`); "
            "the crawl-only variant checks the crawl-level guarantees"
        )
    ids = list(range(1, 201))
    mirror = mirror_factory(
        {"kill_chan": make_channel("kill_chan", ids)}, page_size=10, faults=Faults(delay=0.3)
    )
    config = daemon_config(
        config_file,
        mirror.url,
        ["kill_chan"],
        daemon={"job_timeout_seconds": 300},
        pipeline={"batch_size": 8},
    )
    args = () if classify else ("--no-classify",)
    job = "crawl:telegram:kill_chan"
    stored = lambda: post_count(tmp_path, "kill_chan")  # noqa: E731
    snapshots: dict[str, tuple[str, str]] = {}
    began = time.monotonic()

    def snapshot() -> None:
        for row in query(tmp_path, "SELECT key, first_seen, content_sha256 FROM posts"):
            snapshots.setdefault(row["key"], (row["first_seen"], row["content_sha256"]))

    def running_child(step: str) -> dict[str, Any] | None:
        daemon = quick_status(config)["daemon"] or {}
        return next((c for c in daemon.get("children", []) if c["job"] == job and c["step"] == step), None)

    def wait_gone(pid: int) -> None:
        wait_for(
            f"child {pid} to die with its daemon", lambda: not process_alive(pid), timeout=10, every=0.05
        )

    # 1. SIGKILL the daemon alone, early in the walk: its crawl child dies with it.
    proc = daemons.start(config, *args)
    wait_for("a first part of the channel", lambda: stored() >= 40, every=0.05)
    child = wait_for("the crawl child", lambda: running_child("crawl"), timeout=10, every=0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    wait_gone(child["pid"])
    first_kill = stored()
    assert 40 <= first_kill < 200
    row = source(tmp_path, "kill_chan")
    assert row is not None and row["cursor"] is None  # the walk never finished
    snapshot()
    with mirror.lock:  # new posts arrive while the daemon is down
        mirror.channels["kill_chan"]["posts"].extend(
            make_channel("kill_chan", [201, 202, 203, 204, 205])["posts"]
        )
    expected = [*ids, 201, 202, 203, 204, 205]

    # 2. SIGKILL the crawl child's whole process group: the daemon records it and goes on.
    proc = daemons.start(config, *args)
    wait_for("more of the channel", lambda: stored() >= first_kill + 50, every=0.05)
    child = wait_for("the crawl child", lambda: running_child("crawl"), timeout=10, every=0.05)
    os.killpg(child["pgid"], signal.SIGKILL)
    wait_gone(child["pid"])
    second_kill = stored()
    snapshot()

    def failure_recorded() -> bool:
        info = jobs_of(quick_status(config)).get(job, {})
        return bool(info.get("last_failure") and "killed by SIGKILL" in info["last_failure"]["error"])

    wait_for("the killed child recorded as a failure", failure_recorded, timeout=30)
    assert proc.poll() is None, daemons.output(proc)
    # Its run, left `running` by the killed child, is closed by the daemon as failed.
    killed = [r for r in runs_of(tmp_path, "crawl telegram kill_chan") if "killed by SIGKILL" in r["stats"]]
    assert len(killed) == 1 and killed[0]["status"] == "failed" and killed[0]["finished_at"]

    # 3. SIGKILL the daemon's whole process group, further on.
    wait_for("the walk to go on", lambda: stored() >= second_kill + 40, every=0.05)
    child = wait_for("the crawl child", lambda: running_child("crawl"), timeout=10, every=0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    wait_gone(child["pid"])
    third_kill = stored()
    assert first_kill < second_kill < third_kill < len(expected)
    snapshot()

    # 4. With classification: SIGKILL the daemon while it classifies, between two batches.
    proc = daemons.start(config, *args)
    classify_kill = None
    if classify:

        def analysed() -> int:
            done = query(tmp_path, "SELECT COUNT(*) FROM analysis")
            return int(done[0][0]) if done else 0

        baseline: dict[int, int] = {}  # classify child -> posts analysed when first seen

        def classifying() -> tuple[str, dict[str, Any] | None] | None:
            n = analysed()
            if n >= len(expected):
                return ("finished", None)
            child = running_child("classify")
            # Once it has written a batch (of 8), kill it mid-run.
            if child and stored() == len(expected) and n > baseline.setdefault(child["pid"], n):
                return ("running", child)
            return None

        state, child = wait_for("classification under way", classifying, timeout=120, every=0.05)
        if state == "running" and child is not None:
            os.kill(proc.pid, signal.SIGKILL)
            classify_kill = analysed()
            proc.wait(timeout=10)
            wait_gone(child["pid"])
            proc = daemons.start(config, *args)

    # Finally let it complete.
    def complete() -> bool:
        row = source(tmp_path, "kill_chan")
        if row is None or row["cursor"] != 205 or stored() != len(expected):
            return False
        if classify:
            left = query(
                tmp_path,
                "SELECT COUNT(*) FROM posts p LEFT JOIN analysis a ON a.post_key = p.key WHERE a.post_key IS NULL",
            )
            return int(left[0][0]) == 0
        return True

    wait_for("the crawl (and classification) to complete", complete, timeout=150, every=0.2)
    code, _ = daemons.stop(proc)
    assert code == 0, daemons.output(proc)

    rows = query(
        tmp_path, "SELECT key, post_id, first_seen, content_sha256 FROM posts WHERE channel = 'kill_chan'"
    )
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == len({r["post_id"] for r in rows})  # no duplicates
    assert sorted(int(r["post_id"]) for r in rows) == expected  # nothing lost, nothing extra
    assert set(keys) == {f"telegram:kill_chan:{i}" for i in expected}
    by_key = {r["key"]: r for r in rows}
    for key, seen in snapshots.items():  # stored before a kill: untouched since (classifying minimises text)
        assert (by_key[key]["first_seen"], by_key[key]["content_sha256"]) == seen
    row = source(tmp_path, "kill_chan")
    assert row is not None and row["cursor"] == 205 and row["pending_before"] is None
    if classify:
        per_post = query(
            tmp_path,
            "SELECT p.key, COUNT(a.post_key) AS n FROM posts p LEFT JOIN analysis a ON a.post_key = p.key"
            " GROUP BY p.key",
        )
        assert {r["key"]: r["n"] for r in per_post} == dict.fromkeys(keys, 1)
        assert int(query(tmp_path, "SELECT COUNT(*) FROM analysis")[0][0]) == len(expected)
    print(
        f"kills at {first_kill}, {second_kill}, {third_kill} posts stored"
        + (f", then at {classify_kill} posts classified" if classify_kill is not None else "")
        + "; "
        f"complete after {time.monotonic() - began:.1f} s"
    )


def test_cron_schedules_and_bad_schedules(tmp_path, mirror_factory, config_file, daemons):
    mirror = mirror_factory({"cron_chan": make_channel("cron_chan", [1, 2, 3])})
    config = daemon_config(
        config_file,
        mirror.url,
        [{"platform": "telegram", "channel": "cron_chan", "cron": "*/5 * * * *"}],
        daemon={"timezone": "Asia/Kolkata"},  # +05:30: cron fields are read in this timezone
    )
    proc = daemons.start(config, "--no-classify")
    status = wait_for(
        "the jobs scheduled",
        lambda: (s := quick_status(config))["daemon"] and s["daemon"]["jobs_synced_at"] and s,
        timeout=30,
    )
    job = jobs_of(status)["crawl:telegram:cron_chan"]
    assert job["schedule"] == "cron '*/5 * * * *' (Asia/Kolkata)"
    when = datetime.fromisoformat(job["next_run_time"])
    assert when.utcoffset() == timedelta(hours=5, minutes=30)
    assert when.minute % 5 == 0 and when.second == 0
    assert job["last_outcome"] is None  # a cron schedule waits for its time
    code, _ = daemons.stop(proc)
    assert code == 0

    for overrides, message in (
        (
            {"sources": [{"platform": "telegram", "channel": "cron_chan", "cron": "61 * * * *"}]},
            "sources[0].cron",
        ),
        ({"daemon": {"timezone": "Mars/Olympus_Mons"}}, "daemon.timezone = 'Mars/Olympus_Mons'"),
    ):
        bad = config_file(**overrides)
        result = run_vigie("daemon", "run", config=bad, timeout=60)
        assert result.returncode == 1 and message in result.stderr, result.stderr


def test_recorded_commands_record_their_run_and_end_as_they_would(tmp_path, config_file):
    config = config_file(elasticsearch={"url": "http://127.0.0.1:9"})  # nothing listens there

    failed = run_vigie("daemon", "recorded", "es", "replay", config=config)
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1 and "127.0.0.1:9" in failed.stderr, failed.stderr
    (run,) = runs_of(tmp_path, "es replay")
    assert run["status"] == "failed" and run["finished_at"]
    assert json.loads(run["stats"])["error"] == failed.stderr.strip().removeprefix("vigie: ")

    ok = run_vigie("daemon", "recorded", "referrals", "check", config=config, check=True)
    assert "checked 0" in ok.stdout
    assert [r["status"] for r in runs_of(tmp_path, "referrals check")] == ["ok"]

    for args in (["no-such-command"], ["es", "no-such-command"], ["daemon", "status"]):
        refused = run_vigie("daemon", "recorded", *args, config=config)
        assert refused.returncode == 2 and "Error:" in refused.stderr, refused.stderr
    assert not runs_of(tmp_path, "no-such-command") and not runs_of(tmp_path, "daemon status")


@pytest.mark.slow
def test_one_classifier_worker_serves_every_classification(tmp_path, mirror_factory, config_file, daemons):
    if not _classifier_ready():
        pytest.skip(
            "no trained classifier in the cache (`make test` trains it with `vigie train --if-stale`)"
        )
    channels = {name: make_channel(name, list(range(1, 11))) for name in ("one_chan", "two_chan")}
    mirror = mirror_factory(channels)
    config = daemon_config(config_file, mirror.url, list(channels))
    proc = daemons.start(config)

    def classified_twice() -> bool:
        done = [r for r in runs_of(tmp_path, "run --no-crawl") if r["status"] == "ok"]
        # The worker records its run in the store before the daemon counts it in status.
        counted = jobs_of(quick_status(config)).get("classify", {}).get("runs", 0)
        return len(done) >= 2 and counted >= 2 and post_count(tmp_path, "two_chan") == 10

    wait_for("two classification passes", classified_twice, timeout=240, every=0.5)
    analysed = query(tmp_path, "SELECT COUNT(*) FROM analysis")[0][0]
    status = quick_status(config)
    workers = [c for c in status["daemon"]["children"] if c["argv"][-2:] == ["daemon", "classify-worker"]]
    assert len(workers) == 1, status["daemon"]["children"]
    assert process_alive(workers[0]["pid"])
    classify = jobs_of(status)["classify"]
    assert classify["schedule"] == "after each crawl" and classify["runs"] >= 2
    code, _ = daemons.stop(proc)
    assert code == 0, daemons.output(proc)
    wait_for("the worker to end with the daemon", lambda: not process_alive(workers[0]["pid"]), timeout=15)
    log = (tmp_path / "data" / "logs" / "jobs" / "classify.log").read_text("utf-8")
    assert log.count("model loaded") == 1, log  # once, for every pass
    assert analysed >= 10
