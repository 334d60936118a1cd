"""LedgerLog: the node's single durable log (Raft log and ledger at once)."""

import hashlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines import MemoryEngine
from engines.raftlog import LedgerLog, decode_ops, encode_ops
from scribe.errors import CorruptionError, InvalidArgumentError, ScribeError
from scribe.raft.errors import RaftInvariantError
from scribe.raft.types import Entry, EntryType, HardState
from scribe.records import OP_CLEAR, OP_DELETE, OP_PUT

N, P = EntryType.NORMAL, EntryType.NOOP


def normal(term, index, ops, ts=1000):
    return Entry(term, index, N, encode_ops(ts, ops))


@pytest.fixture
def rlog(tmp_path):
    log = LedgerLog(str(tmp_path / "node"), segment_bytes=4096)
    yield log
    if not log.closed:
        log.close()


def test_ops_round_trip_and_bad_data():
    ops = [(OP_PUT, b"k", b"v"), (OP_DELETE, b"k", b""), (OP_CLEAR, b"", b"")]
    ts, back = decode_ops(encode_ops(42, ops))
    assert ts == 42 and [(o, k, v) for o, k, v, _ in back] == ops
    with pytest.raises(CorruptionError):
        decode_ops(encode_ops(42, ops)[:-1])
    with pytest.raises(CorruptionError):
        decode_ops(b"\x09" + encode_ops(42, ops)[1:])
    with pytest.raises(InvalidArgumentError):
        encode_ops(1, [(9, b"k", b"v")])


def test_raft_storage_contract(rlog):
    assert rlog.first_index() == 1 and rlog.last_index() == 0 and rlog.term(0) == 0
    rlog.append([Entry(1, 1, P, b""), normal(1, 2, [(OP_PUT, b"a", b"1")])])
    rlog.append([normal(1, 3, [(OP_PUT, b"b", b"2")])])
    assert rlog.last_index() == 3 and rlog.term(3) == 1
    assert [e.index for e in rlog.entries(1, 4, 1 << 20)] == [1, 2, 3]
    assert len(rlog.entries(1, 4, 1)) == 1  # at least one entry even over the byte limit
    # A new leader overwrites the conflicting uncommitted tail.
    rlog.append([normal(2, 3, [(OP_PUT, b"c", b"3")]), normal(2, 4, [(OP_PUT, b"d", b"4")])])
    assert rlog.last_index() == 4 and rlog.term(3) == 2
    assert rlog.entries(3, 4, 1 << 20)[0].data == encode_ops(1000, [(OP_PUT, b"c", b"3")])
    with pytest.raises(RaftInvariantError):
        rlog.append([normal(2, 9, [])])
    with pytest.raises(RaftInvariantError):
        rlog.term(5)
    rlog.set_hard_state(HardState(2, 1, 0))
    rlog.sync()


def test_apply_builds_the_ledger(rlog):
    rlog.append(
        [
            Entry(1, 1, P, b""),
            normal(1, 2, [(OP_PUT, b"a", b"1"), (OP_PUT, b"b", b"2")], ts=5),
            normal(1, 3, [(OP_DELETE, b"a", b""), (OP_PUT, b"b", b"3")], ts=6),
        ]
    )
    res = rlog.apply_entries(rlog.entries(1, 4, 1 << 20))
    assert res == [(2, 0, 1), (3, 2, 3)]
    assert rlog.applied_index == 3
    assert rlog.get(b"a") is None and rlog.get_with_seq(b"b") == (3, b"3")
    assert len(rlog) == 1
    assert [(v.seq, v.op, v.value, v.ts_ms) for v in rlog.history(b"a")] == [
        (0, OP_PUT, b"1", 5),
        (2, OP_DELETE, b"", 6),
    ]
    recs = list(rlog.records())
    assert [r.seq for r in recs] == [0, 1, 2, 3]
    hashes = rlog.leaf_hashes()
    for r in recs:
        assert (
            hashes[32 * r.seq : 32 * r.seq + 32] == hashlib.sha256(b"\x00" + r.leaf_data()).digest()
        )
    with pytest.raises(ScribeError):
        rlog.apply_entries([normal(1, 9, [])])
    with pytest.raises(RaftInvariantError):
        rlog.append([normal(2, 3, [])])  # applied entries are never overwritten
    with pytest.raises(ScribeError):
        rlog.put(b"x", b"y")


