"""Ledger records (DESIGN §2) and the value types of the public API."""

from __future__ import annotations

import hashlib
import struct
from typing import NamedTuple

OP_PUT = 1
OP_DELETE = 2
OP_CLEAR = 3
OPS = (OP_PUT, OP_DELETE, OP_CLEAR)

_LEAF_HEAD = struct.Struct(">QQBI")  # seq, ts_ms, op, len(key)
_U32 = struct.Struct(">I")


class Record(NamedTuple):
    """One leaf of the ledger: every user operation is exactly one record."""

    seq: int
    ts_ms: int
    op: int
    key: bytes
    value: bytes

    def leaf_data(self) -> bytes:
        return encode_leaf_data(self.seq, self.ts_ms, self.op, self.key, self.value)

    def leaf_hash(self) -> bytes:
        return hashlib.sha256(b"\x00" + self.leaf_data()).digest()


class Version(NamedTuple):
    """One version of a key, as returned by Ledger.history()."""

    seq: int
    ts_ms: int
    op: int
    value: bytes


class TreeHead(NamedTuple):
    """The Merkle tree over records 0..size-1."""

    size: int
    root: bytes
    ts_ms: int


class Proof(NamedTuple):
    """An inclusion proof of one record in the tree of `tree_size` records."""

    seq: int
    ts_ms: int
    op: int
    key: bytes
    value: bytes
    leaf_hash: bytes
    tree_size: int
    root: bytes
    audit_path: list[bytes]


def encode_leaf_data(seq: int, ts_ms: int, op: int, key: bytes, value: bytes) -> bytes:
    """u64be(seq) || u64be(ts_ms) || u8(op) || u32be(len(key)) || key || u32be(len(value)) || value"""
    return b"".join((_LEAF_HEAD.pack(seq, ts_ms, op, len(key)), key, _U32.pack(len(value)), value))


def leaf_hash(leaf_data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf_data).digest()
