"""The interface between the HTTP API and whatever holds the data.

`create_app` talks only to a `Backend`. `scribe.http.embedded.LedgerBackend` implements it over one
embedded `scribe.Ledger`; the node runtime implements it over Raft (writes proposed to the leader,
reads through ReadIndex). Keys and values are bytes here: the HTTP layer does all decoding.

Errors a backend raises, and what the client sees:

- `scribe.errors.InvalidArgumentError`: 400 `invalid_argument` (nothing was applied);
- `scribe.errors.NoLeaderError`: 503 `no_leader` with Retry-After (certainly not applied);
- `scribe.errors.OutcomeUnknownError`: 504 `outcome_unknown` (proposed, maybe applied).

A write method returns only once its records are committed and durable.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from prometheus_client import CollectorRegistry

from scribe.errors import InvalidArgumentError
from scribe.records import Proof, Record, Version
from scribe.signing import SignedTreeHead

Consistency = Literal["linearizable", "stale"]
CONSISTENCY_LEVELS: tuple[str, ...] = ("linearizable", "stale")

ROLE_LEADER = "leader"
ROLE_FOLLOWER = "follower"
ROLE_CANDIDATE = "candidate"


@dataclass(frozen=True)
class WriteResult:
    seq: int  # ledger seq of the (last) record written
    index: int  # Raft log index of the entry that carried it


class Entry(NamedTuple):
    """A key's current value and the seq of the record that wrote it."""

    value: bytes
    seq: int


@dataclass(frozen=True)
class Health:
    node_id: int
    role: str  # ROLE_LEADER, ROLE_FOLLOWER or ROLE_CANDIDATE
    leader_id: int | None  # None while no leader is known
    term: int


@dataclass(frozen=True)
class Member:
    id: int
    host: str
    client_port: int | None
    raft_port: int | None
    role: str | None  # what this node knows of the member's role; None when unknown
    # The member's Ed25519 public key (raw), when known; the API fills in this node's own key.
    public_key: bytes | None = None


@dataclass(frozen=True)
class LeaderInfo:
    leader_id: int | None
    term: int
    member: Member | None  # the leader's address, when a leader is known


class Backend(abc.ABC):
    """What a node offers to its HTTP API. Implementations must be thread-safe: the server is."""

    # ---- writes: return once committed on a majority and durable -----------------------------

    @abc.abstractmethod
    def put(self, key: bytes, value: bytes) -> WriteResult: ...

    @abc.abstractmethod
    def delete(self, key: bytes) -> WriteResult: ...

    @abc.abstractmethod
    def batch(self, ops: Sequence[tuple[bytes, bytes | None]]) -> WriteResult:
        """Atomic: all records or none. A value of None is a delete. `seq` is the last record's."""

    # ---- reads -------------------------------------------------------------------------------

    @abc.abstractmethod
    def get(self, key: bytes, consistency: Consistency = "linearizable") -> Entry | None: ...

    @abc.abstractmethod
    def range(
        self,
        start: bytes | None,
        end: bytes | None,
        prefix: bytes | None,
        limit: int,
        consistency: Consistency = "linearizable",
    ) -> list[tuple[bytes, bytes]]:
        """Live keys in [start, end) with the prefix, in key order, at most `limit` of them."""

    @abc.abstractmethod
    def history(self, key: bytes, consistency: Consistency = "linearizable") -> list[Version]:
        """Every version of the key, oldest first; empty if the key was never written."""

    @abc.abstractmethod
    def records(
        self, start: int, limit: int, consistency: Consistency = "linearizable"
    ) -> list[Record]:
        """Records start, start+1, ... in seq order, at most `limit` of them."""

    def read_barrier(self, consistency: Consistency = "linearizable") -> None:
        """Return once this node's state holds every write acknowledged before the call (for
        "linearizable"; "stale" returns at once). The verification routes call it before they
        prove anything. A single copy of the ledger is always current: nothing to wait for."""
        if consistency not in ("linearizable", "stale"):
            raise InvalidArgumentError(f"unknown consistency {consistency!r}")

    # ---- the node and its cluster ------------------------------------------------------------

    @abc.abstractmethod
    def health(self) -> Health: ...

    @abc.abstractmethod
    def members(self) -> list[Member]: ...

    @abc.abstractmethod
    def leader(self) -> LeaderInfo: ...

    @abc.abstractmethod
    def status(self) -> Mapping[str, Any]:
        """JSON-ready details: at least node_id, role, leader_id, term, commit_index, applied_index."""

    # ---- verification (scribe.http.verifiable.VerifiableBackend implements all four) ---------

    @abc.abstractmethod
    def public_key(self) -> bytes:
        """This node's raw Ed25519 public key (32 bytes), the one that signs its tree heads."""

    @abc.abstractmethod
    def signed_tree_head(self) -> SignedTreeHead:
        """The tree over every record this node holds, signed now (over durable records only)."""

    @abc.abstractmethod
    def prove(self, key: bytes, seq: int | None = None) -> tuple[Proof, SignedTreeHead]:
        """Inclusion proof of the key's newest record (or its version `seq`) and the signed head
        of the same tree size. KeyNotFoundError when the key or version does not exist."""

    @abc.abstractmethod
    def consistency(self, first: int, second: int) -> list[bytes]:
        """RFC 9162 consistency proof; InvalidArgumentError unless 0 <= first <= second <= size."""

    def metrics_registry(self) -> CollectorRegistry | None:
        """The backend's own Prometheus metrics (ledger, Raft), appended to GET /metrics."""
        return None
