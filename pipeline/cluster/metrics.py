"""Prometheus metrics of a cluster node: posts through each stage, job durations, queue depth.

Each process has one `Metrics` (module-level `current()`); the functions below record into it.
It keeps its own registry rather than prometheus_client's global one, so a test can build a
fresh `Metrics` and read exact values. `serve(port)` exposes it over HTTP (0: off); calling it
again is harmless.
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Job durations run from a sub-second control job to a crawl of many minutes.
JOB_SECONDS_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    """The counters, histogram and gauge of one process, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.posts_crawled = Counter(
            "vigie_posts_crawled",
            "Posts written to the store by crawls.",
            registry=self.registry,
        )
        self.posts_classified = Counter(
            "vigie_posts_classified",
            "Posts given a classifier verdict.",
            registry=self.registry,
        )
        self.posts_indexed = Counter(
            "vigie_posts_indexed",
            "Post documents written to Elasticsearch.",
            registry=self.registry,
        )
        self.posts_spooled = Counter(
            "vigie_posts_spooled",
            "Post documents spooled for a later replay because Elasticsearch was unavailable.",
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            "vigie_job_seconds",
            "Duration of queue jobs run by this worker.",
            ["task", "outcome"],
            buckets=JOB_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.queue_jobs = Gauge(
            "vigie_queue_jobs",
            "Jobs in the cluster queue by task and status, as last measured.",
            ["task", "status"],
            registry=self.registry,
        )
        self._queue_labels: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._server: Any = None
        self.port: int | None = None

    def set_queue(self, depths: dict[tuple[str, str], int]) -> None:
        """Replace the queue gauge: label pairs absent from `depths` are dropped, not left stale."""
        with self._lock:
            for labels in self._queue_labels - depths.keys():
                self.queue_jobs.remove(*labels)
            for (task, status), count in depths.items():
                self.queue_jobs.labels(task=task, status=status).set(count)
            self._queue_labels = set(depths)

    def serve(self, port: int) -> int | None:
        """Start the HTTP endpoint on `port` (0: off). Returns the port served, or None.
        A second call does nothing: the first endpoint keeps running."""
        with self._lock:
            if port and self.port is None:
                self._server, _thread = start_http_server(port, registry=self.registry)
                self.port = port
            return self.port

    def stop(self) -> None:
        """Close the HTTP endpoint, if any (tests; a node's endpoint lives as long as it)."""
        with self._lock:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
            self._server, self.port = None, None


_current = Metrics()


def current() -> Metrics:
    """This process's metrics."""
    return _current


def reset() -> Metrics:
    """Start this process's metrics afresh (tests); the previous endpoint keeps the old ones."""
    global _current
    _current = Metrics()
    return _current


def crawled(n: int) -> None:
    _current.posts_crawled.inc(n)


def classified(n: int) -> None:
    _current.posts_classified.inc(n)


def indexed(n: int) -> None:
    _current.posts_indexed.inc(n)


def spooled(n: int) -> None:
    _current.posts_spooled.inc(n)


def job_finished(task: str, outcome: str, seconds: float) -> None:
    """One job done: `outcome` is succeeded, failed, retried or aborted."""
    _current.job_seconds.labels(task=task, outcome=outcome).observe(seconds)


def set_queue(depths: dict[tuple[str, str], int]) -> None:
    """The queue's depth now, keyed by (task name, status)."""
    _current.set_queue(depths)


def serve(port: int) -> int | None:
    """Expose this process's metrics on `port` (0: off); idempotent."""
    return _current.serve(port)
