"""scribe.checker: known linearizable and non-linearizable histories, unknown outcomes, the
deadline, the JSON file, and agreement with a brute-force checker on small random histories."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from scribe.checker import (
    FAIL,
    OK,
    PASS,
    TIMED_OUT,
    UNKNOWN,
    VIOLATION,
    HistoryError,
    HistoryFile,
    Op,
    check_linearizable,
)
from scribe.checker.model import INITIAL_STATE, step

_ids = itertools.count()


def put(key, value, call, ret, outcome=OK, process=0):
    return Op(next(_ids), process, "put", key, value=value, call=call, ret=ret, outcome=outcome)


def get(key, output, call, ret, outcome=OK, process=0):
    return Op(next(_ids), process, "get", key, output=output, call=call, ret=ret, outcome=outcome)


def delete(key, call, ret, outcome=OK, process=0):
    return Op(next(_ids), process, "delete", key, call=call, ret=ret, outcome=outcome)


def verdict(ops, timeout_s=10.0):
    return check_linearizable(ops, timeout_s=timeout_s).verdict


# ---- known histories ---------------------------------------------------------------------------


def test_sequential_history_passes():
    ops = [
        put("a", "1", 0, 1),
        get("a", "1", 2, 3),
        delete("a", 4, 5),
        get("a", None, 6, 7),
        put("a", "2", 8, 9),
        get("a", "2", 10, 11),
    ]
    assert verdict(ops) == PASS


def test_stale_read_after_a_write_returned_is_a_violation():
    ops = [put("a", "1", 0, 1), put("a", "2", 2, 3), get("a", "1", 4, 5)]
    result = check_linearizable(ops)
    assert result.verdict == VIOLATION
    assert [k.key for k in result.violations] == ["a"]
    assert result.keys["a"].stuck_op is not None


def test_concurrent_write_may_be_read_either_way():
    for seen in ("1", "2"):
        ops = [put("a", "1", 0, 1), put("a", "2", 2, 10), get("a", seen, 3, 4)]
        assert verdict(ops) == PASS


def test_reads_must_agree_on_one_order():
    # Two concurrent writes; one reader sees 2 then 1, another sees 1 then 2: no single order.
    ops = [
        put("a", "1", 0, 10),
        put("a", "2", 0, 10),
        get("a", "2", 1, 2, process=1),
        get("a", "1", 3, 4, process=1),
        get("a", "1", 1, 2, process=2),
        get("a", "2", 5, 6, process=2),
    ]
    assert verdict(ops) == VIOLATION


def test_read_of_a_value_never_written_is_a_violation():
    assert verdict([put("a", "1", 0, 1), get("a", "9", 2, 3)]) == VIOLATION


def test_read_of_absent_key_before_any_write_passes_and_after_fails():
    assert verdict([get("a", None, 0, 1), put("a", "1", 2, 3)]) == PASS
    assert verdict([put("a", "1", 0, 1), get("a", None, 2, 3)]) == VIOLATION


def test_unknown_write_may_take_effect_late():
    ops = [
        put("a", "1", 0, 1),
        put("a", "2", 2, math.inf, outcome=UNKNOWN),
        get("a", "1", 3, 4),
        get("a", "2", 100, 101),
    ]
    assert verdict(ops) == PASS


def test_unknown_write_may_never_take_effect():
    ops = [put("a", "1", 0, 1), put("a", "2", 2, math.inf, outcome=UNKNOWN), get("a", "1", 50, 51)]
    assert verdict(ops) == PASS


def test_unknown_write_cannot_take_effect_before_its_call():
    ops = [put("a", "1", 0, 1), get("a", "2", 2, 3), put("a", "2", 5, math.inf, outcome=UNKNOWN)]
    assert verdict(ops) == VIOLATION


def test_unknown_write_takes_effect_once_not_twice():
    ops = [
        put("a", "1", 0, 1),
        put("a", "2", 2, math.inf, outcome=UNKNOWN),
        get("a", "2", 3, 4),
        put("a", "3", 5, 6),
        get("a", "2", 7, 8),  # 2 came back after 3 had overwritten it
    ]
    assert verdict(ops) == VIOLATION


def test_unknown_delete_may_explain_an_absent_read():
    ops = [put("a", "1", 0, 1), delete("a", 2, math.inf, outcome=UNKNOWN), get("a", None, 3, 4)]
    assert verdict(ops) == PASS
    ops = [put("a", "1", 0, 1), delete("a", 2, 3, outcome=FAIL), get("a", None, 4, 5)]
    assert verdict(ops) == VIOLATION


def test_failed_write_is_never_applied():
    ops = [put("a", "1", 0, 1), put("a", "2", 2, 3, outcome=FAIL), get("a", "2", 4, 5)]
    assert verdict(ops) == VIOLATION


def test_unknown_reads_are_ignored():
    ops = [put("a", "1", 0, 1), get("a", "zzz", 2, math.inf, outcome=UNKNOWN)]
    assert verdict(ops) == PASS


def test_keys_are_checked_apart():
    ops = [
        put("a", "1", 0, 1),
        put("b", "x", 0, 1),
        get("b", "x", 2, 3),
        put("a", "2", 2, 3),
        get("a", "1", 4, 5),  # stale: a violation on a only
    ]
    result = check_linearizable(ops)
    assert result.verdict == VIOLATION
    assert result.keys["b"].verdict == PASS
    assert result.keys["a"].verdict == VIOLATION


def test_duplicate_values_are_searched_without_the_unique_value_shortcuts():
    ops = [
        put("a", "1", 0, 1),
        put("a", "1", 2, math.inf, outcome=UNKNOWN),
        put("a", "2", 3, 4),
        get("a", "1", 5, 6),
    ]
    assert verdict(ops) == PASS  # the unknown second put of 1 landed after the put of 2


def test_out_of_time_is_unknown_never_pass():
    # Many concurrent unknown deletes and puts whose reads force a deep search.
    rng = random.Random(3)
    ops = []
    for i in range(400):
        ops.append(put("a", f"v{i}", 0, 1000))
        ops.append(delete("a", 0, math.inf, outcome=UNKNOWN))
        ops.append(get("a", f"v{rng.randrange(400)}", 0, 1000))
    ops.append(get("a", "never", 1001, 1002))
    result = check_linearizable(ops, timeout_s=0.05)
    assert result.verdict == TIMED_OUT
    assert result.keys["a"].verdict == TIMED_OUT


def test_malformed_histories_are_refused():
    with pytest.raises(HistoryError):
        check_linearizable([Op(1, 0, "cas", "a", call=0, ret=1, outcome=OK)])
    with pytest.raises(HistoryError):
        check_linearizable([put("a", "1", 5, 1)])
    op = put("a", "1", 0, 1)
    with pytest.raises(HistoryError):
        check_linearizable([op, op])


def test_history_file_round_trip(tmp_path):
    ops = [put("a", "1", 0.5, 1.25), get("a", "1", 2, 3), put("a", "2", 4, math.inf, UNKNOWN)]
    ops[0].seq = 7
    path = tmp_path / "h.json"
    HistoryFile(ops, heads=[{"node": 1, "tree_size": 3}], meta={"seed": 9}).save(path)
    loaded = HistoryFile.load(path)
    assert loaded.ops == ops
    assert loaded.meta == {"seed": 9}
    assert loaded.heads == [{"node": 1, "tree_size": 3}]
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(HistoryError):
        HistoryFile.load(tmp_path / "bad.json")


# ---- against a brute-force checker -------------------------------------------------------------


def brute_force(ops: list[Op]) -> bool:
    """Try every order of every admissible subset: all returned ops, any subset of unknown writes."""
    ops = [op for op in ops if op.outcome != FAIL and not (op.kind == "get" and op.outcome != OK)]
    must = [op for op in ops if op.outcome == OK]
    maybe = [op for op in ops if op.outcome == UNKNOWN]
    for r in range(len(maybe) + 1):
        for chosen in itertools.combinations(maybe, r):
            for order in itertools.permutations(must + list(chosen)):
                if _legal(order):
                    return True
    return False


def _legal(order) -> bool:
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            if b.ret < a.call:  # b finished before a began, yet a is placed first
                return False
    states: dict[str, object] = {}
    for op in order:
        ok, states[op.key] = step(states.get(op.key, INITIAL_STATE), op)
        if not ok:
            return False
    return True


def random_history(rng: random.Random, n: int) -> list[Op]:
    """A random run of n ops on 1-2 keys: some from a real register (linearizable), some noise."""
    keys = ["a", "b"][: rng.randint(1, 2)]
    ops, points = [], []
    for i in range(n):
        call = rng.randint(0, 12)
        ret = call + rng.randint(0, 6)
        point = rng.uniform(call, ret)
        kind = rng.choice(["put", "put", "get", "get", "delete"])
        key = rng.choice(keys)
        value = f"v{rng.randint(0, 3) if rng.random() < 0.2 else i}" if kind == "put" else None
        ops.append(Op(i, i, kind, key, value=value, call=call, ret=ret, outcome=OK))
        points.append(point)
    state: dict[str, object] = {}
    for _point, op in sorted(zip(points, ops, strict=True), key=lambda p: p[0]):
        if op.kind == "get":
            op.output = state.get(op.key)
        else:
            _ok, state[op.key] = step(state.get(op.key), op)
    for op in ops:
        roll = rng.random()
        if roll < 0.15:
            op.outcome, op.ret = UNKNOWN, math.inf
        elif roll < 0.2:
            op.outcome = FAIL
        elif op.kind == "get" and roll < 0.35:
            op.output = rng.choice([None, "v0", "v1", f"v{rng.randrange(n)}"])
    return ops


def test_agrees_with_brute_force_on_small_random_histories():
    rng = random.Random(20240611)
    counts = {True: 0, False: 0}
    for _ in range(400):
        ops = random_history(rng, rng.randint(1, 7))
        expected = brute_force(ops)
        got = verdict(ops)
        assert got == (PASS if expected else VIOLATION), [op.to_json() for op in ops]
        counts[expected] += 1
    assert counts[True] > 50 and counts[False] > 50  # both kinds were exercised
