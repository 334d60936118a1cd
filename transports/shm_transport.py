"""Shared-memory transport "shm": one SPSC ring per directed link, datagram wake-ups.

- The receiver owns its inbound rings: at start() it creates one ring per peer,
  named from run_dir and the two ids (`naming.shm_ring_name`). A ring left by
  a previous incarnation (closed, or SIGKILLed) is first marked ABANDONED, then
  unlinked, and a fresh one with a new generation replaces it.
- The sender attaches a peer's ring lazily by name (the peer may not be up),
  retrying at most every `reconnect_interval_ms`. When it finds its ring
  ABANDONED (the receiver restarted or closed) it drops the mapping and
  attaches the new one; a frame it had half written is sent again from its
  first chunk, and the receiver discards half frames, so no partial frame is
  ever delivered.
- Frames are cut into chunks of at most `shm_chunk_bytes_max`, so frames up to
  `frame_bytes_max` pass even when larger than the ring: what does not fit now
  waits in a per-peer backlog (bounded by `send_queue_frames_max` and
  `send_queue_bytes_max`; send() returns False beyond it).
- Nobody spins. Each node binds a Unix datagram socket in the abstract
  namespace (`naming.shm_wake_address`) and waits on it with the loop's
  add_reader. A sender pokes the receiver once per loop iteration after
  writing, or at once on flush() (a node calls it before its fsync); a
  receiver pokes a sender that flagged `producer_waiting` after freeing
  space. A backlogged sender also retries on a slow timer.
- multiprocessing's resource_tracker would unlink segments it saw at process
  exit (Python 3.11 registers attached segments too): every segment is
  unregistered right away, and this module unlinks what it owns on close.
"""

from __future__ import annotations

import _posixshmem
import asyncio
import collections
import contextlib
import errno
import glob
import logging
import os
import random
import socket
import time
from collections.abc import Mapping
from multiprocessing import resource_tracker, shared_memory

from transports.base import Deliver, FrameLike, PeerAddress, Transport
from transports.errors import TransportBindError, TransportClosedError
from transports.faults import FaultFilter
from transports.limits import TransportLimits
from transports.naming import shm_name_prefix, shm_ring_name, shm_wake_address
from transports.shm_ring import (
    FLAG_FIRST,
    FLAG_LAST,
    STATE_OPEN,
    Ring,
    RingCorruptError,
    RingFormatError,
    segment_bytes_for,
)

log = logging.getLogger(__name__)

_POKE = b"\x01"
_WAKE_DRAIN_DATAGRAMS_MAX = 4096
# Frames handed to start_receiving's callback in one go before the loop's other callbacks run.
_DELIVER_BURST_FRAMES_MAX = 64


def _untracked(segment: shared_memory.SharedMemory) -> shared_memory.SharedMemory:
    # Python 3.11 registers every segment, even attached ones, and its tracker
    # unlinks them when this process exits: our segments' lifetime is ours.
    resource_tracker.unregister(segment._name, "shared_memory")  # noqa: SLF001
    return segment


def _attach(name: str) -> shared_memory.SharedMemory | None:
    """The named segment, or None when it does not exist (or is still being sized)."""
    try:
        return _untracked(shared_memory.SharedMemory(name=name, create=False))
    except FileNotFoundError:
        return None
    except ValueError:
        # Caught between shm_open and ftruncate of its creator: an empty segment
        # cannot be mapped. Try again later.
        return None


def _close_segment(segment: shared_memory.SharedMemory, *, unlink: bool) -> None:
    if unlink:
        # Not segment.unlink(): it would also unregister from the resource tracker,
        # which no longer knows the segment (see _untracked) and complains.
        with contextlib.suppress(FileNotFoundError):
            _posixshmem.shm_unlink(segment._name)  # noqa: SLF001
    try:
        segment.close()
    except BufferError:
        # A memoryview into the mapping is still alive somewhere; the mapping goes
        # with the process. The name is already gone when unlink was asked for.
        log.warning("shared memory %s: mapping still referenced, left to the OS", segment.name)


