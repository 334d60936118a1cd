"""RaftConfig validation: limits are positive integers and the election outlasts the heartbeat."""

import pytest

from scribe.errors import ConfigError
from scribe.raft import RaftConfig


def test_defaults_match_the_design() -> None:
    config = RaftConfig()
    assert (config.election_timeout_ticks, config.heartbeat_timeout_ticks) == (10, 3)
    assert config.pre_vote and config.check_quorum and not config.bugs


@pytest.mark.parametrize(
    "kwargs",
    [
        {"election_timeout_ticks": 3, "heartbeat_timeout_ticks": 3},
        {"heartbeat_timeout_ticks": 0},
        {"max_entries_per_msg": -1},
        {"max_bytes_per_msg": 1.5},
        {"max_inflight_msgs": True},
        {"bugs": frozenset({"no_such_bug"})},
    ],
)
def test_bad_limits_are_refused(kwargs) -> None:
    with pytest.raises(ConfigError):
        RaftConfig(**kwargs)
