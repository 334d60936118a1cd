"""RaftLog: the core's view of its log = durable storage + an unstable tail not yet persisted."""

from __future__ import annotations

from scribe.raft.errors import RaftInvariantError
from scribe.raft.storage import RaftStorage, limit_bytes
from scribe.raft.types import Entry, entry_bytes


class RaftLog:
    """Entries [1, unstable_offset) are read from storage; [unstable_offset, last] live in `unstable`.

    committed <= last_index always; applied <= committed.
    """

    __slots__ = ("storage", "unstable", "unstable_offset", "committed", "applied")

    def __init__(self, storage: RaftStorage, applied_index: int) -> None:
        self.storage = storage
        self.unstable: list[Entry] = []
        self.unstable_offset = storage.last_index() + 1
        hard_state = storage.hard_state()
        last = storage.last_index()
        if hard_state.commit > last:
            raise RaftInvariantError(
                f"durable commit index {hard_state.commit} is beyond the durable last index {last}: "
                "the log lost committed entries"
            )
        if applied_index > hard_state.commit:
            raise RaftInvariantError(
                f"applied index {applied_index} is beyond the commit index {hard_state.commit}"
            )
        self.committed = hard_state.commit
        self.applied = applied_index

    # Reads ------------------------------------------------------------------------------------

    def last_index(self) -> int:
        if self.unstable:
            return self.unstable_offset + len(self.unstable) - 1
        return self.unstable_offset - 1

    def last_term(self) -> int:
        if self.unstable:
            return self.unstable[-1].term
        return self.storage.term(self.unstable_offset - 1)

    def term(self, index: int) -> int:
        """Term at index, or 0 when index is beyond the log (so it matches nothing)."""
        offset = self.unstable_offset
        if index >= offset:
            position = index - offset
            if position < len(self.unstable):
                return self.unstable[position].term
            return 0
        if index < self.storage.first_index() - 1:
            raise RaftInvariantError(f"term({index}) was compacted away")
        return self.storage.term(index)

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term and (index == 0 or term != 0)

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Is a candidate's log (last_index, last_term) at least as up to date as ours? (§5.4.1)"""
        our_term = self.last_term()
        return last_term > our_term or (last_term == our_term and last_index >= self.last_index())

    def slice(self, lo: int, hi: int, max_bytes: int, max_entries: int) -> list[Entry]:
        """Entries [lo, hi) limited to max_entries and max_bytes (at least one if lo < hi)."""
        if lo >= hi:
            return []
        if hi - lo > max_entries:
            hi = lo + max_entries
        last = self.last_index()
        if lo < 1 or hi > last + 1:
            raise RaftInvariantError(f"slice [{lo}, {hi}) out of range [1, {last + 1})")
        offset = self.unstable_offset
        if lo >= offset:
            return limit_bytes(self.unstable[lo - offset : hi - offset], max_bytes)
        stop = min(hi, offset)
        stored = self.storage.entries(lo, stop, max_bytes)
        if hi <= offset or len(stored) < stop - lo:
            return stored
        stored = list(stored)  # storage may hand out its own list: never extend it in place
        used = sum(entry_bytes(entry) for entry in stored)
        for entry in self.unstable[: hi - offset]:
            used += entry_bytes(entry)
            if used > max_bytes:
                break
            stored.append(entry)
        return stored

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """Largest (i, term(i)) with i <= index and term(i) <= term: where a log with an entry of
        `term` at `index` could last agree with ours (fast backtracking hint)."""
        last = self.last_index()
        if index > last:
            index = last
        while index > 0:
            our_term = self.term(index)
            if our_term <= term:
                return index, our_term
            index -= 1
        return 0, 0

    def unstable_entries(self) -> list[Entry]:
        return list(self.unstable)

    def next_committed(self, max_bytes: int) -> list[Entry]:
        """Committed entries not yet applied, capped at max_bytes (at least one)."""
        if self.committed <= self.applied:
            return []
        return self.slice(self.applied + 1, self.committed + 1, max_bytes, 1 << 62)

    # Writes -----------------------------------------------------------------------------------

    def append(self, entries: list[Entry]) -> None:
        """Append entries after truncating any existing entry at or after entries[0].index."""
        if not entries:
            return
        first = entries[0].index
        if first <= self.committed:
            raise RaftInvariantError(
                f"refusing to overwrite committed entry {first} (committed {self.committed})"
            )
        offset = self.unstable_offset
        if first == offset + len(self.unstable):
            self.unstable.extend(entries)
        elif first <= offset:
            # Replaces (part of) the stable log: the whole unstable tail restarts here.
            self.unstable_offset = first
            self.unstable = list(entries)
        elif first < offset + len(self.unstable):
            del self.unstable[first - offset :]
            self.unstable.extend(entries)
        else:
            raise RaftInvariantError(
                f"append at {first} leaves a gap after last index {self.last_index()}"
            )

    def maybe_append(
        self, prev_index: int, prev_term: int, commit: int, entries: list[Entry] | tuple
    ) -> int:
        """Follower side of AppendEntries: -1 if (prev_index, prev_term) does not match, else the
        index of the last entry this message vouches for. Conflicting entries are replaced."""
        if not self.match_term(prev_index, prev_term):
            return -1
        last_new = prev_index + len(entries)
        if entries:
            last = self.last_index()
            if entries[0].index > last:
                self.append(list(entries))
            else:
                for position, entry in enumerate(entries):
                    if entry.index > last or self.term(entry.index) != entry.term:
                        self.append(list(entries[position:]))
                        break
        self.commit_to(min(commit, last_new))
        return last_new

    def commit_to(self, index: int) -> bool:
        if index <= self.committed:
            return False
        last = self.last_index()
        if index > last:
            raise RaftInvariantError(
                f"commit index {index} is beyond the last index {last}: log truncated or lost"
            )
        self.committed = index
        return True

    def stable_to(self, index: int, term: int) -> None:
        """Entries up to (index, term) are durable: drop them from the unstable tail."""
        offset = self.unstable_offset
        if index < offset:
            return
        position = index - offset
        if position >= len(self.unstable) or self.unstable[position].term != term:
            return  # replaced by a newer append while the write ran: keep it unstable
        del self.unstable[: position + 1]
        self.unstable_offset = index + 1

    def applied_to(self, index: int) -> None:
        if index > self.committed or index < self.applied:
            raise RaftInvariantError(
                f"applied index {index} outside [{self.applied}, {self.committed}]"
            )
        self.applied = index
