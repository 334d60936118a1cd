"""Scribe Ledger: a verifiable, durable, append-only key-value ledger.

from scribe import Ledger
with Ledger("./data") as led:
    seq = led.put("user:alice", "Alice Smith")
    proof = led.prove("user:alice")
    assert scribe.verify_inclusion(proof, led.tree_head())
"""

from .errors import (
    ClosedError,
    CorruptionError,
    InvalidArgumentError,
    KeyNotFoundError,
    LockedError,
    NoLeaderError,
    OutcomeUnknownError,
    ScribeError,
)
from .ledger import Ledger, SimpleScribeLedger
from .merkle import verify_consistency, verify_inclusion
from .records import OP_CLEAR, OP_DELETE, OP_PUT, Proof, Record, TreeHead, Version

__version__ = "0.1.0"

__all__ = [
    "OP_CLEAR",
    "OP_DELETE",
    "OP_PUT",
    "ClosedError",
    "CorruptionError",
    "InvalidArgumentError",
    "KeyNotFoundError",
    "Ledger",
    "LockedError",
    "NoLeaderError",
    "OutcomeUnknownError",
    "Proof",
    "Record",
    "ScribeError",
    "SimpleScribeLedger",
    "TreeHead",
    "Version",
    "verify_consistency",
    "verify_inclusion",
]
