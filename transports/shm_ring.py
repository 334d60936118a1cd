"""A single-producer single-consumer ring of length-prefixed chunks in a shared buffer.

Layout (native byte order: every user is on this host), hot counters on their own
cache lines:

    0    magic "SCRBRNG1" | u32 version | u32 state | u64 generation | u64 capacity
    64   u64 head            written only by the producer (total bytes ever written)
    72   u64 producer_waiting  set by a producer with a backlog, cleared by the consumer
    128  u64 tail            written only by the consumer (total bytes ever consumed)
    192  data[capacity]      capacity is a multiple of 16

A chunk is a 16-byte header `u32 chunk_bytes | u32 crc32c(chunk) | u32 flags |
u32 frame_bytes` then the chunk bytes, padded to 16 so headers never wrap
(the payload may wrap around the end). A frame is one or more chunks, FIRST on
the first and LAST on the last. The producer copies a chunk in and only then
advances `head`, so the consumer never sees a partial chunk; the CRC catches
anything else (a torn write, a foreign writer), and the consumer then discards
the ring's contents rather than deliver garbage.

Shared words are read and written through memoryview casts ("Q" and "I"
items), which CPython copies with one aligned load or store: an aligned 8-byte
access is atomic on x86-64 and arm64. struct.pack_into must not be used on a
live word: it zero-fills its target before writing, and a reader in another
process can see that transient zero.

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

_HEADER = struct.Struct("=8sIIQQ")  # magic, version, state, generation, capacity
_CHUNK = struct.Struct("=IIII")  # chunk_bytes, crc32c, flags, frame_bytes
# Indexes of the live words in the header's "I" and "Q" views.
_STATE_U32 = 3  # byte offset 12
_HEAD_U64 = 8  # byte offset 64
_WAITING_U64 = 9  # byte offset 72
_TAIL_U64 = 16  # byte offset 128
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
        self._u32 = buf[:DATA_OFFSET].cast("I")
        self._u64 = buf[:DATA_OFFSET].cast("Q")
        self.generation = generation
        self.capacity = capacity

    def release(self) -> None:
        """Drop this view's hold on the buffer, so the mapping can be closed."""
        self._u32.release()
        self._u64.release()

    @classmethod
    def initialise(cls, buf: memoryview, generation: int) -> Ring:
        capacity = (len(buf) - DATA_OFFSET) & ~15
        if capacity <= CHUNK_HEADER_BYTES:
            raise RingFormatError(f"a {len(buf)}-byte segment is too small for a ring")
        # Nobody else trusts the segment before the magic, so pack_into is safe here.
        buf[_HEAD_U64 * 8 : _HEAD_U64 * 8 + 16] = bytes(16)
        buf[_TAIL_U64 * 8 : _TAIL_U64 * 8 + 8] = bytes(8)
        _HEADER.pack_into(buf, 0, b"\0" * 8, VERSION, STATE_OPEN, generation, capacity)
        buf[0:8] = MAGIC  # last: the ring is now visible as finished
        return cls(buf)

    # -- shared state ----------------------------------------------------------------

    @property
    def state(self) -> int:
        return self._u32[_STATE_U32]

    def abandon(self) -> None:
        self._u32[_STATE_U32] = STATE_ABANDONED

    @property
    def producer_waiting(self) -> bool:
        return self._u64[_WAITING_U64] != 0

    def set_producer_waiting(self, waiting: bool) -> None:
        self._u64[_WAITING_U64] = 1 if waiting else 0

    def used_bytes(self) -> int:
        u64 = self._u64
        return u64[_HEAD_U64] - u64[_TAIL_U64]

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
        u64 = self._u64
        head = u64[_HEAD_U64]
        tail = u64[_TAIL_U64]
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
        u64[_HEAD_U64] = head + need
        return True

    # -- consumer ---------------------------------------------------------------------

    def read_chunk(self) -> tuple[bytes, int, int] | None:
        """The next (chunk, flags, frame_bytes), or None when the ring is empty."""
        buf = self._buf
        capacity = self.capacity
        u64 = self._u64
        head = u64[_HEAD_U64]
        tail = u64[_TAIL_U64]
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
        u64[_TAIL_U64] = tail + need
        return chunk, flags, frame_bytes

    def discard_all(self) -> None:
        """Drop everything written so far (after corruption): the consumer jumps to head."""
        self._u64[_TAIL_U64] = self._u64[_HEAD_U64]
