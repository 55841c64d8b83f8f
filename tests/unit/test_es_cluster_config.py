"""The settings the two-node test cluster starts its nodes with, and the single node's, unchanged."""

from __future__ import annotations

from pathlib import Path

from tests.support.es_cluster import CLUSTER_NAME, ElasticsearchCluster
from tests.support.es_node import ElasticsearchNode


def test_master_and_data_node_find_each_other_and_only_node_1_bootstraps(tmp_path: Path) -> None:
    cluster = ElasticsearchCluster(tmp_path)
    one, two = (node._settings() for node in cluster.nodes)
    seeds = ",".join(f"127.0.0.1:{n.transport_port}" for n in cluster.nodes)
    assert one["node.roles"] == "[master,data]" and two["node.roles"] == "[data]"
    assert one["discovery.seed_hosts"] == two["discovery.seed_hosts"] == seeds
    assert one["cluster.initial_master_nodes"] == one["node.name"] == "vigie-node-1"
    assert "cluster.initial_master_nodes" not in two
    assert "discovery.type" not in one and "discovery.type" not in two
    assert one["cluster.name"] == two["cluster.name"] == CLUSTER_NAME
    ports = [n.port for n in cluster.nodes] + [n.transport_port for n in cluster.nodes]
    assert len(set(ports)) == 4
    assert cluster.urls == [f"http://127.0.0.1:{n.port}" for n in cluster.nodes]
    assert {n.heap for n in cluster.nodes} == {"256m"}
    assert {n.data_dir for n in cluster.nodes} == {tmp_path / "node-1", tmp_path / "node-2"}


def test_single_node_settings_are_those_of_a_single_node_cluster(tmp_path: Path) -> None:
    settings = ElasticsearchNode(tmp_path)._settings()
    assert settings["discovery.type"] == "single-node"
    assert settings["cluster.name"] == "vigie-test" and settings["node.name"] == "vigie-test"
    assert not any(key.startswith(("node.roles", "discovery.seed", "cluster.initial")) for key in settings)
