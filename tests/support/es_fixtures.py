"""Pytest fixtures for a real Elasticsearch node (see `tests.support.es_node`).

`es_node` starts one node for the session; `es_url` hands its URL to a test and then
wipes what the test created. Mark such tests `@pytest.mark.elasticsearch`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.es_node import ElasticsearchNode

TEST_PREFIXES = ("vigie", "test")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "elasticsearch: needs a real Elasticsearch node (one per session)")


@pytest.fixture(scope="session")
def es_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ElasticsearchNode]:
    node = ElasticsearchNode(tmp_path_factory.mktemp("elasticsearch"))
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def es_url(es_node: ElasticsearchNode) -> Iterator[str]:
    yield es_node.url
    if not es_node.running:  # a test took it down: bring it back for the next one
        es_node.start()
    wipe(es_node.url)


def _call(url: str, method: str, path: str) -> Any:
    """JSON answer of a REST call; None when the API is absent (minimal distribution) or nothing matched."""
    request = urllib.request.Request(url + path, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        if e.code == 404 or b"no handler found" in e.read():
            return None
        raise


def _quote(names: list[str]) -> str:
    return ",".join(urllib.parse.quote(n, safe="") for n in names)


def wipe(url: str) -> None:
    """Delete every data stream and index not owned by Elasticsearch (names not starting
    with `.`; hidden ones included, their aliases go with them), then the index and
    component templates, legacy templates and ingest pipelines named `vigie*`/`test*`."""
    streams = _call(url, "GET", "/_data_stream/*?expand_wildcards=all") or {}
    names = [d["name"] for d in streams.get("data_streams", []) if not d["name"].startswith(".")]
    if names:
        _call(url, "DELETE", f"/_data_stream/{_quote(names)}?expand_wildcards=all")
    indices = _call(url, "GET", "/_cat/indices?format=json&h=index&expand_wildcards=all") or []
    names = [i["index"] for i in indices if not i["index"].startswith(".")]
    for start in range(0, len(names), 50):
        _call(url, "DELETE", f"/{_quote(names[start : start + 50])}?expand_wildcards=all")
    # Index templates first: a component template in use cannot be deleted.
    for api, key in (("_index_template", "index_templates"), ("_component_template", "component_templates")):
        found = _call(url, "GET", f"/{api}") or {}
        for name in [t["name"] for t in found.get(key, []) if t["name"].startswith(TEST_PREFIXES)]:
            _call(url, "DELETE", f"/{api}/{_quote([name])}")
    for api in ("_template", "_ingest/pipeline"):  # both answer {name: body}
        for name in [n for n in _call(url, "GET", f"/{api}") or {} if n.startswith(TEST_PREFIXES)]:
            _call(url, "DELETE", f"/{api}/{_quote([name])}")
