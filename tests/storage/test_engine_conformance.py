"""One conformance suite that every storage engine must pass."""

import hashlib

import pytest

from engines import MemoryEngine, SegmentEngine
from scribe.records import OP_CLEAR, OP_DELETE, OP_PUT


@pytest.fixture(params=["memory", "segment"])
def engine(request, tmp_path):
    if request.param == "memory":
        eng = MemoryEngine()
    else:
        eng = SegmentEngine(str(tmp_path / "data"), segment_bytes=4096)
    yield eng
    eng.close()


def test_put_get_and_dense_seqs(engine):
    assert engine.put(b"a", b"1") == 0
    assert engine.put(b"b", b"2") == 1
    assert engine.get(b"a") == b"1"
    assert engine.get(b"missing") is None
    assert engine.next_seq == 2
    assert len(engine) == 2


def test_put_appends_versions_never_overwrites(engine):
    engine.put(b"k", b"v1")
    engine.put(b"k", b"v2")
    engine.delete(b"k")
    engine.put(b"k", b"v3")
    assert engine.get(b"k") == b"v3"
    hist = engine.history(b"k")
    assert [(v.seq, v.op, v.value) for v in hist] == [
        (0, OP_PUT, b"v1"),
        (1, OP_PUT, b"v2"),
        (2, OP_DELETE, b""),
        (3, OP_PUT, b"v3"),
    ]
    assert len(engine) == 1


def test_delete_and_len(engine):
    engine.put(b"a", b"1")
    engine.put(b"b", b"2")
    engine.delete(b"a")
    engine.delete(b"never")
    assert engine.get(b"a") is None
    assert len(engine) == 1
    assert [r.op for r in engine.records()] == [OP_PUT, OP_PUT, OP_DELETE, OP_DELETE]


def test_clear_keeps_history(engine):
    engine.put(b"a", b"1")
    engine.put(b"b", b"2")
    seq = engine.clear()
    assert len(engine) == 0
    assert engine.get(b"a") is None
    assert list(engine.scan()) == []
    engine.put(b"a", b"3")
    assert len(engine) == 1
    hist = engine.history(b"a")
    assert [(v.seq, v.op) for v in hist] == [(0, OP_PUT), (seq, OP_CLEAR), (3, OP_PUT)]
    rec = engine.record(seq)
    assert (rec.op, rec.key, rec.value) == (OP_CLEAR, b"", b"")


def test_batch_is_one_group_with_last_seq(engine):
    last = engine.apply([(OP_PUT, b"x", b"1"), (OP_PUT, b"y", b"2"), (OP_DELETE, b"x", b"")])
    assert last == 2
    assert engine.get(b"x") is None and engine.get(b"y") == b"2"
    assert len(engine) == 1
    assert [v.seq for v in engine.history(b"x")] == [0, 2]
    assert len({r.ts_ms for r in engine.records()}) == 1


def test_scan_order_bounds_and_prefix(engine):
    for k in [b"b", b"a", b"c/1", b"c/2", b"c", b"d", b"c\xff"]:
        engine.put(k, k.upper())
    engine.delete(b"d")
    assert [k for k, _ in engine.scan()] == [b"a", b"b", b"c", b"c/1", b"c/2", b"c\xff"]
    assert [k for k, _ in engine.scan(b"b", b"c/2")] == [b"b", b"c", b"c/1"]
    assert [k for k, _ in engine.scan(prefix=b"c/")] == [b"c/1", b"c/2"]
    assert dict(engine.scan(prefix=b"c"))[b"c/1"] == b"C/1"


def test_scan_large_crosses_chunks(engine):
    engine.apply([(OP_PUT, b"k%05d" % i, b"v") for i in range(3000)])
    keys = [k for k, _ in engine.scan()]
    assert keys == sorted(keys) and len(keys) == 3000


def test_records_range(engine):
    for i in range(10):
        engine.put(b"k%d" % i, b"v%d" % i)
    assert [r.seq for r in engine.records(3, 6)] == [3, 4, 5]
    assert [r.key for r in engine.records(8)] == [b"k8", b"k9"]
    assert list(engine.records(10)) == []


def test_leaf_hashes_are_rfc9162_of_leaf_data(engine):
    engine.put(b"a", b"1")
    engine.apply([(OP_PUT, b"b", b"2"), (OP_DELETE, b"a", b"")])
    engine.clear()
    hashes = engine.leaf_hashes()
    recs = list(engine.records())
    assert len(hashes) == 32 * len(recs)
    for r in recs:
        expect = hashlib.sha256(b"\x00" + r.leaf_data()).digest()
        assert hashes[32 * r.seq : 32 * r.seq + 32] == expect


def test_empty_value_and_binary(engine):
    engine.put(b"\x00\xff", b"")
    assert engine.get(b"\x00\xff") == b""
    assert len(engine) == 1


def test_timestamps_do_not_go_backwards(engine):
    for i in range(50):
        engine.put(b"k", b"%d" % i)
    ts = [r.ts_ms for r in engine.records()]
    assert ts == sorted(ts)


def test_small_cache_still_serves_every_value(tmp_path):
    eng = SegmentEngine(str(tmp_path / "d"), cache_bytes_max=1000)
    try:
        for i in range(500):
            eng.put(b"k%d" % i, b"v" * 50 + b"%d" % i)
        for i in range(500):
            assert eng.get(b"k%d" % i) == b"v" * 50 + b"%d" % i
        assert sum(map(len, eng.cache.values())) <= 1000
    finally:
        eng.close()
