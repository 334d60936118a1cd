"""RaftStorage contract, run against MemoryRaftStorage and the durable LedgerLog."""

import pytest

from scribe.raft import Entry, EntryType, HardState, MemoryRaftStorage, RaftInvariantError


def ents(term: int, first: int, count: int) -> list[Entry]:
    return [Entry(term, first + i, EntryType.NORMAL, b"%d" % (first + i)) for i in range(count)]


@pytest.fixture(params=["memory", "ledger_log"])
def storage(request, tmp_path):
    if request.param == "memory":
        yield MemoryRaftStorage()
        return
    from engines.raftlog import LedgerLog  # the node's durable storage must pass the same contract

    log = LedgerLog(str(tmp_path / "log"))
    yield log
    log.close()


def test_empty_storage(storage) -> None:
    assert (storage.first_index(), storage.last_index(), storage.term(0)) == (1, 0, 0)
    assert storage.hard_state() == HardState()
    assert storage.entries(1, 1, 100) == []


def test_append_read_and_truncate_conflicting_tail(storage) -> None:
    storage.append(ents(1, 1, 5))
    assert storage.last_index() == 5 and storage.term(5) == 1
    storage.append(ents(2, 3, 2))  # overwrites 3..5
    assert storage.last_index() == 4
    assert [e.term for e in storage.entries(1, 5, 1 << 20)] == [1, 1, 2, 2]


def test_entries_respect_max_bytes_but_return_at_least_one(storage) -> None:
    storage.append([Entry(1, i, EntryType.NORMAL, bytes(100)) for i in range(1, 6)])
    assert len(storage.entries(1, 6, 0)) == 1
    assert len(storage.entries(1, 6, 2 * 121)) == 2
    assert len(storage.entries(1, 6, 1 << 20)) == 5


def test_gaps_and_out_of_range_reads_raise(storage) -> None:
    storage.append(ents(1, 1, 2))
    with pytest.raises(RaftInvariantError):
        storage.append(ents(1, 4, 1))
    with pytest.raises(RaftInvariantError):
        storage.term(3)
    with pytest.raises(RaftInvariantError):
        storage.entries(1, 4, 100)


def test_crash_loses_exactly_the_unsynced_writes() -> None:
    storage = MemoryRaftStorage()
    storage.append(ents(1, 1, 3))
    storage.set_hard_state(HardState(1, 1, 2))
    storage.sync()
    storage.append(ents(2, 3, 3))  # truncates 3, adds 3..5: not synced
    storage.set_hard_state(HardState(2, 0, 2))
    storage.crash()
    assert storage.hard_state() == HardState(1, 1, 2)
    assert [e.term for e in storage.entries(1, 4, 1 << 20)] == [1, 1, 1]
    storage.append(ents(3, 4, 1))
    storage.sync()
    storage.crash()
    assert storage.last_index() == 4 and storage.term(4) == 3
    assert storage.synced_last_index() == 4 and storage.synced_term(4) == 3
