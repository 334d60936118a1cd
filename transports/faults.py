"""Fault injection for failure tests (the nemesis).

A transport consults its `faults` attribute on every send and every receive.
It is None by default (no filter, no cost); tests attach a FaultFilter, and
can change it at run time, for example:

    t.faults = FaultFilter(seed=7)
    t.faults.isolate({2, 3})        # drop all traffic to and from nodes 2 and 3
    t.faults.set_drop_probability(0.1)
    t.faults.heal()

A frame dropped by the filter behaves like a packet lost on the wire: send()
still returns True, because the sender of a real network cannot know either.
"""

from __future__ import annotations

import random
from collections.abc import Iterable


class FaultFilter:
    def __init__(self, *, seed: int = 0, enabled: bool = True) -> None:
        self.enabled = enabled
        self._random = random.Random(seed)
        self._isolated: set[int] = set()
        self._drop_probability = 0.0
        self.dropped_send = 0
        self.dropped_recv = 0

    def isolate(self, peer_ids: Iterable[int]) -> None:
        """Drop every frame to or from these peers (added to those already isolated)."""
        self._isolated.update(int(p) for p in peer_ids)

    def heal(self, peer_ids: Iterable[int] | None = None) -> None:
        """Stop isolating the given peers, or all peers and random drops when None."""
        if peer_ids is None:
            self._isolated.clear()
            self._drop_probability = 0.0
        else:
            self._isolated.difference_update(int(p) for p in peer_ids)

    def set_drop_probability(self, probability: float, *, seed: int | None = None) -> None:
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"drop probability must be within [0, 1], got {probability!r}")
        self._drop_probability = float(probability)
        if seed is not None:
            self._random.seed(seed)

    @property
    def isolated(self) -> frozenset[int]:
        return frozenset(self._isolated)

    def _passes(self, peer_id: int) -> bool:
        if not self.enabled:
            return True
        if peer_id in self._isolated:
            return False
        return not (self._drop_probability > 0.0 and self._random.random() < self._drop_probability)

    def allow_send(self, to_id: int) -> bool:
        if self._passes(to_id):
            return True
        self.dropped_send += 1
        return False

    def allow_recv(self, from_id: int) -> bool:
        if self._passes(from_id):
            return True
        self.dropped_recv += 1
        return False
