"""A single-producer single-consumer ring of length-prefixed chunks in a shared buffer.

Layout (little-endian), each hot counter on its own cache line:

    0    magic "SCRBRNG1" | u32 version | u32 state | u64 generation | u64 capacity
    64   u64 head            written only by the producer (total bytes ever written)
    72   u32 producer_waiting  set by a producer with a backlog, cleared by the consumer
    128  u64 tail            written only by the consumer (total bytes ever consumed)
    192  data[capacity]      capacity is a multiple of 16

A chunk is a 16-byte header `u32 chunk_bytes | u32 crc32c(chunk) | u32 flags |
u32 frame_bytes` then the chunk bytes, padded to 16 so headers never wrap
(the payload may wrap around the end). A frame is one or more chunks, FIRST on
the first and LAST on the last. The producer copies a chunk in and only then
advances `head`, so the consumer never sees a partial chunk; the CRC catches
anything else (a torn write, a foreign writer), and the consumer then discards
the ring's contents rather than deliver garbage.

The creator writes the magic last, so an attacher never trusts a half-built
header. `state` turns ABANDONED when the consumer closes or is replaced; the
producer then drops its mapping and attaches the new ring by name.
"""

from __future__ import annotations

import struct

import crc32c

from transports.errors import TransportError

MAGIC = b"SCRBRNG1"
VERSION = 1
STATE_OPEN = 1
STATE_ABANDONED = 2

FLAG_FIRST = 1
FLAG_LAST = 2

_HEADER = struct.Struct("<8sIIQQ")  # magic, version, state, generation, capacity
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_CHUNK = struct.Struct("<IIII")  # chunk_bytes, crc32c, flags, frame_bytes
_STATE_OFFSET = 12
_HEAD_OFFSET = 64
_WAITING_OFFSET = 72
_TAIL_OFFSET = 128
DATA_OFFSET = 192
CHUNK_HEADER_BYTES = _CHUNK.size


class RingFormatError(TransportError):
    """The segment does not hold a (finished) ring of this version."""


class RingCorruptError(TransportError):
    """The ring's counters or a chunk are impossible: its contents cannot be trusted."""


def segment_bytes_for(capacity_bytes: int) -> int:
    return DATA_OFFSET + capacity_bytes


def _padded(n: int) -> int:
    # Chunks start at multiples of the header size, so a header never wraps around.
    return (n + 15) & ~15


