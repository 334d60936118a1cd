"""Signed tree heads and proofs for any Backend: one mixin shared by the embedded and the node backends.

A backend gets `public_key`, `signed_tree_head`, `prove` and `consistency` (the abstract
verification methods of `Backend`) by inheriting `VerifiableBackend` before `Backend` and calling
`init_verification` once:

    class NodeBackend(VerifiableBackend, Backend):
        def __init__(self, ...):
            ...
            self.init_verification(data_dir, source=ledger_log)

`source` is any object exposing `leaf_hashes()` (32 bytes per record, seq order), `record(seq)`
and `history(key)` (engines.base.Engine: a SegmentEngine or a LedgerLog); the mixin keeps its own
Merkle tree over those hashes (`RecordTree`). The embedded backend passes `prover=ledger` instead,
so the ledger's own tree serves both.

Every head the node signs covers records that are durable: subclasses whose records may be applied
before they reach the disk override `ensure_durable(size)`.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from scribe.errors import InvalidArgumentError, ScribeError
from scribe.record_tree import RecordSource, RecordTree
from scribe.records import Proof, TreeHead
from scribe.signing import SignedTreeHead, load_or_create_key, public_key_bytes, sign_tree_head

HASH_BYTES = 32


class Prover(Protocol):
    """What the mixin asks of the tree: the scribe.Ledger methods of the same names."""

    def tree_head(self) -> TreeHead: ...

    def prove(self, key: bytes, seq: int | None = None) -> Proof: ...

    def consistency(self, first: int, second: int) -> list[bytes]: ...


class VerifiableBackend:
    """Mixin: the verification methods of Backend, from a Prover and the node's signing key."""

    _prover: Prover
    _signing_key: Any
    _public_key: bytes
    _head_lock: threading.Lock
    _last_head: SignedTreeHead | None

    def init_verification(
        self,
        key_dir: str,
        *,
        source: RecordSource | None = None,
        prover: Prover | None = None,
    ) -> None:
        """Load (or create) `<key_dir>/node.key` and serve proofs from `prover` or `source`."""
        if (source is None) == (prover is None):
            raise InvalidArgumentError("init_verification takes exactly one of source and prover")
        self._prover = prover if prover is not None else RecordTree(source)
        self._signing_key = load_or_create_key(key_dir)
        self._public_key = public_key_bytes(self._signing_key)
        self._head_lock = threading.Lock()
        self._last_head = None

    def _verification_ready(self) -> None:
        if not hasattr(self, "_prover"):
            raise ScribeError(f"{type(self).__name__} never called init_verification()")

    def ensure_durable(self, size: int) -> None:
        """Return once records 0..size-1 are durable (signing a head promises them forever).

        Records a node applies are committed on a majority and fsynced before they are applied,
        so the default has nothing to wait for; the embedded backend flushes here.
        """

    def public_key(self) -> bytes:
        """The node's raw Ed25519 public key (32 bytes)."""
        self._verification_ready()
        return self._public_key

    def _sign(self, size: int, root: bytes) -> SignedTreeHead:
        """The head of (size, root), signed now; reused while the tree has not grown."""
        self.ensure_durable(size)
        with self._head_lock:
            last = self._last_head
            if last is not None and last.tree_size == size and last.root == root:
                return last
            now_ms = time.time_ns() // 1_000_000
            if last is not None and now_ms < last.ts_ms:
                now_ms = last.ts_ms  # heads never go back in time, even if the clock does
            head = sign_tree_head(self._signing_key, size, root, now_ms)
            if last is None or size >= last.tree_size:
                self._last_head = head
            return head

    def signed_tree_head(self) -> SignedTreeHead:
        """The tree over every record, signed by this node."""
        self._verification_ready()
        head = self._prover.tree_head()
        return self._sign(head.size, head.root)

    def prove(self, key: bytes, seq: int | None = None) -> tuple[Proof, SignedTreeHead]:
        """Inclusion proof of the key's newest record (or of version `seq`) and the signed head
        of the same tree. Raises KeyNotFoundError when there is no such record."""
        self._verification_ready()
        proof = self._prover.prove(key, seq)
        return proof, self._sign(proof.tree_size, proof.root)

    def consistency(self, first: int, second: int) -> list[bytes]:
        """RFC 9162 proof that the tree of `first` records is a prefix of the `second` one."""
        self._verification_ready()
        return self._prover.consistency(first, second)
