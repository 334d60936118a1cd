"""Hint files: a compact summary of a segment's records, so opening a ledger need not parse every frame.

    header = b"SCRBHINT" || u32be(version) || u64be(base_seq) || u64be(count) || u64be(covered_bytes)
             || u64be(last_frame_offset) || u32be(last_frame_crc)
    body   = offsets (count x u64le) || ops (count x u8) || key lengths (count x u32le) || keys
    trailer = u32be(crc32c(header || body))

A hint covers the first `covered_bytes` of its segment. It is trusted only when its own checksum holds,
the segment is at least that long, and the frame at `last_frame_offset` still carries `last_frame_crc`;
otherwise it is stale, removed, and the segment is parsed in full. Frames past `covered_bytes` are always
parsed (a hint written at close covers an active segment that may have grown since).
"""

from __future__ import annotations

import struct
import sys
from array import array
from itertools import accumulate

from crc32c import crc32c

HINT_MAGIC = b"SCRBHINT"
HINT_VERSION = 1
HINT_SUFFIX = ".hint"
_HEAD = struct.Struct(">8sIQQQQI")
_CRC = struct.Struct(">I")


class HintData:
    __slots__ = (
        "base_seq",
        "covered_bytes",
        "last_frame_offset",
        "last_frame_crc",
        "offsets",
        "ops",
        "keys",
    )

    def __init__(
        self, base_seq, covered_bytes, last_frame_offset, last_frame_crc, offsets, ops, keys
    ):
        self.base_seq = base_seq
        self.covered_bytes = covered_bytes
        self.last_frame_offset = last_frame_offset
        self.last_frame_crc = last_frame_crc
        self.offsets: array = offsets
        self.ops: bytes = ops
        self.keys: list[bytes] = keys


def _le(arr: array) -> bytes:
    if sys.byteorder == "big":
        arr = array(arr.typecode, arr)
        arr.byteswap()
    return arr.tobytes()


def encode_hint(
    base_seq: int,
    covered_bytes: int,
    last_frame_offset: int,
    last_frame_crc: int,
    offsets: array,
    ops: bytes,
    keys: list[bytes],
) -> bytes:
    n = len(offsets)
    if not (len(ops) == n == len(keys)):
        raise ValueError("hint columns differ in length")
    klens = array("I", map(len, keys))
    head = _HEAD.pack(
        HINT_MAGIC, HINT_VERSION, base_seq, n, covered_bytes, last_frame_offset, last_frame_crc
    )
    body = b"".join((head, _le(offsets), bytes(ops), _le(klens), b"".join(keys)))
    return body + _CRC.pack(crc32c(body))


def decode_hint(data: bytes) -> HintData | None:
    """The hint, or None when it is malformed (a stale or torn hint is rebuilt, never trusted)."""
    if len(data) < _HEAD.size + _CRC.size:
        return None
    (crc,) = _CRC.unpack_from(data, len(data) - 4)
    if crc32c(memoryview(data)[:-4]) != crc:
        return None
    magic, version, base_seq, n, covered, last_off, last_crc = _HEAD.unpack_from(data, 0)
    if magic != HINT_MAGIC or version != HINT_VERSION:
        return None
    pos = _HEAD.size
    offsets = array("Q")
    offsets.frombytes(data[pos : pos + 8 * n])
    pos += 8 * n
    ops = data[pos : pos + n]
    pos += n
    klens = array("I")
    klens.frombytes(data[pos : pos + 4 * n])
    pos += 4 * n
    if sys.byteorder == "big":
        offsets.byteswap()
        klens.byteswap()
    blob = data[pos:-4]
    if len(offsets) != n or len(ops) != n or len(klens) != n or sum(klens) != len(blob):
        return None
    ends = accumulate(klens)
    keys = [blob[e - k : e] for e, k in zip(ends, klens, strict=True)]
    return HintData(base_seq, covered, last_off, last_crc, offsets, ops, keys)
