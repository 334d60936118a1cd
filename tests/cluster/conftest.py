"""Fixtures of the cluster tests: one shared 3-node tcp cluster per test module that asks for it,
and fresh clusters for tests that kill or restart nodes."""

import pytest

from .harness import Cluster


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory):
    """A 3-node tcp cluster for tests that only read and write (never stop a node)."""
    cluster = Cluster(tmp_path_factory.mktemp("shared") / "cluster")
    try:
        cluster.up()
        cluster.leader()
        yield cluster
    finally:
        cluster.teardown()


@pytest.fixture
def make_cluster(tmp_path):
    """Factory of private clusters, each torn down after the test."""
    made = []

    def make(nodes: int = 3, transport: str = "tcp", name: str = "cluster") -> Cluster:
        cluster = Cluster(tmp_path / name, nodes=nodes, transport=transport)
        made.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in made:
            cluster.teardown()
