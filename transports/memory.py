"""In-process transport for tests and simulation: Transport objects sharing a hub.

Transports created with the same run_dir in one process share one MemoryHub
(several simulated clusters in one process never collide). Semantics match the
real transports: a frame to a peer that is not started is dropped (False), each
directed link holds at most `send_queue_frames_max` frames and
`send_queue_bytes_max` bytes, frames arrive in order per link.
"""

from __future__ import annotations

import asyncio
import collections
import os
from collections.abc import Mapping

from transports.base import FrameLike, PeerAddress, Transport
from transports.errors import TransportClosedError, TransportStateError
from transports.faults import FaultFilter
from transports.limits import TransportLimits


class MemoryHub:
    """Routes frames between the MemoryTransports registered on it."""

    def __init__(self) -> None:
        self._members: dict[int, MemoryTransport] = {}

    def register(self, transport: MemoryTransport) -> None:
        current = self._members.get(transport.node_id)
        if current is not None and current is not transport:
            raise TransportStateError(
                f"memory hub: node {transport.node_id} is already registered (close it first)"
            )
        self._members[transport.node_id] = transport

    def unregister(self, transport: MemoryTransport) -> None:
        if self._members.get(transport.node_id) is transport:
            del self._members[transport.node_id]

    def member(self, node_id: int) -> MemoryTransport | None:
        return self._members.get(node_id)

    def __len__(self) -> int:
        return len(self._members)


_hubs: dict[str, MemoryHub] = {}


def hub_for(run_dir: str) -> MemoryHub:
    """The process-wide hub of a run directory (created on first use)."""
    key = os.path.realpath(os.fspath(run_dir))
    hub = _hubs.get(key)
    if hub is None:
        hub = _hubs[key] = MemoryHub()
    return hub


def _release_hub(hub: MemoryHub) -> None:
    if len(hub) == 0:
        for key, value in list(_hubs.items()):
            if value is hub:
                del _hubs[key]


class MemoryTransport(Transport):
    kind = "memory"

    def __init__(
        self,
        node_id: int,
        peers: Mapping[int, PeerAddress],
        *,
        limits: TransportLimits,
        hub: MemoryHub,
        faults: FaultFilter | None = None,
    ) -> None:
        super().__init__(node_id, peers, limits, faults)
        self._hub = hub
        self._inbox: collections.deque[tuple[int, bytes]] = collections.deque()
        self._queued_frames: collections.Counter[int] = collections.Counter()
        self._queued_bytes: collections.Counter[int] = collections.Counter()
        self._wakeup = asyncio.Event()

    async def start(self) -> None:
        self._check_startable()
        self._hub.register(self)
        self._started = True

    def _send_frame(self, to_id: int, frame: FrameLike, size: int) -> bool:
        target = self._hub.member(to_id)
        if target is None:
            return False
        return target._deliver(self.node_id, bytes(frame), size)

    def _deliver(self, from_id: int, frame: bytes, size: int) -> bool:
        limits = self.limits
        if (
            self._queued_frames[from_id] >= limits.send_queue_frames_max
            or self._queued_bytes[from_id] + size > limits.send_queue_bytes_max
        ):
            return False
        self._queued_frames[from_id] += 1
        self._queued_bytes[from_id] += size
        self._inbox.append((from_id, frame))
        self._wakeup.set()
        return True

    async def _recv_frame(self) -> tuple[int, bytes]:
        while True:
            if self._closed:
                raise TransportClosedError(f"memory transport of node {self.node_id} is closed")
            if self._inbox:
                from_id, frame = self._inbox.popleft()
                self._queued_frames[from_id] -= 1
                self._queued_bytes[from_id] -= len(frame)
                return from_id, frame
            self._wakeup.clear()
            await self._wakeup.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._hub.unregister(self)
        _release_hub(self._hub)
        self._inbox.clear()
        self._wakeup.set()  # wake a pending recv() so it raises TransportClosedError
