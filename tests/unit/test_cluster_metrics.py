"""The cluster's Prometheus metrics, scraped over HTTP as Prometheus would."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.cluster import metrics
from tests.support.server_process import free_port


@pytest.fixture
def served() -> Iterator[metrics.Metrics]:
    fresh = metrics.reset()
    fresh.serve(free_port())
    yield fresh
    fresh.stop()
    metrics.reset()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_counters_histogram_and_gauge_are_served(served):
    metrics.crawled(7)
    metrics.crawled(3)
    metrics.classified(5)
    metrics.indexed(4)
    metrics.spooled(1)
    metrics.job_finished("vigie.classify", "succeeded", 0.3)
    metrics.job_finished("vigie.classify", "succeeded", 42.0)
    metrics.job_finished("vigie.crawl", "failed", 2.0)
    metrics.set_queue({("vigie.crawl", "todo"): 12, ("vigie.classify", "doing"): 2})

    assert served.port is not None
    seen = scrape(served.port)
    assert seen[("vigie_posts_crawled_total", ())] == 10
    assert seen[("vigie_posts_classified_total", ())] == 5
    assert seen[("vigie_posts_indexed_total", ())] == 4
    assert seen[("vigie_posts_spooled_total", ())] == 1
    classify = (("outcome", "succeeded"), ("task", "vigie.classify"))
    assert seen[("vigie_job_seconds_count", classify)] == 2
    assert seen[("vigie_job_seconds_sum", classify)] == pytest.approx(42.3)
    assert seen[("vigie_job_seconds_bucket", tuple(sorted((*classify, ("le", "0.5")))))] == 1
    assert seen[("vigie_job_seconds_count", (("outcome", "failed"), ("task", "vigie.crawl")))] == 1
    assert seen[("vigie_queue_jobs", (("status", "todo"), ("task", "vigie.crawl")))] == 12
    assert seen[("vigie_queue_jobs", (("status", "doing"), ("task", "vigie.classify")))] == 2


def test_queue_gauge_drops_what_is_no_longer_measured(served):
    metrics.set_queue({("vigie.crawl", "todo"): 3, ("vigie.alerts", "failed"): 1})
    metrics.set_queue({("vigie.crawl", "todo"): 0})
    assert served.port is not None
    queue = {
        labels: value for (name, labels), value in scrape(served.port).items() if name == "vigie_queue_jobs"
    }
    assert queue == {(("status", "todo"), ("task", "vigie.crawl")): 0}


def test_serve_is_idempotent_and_zero_is_off():
    fresh = metrics.Metrics()
    assert fresh.serve(0) is None
    port = free_port()
    try:
        assert fresh.serve(port) == port
        assert fresh.serve(free_port()) == port  # the first endpoint stays; no second one
        fresh.posts_crawled.inc(2)
        assert scrape(port)[("vigie_posts_crawled_total", ())] == 2
    finally:
        fresh.stop()


def test_each_metrics_has_its_own_registry():
    first, second = metrics.Metrics(), metrics.Metrics()
    first.posts_classified.inc(9)
    assert second.registry.get_sample_value("vigie_posts_classified_total") == 0
    assert first.registry.get_sample_value("vigie_posts_classified_total") == 9