def test_reopen_replays_committed_entries_only(tmp_path):
    path = str(tmp_path / "node")
    log = LedgerLog(path, segment_bytes=4096)
    entries = [Entry(1, 1, P, b"")] + [
        normal(1, i, [(OP_PUT, b"k%d" % i, b"v" * 50)]) for i in range(2, 200)
    ]
    log.append(entries)
    log.apply_entries(entries[:150])
    log.set_hard_state(HardState(1, 1, 150))
    log.sync()
    head = bytes(log.leaf_hashes())
    log.close()
    assert len([n for n in os.listdir(path) if n.endswith(".rlog")]) > 2
    log = LedgerLog(path, segment_bytes=4096)
    try:
        assert log.last_index() == 199
        assert log.hard_state() == HardState(1, 1, 150)
        assert log.applied_index == 150
        assert bytes(log.leaf_hashes()) == head
        assert log.get(b"k150") == b"v" * 50 and log.get(b"k151") is None
        log.apply_entries(log.entries(151, 200, 1 << 30))
        assert log.get(b"k199") == b"v" * 50 and len(log) == 198
    finally:
        log.close()


def test_clear_through_raft(rlog):
    rlog.append([normal(1, 1, [(OP_PUT, b"a", b"1")]), normal(1, 2, [(OP_CLEAR, b"", b"")])])
    rlog.append([normal(1, 3, [(OP_PUT, b"b", b"2")])])
    rlog.apply_entries(rlog.entries(1, 4, 1 << 20))
    assert len(rlog) == 1 and rlog.get(b"a") is None
    assert [v.op for v in rlog.history(b"a")] == [OP_PUT, OP_CLEAR]


def test_torn_tail_truncated_and_mid_corruption_detected(tmp_path):
    path = str(tmp_path / "node")
    log = LedgerLog(path)
    log.append([normal(1, i, [(OP_PUT, b"k%d" % i, b"v")]) for i in range(1, 21)])
    log.sync()
    log.close()
    seg = os.path.join(path, sorted(n for n in os.listdir(path) if n.endswith(".rlog"))[0])
    size = os.path.getsize(seg)
    with open(seg, "ab") as f:
        f.write(b"\x00" * 40)
    log = LedgerLog(path)
    assert log.last_index() == 20
    log.close()
    assert os.path.getsize(seg) == size
    with open(seg, "r+b") as f:  # cut into the last entry: a torn write
        f.truncate(size - 3)
    log = LedgerLog(path)
    assert log.last_index() == 19
    log.close()
    with open(seg, "r+b") as f:  # flip a bit in the middle: corruption, never truncated
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(CorruptionError) as err:
        LedgerLog(path)
    assert seg in str(err.value)


def test_hard_state_slots_survive_a_torn_write(tmp_path):
    path = str(tmp_path / "node")
    log = LedgerLog(path)
    log.append([normal(1, 1, [(OP_PUT, b"a", b"1")])])
    log.set_hard_state(HardState(3, 2, 0))
    log.sync()
    log.set_hard_state(HardState(4, 0, 0))
    log.sync()
    log.close()
    state = os.path.join(path, "raft.state")
    data = bytearray(open(state, "rb").read())
    # Damage the newest slot (generation 2 lives in slot 0): the older one still holds.
    data[3] ^= 0xFF
    open(state, "wb").write(bytes(data))
    log = LedgerLog(path)
    try:
        assert log.hard_state().term == 3 and log.hard_state().vote == 2
    finally:
        log.close()


def test_truncation_across_segments(tmp_path):
    path = str(tmp_path / "node")
    log = LedgerLog(path, segment_bytes=4096)
    try:
        log.append([normal(1, i, [(OP_PUT, b"k%d" % i, b"v" * 100)]) for i in range(1, 120)])
        log.sync()
        segs = len([n for n in os.listdir(path) if n.endswith(".rlog")])
        assert segs > 2
        log.append([normal(2, 5, [(OP_PUT, b"x", b"y")])])
        log.sync()
        assert log.last_index() == 5 and log.term(5) == 2
        assert len([n for n in os.listdir(path) if n.endswith(".rlog")]) == 1
    finally:
        log.close()
    log = LedgerLog(path, segment_bytes=4096)
    try:
        assert log.last_index() == 5 and log.term(5) == 2
    finally:
        log.close()


def test_truncation_across_segments_before_any_sync(tmp_path):
    """A conflicting append that drops whole segments written since the last sync: the dropped
    active file must leave the set of files to fsync (it used to be closed, then fsynced: EBADF,
    and with its descriptor number reused meanwhile, someone else's file or socket)."""
    path = str(tmp_path / "node")
    log = LedgerLog(path, segment_bytes=4096)
    try:
        log.append([normal(1, i, [(OP_PUT, b"k%d" % i, b"v" * 100)]) for i in range(1, 120)])
        assert len([n for n in os.listdir(path) if n.endswith(".rlog")]) > 2
        log.append([normal(2, 5, [(OP_PUT, b"x", b"y")])])
        log.sync()
        log.append([normal(2, 6, [(OP_PUT, b"z", b"w")])])
        log.sync()
        assert log.last_index() == 6 and log.term(5) == 2
    finally:
        log.close()
    log = LedgerLog(path, segment_bytes=4096)
    try:
        assert log.last_index() == 6 and log.term(6) == 2
    finally:
        log.close()


