"""Every transport replicates: a cluster on ipc and on shm (tcp is the shared cluster's)."""

import pytest

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("transport", ["ipc", "shm"])
def test_replicate_and_read_over(transport, make_cluster):
    c = make_cluster(transport=transport)
    result = c.up()
    assert f"{transport}:" in result.stdout  # the table names the transport
    c.leader()
    for node_id in c.ids:
        c.put(node_id, f"{transport}:{node_id}", f"from node {node_id}")
    for writer in c.ids:
        for reader in c.ids:
            assert c.get(reader, f"{transport}:{writer}") == f"from node {writer}"
    leader = c.leader()
    c.launcher("kill", str(leader))
    survivor = next(i for i in c.ids if i != leader)
    c.put(survivor, f"{transport}:after-kill", "still replicated")
    c.launcher("start", str(leader))
    c.wait_value(leader, f"{transport}:after-kill", "still replicated")
