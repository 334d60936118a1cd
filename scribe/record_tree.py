"""Tree heads and proofs over an engine's records: the one implementation behind scribe.Ledger and
the HTTP backends (embedded and node).

`RecordTree(source)` reads `source.leaf_hashes()` (32 bytes per record in seq order, e.g.
engines.leafstore.LeafHashes, which keeps them on disk), `source.record(seq)` and
`source.history(key)`.
"""

from __future__ import annotations

import threading
from typing import Protocol

from scribe.errors import InvalidArgumentError, KeyNotFoundError
from scribe.merkle import MerkleTree
from scribe.records import OP_CLEAR, Proof, Record, TreeHead, Version


class RecordSource(Protocol):
    """What RecordTree reads: an engine's leaf hashes, records and version chains."""

    def leaf_hashes(self) -> bytes | bytearray: ...

    def record(self, seq: int) -> Record: ...

    def history(self, key: bytes) -> list[Version]: ...


def _check_size(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgumentError(f"{name} must be a non-negative int, got {value!r}")
    return value


class RecordTree:
    """Ledger-style tree_head / prove / consistency over a RecordSource. Thread-safe."""

    def __init__(self, source: RecordSource):
        self._source = source
        self._tree: MerkleTree | None = None
        self._tree_leaves: object = None
        self._lock = threading.Lock()

    def _synced(self) -> MerkleTree:
        """The tree over every leaf the source holds now. Call with _lock held.

        The tree reads the source's leaf hashes in place (MerkleTree.over), so it grows with them
        and holds no copy: its RAM is the cached subtree roots alone.
        """
        hashes = self._source.leaf_hashes()  # also hashes records the source has not hashed yet
        if self._tree is None or self._tree_leaves is not hashes:
            self._tree = MerkleTree.over(hashes)
            self._tree_leaves = hashes
        return self._tree

    def tree_head(self) -> TreeHead:
        with self._lock:
            tree = self._synced()
            size = tree.size
            root = tree.root(size)
        ts_ms = self._source.record(size - 1).ts_ms if size else 0
        return TreeHead(size, root, ts_ms)

    def prove(self, key: bytes, seq: int | None = None) -> Proof:
        if seq is None:
            versions = self._source.history(key)
            live = [v.seq for v in versions if v.op != OP_CLEAR]
            if not live:
                raise KeyNotFoundError(f"key {key!r} was never written")
            seq = live[-1]
        _check_size("seq", seq)
        with self._lock:
            tree = self._synced()
            size = tree.size
            if seq >= size:
                raise KeyNotFoundError(f"no record with seq {seq}")
            record = self._source.record(seq)
            if record.key != key:
                raise KeyNotFoundError(f"record {seq} is not a version of key {key!r}")
            path = tree.inclusion_proof(seq, size)
            root = tree.root(size)
        return Proof(
            record.seq,
            record.ts_ms,
            record.op,
            record.key,
            record.value,
            record.leaf_hash(),
            size,
            root,
            path,
        )

    def consistency(self, first: int, second: int) -> list[bytes]:
        _check_size("first", first)
        _check_size("second", second)
        with self._lock:
            tree = self._synced()
            if first > second or second > tree.size:
                raise InvalidArgumentError(
                    f"need 0 <= first <= second <= {tree.size}, got first={first} second={second}"
                )
            return tree.consistency_proof(first, second)
