"""Explicit byte formats: Raft messages (with entries), entries alone, hard state, conf changes.

Message frame, version 1, all integers big-endian:

    u8  version (1)          u8  type (MessageType)      u8  flags (bit 0 reject, bit 1 force)
    u64 to                   u64 from                     u64 term
    u64 log_term             u64 index                    u64 commit
    u64 hint_index           u64 hint_term                u64 read_seq
    u32 ctx_len              u32 entry_count
    ctx_len bytes ctx
    entry_count x ( u64 term | u64 index | u8 type | u32 data_len | data )
    u32 CRC-32C of every byte before it

Field use by type: APP (log_term, index) = previous entry, commit, entries, force = commit notice
(empty, not acknowledged once accepted), hint_index = the leader's durable last index when two
voters are a quorum (0: not said; a node that does not know the field ignores it); APP_RESP index = acked
or rejected index, hint_index/hint_term = conflict hint; VOTE/PRE_VOTE (log_term, index) = last
entry, force = leadership transfer; HEARTBEAT commit, read_seq; HEARTBEAT_RESP read_seq (reject: the log ends at index, below the commit);
PROP ctx = request id, entries with term = index = 0; PROP_RESP ctx, log_term = term assigned,
index = first index, hint_index = entry count; READ_INDEX(_RESP) ctx, index = read index
(READ_INDEX term = the asker's term, 0 from an older node: the leader then asks a quorum);
TRANSFER_LEADER index = target node id. Decoding never trusts a length: any truncated, garbled,
trailing or unknown-version input raises WireError.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from crc32c import crc32c

from scribe.raft.errors import WireError
from scribe.raft.types import Entry, EntryType, HardState, Message, MessageType

WIRE_VERSION = 1
MAX_CTX_BYTES = 4096
MAX_ENTRIES_PER_FRAME = 1 << 20
MAX_NODE_ID = (1 << 64) - 1

_HEADER = struct.Struct(">BBBQQQQQQQQQII")
_ENTRY = struct.Struct(">QQBI")
_CRC = struct.Struct(">I")
_HARD_STATE = struct.Struct(">BQQQ")
_CONF_CHANGE = struct.Struct(">BBQ")

_FLAG_REJECT = 1
_FLAG_FORCE = 2
_KNOWN_FLAGS = _FLAG_REJECT | _FLAG_FORCE
_MESSAGE_TYPES = frozenset(int(t) for t in MessageType)
_ENTRY_TYPES = frozenset(int(t) for t in EntryType)
_CARRY_ENTRIES = frozenset({MessageType.APP, MessageType.PROP})


def _encode_entries(parts: list[bytes], entries) -> None:
    pack = _ENTRY.pack
    for entry in entries:
        data = entry.data
        parts.append(pack(entry.term, entry.index, entry.type, len(data)))
        parts.append(data)


def encode_message(m: Message) -> bytes:
    """Encode one message into a self-checking frame."""
    flags = (_FLAG_REJECT if m.reject else 0) | (_FLAG_FORCE if m.force else 0)
    if len(m.ctx) > MAX_CTX_BYTES:
        raise WireError(f"message ctx of {len(m.ctx)} bytes exceeds {MAX_CTX_BYTES}")
    try:
        header = _HEADER.pack(
            WIRE_VERSION, m.type, flags, m.to, m.frm, m.term, m.log_term, m.index, m.commit,
            m.hint_index, m.hint_term, m.read_seq, len(m.ctx), len(m.entries),
        )  # fmt: skip
    except struct.error as exc:
        raise WireError(f"cannot encode {m!r}: {exc}") from None
    parts = [header, m.ctx]
    _encode_entries(parts, m.entries)
    body = b"".join(parts)
    return body + _CRC.pack(crc32c(body))


def _decode_entries(buf: bytes, pos: int, end: int, count: int) -> tuple[list[Entry], int]:
    entries: list[Entry] = []
    unpack_from = _ENTRY.unpack_from
    size = _ENTRY.size
    for _ in range(count):
        if pos + size > end:
            raise WireError("truncated entry header")
        term, index, etype, length = unpack_from(buf, pos)
        pos += size
        if etype not in _ENTRY_TYPES:
            raise WireError(f"unknown entry type {etype}")
        if pos + length > end:
            raise WireError("truncated entry data")
        entries.append(Entry(term, index, etype, bytes(buf[pos : pos + length])))
        pos += length
    return entries, pos


def decode_message(buf: bytes) -> Message:
    """Decode a frame made by encode_message. Raises WireError on anything else."""
    if not isinstance(buf, bytes | bytearray | memoryview):
        raise WireError(f"expected bytes, got {type(buf).__name__}")
    buf = bytes(buf)
    if len(buf) < _HEADER.size + _CRC.size:
        raise WireError(f"frame of {len(buf)} bytes is shorter than the header")
    if buf[0] != WIRE_VERSION:
        raise WireError(f"unknown wire version {buf[0]} (expected {WIRE_VERSION})")
    end = len(buf) - _CRC.size
    (crc,) = _CRC.unpack_from(buf, end)
    if crc32c(memoryview(buf)[:end]) != crc:
        raise WireError("frame checksum mismatch")
    (
        _, mtype, flags, to, frm, term, log_term, index, commit,
        hint_index, hint_term, read_seq, ctx_len, count,
    ) = _HEADER.unpack_from(buf, 0)  # fmt: skip
    if mtype not in _MESSAGE_TYPES:
        raise WireError(f"unknown message type {mtype}")
    if flags & ~_KNOWN_FLAGS:
        raise WireError(f"unknown message flags {flags:#x}")
    if ctx_len > MAX_CTX_BYTES:
        raise WireError(f"ctx length {ctx_len} exceeds {MAX_CTX_BYTES}")
    if count > MAX_ENTRIES_PER_FRAME or (count and mtype not in _CARRY_ENTRIES):
        raise WireError(f"{MessageType(mtype).name} cannot carry {count} entries")
    pos = _HEADER.size
    if pos + ctx_len > end:
        raise WireError("truncated ctx")
    ctx = buf[pos : pos + ctx_len]
    pos += ctx_len
    entries, pos = _decode_entries(buf, pos, end, count)
    if pos != end:
        raise WireError(f"{end - pos} trailing bytes after the last entry")
    if mtype == MessageType.APP:
        for offset, entry in enumerate(entries):
            if entry.index != index + 1 + offset:
                raise WireError(f"APP entry {offset} has index {entry.index}, not consecutive")
    return Message(
        mtype, to, frm, term, log_term, index, commit, bool(flags & _FLAG_REJECT),
        bool(flags & _FLAG_FORCE), hint_index, hint_term, read_seq, ctx, entries,
    )  # fmt: skip


def encode_entry(entry: Entry) -> bytes:
    """One entry as stored in a log record (the record layer adds its own CRC)."""
    return _ENTRY.pack(entry.term, entry.index, entry.type, len(entry.data)) + entry.data


def decode_entry(buf: bytes) -> Entry:
    buf = bytes(buf)
    entries, pos = _decode_entries(buf, 0, len(buf), 1)
    if pos != len(buf):
        raise WireError(f"{len(buf) - pos} trailing bytes after an entry")
    return entries[0]


def encode_hard_state(hard_state: HardState) -> bytes:
    return _HARD_STATE.pack(WIRE_VERSION, *hard_state)


def decode_hard_state(buf: bytes) -> HardState:
    if len(buf) != _HARD_STATE.size:
        raise WireError(f"hard state is {len(buf)} bytes, expected {_HARD_STATE.size}")
    version, term, vote, commit = _HARD_STATE.unpack(buf)
    if version != WIRE_VERSION:
        raise WireError(f"unknown hard state version {version}")
    return HardState(term, vote, commit)


class ConfChangeOp:
    ADD_VOTER = 1
    ADD_LEARNER = 2
    REMOVE_NODE = 3


_CONF_OPS = frozenset({ConfChangeOp.ADD_VOTER, ConfChangeOp.ADD_LEARNER, ConfChangeOp.REMOVE_NODE})


class ConfChange(NamedTuple):
    """Data of a CONF_CHANGE entry: one single-server membership change (dissertation §4)."""

    op: int
    node_id: int


def encode_conf_change(change: ConfChange) -> bytes:
    if change.op not in _CONF_OPS or not 1 <= change.node_id <= MAX_NODE_ID:
        raise WireError(f"invalid conf change {change}")
    return _CONF_CHANGE.pack(WIRE_VERSION, change.op, change.node_id)


def decode_conf_change(buf: bytes) -> ConfChange:
    if len(buf) != _CONF_CHANGE.size:
        raise WireError(f"conf change is {len(buf)} bytes, expected {_CONF_CHANGE.size}")
    version, op, node_id = _CONF_CHANGE.unpack(buf)
    if version != WIRE_VERSION:
        raise WireError(f"unknown conf change version {version}")
    if op not in _CONF_OPS or node_id == 0:
        raise WireError(f"invalid conf change op {op} node {node_id}")
    return ConfChange(op, node_id)
