"""Per-follower replication progress on the leader: match/next, probe/replicate, in-flight window."""

from __future__ import annotations

from collections import deque
from enum import IntEnum


class ProgressState(IntEnum):
    PROBE = 0  # unsure where the follower's log matches: one append at a time
    REPLICATE = 1  # matching: stream appends optimistically, bounded by the in-flight window


class Progress:
    __slots__ = (
        "match",
        "next",
        "state",
        "probe_sent",
        "inflight",
        "max_inflight",
        "recent_active",
        "read_ack_seq",
        "is_learner",
    )

    def __init__(self, next_index: int, max_inflight: int, is_learner: bool = False) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.inflight: deque[int] = deque()  # last index of each unacknowledged append
        self.max_inflight = max_inflight
        self.recent_active = False
        self.read_ack_seq = 0  # highest ReadIndex heartbeat round this peer acknowledged
        self.is_learner = is_learner

    def become_probe(self) -> None:
        self.state = ProgressState.PROBE
        self.next = self.match + 1
        self.probe_sent = False
        self.inflight.clear()

    def become_replicate(self) -> None:
        self.state = ProgressState.REPLICATE
        self.next = self.match + 1
        self.probe_sent = False
        self.inflight.clear()

    def lost_log(self, last_index: int) -> None:
        """The follower's log ends at last_index, below what it acknowledged: it lost its log
        and rejoined. Probe from there (the commit index never moves back, so this is safe)."""
        self.match = last_index
        self.become_probe()

    def is_paused(self) -> bool:
        if self.state == ProgressState.PROBE:
            return self.probe_sent
        return len(self.inflight) >= self.max_inflight

    def sent_entries(self, last_index: int) -> None:
        """An append carrying entries up to last_index went out."""
        if self.state == ProgressState.REPLICATE:
            self.next = last_index + 1
            self.inflight.append(last_index)
        else:
            self.probe_sent = True

    def maybe_update(self, index: int) -> bool:
        """The follower acknowledged a matching log up to index. True if that is news."""
        updated = False
        if index > self.match:
            self.match = index
            updated = True
            self.probe_sent = False
        if self.next < index + 1:
            self.next = index + 1
        inflight = self.inflight
        while inflight and inflight[0] <= index:
            inflight.popleft()
        return updated

    def maybe_decrease_to(self, rejected: int, next_hint: int) -> bool:
        """The follower rejected an append after `rejected`; next_hint is where to try next.
        False if the rejection is stale (an old message) and must be ignored."""
        if self.state == ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.become_probe()
            self.next = max(self.match + 1, min(rejected, next_hint))
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, next_hint), self.match + 1, 1)
        self.probe_sent = False
        return True
