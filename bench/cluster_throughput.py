"""Cluster classification throughput: posts/s with 1, 2 and 3 `vigie worker` processes (a
`vigie daemon run --cluster` leader planning their batches) against `vigie run --no-crawl` in one
process, on the same posts, over the same PostgreSQL server, in the same run.

The PostgreSQL server is a throwaway one this script starts and removes (tests/support/pg_node.py:
Debian's `postgresql` binaries, as the tests use). The sample channels are served by the local
mirror, crawled once and their media read into a template database; each measurement classifies
its own copy of it (`CREATE DATABASE ... TEMPLATE`), from the processes' start to the last post
analysed, so a worker's start-up (its classifier loaded) counts as the single process's does.
"After start-up" counts from the first post analysed. Other load on the machine skews both: the
load average is printed.

Run from the repository root: .venv/bin/python -m bench.cluster_throughput [--workers 1,2,3 --batch 32]"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import sql

from crawlers.telegram.mirror import Mirror
from tests.support.pg_node import PostgresServer
from tests.support.server_process import stop_group

TEMPLATE = "bench_base"


@dataclass(frozen=True)
class Measure:
    label: str
    posts: int
    seconds: float
    started_after: float  # the first post analysed, from the processes' start
    analysed_first: int  # posts analysed by then

    @property
    def rate(self) -> float:
        return self.posts / self.seconds

    @property
    def warm_rate(self) -> float:
        span = self.seconds - self.started_after
        return (self.posts - self.analysed_first) / span if span > 0 else float("nan")


def _config(path: Path, data_dir: Path, **overrides: Any) -> Path:
    data: dict[str, Any] = {
        "data_dir": str(data_dir),
        "crawl": {"download_delay": 0, "autothrottle": False, "backoff_base": 0.2},
        "discovery": {"follow": False},
        **overrides,
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _env(config: Path, store_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIGIE_ES_URL", "VIGIE_CONFIG")}
    env.update(VIGIE_CONFIG=str(config), VIGIE_STORE_URL=store_url, PYTHONUNBUFFERED="1")
    return env


def _vigie(*args: str) -> list[str]:
    return [sys.executable, "-m", "vigie", *args]


def prepare(server: PostgresServer, work: Path) -> int:
    """The template database: every sample channel crawled from the mirror, media read,
    nothing classified; how many posts it holds."""
    from pipeline.enrich.media import fetch_and_read
    from vigie.config_file import load_config
    from vigie.store import Store

    url = server.create_database(TEMPLATE)
    with Mirror(None) as mirror:
        channels = sorted(mirror.channels)
        config = _config(
            work / "base.yaml",
            work / "base",
            telegram={"base_url": mirror.url},
            sources=[{"platform": "telegram", "channel": c} for c in channels],
        )
        env = _env(config, url)
        subprocess.run(_vigie("crawl"), env=env, check=True, capture_output=True)
        os.environ["VIGIE_STORE_URL"] = url  # the store URL comes from the environment only
        try:
            loaded = load_config(config)
            with Store(loaded.store_url()) as store:
                fetch_and_read(loaded, store)
        finally:
            del os.environ["VIGIE_STORE_URL"]
    return int(_scalar(server, TEMPLATE, "SELECT count(*) FROM posts"))


def _scalar(server: PostgresServer, database: str, query: str) -> Any:
    with psycopg.connect(server.conninfo(database)) as conn:
        row = conn.execute(query).fetchone()
        return row[0] if row else None


def copy_of_template(server: PostgresServer, name: str) -> str:
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(TEMPLATE))
        )
    return server.url(name)


def measure(
    label: str,
    server: PostgresServer,
    database: str,
    commands: list[list[str]],
    env: dict[str, str],
    posts: int,
) -> Measure:
    """Start `commands`, wait for every post to be analysed, stop what still runs."""
    procs: list[subprocess.Popen[bytes]] = []
    began = time.monotonic()
    first: tuple[float, int] | None = None
    try:
        for command in commands:
            procs.append(
                subprocess.Popen(
                    command,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        with psycopg.connect(server.conninfo(database), autocommit=True) as conn:
            while True:
                row = conn.execute("SELECT count(*) FROM analysis").fetchone()
                analysed = int(row[0]) if row else 0
                now = time.monotonic()
                if analysed and first is None:
                    first = (now - began, analysed)
                if analysed >= posts:
                    break
                if all(p.poll() is not None for p in procs):
                    raise RuntimeError(
                        f"{label}: every process ended with {analysed} of {posts} posts analysed"
                    )
                if now - began > 900:
                    raise RuntimeError(f"{label}: {analysed} of {posts} posts analysed after 900 s")
                time.sleep(0.1)
        seconds = time.monotonic() - began
    finally:
        for proc in procs:
            stop_group(proc, signal.SIGTERM, 30)
    assert first is not None
    return Measure(label, posts, seconds, first[0], first[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,3", help="worker counts to measure, comma-separated")
    parser.add_argument("--batch", type=int, default=32, help="posts per classification job")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    cluster = {
        "classify_batch": args.batch,
        "plan_every_seconds": 1,
        "heartbeat_seconds": 2,
        "lease_seconds": 30,
        "leader_poll_seconds": 1,
    }
    daemon = {"crawl_every_minutes": 600, "removal_check_every_minutes": 600, "alerts_every_minutes": 600}
    with tempfile.TemporaryDirectory(prefix="vigie-bench-cluster-") as tmp, PostgresServer() as server:
        work = Path(tmp)
        posts = prepare(server, work)
        results = []
        for label, workers in [("vigie run --no-crawl", 0), *((f"{n} worker(s)", n) for n in counts)]:
            database = f"bench_{workers}"
            url = copy_of_template(server, database)
            config = _config(work / f"{database}.yaml", work / database, cluster=cluster, daemon=daemon)
            if workers == 0:
                commands = [_vigie("run", "--no-crawl")]
            else:
                commands = [_vigie("daemon", "run", "--cluster", "--name", "bench-leader")]
                commands += [_vigie("worker", "--name", f"bench-worker-{n}") for n in range(1, workers + 1)]
            results.append(measure(label, server, database, commands, _env(config, url), posts))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load average now {load}; "
        f"{posts} sample posts, batches of {args.batch} in the cluster"
    )
    baseline = results[0]
    for m in results:
        print(
            f"{m.label:>22}: {m.seconds:6.1f} s, {m.rate:5.1f} posts/s ({m.rate / baseline.rate:.2f}x); "
            f"after start-up ({m.started_after:.1f} s) {m.warm_rate:5.1f} posts/s "
            f"({m.warm_rate / baseline.warm_rate:.2f}x)"
        )


if __name__ == "__main__":
    main()