class Ring:
    """View of one ring in a buffer (a SharedMemory's memoryview). Not thread-safe."""

    def __init__(self, buf: memoryview) -> None:
        magic, version, _state, generation, capacity = _HEADER.unpack_from(buf, 0)
        if magic != MAGIC:
            raise RingFormatError("ring header has no magic (not initialised yet, or foreign)")
        if version != VERSION:
            raise RingFormatError(f"ring version {version} is not {VERSION}")
        if (
            capacity % 16 != 0
            or capacity <= CHUNK_HEADER_BYTES
            or DATA_OFFSET + capacity > len(buf)
        ):
            raise RingFormatError(
                f"ring capacity {capacity} does not fit a {len(buf)}-byte segment"
            )
        self._buf = buf
        self.generation = generation
        self.capacity = capacity

    @classmethod
    def initialise(cls, buf: memoryview, generation: int) -> Ring:
        capacity = (len(buf) - DATA_OFFSET) & ~15
        if capacity <= CHUNK_HEADER_BYTES:
            raise RingFormatError(f"a {len(buf)}-byte segment is too small for a ring")
        _U64.pack_into(buf, _HEAD_OFFSET, 0)
        _U32.pack_into(buf, _WAITING_OFFSET, 0)
        _U64.pack_into(buf, _TAIL_OFFSET, 0)
        _HEADER.pack_into(buf, 0, b"\0" * 8, VERSION, STATE_OPEN, generation, capacity)
        buf[0:8] = MAGIC  # last: the ring is now visible as finished
        return cls(buf)

    # -- shared state ----------------------------------------------------------------

    @property
    def state(self) -> int:
        return _U32.unpack_from(self._buf, _STATE_OFFSET)[0]

    def abandon(self) -> None:
        _U32.pack_into(self._buf, _STATE_OFFSET, STATE_ABANDONED)

    @property
    def producer_waiting(self) -> bool:
        return _U32.unpack_from(self._buf, _WAITING_OFFSET)[0] != 0

    def set_producer_waiting(self, waiting: bool) -> None:
        _U32.pack_into(self._buf, _WAITING_OFFSET, 1 if waiting else 0)

    def used_bytes(self) -> int:
        head = _U64.unpack_from(self._buf, _HEAD_OFFSET)[0]
        tail = _U64.unpack_from(self._buf, _TAIL_OFFSET)[0]
        return head - tail

    def chunk_fits(self, chunk_bytes: int) -> bool:
        """Whether a chunk of this size fits now (the producer's check)."""
        return CHUNK_HEADER_BYTES + _padded(chunk_bytes) <= self.capacity - self.used_bytes()

    # -- producer ---------------------------------------------------------------------

    def write_chunk(self, chunk: memoryview, flags: int, frame_bytes: int) -> bool:
        """Append one chunk; False (nothing written) when it does not fit now."""
        buf = self._buf
        capacity = self.capacity
        n = chunk.nbytes
        need = CHUNK_HEADER_BYTES + _padded(n)
        head = _U64.unpack_from(buf, _HEAD_OFFSET)[0]
        tail = _U64.unpack_from(buf, _TAIL_OFFSET)[0]
        if tail > head or head - tail > capacity or head % 16 != 0:
            raise RingCorruptError(f"ring counters impossible: head={head} tail={tail}")
        if need > capacity - (head - tail):
            return False
        pos = head % capacity
        _CHUNK.pack_into(buf, DATA_OFFSET + pos, n, crc32c.crc32c(chunk), flags, frame_bytes)
        start = (pos + CHUNK_HEADER_BYTES) % capacity
        first = min(n, capacity - start)
        buf[DATA_OFFSET + start : DATA_OFFSET + start + first] = chunk[:first]
        if first < n:
            buf[DATA_OFFSET : DATA_OFFSET + n - first] = chunk[first:]
        # Publish only after the bytes are in place.
        _U64.pack_into(buf, _HEAD_OFFSET, head + need)
        return True

    # -- consumer ---------------------------------------------------------------------

    def read_chunk(self) -> tuple[bytes, int, int] | None:
        """The next (chunk, flags, frame_bytes), or None when the ring is empty."""
        buf = self._buf
        capacity = self.capacity
        head = _U64.unpack_from(buf, _HEAD_OFFSET)[0]
        tail = _U64.unpack_from(buf, _TAIL_OFFSET)[0]
        if head == tail:
            return None
        available = head - tail
        if head < tail or available > capacity or tail % 16 != 0 or available < CHUNK_HEADER_BYTES:
            raise RingCorruptError(f"ring counters impossible: head={head} tail={tail}")
        pos = tail % capacity
        n, crc, flags, frame_bytes = _CHUNK.unpack_from(buf, DATA_OFFSET + pos)
        need = CHUNK_HEADER_BYTES + _padded(n)
        if need > available or n > frame_bytes or flags & ~(FLAG_FIRST | FLAG_LAST):
            raise RingCorruptError(
                f"chunk header impossible at tail={tail}: bytes={n} flags={flags}"
            )
        start = (pos + CHUNK_HEADER_BYTES) % capacity
        first = min(n, capacity - start)
        if first == n:
            chunk = bytes(buf[DATA_OFFSET + start : DATA_OFFSET + start + n])
        else:
            chunk = b"".join(
                (
                    buf[DATA_OFFSET + start : DATA_OFFSET + capacity],
                    buf[DATA_OFFSET : DATA_OFFSET + n - first],
                )
            )
        if crc32c.crc32c(chunk) != crc:
            raise RingCorruptError(f"chunk checksum mismatch at tail={tail}")
        _U64.pack_into(buf, _TAIL_OFFSET, tail + need)
        return chunk, flags, frame_bytes

    def discard_all(self) -> None:
        """Drop everything written so far (after corruption): the consumer jumps to head."""
        head = _U64.unpack_from(self._buf, _HEAD_OFFSET)[0]
        _U64.pack_into(self._buf, _TAIL_OFFSET, head)
