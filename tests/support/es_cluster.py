"""A real two-node Elasticsearch cluster for the tests that need replicas and a node to lose.

Both nodes come from the same install as `tests.support.es_node` (the integ-test
distribution, run as an unprivileged user) with small heaps. Node 1 is master and data,
node 2 data only: killing node 2 leaves a cluster that still answers (yellow when an
index has replicas) and takes writes. Discovery goes through both nodes' transport
ports (picked free), and node 1 alone bootstraps the cluster.

`es_cluster` starts the cluster for the session; import it into a test module
(`from tests.support.es_cluster import es_cluster`). Mark such tests
`@pytest.mark.elasticsearch`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.es_node import ElasticsearchNode, ElasticsearchNodeError

CLUSTER_NAME = "vigie-cluster-test"
HEAP = "256m"
MASTER = "vigie-node-1"


class ClusterNode(ElasticsearchNode):
    """One node of a multi-node cluster: the single-node settings, with discovery instead."""

    cluster_name = CLUSTER_NAME

    def __init__(self, data_dir: Path, name: str, roles: list[str], heap: str = HEAP) -> None:
        super().__init__(data_dir, heap=heap)
        self.name = name
        self.roles = roles
        self.seed_ports: list[int] = [self.transport_port]

    def _settings(self) -> dict[str, object]:
        settings = super()._settings()
        del settings["discovery.type"]
        settings.update(
            {
                "node.name": self.name,
                "node.roles": f"[{','.join(self.roles)}]",
                "discovery.seed_hosts": ",".join(f"127.0.0.1:{p}" for p in self.seed_ports),
                # Quicker to notice a node gone than the 10 s x 3 the defaults wait.
                "cluster.fault_detection.follower_check.interval": "1s",
                "cluster.fault_detection.follower_check.retry_count": "2",
                "cluster.fault_detection.leader_check.interval": "1s",
                "cluster.fault_detection.leader_check.retry_count": "2",
            }
        )
        if "master" in self.roles:
            settings["cluster.initial_master_nodes"] = MASTER
        return settings

    def kill(self) -> None:
        """SIGKILL the node's whole process group, as a crash would, and wait for it to go."""
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self.stop()  # reaps what is left and forgets the process


class ElasticsearchCluster:
    """Node 1 (master + data) and node 2 (data only), their data under `data_dir`."""

    def __init__(self, data_dir: Path, heap: str = HEAP) -> None:
        self.nodes = [
            ClusterNode(Path(data_dir) / "node-1", MASTER, ["master", "data"], heap),
            ClusterNode(Path(data_dir) / "node-2", "vigie-node-2", ["data"], heap),
        ]
        ports = [n.transport_port for n in self.nodes]
        for node in self.nodes:
            node.seed_ports = ports

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    @property
    def data_node(self) -> ClusterNode:
        """Node 2: the one a test may kill."""
        return self.nodes[1]

    def start(self, timeout: float = 180) -> None:
        """Start both nodes at once and return when both have joined one cluster."""
        errors: list[BaseException] = []

        def run(node: ClusterNode) -> None:
            try:
                node.start(timeout)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(n,)) for n in self.nodes if not n.running]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            self.stop()
            raise errors[0]
        deadline = time.monotonic() + timeout
        while health(self.urls[0]).get("number_of_nodes") != len(self.nodes):
            if time.monotonic() > deadline:
                self.stop()
                raise ElasticsearchNodeError(f"the {len(self.nodes)} nodes did not join within {timeout:g}s")
            time.sleep(0.25)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()


def health(url: str, **params: str) -> dict[str, Any]:
    """`GET /_cluster/health` (with `params`), or {} when the node does not answer."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health?{query}", timeout=30) as resp:
            answer: dict[str, Any] = json.loads(resp.read())
            return answer
    except urllib.error.HTTPError as exc:  # 408 when wait_for_* times out: the body is still health
        try:
            answer = json.loads(exc.read())
        except ValueError:
            return {}
        return answer if "status" in answer else {}
    except (urllib.error.URLError, OSError):
        return {}


@pytest.fixture(scope="session")
def es_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ElasticsearchCluster]:
    """The running cluster (`.urls`: node 1's HTTP URL first); a test that kills node 2
    leaves it down, so a later test needing it calls `start()` again."""
    cluster = ElasticsearchCluster(tmp_path_factory.mktemp("es-cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
