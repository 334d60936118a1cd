"""The Raft log storage interface the core reads, and an in-memory implementation with a sync model.

The core only ever *reads* storage. The runtime writes what a Ready hands it (set_hard_state,
append) and makes it durable (sync) before calling RaftCore.advance(). On disk the Raft log IS the
ledger: entry data is opaque bytes here.

Contract every implementation keeps (tests/raft/test_storage.py is the conformance suite):
- Indexes start at 1. term(0) == 0. first_index() is 1 until compaction exists.
- append(entries): entries are consecutive; entries[0].index <= last_index() + 1; every stored
  entry at index >= entries[0].index is discarded first (a leader overwrote a conflicting tail).
- After sync() returns, the hard state and every appended entry survive a crash, and a truncation
  is durable too. The hard state must never be durable with a commit index above the durable
  last index: persist entries no later than the hard state that commits them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from bisect import bisect_right
from itertools import accumulate
from operator import itemgetter

from scribe.raft.errors import RaftInvariantError
from scribe.raft.types import ENTRY_OVERHEAD_BYTES, Entry, HardState


class RaftStorage(ABC):
    """What the Raft core reads (first five methods) and what the runtime writes (last three)."""

    @abstractmethod
    def hard_state(self) -> HardState:
        """The last hard state written (term, vote, commit)."""

    @abstractmethod
    def first_index(self) -> int:
        """Index of the first available entry (1 without compaction)."""

    @abstractmethod
    def last_index(self) -> int:
        """Index of the last entry, 0 when empty."""

    @abstractmethod
    def term(self, index: int) -> int:
        """Term of the entry at index; term(first_index() - 1) is 0 without compaction.

        Raises RaftInvariantError outside [first_index() - 1, last_index()]."""

    @abstractmethod
    def entries(self, lo: int, hi: int, max_bytes: int) -> list[Entry]:
        """Entries [lo, hi), stopping before max_bytes is exceeded but always at least one if lo < hi."""

    @abstractmethod
    def set_hard_state(self, hard_state: HardState) -> None:
        """Write the hard state (durable after the next sync())."""

    @abstractmethod
    def append(self, entries: list[Entry]) -> None:
        """Write entries, discarding any stored entry at or after entries[0].index first."""

    @abstractmethod
    def sync(self) -> None:
        """Make everything written so far durable (fsync)."""


_entry_data = itemgetter(3)


def limit_bytes(entries: list[Entry], max_bytes: int) -> list[Entry]:
    """The longest prefix of entries within max_bytes, but at least one entry."""
    count = len(entries)
    if count <= 1:
        return entries
    # Fast path in C: most slices fit whole.
    if ENTRY_OVERHEAD_BYTES * count + sum(map(len, map(_entry_data, entries))) <= max_bytes:
        return entries
    sizes = list(accumulate(ENTRY_OVERHEAD_BYTES + len(entry.data) for entry in entries))
    return entries[: max(bisect_right(sizes, max_bytes), 1)]


class MemoryRaftStorage(RaftStorage):
    """In-memory storage for tests and the simulator, with an explicit synced/unsynced split.

    Writes land in the visible state at once; sync() makes them durable; crash() throws away
    everything since the last sync(), exactly what a power loss does to unsynced writes.
    Both are O(entries changed since the last sync).
    """

    def __init__(self) -> None:
        self._entries: list[Entry] = []  # entry i lives at position i - 1
        self._hard_state = HardState()
        self._synced_entries: list[Entry] = []
        self._synced_hard_state = HardState()
        self._dirty_from = 0  # positions >= this may differ from the synced copy

    def hard_state(self) -> HardState:
        return self._hard_state

    def first_index(self) -> int:
        return 1

    def last_index(self) -> int:
        return len(self._entries)

    def term(self, index: int) -> int:
        if index == 0:
            return 0
        if index < 0 or index > len(self._entries):
            raise RaftInvariantError(
                f"storage term({index}) out of range [0, {len(self._entries)}]"
            )
        return self._entries[index - 1].term

    def entries(self, lo: int, hi: int, max_bytes: int) -> list[Entry]:
        if lo < 1 or hi > len(self._entries) + 1 or lo > hi:
            raise RaftInvariantError(
                f"storage entries[{lo}, {hi}) out of range [1, {len(self._entries) + 1})"
            )
        return limit_bytes(self._entries[lo - 1 : hi - 1], max_bytes)

    def set_hard_state(self, hard_state: HardState) -> None:
        self._hard_state = hard_state

    def append(self, entries: list[Entry]) -> None:
        if not entries:
            return
        first = entries[0].index
        if first < 1 or first > len(self._entries) + 1:
            raise RaftInvariantError(
                f"storage append at {first} leaves a gap after last index {len(self._entries)}"
            )
        if entries[-1].index != first + len(entries) - 1:
            raise RaftInvariantError("storage append: entries are not consecutive")
        position = first - 1
        del self._entries[position:]
        self._entries.extend(entries)
        if position < self._dirty_from:
            self._dirty_from = position

    def sync(self) -> None:
        start = self._dirty_from
        self._synced_entries[start:] = self._entries[start:]
        self._synced_hard_state = self._hard_state
        self._dirty_from = len(self._entries)

    # Simulation only -------------------------------------------------------------------------

    def crash(self) -> None:
        """Lose every write since the last sync()."""
        start = self._dirty_from
        self._entries[start:] = self._synced_entries[start:]
        self._hard_state = self._synced_hard_state
        self._dirty_from = len(self._entries)

    def synced_last_index(self) -> int:
        return len(self._synced_entries)

    def synced_term(self, index: int) -> int:
        """Term of the durable entry at index, 0 if there is none."""
        if 1 <= index <= len(self._synced_entries):
            return self._synced_entries[index - 1].term
        return 0

    def synced_hard_state(self) -> HardState:
        return self._synced_hard_state
