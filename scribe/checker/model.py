"""The sequential specification the checker holds a history to: one register per key.

State: the key's current value (str), or None when the key is absent (never written or deleted).
A put sets it, a delete clears it, a get must return it.
"""

from __future__ import annotations

from scribe.checker.history import DELETE, GET, PUT, Op

State = str | None
INITIAL_STATE: State = None


def step(state: State, op: Op) -> tuple[bool, State]:
    """Apply op to state: (is this op legal here, the state after it)."""
    kind = op.kind
    if kind == PUT:
        return True, op.value
    if kind == DELETE:
        return True, None
    if kind == GET:
        return op.output == state, state
    raise ValueError(f"op {op.id}: unknown kind {kind!r}")
