"""Hypothesis drives the ledger against a model (a dict plus every record), with reopen as a step."""

import shutil
import tempfile

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import scribe
from scribe import Ledger
from scribe.records import OP_CLEAR, OP_DELETE, OP_PUT

keys = st.binary(min_size=1, max_size=6) | st.sampled_from([b"a", b"b", b"a/1", b"a/2", b"\xff"])
values = st.binary(max_size=40)


class LedgerModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="scribe-stateful-")
        self.led = Ledger(self.dir, segment_size=4096, max_cache_size=256)
        self.model: dict[bytes, bytes] = {}
        self.records: list[tuple[int, bytes, bytes]] = []
        self.heads = []

    def teardown(self):
        self.led.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(key=keys, value=values)
    def put(self, key, value):
        assert self.led.put(key, value) == len(self.records)
        self.model[key] = value
        self.records.append((OP_PUT, key, value))

    @rule(key=keys)
    def delete(self, key):
        assert self.led.delete(key) == len(self.records)
        self.model.pop(key, None)
        self.records.append((OP_DELETE, key, b""))

    @rule(ops=st.lists(st.tuples(keys, st.none() | values), max_size=8))
    def batch(self, ops):
        last = self.led.apply_batch(ops)
        for key, value in ops:
            if value is None:
                self.model.pop(key, None)
                self.records.append((OP_DELETE, key, b""))
            else:
                self.model[key] = value
                self.records.append((OP_PUT, key, value))
        assert last == len(self.records) - 1

    @rule()
    def clear(self):
        self.led.clear()
        self.model.clear()
        self.records.append((OP_CLEAR, b"", b""))

    @rule()
    def flush(self):
        self.led.flush()

    @rule()
    def reopen(self):
        self.led.close()
        self.led = Ledger(self.dir, segment_size=4096, max_cache_size=256)

    @rule(key=keys)
    def get(self, key):
        assert self.led.get(key) == self.model.get(key)

    @rule(key=keys)
    def history(self, key):
        expected = []
        seen = False
        for seq, (op, k, v) in enumerate(self.records):
            if k == key:
                seen = True
                expected.append((seq, op, v))
            elif op == OP_CLEAR and seen:
                expected.append((seq, op, b""))
        assert [(v.seq, v.op, v.value) for v in self.led.history(key)] == expected

    @rule(start=st.none() | keys, end=st.none() | keys, prefix=st.none() | keys)
    def scan(self, start, end, prefix):
        got = list(self.led.scan(start=start, end=end, prefix=prefix))
        want = sorted(
            (k, v)
            for k, v in self.model.items()
            if (start is None or k >= start)
            and (end is None or k < end)
            and (prefix is None or k.startswith(prefix))
        )
        assert got == want

    @rule()
    def tree(self):
        head = self.led.tree_head()
        assert head.size == len(self.records)
        for old in self.heads[-3:]:
            proof = self.led.consistency(old.size, head.size)
            assert scribe.verify_consistency(old.size, head.size, old.root, head.root, proof)
        self.heads.append(head)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def prove(self, data):
        key = data.draw(st.sampled_from(sorted(self.model)))
        assert scribe.verify_inclusion(self.led.prove(key), self.led.tree_head())

    @invariant()
    def size_matches(self):
        assert len(self.led) == len(self.model)
        assert self.led.is_empty() == (not self.model)


LedgerModel.TestCase.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
TestLedgerModel = LedgerModel.TestCase


def test_records_match_model_after_reopen(tmp_path):
    with Ledger(str(tmp_path / "d")) as led:
        led.put("x", "1")
        led.clear()
        led.put("y", "2")
    with Ledger(str(tmp_path / "d")) as led:
        assert [(r.op, r.key) for r in led.records()] == [
            (OP_PUT, b"x"),
            (OP_CLEAR, b""),
            (OP_PUT, b"y"),
        ]
