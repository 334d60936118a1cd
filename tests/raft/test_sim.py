"""Seeded simulation: 500+ seeds over 3- and 5-node groups, in chunks that pytest-xdist spreads."""

import pytest

from scribe.raft.sim import SimulationFailure, run_seed

CHUNK_SEEDS = 25
THREE_NODE_SEEDS = 300
FIVE_NODE_SEEDS = 225

CHUNKS = [(3, start) for start in range(0, THREE_NODE_SEEDS, CHUNK_SEEDS)] + [
    (5, start) for start in range(100_000, 100_000 + FIVE_NODE_SEEDS, CHUNK_SEEDS)
]


@pytest.mark.parametrize(("nodes", "first_seed"), CHUNKS)
def test_simulation_seeds(nodes: int, first_seed: int) -> None:
    for seed in range(first_seed, first_seed + CHUNK_SEEDS):
        stats = run_seed(seed, nodes=nodes)
        # Every run elects a leader and ends converged with the final write applied everywhere.
        assert stats["leaders"] >= 1
        assert stats["committed"] >= 2


def test_failure_message_names_seed_and_replay_command() -> None:
    with pytest.raises(SimulationFailure) as info:
        for seed in range(200):
            run_seed(seed, nodes=3, bugs=frozenset({"double_vote"}))
    text = str(info.value)
    assert "seed " in text
    assert "python tools/simulate.py --seed" in text and "--nodes 3" in text


def test_nodes_that_lost_their_disk_rejoin_and_the_checks_hold() -> None:
    lost = sum(run_seed(seed, nodes=3)["disks_lost"] for seed in range(40))
    assert lost >= 5  # the sweep above includes these seeds; here we show disk loss happens


def test_a_rejoining_member_waits_for_a_commit_of_the_leaders_term() -> None:
    # Seed 805416: a member lost its disk while a new leader had not yet committed in its term;
    # the leader's first append carried commit 0, and the member took itself for caught up with
    # an empty log (it then crashed on the commit index the leader knew it once held). Since the
    # simulator keeps disks whose acks may still count, this seed loses none: the story is told
    # step by step in test_scenarios (a rejoining member is not caught up by a leader that has
    # not committed yet); the seed still runs clean.
    run_seed(805416, nodes=3)


def test_a_lost_ack_does_not_stall_a_two_node_group() -> None:
    # Seed 1700622: the follower's last ack was lost and the leader only sent it unanswered
    # commit notices after that (see test_scenarios: a lost append ack is asked for again).
    assert run_seed(1700622, nodes=2)["committed"] >= 2


def test_no_disk_is_lost_while_its_acks_may_still_count() -> None:
    # Seed 1600099 (5 nodes): a member acknowledged entry 4, lost its disk, and the leader then
    # committed entry 4 counting that ack: 2 copies of 5. Raft cannot take an ack back, so the
    # simulator only takes a disk whose durable entries are on a quorum of the others.
    assert run_seed(1600099, nodes=5)["disks_lost"] == 1


def test_two_node_groups_converge_and_never_lose_a_disk_they_cannot_survive() -> None:
    # Two voters are both needed for a quorum: a member that lost its disk could never be
    # caught up (it does not vote until then), so the simulator does not inject that.
    for seed in range(30):
        stats = run_seed(seed, nodes=2)
        assert stats["disks_lost"] == 0 and stats["committed"] >= 2


def test_same_seed_same_run() -> None:
    assert run_seed(7, nodes=5) == run_seed(7, nodes=5)
