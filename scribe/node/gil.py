"""The GIL switch interval of a node process, set by how many client requests it is serving.

A node's Raft loop shares the GIL with the Waitress threads. With few requests in flight the loop
must get the GIL back quickly after every release (a short interval: the answer to one client
waits on it); with many, a short interval makes the dozens of runnable HTTP threads hand the GIL
around far more often than they have work to do. Measured on 2 cores, 3 nodes, 3 interleaved
rounds: puts at 64 clients spread over the nodes 1,109/983/1,063 ops/s with this against
905/897/1,012 with 1 ms throughout, leader-served gets at 64 clients 1,438/1,228/1,357 against
1,248/1,213/1,328; at 1 client the interval stays short (a fixed 5 ms cost 10-25% there).
"""

from __future__ import annotations

import sys
import threading

from scribe.node.limits import (
    GIL_BUSY_REQUESTS_MIN,
    GIL_SWITCH_INTERVAL_BUSY_S,
    GIL_SWITCH_INTERVAL_S,
)


class SwitchIntervalByLoad:
    """`with tuner:` around a request's wait. Reaching `busy_from` requests in flight switches to
    the busy interval; falling to half of it switches back (hysteresis, so a load near the line
    does not flip the setting on every request)."""

    def __init__(
        self,
        quiet_s: float = GIL_SWITCH_INTERVAL_S,
        busy_s: float = GIL_SWITCH_INTERVAL_BUSY_S,
        busy_from: int = GIL_BUSY_REQUESTS_MIN,
    ) -> None:
        if not 0 < quiet_s <= busy_s or busy_from < 2:
            raise ValueError(f"bad switch intervals {quiet_s}/{busy_s} or threshold {busy_from}")
        self.quiet_s, self.busy_s, self.busy_from = quiet_s, busy_s, busy_from
        self._lock = threading.Lock()  # held for a few instructions per request
        self.in_flight = 0
        self.busy = False

    def __enter__(self) -> SwitchIntervalByLoad:
        with self._lock:
            self.in_flight += 1
            if not self.busy and self.in_flight >= self.busy_from:
                self._switch(True)
        return self

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self.in_flight -= 1
            if self.busy and self.in_flight <= self.busy_from // 2:
                self._switch(False)

    def _switch(self, busy: bool) -> None:
        self.busy = busy
        sys.setswitchinterval(self.busy_s if busy else self.quiet_s)
