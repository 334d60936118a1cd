"""Linearizability of a key-value history: Wing & Gong's search with Lowe's state cache,
partitioned per key (ops on different keys commute, as in Porcupine).

Ops whose outcome is unknown may take effect at any point after their call, or never: they get
no return event, so the search may linearize them anywhere after their call, and it succeeds once
every op that returned has been linearized, whatever unknown ops are left.

Two reductions keep the search small without changing its answer, because every put in our
histories writes a value no other put writes (the nemesis tool makes them unique):
- an unknown put whose value no get ever returned is dropped: a linearization that places it can
  drop it too (no get depended on it) and stays legal;
- an unknown put whose value some get returned must take effect before the earliest such get
  returned: it becomes an op that returns then.
When values are not unique the reductions are skipped and the search handles the ops as they are.

A search that runs past its deadline answers UNKNOWN, never PASS.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from scribe.checker.history import FAIL, GET, OK, PUT, UNKNOWN, Op, check_history
from scribe.checker.model import INITIAL_STATE, step

PASS = "pass"
VIOLATION = "fail"
TIMED_OUT = "unknown"

# How many search steps between two looks at the clock.
STEPS_PER_CLOCK_CHECK = 512


@dataclass
class KeyResult:
    key: str
    verdict: str
    ops: int  # ops searched (after the reductions)
    steps: int = 0
    # On a violation: the op the search could never linearize in time (its return was reached with
    # it still pending), at the deepest point the search got to, and how many ops it had placed.
    stuck_op: int | None = None
    deepest: int = 0


@dataclass
class LinearizabilityResult:
    verdict: str
    keys: dict[str, KeyResult] = field(default_factory=dict)
    ops_checked: int = 0
    seconds: float = 0.0

    @property
    def violations(self) -> list[KeyResult]:
        return [k for k in self.keys.values() if k.verdict == VIOLATION]


class _Deadline(Exception):
    pass


def prepare(ops: Iterable[Op]) -> list[Op]:
    """The ops of one key that the search must consider (see the module docstring)."""
    kept = [op for op in ops if op.outcome != FAIL and not (op.kind == GET and op.outcome != OK)]
    put_values = Counter(op.value for op in kept if op.kind == PUT)
    if any(n > 1 for n in put_values.values()):
        return kept
    first_read_ret: dict[str, float] = {}
    for op in kept:
        if op.kind == GET and op.output is not None:
            first_read_ret[op.output] = min(first_read_ret.get(op.output, math.inf), op.ret)
    out = []
    for op in kept:
        if op.kind == PUT and op.outcome == UNKNOWN:
            read_by = first_read_ret.get(op.value)
            if read_by is None:
                continue
            if read_by >= op.call:
                op = Op(**{**op.__dict__, "ret": read_by, "outcome": OK})
        out.append(op)
    return out


def _check_key(key: str, ops: list[Op], deadline: float) -> KeyResult:
    """Wing & Gong over a doubly linked list of call/return events, with Lowe's cache of
    (linearized set, state) pairs already explored."""
    n = len(ops)
    # Events: (time, 0 = call / 1 = return, op index). Calls sort before returns at equal times:
    # two ops that touch at one instant count as concurrent (the lenient reading).
    events = [(op.call, 0, i) for i, op in enumerate(ops)]
    events += [(op.ret, 1, i) for i, op in enumerate(ops) if op.ret < math.inf]
    events.sort()
    size = len(events) + 1  # slot 0 is the head sentinel
    nxt = list(range(1, size + 1))
    nxt[-1] = 0  # 0 doubles as "end of list"
    prv = list(range(-1, size - 1))
    ev_op = [-1] * size
    ev_is_call = [False] * size
    match = [0] * size  # call slot -> its return slot (0 when it has none)
    call_slot = [0] * n
    for slot, (_t, is_ret, i) in enumerate(events, start=1):
        ev_op[slot] = i
        if is_ret:
            match[call_slot[i]] = slot
        else:
            ev_is_call[slot] = True
            call_slot[i] = slot

    def lift(slot: int) -> None:
        p, q = prv[slot], nxt[slot]
        nxt[p] = q
        if q:
            prv[q] = p
        r = match[slot]
        if r:
            p, q = prv[r], nxt[r]
            nxt[p] = q
            if q:
                prv[q] = p

    def unlift(slot: int) -> None:
        r = match[slot]
        if r:
            p, q = prv[r], nxt[r]
            nxt[p] = r
            if q:
                prv[q] = r
        p, q = prv[slot], nxt[slot]
        nxt[p] = slot
        if q:
            prv[q] = slot

    cache: set[tuple[int, object]] = set()
    stack: list[tuple[int, object]] = []  # (call slot, state before it)
    state = INITIAL_STATE
    linearized = 0
    result = KeyResult(key, PASS, n)
    steps = 0
    entry = nxt[0]
    while entry:
        steps += 1
        if steps % STEPS_PER_CLOCK_CHECK == 0 and time.monotonic() > deadline:
            result.steps = steps
            raise _Deadline()
        if ev_is_call[entry]:
            i = ev_op[entry]
            legal, new_state = step(state, ops[i])
            if legal:
                new_linearized = linearized | (1 << i)
                token = (new_linearized, new_state)
                if token not in cache:
                    cache.add(token)
                    stack.append((entry, state))
                    state, linearized = new_state, new_linearized
                    lift(entry)
                    if len(stack) > result.deepest:
                        result.deepest = len(stack)
                    entry = nxt[0]
                    continue
            entry = nxt[entry]
        else:
            # A return event with its op still pending: undo the last choice and try the next.
            if not stack:
                result.verdict = VIOLATION
                result.stuck_op = ops[ev_op[entry]].id
                result.steps = steps
                return result
            if len(stack) == result.deepest:
                result.stuck_op = ops[ev_op[entry]].id
            slot, state = stack.pop()
            linearized &= ~(1 << ev_op[slot])
            unlift(slot)
            entry = nxt[slot]
    # The end of the list: no return event is left, only unknown ops that may never take effect.
    result.steps = steps
    result.stuck_op = None
    return result


def check(ops: Iterable[Op], timeout_s: float = 60.0) -> LinearizabilityResult:
    """Is the history linearizable? PASS, VIOLATION (with the keys at fault) or TIMED_OUT."""
    ops = list(ops)
    check_history(ops)
    started = time.monotonic()
    deadline = started + timeout_s
    by_key: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        by_key[op.key].append(op)
    out = LinearizabilityResult(PASS)
    for key in sorted(by_key):
        key_ops = prepare(by_key[key])
        try:
            res = _check_key(key, key_ops, deadline)
        except _Deadline:
            res = KeyResult(key, TIMED_OUT, len(key_ops))
        out.keys[key] = res
        out.ops_checked += len(key_ops)
        if res.verdict == TIMED_OUT:
            out.verdict = TIMED_OUT
            deadline = -math.inf  # the answer is UNKNOWN at best now: report the rest as such
        elif res.verdict == VIOLATION and out.verdict == PASS:
            out.verdict = VIOLATION
    if out.violations:
        out.verdict = VIOLATION  # a violation found is certain even if another key timed out
    out.seconds = time.monotonic() - started
    return out
