"""The Transport interface shared by every implementation.

A transport carries opaque frames (bytes) between the nodes of one cluster.
It may drop, duplicate, reorder and delay frames (Raft tolerates it), but on
a healthy link it delivers frames in order, and it never delivers a partial
or corrupted frame.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
from collections.abc import Callable, Mapping

from transports.errors import TransportClosedError, TransportConfigError, TransportStateError
from transports.faults import FaultFilter
from transports.limits import TransportLimits

FrameLike = bytes | bytearray | memoryview
Deliver = Callable[[int, bytes], None]


@dataclasses.dataclass(frozen=True)
class PeerAddress:
    """Where a node listens for Raft traffic (used by tcp; ipc and shm use run_dir)."""

    host: str
    raft_port: int

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise TransportConfigError(
                f"PeerAddress.host must be a non-empty str, got {self.host!r}"
            )
        port = self.raft_port
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise TransportConfigError(
                f"PeerAddress.raft_port must be within 1..65535, got {port!r}"
            )


@dataclasses.dataclass
class TransportStats:
    """Counters a node may export as metrics."""

    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    bytes_received: int = 0
    dropped_queue_full: int = 0
    dropped_oversize: int = 0
    dropped_malformed: int = 0


def frame_length(frame: FrameLike) -> int:
    if isinstance(frame, memoryview):
        return frame.nbytes
    if isinstance(frame, bytes | bytearray):
        return len(frame)
    raise TypeError(f"a frame must be bytes, bytearray or memoryview, got {type(frame).__name__}")


class Transport(abc.ABC):
    """One node's end of the cluster network.

    Lifecycle: construct, `await start()`, then `send()` and either `await recv()` or
    `start_receiving(deliver)` from the event loop thread, and finally `await close()`
    (idempotent).
    """

    kind: str = ""

    def __init__(
        self,
        node_id: int,
        peers: Mapping[int, PeerAddress],
        limits: TransportLimits,
        faults: FaultFilter | None = None,
    ) -> None:
        if not isinstance(node_id, int) or isinstance(node_id, bool) or node_id <= 0:
            raise TransportConfigError(f"node_id must be a positive int, got {node_id!r}")
        for peer_id, address in peers.items():
            if not isinstance(peer_id, int) or isinstance(peer_id, bool) or peer_id <= 0:
                raise TransportConfigError(f"peer ids must be positive ints, got {peer_id!r}")
            if not isinstance(address, PeerAddress):
                raise TransportConfigError(
                    f"peer {peer_id}: expected a PeerAddress, got {type(address).__name__}"
                )
        self.node_id = node_id
        # The table may include this node itself (the whole cluster); it is not a peer.
        self.own_address: PeerAddress | None = peers.get(node_id)
        self.peers: dict[int, PeerAddress] = {p: a for p, a in peers.items() if p != node_id}
        self.limits = limits
        # None = no fault injection at all; tests attach a FaultFilter at run time.
        self.faults: FaultFilter | None = faults
        self.stats = TransportStats()
        # The task of start_receiving(), for implementations that receive through recv()
        self.receive_task: asyncio.Task | None = None
        self._receiver: Deliver | None = None  # set by start_receiving
        self._started = False
        self._closed = False

    # -- public interface -------------------------------------------------------------

    @abc.abstractmethod
    async def start(self) -> None:
        """Bind/listen and prepare links to peers (connections are lazy: peers may be down)."""

    def send(self, to_id: int, frame: FrameLike) -> bool:
        """Queue a frame for to_id without blocking; False when it was dropped here.

        False means the frame is over `limits.frame_bytes_max`, the peer's queue is
        full or the peer is unreachable right now, or the transport is closed.
        True means the frame was queued; it can still be lost on the way.
        """
        if self._closed:
            return False
        if not self._started:
            raise TransportStateError(f"node {self.node_id}: send() before start()")
        if to_id not in self.peers:
            raise TransportConfigError(f"node {self.node_id}: unknown peer id {to_id!r}")
        size = frame_length(frame)
        if size > self.limits.frame_bytes_max:
            self.stats.dropped_oversize += 1
            return False
        faults = self.faults
        if faults is not None and not faults.allow_send(to_id):
            return True  # lost "on the wire": the sender cannot tell
        if not self._send_frame(to_id, frame, size):
            self.stats.dropped_queue_full += 1
            return False
        self.stats.frames_sent += 1
        self.stats.bytes_sent += size
        return True

    def flush(self) -> None:
        """Make what send() queued on its way now, not at the loop's next turn: a caller about
        to block (an fsync) or whose peer waits for these frames calls it. A transport whose
        send() already hands frames on (ZeroMQ's I/O thread, the memory hub) does nothing."""
        return None

    async def recv(self) -> tuple[int, bytes]:
        """The next (sender id, frame); the sender id is authenticated by the transport.

        Raises TransportClosedError when the transport is (or gets) closed.
        """
        if not self._started and not self._closed:
            raise TransportStateError(f"node {self.node_id}: recv() before start()")
        while True:
            from_id, frame = await self._recv_frame()
            if self._accept(from_id, frame):
                return from_id, frame

    def start_receiving(self, deliver: Deliver) -> None:
        """Call deliver(sender id, frame) on the loop thread for every frame that arrives, until
        close(): the same frames, checks and faults as recv() (use one or the other), without a
        task switch per frame where the implementation can avoid it (a node's hot path).
        An exception raised by deliver ends the receiving and is left on `receive_task`."""
        self._claim_receiving(deliver)
        self.receive_task = asyncio.get_running_loop().create_task(self._receive_forever(deliver))

    async def _receive_forever(self, deliver: Deliver) -> None:
        try:
            while True:
                from_id, frame = await self.recv()
                deliver(from_id, frame)
        except TransportClosedError:
            return

    @abc.abstractmethod
    async def close(self) -> None:
        """Release sockets, shared memory and files. Idempotent."""

    @property
    def closed(self) -> bool:
        return self._closed

    # -- for implementations ----------------------------------------------------------

    def _claim_receiving(self, deliver: Deliver) -> None:
        """The checks of start_receiving; keeps deliver in self._receiver."""
        if not self._started or self._closed:
            raise TransportStateError(f"node {self.node_id}: start_receiving() before start()")
        if self._receiver is not None:
            raise TransportStateError(f"node {self.node_id}: start_receiving() called twice")
        self._receiver = deliver

    def _accept(self, from_id: int, frame: bytes) -> bool:
        """Count a received frame, unless an injected fault drops it (False)."""
        faults = self.faults
        if faults is not None and not faults.allow_recv(from_id):
            return False
        self.stats.frames_received += 1
        self.stats.bytes_received += len(frame)
        return True

    @abc.abstractmethod
    def _send_frame(self, to_id: int, frame: FrameLike, size: int) -> bool:
        """Queue one checked frame; False when the peer's queue is full or unreachable."""

    @abc.abstractmethod
    async def _recv_frame(self) -> tuple[int, bytes]:
        """Wait for the next frame from a known peer; raise TransportClosedError on close."""

    def _check_startable(self) -> None:
        if self._closed:
            raise TransportStateError(f"node {self.node_id}: start() after close()")
        if self._started:
            raise TransportStateError(f"node {self.node_id}: start() called twice")