def cleanup(run_dir: str) -> list[str]:
    """Unlink every ring segment of run_dir (for a launcher's `down` after SIGKILLs).

    Only call it when no node of that cluster is running. Returns the names removed.
    """
    removed = []
    for path in glob.glob(os.path.join("/dev/shm", shm_name_prefix(run_dir) + "*")):
        name = os.path.basename(path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed.append(name)
    return removed


class _Inbound:
    """A ring this node consumes, with the reassembly state of a chunked frame."""

    def __init__(self, name: str, segment: shared_memory.SharedMemory, ring: Ring) -> None:
        self.name = name
        self.segment = segment
        self.ring = ring
        self.parts: list[bytes] = []
        self.parts_bytes = 0
        self.frame_bytes = -1  # -1: no frame open


class _Outbound:
    """A peer's ring this node produces into, with the backlog of unsent frames."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.segment: shared_memory.SharedMemory | None = None
        self.ring: Ring | None = None
        self.next_attach_s = 0.0
        # Each entry: (frame, offset of the first byte not yet written).
        self.backlog: collections.deque[list] = collections.deque()
        self.backlog_bytes = 0


class ShmTransport(Transport):
    kind = "shm"

    def __init__(
        self,
        node_id: int,
        peers: Mapping[int, PeerAddress],
        *,
        run_dir: str,
        limits: TransportLimits,
        faults: FaultFilter | None = None,
    ) -> None:
        super().__init__(node_id, peers, limits, faults)
        self._run_dir = os.fspath(run_dir)
        self._wake_address = shm_wake_address(self._run_dir, node_id)
        self._peer_wake = {p: shm_wake_address(self._run_dir, p) for p in self.peers}
        self._inbound: dict[int, _Inbound] = {}
        self._outbound = {
            p: _Outbound(shm_ring_name(self._run_dir, node_id, p)) for p in self.peers
        }
        self._wake_sock: socket.socket | None = None
        self._poke_sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup = asyncio.Event()
        self._pokes_due: set[int] = set()
        self._pokes_scheduled = False
        self._retry_handle: asyncio.TimerHandle | None = None
        self._peer_order = sorted(self.peers)
        self._next_peer_index = 0

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        self._check_startable()
        self._loop = asyncio.get_running_loop()
        wake = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            wake.bind(self._wake_address)
        except OSError as exc:
            wake.close()
            raise TransportBindError(
                f"shm transport of node {self.node_id}: cannot bind its wake socket "
                f"(is node {self.node_id} of this run_dir already running?): {exc}"
            ) from exc
        wake.setblocking(False)
        self._wake_sock = wake
        poke = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        poke.setblocking(False)
        self._poke_sock = poke
        try:
            for peer_id in self.peers:
                self._inbound[peer_id] = self._create_inbound(peer_id)
        except BaseException:
            self._release()
            raise
        self._loop.add_reader(wake.fileno(), self._on_wake)
        self._started = True
        # Senders that wrote into our previous incarnation's rings are waiting for a
        # wake-up that will never come from it: tell every peer we are here.
        for peer_id in self.peers:
            self._schedule_poke(peer_id)

    def _create_inbound(self, peer_id: int) -> _Inbound:
        name = shm_ring_name(self._run_dir, peer_id, self.node_id)
        stale = _attach(name)
        if stale is not None:
            # A previous incarnation's ring: tell its producer to move on, then replace it.
            try:
                old = Ring(stale.buf)
            except RingFormatError:
                pass
            else:
                old.abandon()
                old.release()
            _close_segment(stale, unlink=True)
        size = segment_bytes_for(self.limits.shm_ring_bytes)
        segment = _untracked(shared_memory.SharedMemory(name=name, create=True, size=size))
        generation = (time.time_ns() << 16) ^ random.getrandbits(16)
        ring = Ring.initialise(segment.buf, generation & 0xFFFF_FFFF_FFFF_FFFF)
        return _Inbound(name, segment, ring)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()  # a pending recv() raises TransportClosedError
        self._release()

    def _release(self) -> None:
        if self._retry_handle is not None:
            self._retry_handle.cancel()
            self._retry_handle = None
        if self._wake_sock is not None:
            if self._loop is not None and self._started:
                self._loop.remove_reader(self._wake_sock.fileno())
            self._wake_sock.close()
            self._wake_sock = None
        for inbound in self._inbound.values():
            inbound.ring.abandon()
            inbound.ring.release()
            _close_segment(inbound.segment, unlink=True)
        self._inbound.clear()
        for outbound in self._outbound.values():
            self._detach(outbound)
            outbound.backlog.clear()
            outbound.backlog_bytes = 0
        if self._poke_sock is not None:
            self._poke_sock.close()
            self._poke_sock = None

    # -- sending ----------------------------------------------------------------------

    def _send_frame(self, to_id: int, frame: FrameLike, size: int) -> bool:
        outbound = self._outbound[to_id]
        if not self._backlog_has_room(outbound, size):
            return False
        if outbound.backlog:
            # Keep the link's order: queue behind the frames already waiting.
            outbound.backlog.append([bytes(frame), 0])
            outbound.backlog_bytes += size
            self._flush(to_id, outbound)
            return True
        ring = self._ring_for(outbound)
        if ring is None:
            return False  # the peer is not up (no ring to attach yet)
        view = memoryview(frame).cast("B")
        offset, done = self._write_chunks(to_id, outbound, ring, view, 0)
        if not done:
            outbound.backlog.append([bytes(frame), offset])
            outbound.backlog_bytes += size
            self._wait_for_space(to_id, outbound)
        return True

    def _backlog_has_room(self, outbound: _Outbound, size: int) -> bool:
        limits = self.limits
        return (
            len(outbound.backlog) < limits.send_queue_frames_max
            and outbound.backlog_bytes + size <= limits.send_queue_bytes_max
        )

    def _write_chunks(
        self, to_id: int, outbound: _Outbound, ring: Ring, view: memoryview, offset: int
    ) -> tuple[int, bool]:
        """Write chunks of view from offset while they fit: (new offset, whole frame written)."""
        size = view.nbytes
        chunk_max = self.limits.shm_chunk_bytes_max
        progressed = False
        done = False
        try:
            while True:
                end = min(size, offset + chunk_max)
                flags = (FLAG_FIRST if offset == 0 else 0) | (FLAG_LAST if end == size else 0)
                if not ring.write_chunk(view[offset:end], flags, size):
                    break
                progressed = True
                offset = end
                if end == size:
                    done = True
                    break
        except RingCorruptError as exc:
            log.warning("shm ring %s: %s; re-attaching", outbound.name, exc)
            self._detach(outbound)
        if progressed:
            self._schedule_poke(to_id)
        return offset, done

    def _flush(self, to_id: int, outbound: _Outbound) -> None:
        """Move backlogged frames into the ring while there is room."""
        while outbound.backlog:
            ring = self._ring_for(outbound)
            if ring is None:
                return
            entry = outbound.backlog[0]
            frame, offset = entry
            offset, done = self._write_chunks(to_id, outbound, ring, memoryview(frame), offset)
            if outbound.ring is not ring:
                continue  # detached on corruption: the backlog was dropped
            if done:
                outbound.backlog.popleft()
                outbound.backlog_bytes -= len(frame)
                continue
            entry[1] = offset
            self._wait_for_space(to_id, outbound)
            return

    def _wait_for_space(self, to_id: int, outbound: _Outbound) -> None:
        ring = outbound.ring
        if ring is None:
            return
        # Ask the consumer for a wake-up when it frees space, then look again: space
        # freed between our last attempt and the flag would otherwise go unnoticed.
        ring.set_producer_waiting(True)
        frame, offset = outbound.backlog[0]
        if ring.chunk_fits(min(len(frame) - offset, self.limits.shm_chunk_bytes_max)):
            self._loop.call_soon(self._flush_all)
        else:
            self._arm_retry()

    def _arm_retry(self) -> None:
        if self._retry_handle is None and not self._closed:
            delay_s = self.limits.shm_backlog_retry_ms / 1000
            self._retry_handle = self._loop.call_later(delay_s, self._on_retry)

    def _on_retry(self) -> None:
        self._retry_handle = None
        self._flush_all()

    def _flush_all(self) -> None:
        if self._closed:
            return
        for peer_id, outbound in self._outbound.items():
            if outbound.backlog:
                self._flush(peer_id, outbound)

    def _ring_for(self, outbound: _Outbound) -> Ring | None:
        """The attached, open ring of a link, attaching it if due; None if unavailable."""
        ring = outbound.ring
        if ring is not None:
            if ring.state == STATE_OPEN:
                return ring
            # The receiver closed or restarted: frames queued for that incarnation are
            # lost, as on a broken connection.
            self._detach(outbound)
        now = time.monotonic()
        if now < outbound.next_attach_s:
            return None
        outbound.next_attach_s = now + self.limits.reconnect_interval_ms / 1000
        segment = _attach(outbound.name)
        if segment is None:
            return None
        try:
            ring = Ring(segment.buf)
        except RingFormatError:
            ring = None
        if ring is None or ring.state != STATE_OPEN:
            if ring is not None:
                ring.release()
            _close_segment(segment, unlink=False)
            return None
        outbound.segment = segment
        outbound.ring = ring
        return ring

    def _detach(self, outbound: _Outbound) -> None:
        if outbound.ring is not None:
            outbound.ring.release()
        outbound.ring = None
        outbound.backlog.clear()
        outbound.backlog_bytes = 0
        if outbound.segment is not None:
            _close_segment(outbound.segment, unlink=False)
            outbound.segment = None

    # -- wake-ups -----------------------------------------------------------------------

    def _schedule_poke(self, peer_id: int) -> None:
        # One datagram per peer per loop iteration, however many frames were written.
        self._pokes_due.add(peer_id)
        if not self._pokes_scheduled and self._loop is not None:
            self._pokes_scheduled = True
            self._loop.call_soon(self._send_pokes)

    def flush(self) -> None:
        """Wake the peers written to since the last wake-up now (see Transport.flush)."""
        if self._pokes_due:
            self._send_pokes()

    def _send_pokes(self) -> None:
        # Also run by flush(): the call_soon scheduled meanwhile then finds nothing due.
        self._pokes_scheduled = False
        sock = self._poke_sock
        due = self._pokes_due
        if not due:
            return
        self._pokes_due = set()
        if sock is None:
            return
        for peer_id in due:
            try:
                sock.sendto(_POKE, self._peer_wake[peer_id])
            except BlockingIOError:
                pass  # its queue of pokes is full: it is awake anyway
            except OSError as exc:
                # The peer is down; a restarted peer pokes us (and reads its new rings).
                if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                    log.warning("shm wake-up of node %d failed: %s", peer_id, exc)

    def _on_wake(self) -> None:
        sock = self._wake_sock
        if sock is None:
            return
        for _ in range(_WAKE_DRAIN_DATAGRAMS_MAX):
            try:
                sock.recv(64)
            except BlockingIOError:
                break
        self._wakeup.set()
        self._flush_all()
        if self._receiver is not None:
            self._deliver_ready()

    def start_receiving(self, deliver: Deliver) -> None:
        """Frames go to deliver straight from the wake-up callback: no task switch per frame."""
        self._claim_receiving(deliver)
        self._loop.call_soon(self._deliver_ready)  # frames that arrived before now

    def _deliver_ready(self) -> None:
        deliver = self._receiver
        for _ in range(_DELIVER_BURST_FRAMES_MAX):
            if self._closed:
                return
            received = self._poll()
            if received is None:
                return  # the next frame comes with a poke
            if self._accept(*received):
                deliver(*received)
        self._loop.call_soon(self._deliver_ready)  # the rest after the loop's other callbacks

    # -- receiving ----------------------------------------------------------------------

    async def _recv_frame(self) -> tuple[int, bytes]:
        while True:
            if self._closed:
                raise TransportClosedError(f"shm transport of node {self.node_id} is closed")
            # Clear before looking: a poke for anything written after the look sets it again.
            self._wakeup.clear()
            received = self._poll()
            if received is not None:
                return received
            await self._wakeup.wait()

    def _poll(self) -> tuple[int, bytes] | None:
        order = self._peer_order
        count = len(order)
        for step in range(count):
            index = (self._next_peer_index + step) % count
            peer_id = order[index]
            frame = self._read_frame(peer_id, self._inbound[peer_id])
            if frame is not None:
                self._next_peer_index = (index + 1) % count  # round robin between peers
                return peer_id, frame
        return None

    def _read_frame(self, peer_id: int, inbound: _Inbound) -> bytes | None:
        ring = inbound.ring
        frame = None
        freed = False
        try:
            while frame is None:
                item = ring.read_chunk()
                if item is None:
                    break
                freed = True
                frame = self._reassemble(inbound, *item)
        except RingCorruptError as exc:
            log.warning("shm ring %s: %s; replacing it", inbound.name, exc)
            self._replace_inbound(peer_id, inbound)
            return frame
        if freed and ring.producer_waiting:
            ring.set_producer_waiting(False)
            self._schedule_poke(peer_id)
        return frame

    def _reassemble(
        self, inbound: _Inbound, chunk: bytes, flags: int, frame_bytes: int
    ) -> bytes | None:
        if frame_bytes > self.limits.frame_bytes_max:
            raise RingCorruptError(f"frame of {frame_bytes} bytes is over the limit")
        if flags & FLAG_FIRST:
            # A FIRST chunk while a frame is open means the sender restarted mid-frame:
            # the half frame is dropped, never delivered.
            inbound.parts = []
            inbound.parts_bytes = 0
            inbound.frame_bytes = frame_bytes
        elif inbound.frame_bytes != frame_bytes or not inbound.parts:
            # A continuation without its start (e.g. after a replaced ring): skip it.
            inbound.parts = []
            inbound.parts_bytes = 0
            inbound.frame_bytes = -1
            return None
        inbound.parts.append(chunk)
        inbound.parts_bytes += len(chunk)
        if not flags & FLAG_LAST:
            return None
        parts, total = inbound.parts, inbound.parts_bytes
        inbound.parts = []
        inbound.parts_bytes = 0
        inbound.frame_bytes = -1
        if total != frame_bytes:
            return None
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _replace_inbound(self, peer_id: int, inbound: _Inbound) -> None:
        inbound.ring.abandon()
        inbound.ring.release()
        _close_segment(inbound.segment, unlink=True)
        self._inbound[peer_id] = self._create_inbound(peer_id)
        self._schedule_poke(peer_id)