_KEYS = [b"a", b"b", b"c", b"d"]
_op = st.one_of(
    st.tuples(st.just(OP_PUT), st.sampled_from(_KEYS), st.binary(max_size=12)),
    st.tuples(st.just(OP_DELETE), st.sampled_from(_KEYS), st.just(b"")),
)
_entry = st.one_of(st.lists(_op, min_size=1, max_size=6), st.just([(OP_CLEAR, b"", b"")]))


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(_entry, min_size=1, max_size=12), cache_bytes=st.sampled_from([0, 1 << 20]))
def test_apply_matches_the_reference_engine(tmp_path_factory, batches, cache_bytes):
    """Overwrites, deletes of live, deleted and missing keys, and clears, entry by entry: the
    ledger the log builds is the one MemoryEngine builds from the same operations."""
    path = str(tmp_path_factory.mktemp("node"))
    log = LedgerLog(path, segment_bytes=4096, cache_bytes_max=cache_bytes)
    ref = MemoryEngine()
    try:
        entries = [normal(1, i + 1, ops, ts=1000 + i) for i, ops in enumerate(batches)]
        log.append(entries)
        for e, ops in zip(entries, batches, strict=True):
            log.apply_entries([e])
            ref.clear() if ops[0][0] == OP_CLEAR else ref.apply(ops)
            for key in _KEYS:  # reads between writes fill the cache a later write must correct
                assert log.get(key) == ref.get(key)
        assert len(log) == len(ref) and log.next_seq == ref.next_seq
        for key in _KEYS:
            assert log.get_with_seq(key) == ref.get_with_seq(key)
            assert [(v.seq, v.op, v.value) for v in log.history(key)] == [
                (v.seq, v.op, v.value) for v in ref.history(key)
            ]
        assert list(log.scan()) == list(ref.scan())
        hashes = log.leaf_hashes()
        for r in log.records():
            digest = hashlib.sha256(b"\x00" + r.leaf_data()).digest()
            assert hashes[32 * r.seq : 32 * r.seq + 32] == digest
    finally:
        log.close()
        ref.close()


def test_a_corrupt_operation_fails_the_log(rlog):
    good = normal(1, 1, [(OP_PUT, b"a", b"1")])
    data = encode_ops(1000, [(OP_PUT, b"b", b"2"), (OP_PUT, b"c", b"3")])
    bad = Entry(1, 2, N, data[:-2] + b"\x00\x00\x00")  # the last value runs past the entry
    rlog.append([good, bad])
    with pytest.raises(CorruptionError):
        rlog.apply_entries([good, bad])
    with pytest.raises(ScribeError):  # half-applied state is never served on
        rlog.apply_entries([bad])


def test_a_write_drops_the_value_a_read_cached(tmp_path):
    log = LedgerLog(str(tmp_path / "node"), cache_bytes_max=1 << 12)
    try:
        big = b"B" * (log._cache_entry_max + 1)  # too big to be cached itself
        entries = [
            normal(1, 1, [(OP_PUT, b"k", b"small"), (OP_PUT, b"j", b"1")]),
            normal(1, 2, [(OP_PUT, b"k", big), (OP_DELETE, b"j", b"")]),
            normal(1, 3, [(OP_PUT, b"k", b"again")]),
        ]
        log.append(entries)
        log.apply_entries(entries[:1])
        assert log.get(b"k") == b"small" and log.get(b"j") == b"1"  # now cached
        log.apply_entries(entries[1:2])
        assert log.get(b"k") == big and log.get_with_seq(b"k") == (2, big)
        assert log.get(b"j") is None
        log.apply_entries(entries[2:])
        assert log.get(b"k") == b"again"
    finally:
        log.close()


def test_a_failed_sync_fails_the_log(tmp_path, monkeypatch):
    """The log's entries are made durable with fdatasync (their size change included); when it
    fails, nothing after it is accepted: the page cache can no longer be trusted."""
    from engines import fileio

    log = LedgerLog(str(tmp_path / "node"), segment_bytes=4096)
    synced = []
    real = fileio.fdatasync
    monkeypatch.setattr(fileio, "fdatasync", lambda fd: (synced.append(fd), real(fd)))
    try:
        log.append([normal(1, 1, [(OP_PUT, b"a", b"1")])])
        log.sync()
        assert synced

        def broken(fd):
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(fileio, "fdatasync", broken)
        log.append([normal(1, 2, [(OP_PUT, b"b", b"2")])])
        with pytest.raises(ScribeError):
            log.sync()
        with pytest.raises(ScribeError):
            log.append([normal(1, 3, [(OP_PUT, b"c", b"3")])])
    finally:
        monkeypatch.undo()
        log.close()
