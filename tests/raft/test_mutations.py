"""Mutation check: the simulator must catch each injected core bug within 1,000 seeds.

The bugs live behind RaftConfig.bugs (tests only). Each test sweeps seeds from 0 and stops at the
first failure; the seed count it needed is printed (run with -s to see it).
"""

import pytest

from scribe.raft.config import KNOWN_BUGS
from scribe.raft.sim import SimulationFailure, run_seed

MAX_SEEDS = 1000


def seeds_to_catch(bug: str, nodes: int) -> tuple[int, str]:
    for seed in range(MAX_SEEDS):
        try:
            run_seed(seed, nodes=nodes, bugs=frozenset({bug}))
        except SimulationFailure as failure:
            return seed + 1, str(failure)
    return MAX_SEEDS + 1, ""


@pytest.mark.parametrize("bug", sorted(KNOWN_BUGS))
def test_simulator_catches_injected_bug(bug: str) -> None:
    needed, failure = seeds_to_catch(bug, nodes=3)
    print(f"\n{bug}: caught after {needed} seeds: {failure.splitlines()[0] if failure else ''}")
    assert needed <= MAX_SEEDS, f"{bug} survived {MAX_SEEDS} seeds"
    assert "replay: python tools/simulate.py --seed" in failure
    assert f"--mutation {bug}" in failure
    # The seed that exposes the mutant passes without it: the failure is the bug's.
    run_seed(needed - 1, nodes=3)
