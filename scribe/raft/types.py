"""Value types of the Raft core: entries, messages, hard/soft state, read states, Ready."""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

NONE = 0  # node id meaning "nobody"; real node ids are >= 1


class EntryType(IntEnum):
    NORMAL = 0  # opaque application data (a ledger batch)
    NOOP = 1  # appended by every new leader at the start of its term; data is empty
    CONF_CHANGE = 2  # membership change (voters/learners); data encoded by wire.encode_conf_change


class Entry(NamedTuple):
    """One log entry. A NamedTuple because the hot path creates and slices millions of them."""

    term: int
    index: int
    type: int
    data: bytes


ENTRY_OVERHEAD_BYTES = 21  # term u64 + index u64 + type u8 + len u32 on the wire


def entry_bytes(entry: Entry) -> int:
    return ENTRY_OVERHEAD_BYTES + len(entry.data)


class MessageType(IntEnum):
    APP = 1  # leader -> follower: entries after (index, log_term), leader commit
    APP_RESP = 2  # follower -> leader: ack up to index, or reject with a hint
    VOTE = 3
    VOTE_RESP = 4
    PRE_VOTE = 5
    PRE_VOTE_RESP = 6
    HEARTBEAT = 7  # leader -> follower: commit, read_seq
    HEARTBEAT_RESP = 8  # echoes read_seq
    PROP = 9  # follower -> leader: forwarded proposal (entries carry data only), ctx = request id
    PROP_RESP = 10  # leader -> follower: term and first index assigned, or reject
    READ_INDEX = 11  # follower -> leader: ReadIndex request, ctx echoed
    READ_INDEX_RESP = 12  # leader -> follower: index safe to read at, or reject
    TIMEOUT_NOW = 13  # leader -> transfer target: campaign now
    TRANSFER_LEADER = 14  # follower -> leader: please transfer leadership to `index` (node id)


class Message:
    """One Raft message. A single layout for every type, like etcd's raftpb.Message; unused fields are 0."""

    __slots__ = (
        "type",
        "to",
        "frm",
        "term",
        "log_term",
        "index",
        "commit",
        "reject",
        "force",
        "hint_index",
        "hint_term",
        "read_seq",
        "ctx",
        "entries",
    )

    def __init__(
        self,
        type: int,
        to: int,
        frm: int,
        term: int = 0,
        log_term: int = 0,
        index: int = 0,
        commit: int = 0,
        reject: bool = False,
        force: bool = False,
        hint_index: int = 0,
        hint_term: int = 0,
        read_seq: int = 0,
        ctx: bytes = b"",
        entries: list[Entry] | tuple[Entry, ...] = (),
    ) -> None:
        self.type = type
        self.to = to
        self.frm = frm
        self.term = term
        self.log_term = log_term
        self.index = index
        self.commit = commit
        self.reject = reject
        self.force = force
        self.hint_index = hint_index
        self.hint_term = hint_term
        self.read_seq = read_seq
        self.ctx = ctx
        self.entries = entries

    def _key(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__[:-1]) + (tuple(self.entries),)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        kind = MessageType(self.type).name
        parts = [f"{kind} {self.frm}->{self.to} t{self.term}"]
        for name in ("log_term", "index", "commit", "hint_index", "hint_term", "read_seq"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name}={value}")
        if self.reject:
            parts.append("REJECT")
        if self.force:
            parts.append("force")
        if self.ctx:
            parts.append(f"ctx={self.ctx.hex()}")
        if self.entries:
            first, last = self.entries[0], self.entries[-1]
            parts.append(f"entries={len(self.entries)}[{first.index}..{last.index}]")
        return "Message(" + " ".join(parts) + ")"


class HardState(NamedTuple):
    """What must be durable before messages that depend on it are sent."""

    term: int = 0
    vote: int = NONE
    commit: int = 0


class Role(IntEnum):
    FOLLOWER = 0
    PRE_CANDIDATE = 1
    CANDIDATE = 2
    LEADER = 3


class SoftState(NamedTuple):
    """Volatile state the runtime may want to know: who leads, and our role."""

    leader_id: int
    role: Role


class ReadState(NamedTuple):
    """A ReadIndex answer: once applied_index >= index, a read issued with ctx may be served."""

    index: int
    ctx: bytes


class Proposal(NamedTuple):
    """Where a proposal landed: entries [index, index + count) in `term`. term == 0 means dropped.

    On a leader, propose() returns it with term/index set. On a follower the proposal is forwarded;
    propose() returns term == index == 0 and the outcome arrives later in Ready.proposals under the
    same request_id. A proposal succeeded iff the committed entry at `index` has term `term`.
    """

    request_id: int
    term: int
    index: int
    count: int


class Ready:
    """Everything the runtime must do, in this order: persist (hard_state, entries, fsync), send
    messages, apply committed_entries, serve read_states once applied, then call advance(ready).

    `messages` never depend on anything not yet durable: votes and append acks that do are held by
    the core until advance() says the Ready they depend on is durable. So the runtime may send
    `messages` before or while it fsyncs. A runtime may send the held ones as soon as its fsync is
    done (take_after_sync); those it does not take go out with the next Ready.
    """

    __slots__ = (
        "soft_state",
        "hard_state",
        "entries",
        "messages",
        "committed_entries",
        "read_states",
        "dropped_reads",
        "proposals",
        "_held",
        "_vote_changed",
    )

    def __init__(self) -> None:
        self.soft_state: SoftState | None = None
        self.hard_state: HardState | None = None
        self.entries: list[Entry] = []
        self.messages: list[Message] = []
        self.committed_entries: list[Entry] = []
        self.read_states: list[ReadState] = []
        self.dropped_reads: list[bytes] = []  # ctx of ReadIndex requests refused: retry them
        self.proposals: list[Proposal] = []
        self._held: list[Message] = []
        self._vote_changed = False  # hard_state changes term or vote, not only the commit index

    def take_after_sync(self) -> list[Message]:
        """The messages that vouch for this Ready's durable state (append acks, votes, made before
        ready()), for a runtime to send once its fsync is done, before the rest of the Ready's
        work: an append ack is what a write at the leader waits for. advance() queues for the
        next Ready only what was not taken."""
        held, self._held = self._held, []
        return held

    @property
    def must_sync(self) -> bool:
        """True when entries, or a new term or vote, must be fsynced before advance().

        A hard state that only moves the commit index needs no fsync (as in etcd-io/raft): the
        commit index is volatile in Raft, a restarted node learns it again from the leader, and
        entries are never applied before they are durable. The runtime still writes it.
        """
        return self._vote_changed or bool(self.entries)

    def __repr__(self) -> str:
        return (
            f"Ready(soft={self.soft_state}, hard={self.hard_state}, entries={len(self.entries)}, "
            f"messages={len(self.messages)}, committed={len(self.committed_entries)}, "
            f"reads={len(self.read_states)}, proposals={len(self.proposals)})"
        )
