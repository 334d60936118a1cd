"""The Raft consensus core (pure, deterministic), its storage interface and wire formats.

The node runtime drives RaftCore: tick/step/propose/read_index in; ready() -> persist, send,
apply -> advance(). See core.py for the contract and sim.py for the deterministic simulator.
"""

from scribe.raft.config import RaftConfig
from scribe.raft.core import RaftCore
from scribe.raft.errors import ProposalDroppedError, RaftInvariantError, WireError
from scribe.raft.storage import MemoryRaftStorage, RaftStorage
from scribe.raft.types import (
    NONE,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Proposal,
    ReadState,
    Ready,
    Role,
    SoftState,
)
from scribe.raft.wire import decode_message, encode_message

__all__ = [
    "NONE",
    "Entry",
    "EntryType",
    "HardState",
    "MemoryRaftStorage",
    "Message",
    "MessageType",
    "Proposal",
    "ProposalDroppedError",
    "RaftConfig",
    "RaftCore",
    "RaftInvariantError",
    "RaftStorage",
    "ReadState",
    "Ready",
    "Role",
    "SoftState",
    "WireError",
    "decode_message",
    "encode_message",
]
