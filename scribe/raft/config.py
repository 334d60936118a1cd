"""RaftConfig: every limit of the Raft core, in one place, with units in the names."""

from dataclasses import dataclass, field

from scribe.errors import ConfigError

# Mutations the simulator must catch. Only tests set RaftConfig.bugs; product code never does.
KNOWN_BUGS = frozenset(
    {
        "double_vote",  # grant a vote although this node already voted for someone else in the term
        "commit_old_term",  # commit entries of an earlier term by counting replicas
        "ack_before_sync",  # acknowledge an append before the entries are durable
        "read_without_quorum",  # answer ReadIndex without confirming leadership by a heartbeat round
    }
)


@dataclass(frozen=True)
class RaftConfig:
    """Limits of one Raft group member. Defaults match DESIGN §6 (`election_timeout`=10, `heartbeat_timeout`=3)."""

    election_timeout_ticks: int = 10
    heartbeat_timeout_ticks: int = 3
    max_entries_per_msg: int = 4096
    max_bytes_per_msg: int = 1 << 20
    max_inflight_msgs: int = 64
    max_pending_proposals: int = (
        65536  # uncommitted entries a leader accepts before dropping proposals
    )
    max_pending_reads: int = 4096  # ReadIndex requests a leader holds while confirming leadership
    max_committed_bytes_per_ready: int = 8 << 20  # cap on entries handed to apply in one Ready
    pre_vote: bool = True
    check_quorum: bool = True
    bugs: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        positive = (
            "election_timeout_ticks",
            "heartbeat_timeout_ticks",
            "max_entries_per_msg",
            "max_bytes_per_msg",
            "max_inflight_msgs",
            "max_pending_proposals",
            "max_pending_reads",
            "max_committed_bytes_per_ready",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"raft config: {name} must be a positive integer, got {value!r}")
        if self.election_timeout_ticks <= self.heartbeat_timeout_ticks:
            raise ConfigError(
                "raft config: election_timeout_ticks "
                f"({self.election_timeout_ticks}) must exceed heartbeat_timeout_ticks "
                f"({self.heartbeat_timeout_ticks})"
            )
        unknown = set(self.bugs) - KNOWN_BUGS
        if unknown:
            raise ConfigError(f"raft config: unknown bugs {sorted(unknown)}")
        object.__setattr__(self, "bugs", frozenset(self.bugs))
