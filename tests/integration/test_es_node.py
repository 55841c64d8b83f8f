"""The real Elasticsearch test node: start, client round trip, down and back up, cleanup."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import elasticsearch
import pytest

from tests.support.es_fixtures import wipe
from tests.support.es_node import (
    ARTIFACT,
    MIN_JAVA,
    ElasticsearchNode,
    ElasticsearchNodeError,
    _java_version,
    distribution,
    java_home,
)

pytestmark = pytest.mark.elasticsearch


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def put(url: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="PUT", headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(req, timeout=30).close()


def client(url: str) -> elasticsearch.Elasticsearch:
    return elasticsearch.Elasticsearch(url, max_retries=0, retry_on_timeout=False, request_timeout=10)


def test_node_is_healthy_and_version_9(es_url: str) -> None:
    assert es_url.startswith("http://127.0.0.1:")
    health = get(f"{es_url}/_cluster/health")
    assert health["status"] in ("green", "yellow")
    assert health["cluster_name"] == "vigie-test"
    assert health["number_of_nodes"] == 1
    nodes = get(f"{es_url}/_nodes/_local")["nodes"]  # no `GET /` in this distribution
    (node,) = nodes.values()
    assert node["version"].split(".")[0] == "9"
    assert node["name"] == "vigie-test"


def test_python_client_indexes_and_searches(es_url: str) -> None:
    assert elasticsearch.__version__[0] == 9
    es = client(es_url)
    es.index(index="vigie-posts", id="p1", document={"text": "passage garanti vers Lampedusa", "lang": "fr"})
    es.indices.refresh(index="vigie-posts")
    hits = es.search(index="vigie-posts", query={"match": {"text": "lampedusa"}})["hits"]
    assert hits["total"]["value"] == 1
    assert hits["hits"][0]["_id"] == "p1"
    assert hits["hits"][0]["_source"]["lang"] == "fr"
    assert es.search(index="vigie-posts", query={"match": {"text": "absent"}})["hits"]["total"]["value"] == 0


def test_node_goes_down_and_comes_back_with_its_data(es_node: ElasticsearchNode, es_url: str) -> None:
    es = client(es_url)
    es.index(index="vigie-durable", id="d1", document={"text": "kept across restarts"}, refresh=True)
    es_node.stop()
    assert not es_node.running
    with pytest.raises(elasticsearch.ConnectionError):
        es.search(index="vigie-durable")
    with pytest.raises(urllib.error.URLError):
        get(f"{es_url}/_cluster/health")
    es_node.start()
    assert es_node.running and es_node.url == es_url
    assert any((es_node.data_dir / "data").iterdir())  # the data lives where we said
    assert es.get(index="vigie-durable", id="d1")["_source"] == {"text": "kept across restarts"}
    assert es.count(index="vigie-durable")["count"] == 1


def test_wipe_removes_what_tests_made_and_nothing_else(es_url: str) -> None:
    put(f"{es_url}/_component_template/test-settings", {"template": {"settings": {"number_of_replicas": 0}}})
    put(
        f"{es_url}/_index_template/vigie-tpl",
        {"index_patterns": ["vigie-tpl-*"], "composed_of": ["test-settings"]},
    )
    put(f"{es_url}/_index_template/other-tpl", {"index_patterns": ["other-*"]})
    put(f"{es_url}/vigie-tpl-1", {"aliases": {"vigie-alias": {}}})
    put(f"{es_url}/test-hidden", {"settings": {"index.hidden": True}})
    put(f"{es_url}/plain", {})
    try:
        wipe(es_url)
        assert get(f"{es_url}/_cat/indices?format=json&expand_wildcards=all") == []
        assert get(f"{es_url}/_alias") == {}
        names = [t["name"] for t in get(f"{es_url}/_index_template")["index_templates"]]
        assert "vigie-tpl" not in names and "other-tpl" in names
        components = get(f"{es_url}/_component_template")["component_templates"]
        assert "test-settings" not in [t["name"] for t in components]
    finally:
        urllib.request.urlopen(
            urllib.request.Request(f"{es_url}/_index_template/other-tpl", method="DELETE"), timeout=10
        ).close()


def test_distribution_is_cached_and_java_is_recent() -> None:
    home = distribution()
    started = time.monotonic()
    assert distribution() == home
    assert time.monotonic() - started < 0.5
    assert (home / "bin" / "elasticsearch").is_file()
    assert (_java_version(java_home()) or 0) >= MIN_JAVA


def test_missing_maven_names_the_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ElasticsearchNodeError, match="integ-test-zip:elasticsearch"):
        distribution(tmp_path / "cache")
    assert ARTIFACT.endswith(":zip")


def test_bad_java_home_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ES_JAVA_HOME", str(tmp_path))
    with pytest.raises(ElasticsearchNodeError, match="ES_JAVA_HOME"):
        java_home()


def test_early_exit_reports_the_log(tmp_path: Path) -> None:
    node = ElasticsearchNode(tmp_path, heap="lots")  # -Xmslots: the JVM refuses it
    with pytest.raises(ElasticsearchNodeError, match="exited during start-up") as info:
        node.start(timeout=60)
    assert "lots" in str(info.value)
    assert not node.running


def test_busy_port_is_refused(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        node = ElasticsearchNode(tmp_path, port=busy.getsockname()[1])
        with pytest.raises(ElasticsearchNodeError, match="already in use"):
            node.start()
        assert not node.running
