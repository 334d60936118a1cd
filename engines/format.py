"""Byte formats of the segment engine: segment header and record frames.

A segment file is a header followed by frames, one frame per ledger record:

    segment header  = b"SCRIBSEG" || u32be(format version) || u32be(crc32c of the 12 bytes before)
    frame           = u32be(len(payload)) || u32be(crc32c(payload)) || payload
    payload         = u64be(prev_seq + 1, 0 = none) || u8(flags) || u8(0) || leaf_data (DESIGN §2)

The zero byte right before leaf_data is the RFC 9162 leaf prefix: the leaf hash is SHA-256 of one
contiguous slice of the payload, payload[9:], with no copy.

`flags` bit 0 (COMMIT) marks the last record of an atomic group (a single put, or a whole batch): recovery
keeps a group only when its COMMIT frame is intact, so a batch is all-or-nothing across crashes.
`prev_seq` links each record to the previous record of the same key, so history needs no second index.
"""

from __future__ import annotations

import struct

from crc32c import crc32c

MAGIC = b"SCRIBSEG"
FORMAT_VERSION = 1
SEGMENT_HEADER = struct.Struct(">8sII")
SEGMENT_HEADER_BYTES = SEGMENT_HEADER.size  # 16
SEGMENT_SUFFIX = ".seg"

FLAG_COMMIT = 0x01
FLAGS_KNOWN = FLAG_COMMIT

FRAME_HEAD = struct.Struct(">II")  # payload length, crc32c(payload)
FRAME_HEAD_BYTES = FRAME_HEAD.size  # 8
# prev_seq + 1, flags, zero, seq, ts_ms, op, len(key): the payload up to the key
PAYLOAD_HEAD = struct.Struct(">QBBQQBI")
PAYLOAD_HEAD_BYTES = PAYLOAD_HEAD.size  # 31
LEAF_DATA_OFFSET = 10  # leaf_data starts after prev, flags and the zero byte
LEAF_HASH_INPUT_OFFSET = LEAF_DATA_OFFSET - 1  # 0x00 || leaf_data
U32 = struct.Struct(">I")
PAYLOAD_BYTES_MIN = PAYLOAD_HEAD_BYTES + 4
# The seq field sits at this distance from the frame start; recovery searches for it to tell a torn tail
# from a corrupt record in the middle.
SEQ_OFFSET_IN_FRAME = FRAME_HEAD_BYTES + LEAF_DATA_OFFSET

_frame_head_pack = FRAME_HEAD.pack
_payload_head_pack = PAYLOAD_HEAD.pack
_u32_pack = U32.pack


def segment_header() -> bytes:
    head = MAGIC + struct.pack(">I", FORMAT_VERSION)
    return head + struct.pack(">I", crc32c(head))


def check_segment_header(data: bytes) -> str | None:
    """None when `data` starts with a valid segment header, else why not."""
    if len(data) < SEGMENT_HEADER_BYTES:
        return "segment header is incomplete"
    magic, version, crc = SEGMENT_HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        return "segment does not start with the SCRIBSEG magic"
    if crc != crc32c(data[:12]):
        return "segment header checksum mismatch"
    if version != FORMAT_VERSION:
        return f"unsupported segment format version {version}"
    return None


def segment_name(base_seq: int) -> str:
    return f"{base_seq:020d}{SEGMENT_SUFFIX}"


def encode_frame(
    flags: int, prev1: int, seq: int, ts_ms: int, op: int, key: bytes, value: bytes
) -> bytes:
    payload = (
        _payload_head_pack(prev1, flags, 0, seq, ts_ms, op, len(key))
        + key
        + _u32_pack(len(value))
        + value
    )
    return _frame_head_pack(len(payload), crc32c(payload)) + payload
