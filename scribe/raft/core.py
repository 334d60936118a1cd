"""RaftCore: a pure, deterministic Raft state machine in the style of etcd-io/raft's RawNode.

Inputs: tick(), step(msg), propose()/propose_batch(), read_index(ctx), transfer_leadership(to).
Output: ready() -> Ready; the runtime persists, sends, applies, then calls advance(ready).
It touches no clock, socket, file, thread or global random: `rng` is a seeded random.Random.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Sequence

from scribe.errors import InvalidArgumentError, NoLeaderError
from scribe.raft.config import RaftConfig
from scribe.raft.errors import ProposalDroppedError, RaftInvariantError, check
from scribe.raft.log import RaftLog
from scribe.raft.progress import Progress, ProgressState
from scribe.raft.storage import RaftStorage
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

_APP = MessageType.APP
_APP_RESP = MessageType.APP_RESP
_VOTE = MessageType.VOTE
_VOTE_RESP = MessageType.VOTE_RESP
_PRE_VOTE = MessageType.PRE_VOTE
_PRE_VOTE_RESP = MessageType.PRE_VOTE_RESP
_HEARTBEAT = MessageType.HEARTBEAT
_HEARTBEAT_RESP = MessageType.HEARTBEAT_RESP
_PROP = MessageType.PROP
_PROP_RESP = MessageType.PROP_RESP
_READ_INDEX = MessageType.READ_INDEX
_READ_INDEX_RESP = MessageType.READ_INDEX_RESP
_TIMEOUT_NOW = MessageType.TIMEOUT_NOW
_TRANSFER_LEADER = MessageType.TRANSFER_LEADER

# Requests between a follower and its leader carry no term: they are valid whatever the term.
_TERMLESS = frozenset({_PROP, _PROP_RESP, _READ_INDEX, _READ_INDEX_RESP, _TRANSFER_LEADER})

_REQUEST_ID_BYTES = 8


def _request_ctx(request_id: int) -> bytes:
    return request_id.to_bytes(_REQUEST_ID_BYTES, "big")


class RaftCore:
    """One member of a Raft group. Not thread-safe: drive it from one loop."""

    def __init__(
        self,
        node_id: int,
        voters: Iterable[int],
        storage: RaftStorage,
        config: RaftConfig,
        rng: random.Random,
        learners: Iterable[int] = (),
        applied_index: int = 0,
        rejoining: bool = False,
    ) -> None:
        voters = tuple(sorted(set(voters)))
        learners = tuple(sorted(set(learners)))
        if not voters:
            raise InvalidArgumentError("a Raft group needs at least one voter")
        if any(peer < 1 for peer in voters + learners):
            raise InvalidArgumentError("node ids must be >= 1")
        if set(voters) & set(learners):
            raise InvalidArgumentError("a node cannot be both voter and learner")
        if node_id not in voters and node_id not in learners:
            raise InvalidArgumentError(f"node {node_id} is not a member of {voters} + {learners}")
        self.id = node_id
        self.voters = voters
        self.learners = learners
        self.peers = tuple(p for p in voters + learners if p != node_id)
        self.quorum = len(voters) // 2 + 1
        self.config = config
        self.rng = rng
        self._bugs = config.bugs
        self.log = RaftLog(storage, applied_index)
        hard_state = storage.hard_state()
        self.term = hard_state.term
        self.vote = hard_state.vote
        self._handed_hard_state = hard_state  # last hard state given to the runtime (or loaded)
        self.lead = NONE
        self.role = Role.FOLLOWER
        self.prs: dict[int, Progress] = {}
        self._votes: dict[int, bool] = {}
        self._msgs: list[Message] = []  # safe to send at once
        self._held: list[Message] = []  # wait until the next Ready's state is durable
        self._read_states: list[ReadState] = []
        self._dropped_reads: list[bytes] = []
        self._proposal_results: list[Proposal] = []
        self._pending_reads: deque[tuple[int, int, bytes, int]] = deque()  # seq, index, ctx, from
        self._reads_before_commit: list[tuple[bytes, int]] = []  # ctx, from
        self._read_seq = 0
        self._next_request_id = rng.getrandbits(40) << 20  # distinct across restarts
        self._soft_state = SoftState(NONE, Role.FOLLOWER)
        self._outstanding: Ready | None = None
        self._flush_appends = False
        # Leader: a new commit index the followers have not heard yet. It rides on the next
        # append with entries, or on an empty append (a commit notice) built by ready() once the
        # runtime calls send_commit_notice() (at once when a follower's clients wait for it).
        self._commit_notice = False
        self._notice_everyone = False  # send_commit_notice(): every follower hears it, not only
        # those whose forwarded writes it answers
        self._commit_told: dict[int, int] = {}  # peer -> commit index last sent to it in an append
        # Two voters are a quorum (3-node groups): a follower told that an entry of this term is
        # durable on the leader, while it is durable on itself, knows it is committed (see
        # _commit_durable_pair).
        # Leader: peer -> last index it forwarded this term and has not yet heard committed;
        # a leader fsync that leaves such an entry uncommitted is told to that peer at once.
        self._forwarded_upto: dict[int, int] = {}
        self._durable_notice = False
        # Leader: the highest durable index told to a follower this term. A follower may commit
        # (and acknowledge a write) up to it before this leader hears, so no read index is lower.
        self._durable_told = 0
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = config.election_timeout_ticks
        self.lead_transferee = NONE
        # A member restarted with an empty log (its data directory was lost) forgot what it
        # acknowledged and whom it voted for. Until it holds every entry that was committed when
        # it first heard from a leader, it neither votes nor campaigns: its vote could elect a
        # leader without committed entries, or be a second vote in a term it already voted in.
        self.rejoining = rejoining
        self._rejoin_target = -1  # leader's commit index at first contact; -1: not heard yet
        self._become_follower(self.term, NONE)

    # Introspection ----------------------------------------------------------------------------

    @property
    def leader_id(self) -> int:
        return self.lead

    @property
    def commit_index(self) -> int:
        return self.log.committed

    @property
    def applied_index(self) -> int:
        return self.log.applied

    @property
    def last_index(self) -> int:
        return self.log.last_index()

    @property
    def commit_notice_pending(self) -> bool:
        """Leader: the commit index moved and no append has told every follower yet. The runtime
        calls send_commit_notice() a little later unless the next proposal's appends carry it."""
        return self._commit_notice and self.role == Role.LEADER

    @property
    def promotable(self) -> bool:
        return self.id in self.voters and not self.rejoining

    # Inputs -----------------------------------------------------------------------------------

    def tick(self) -> None:
        """Advance logical time by one tick (the runtime calls it every tick_ms)."""
        if self.role == Role.LEADER:
            self._tick_heartbeat()
        else:
            self._tick_election()

    def campaign(self) -> None:
        """Start an election now (with pre-vote if configured), as if the election timer fired.
        Lets a runtime skip the first timeout, e.g. for a single-node group at start."""
        if self.role != Role.LEADER:
            self.election_elapsed = 0
            self._campaign(pre_vote=self.config.pre_vote, transfer=False)

    def propose(self, data: bytes) -> Proposal:
        """Propose one entry. See propose_batch."""
        if self.role == Role.LEADER and type(data) is bytes:  # the hot path, kept short
            first = self._leader_append((data,), EntryType.NORMAL)
            return Proposal(self._new_request_id(), self.term, first, 1)
        return self.propose_batch([data])

    def propose_batch(
        self, datas: Sequence[bytes], entry_type: EntryType = EntryType.NORMAL
    ) -> Proposal:
        """Propose consecutive entries. On the leader they are appended now and the Proposal says
        where; on a follower they are forwarded and the outcome arrives in Ready.proposals.

        Raises NoLeaderError without a known leader, ProposalDroppedError when the leader refuses
        (transfer in progress, too many uncommitted entries): both mean "certainly not applied".
        """
        if not datas:
            raise InvalidArgumentError("propose_batch needs at least one entry")
        for data in datas:
            if not isinstance(data, bytes):
                raise InvalidArgumentError(f"entry data must be bytes, not {type(data).__name__}")
        if entry_type not in (EntryType.NORMAL, EntryType.CONF_CHANGE):
            raise InvalidArgumentError(f"cannot propose entries of type {entry_type!r}")
        request_id = self._new_request_id()
        if self.role == Role.LEADER:
            first = self._leader_append(datas, entry_type)
            return Proposal(request_id, self.term, first, len(datas))
        if self.lead == NONE:
            raise NoLeaderError(f"node {self.id} knows no leader in term {self.term}")
        entries = [Entry(0, 0, entry_type, data) for data in datas]
        self._send(
            Message(_PROP, self.lead, self.id, ctx=_request_ctx(request_id), entries=entries)
        )
        return Proposal(request_id, 0, 0, len(datas))

    def read_index(self, ctx: bytes) -> None:
        """Ask for a linearizable read point. The answer arrives as ReadState(index, ctx) in a
        later Ready; serve the read once applied_index >= index. Drops are reported in
        Ready.dropped_reads (retry); a lost request just never answers (time out)."""
        if not isinstance(ctx, bytes):
            raise InvalidArgumentError("read ctx must be bytes")
        if self.role == Role.LEADER:
            self._leader_read(ctx, self.id)
            return
        if self.lead == NONE:
            raise NoLeaderError(f"node {self.id} knows no leader in term {self.term}")
        # Our term rides along: the leader may count this request as our ack (_leader_read).
        self._send(Message(_READ_INDEX, self.lead, self.id, self.term, ctx=ctx))

    def send_commit_notice(self) -> None:
        """Leader: tell the followers that have not heard the commit index yet, in the next Ready
        (an empty append each). No-op when no notice is pending."""
        if self.commit_notice_pending:
            self._notice_everyone = True
            self._flush_appends = True

    def transfer_leadership(self, to_id: int) -> None:
        """Hand leadership to to_id (graceful stop). On a follower the request goes to the leader."""
        if to_id not in self.voters:
            raise InvalidArgumentError(f"cannot transfer leadership to non-voter {to_id}")
        if self.role == Role.LEADER:
            self._start_transfer(to_id)
            return
        if self.lead == NONE:
            raise NoLeaderError(f"node {self.id} knows no leader in term {self.term}")
        self._send(Message(_TRANSFER_LEADER, self.lead, self.id, index=to_id))

    def step(self, m: Message) -> None:
        """Process one message received from a peer."""
        if m.to != self.id or m.frm == self.id:
            return
        if m.frm not in self.voters and m.frm not in self.learners:
            return
        mtype = m.type
        if mtype in _TERMLESS:
            self._step_termless(m)
            return
        if m.term > self.term:
            if mtype == _VOTE or mtype == _PRE_VOTE:
                in_lease = (
                    self.config.check_quorum
                    and self.lead != NONE
                    and self.election_elapsed < self.config.election_timeout_ticks
                )
                if in_lease and not m.force:
                    return  # we heard from a live leader recently: do not let it be disrupted
            if mtype == _PRE_VOTE or (mtype == _PRE_VOTE_RESP and not m.reject):
                pass  # a pre-vote never changes our term
            elif mtype == _APP or mtype == _HEARTBEAT:
                self._become_follower(m.term, m.frm)
            else:
                self._become_follower(m.term, NONE)
        elif m.term < self.term:
            if mtype == _APP or mtype == _HEARTBEAT:
                # A stale leader: tell it our term so it steps down (needed with pre-vote and
                # check-quorum, which stop it from learning the term through a vote request).
                self._send(Message(_APP_RESP, m.frm, self.id, self.term))
            elif mtype == _PRE_VOTE:
                self._send(Message(_PRE_VOTE_RESP, m.frm, self.id, self.term, reject=True))
            return

        if mtype == _VOTE or mtype == _PRE_VOTE:
            self._handle_vote_request(m)
        elif self.role == Role.LEADER:
            self._step_leader(m)
        elif self.role == Role.FOLLOWER:
            self._step_follower(m)
        else:
            self._step_candidate(m)

    # Ready / advance --------------------------------------------------------------------------

    def has_ready(self) -> bool:
        """True when ready() has something to hand out (and no Ready is outstanding)."""
        if self._outstanding is not None:
            return False
        if self._flush_appends and self.role == Role.LEADER:
            return True
        log = self.log
        return bool(
            self._msgs
            or self._held
            or log.unstable
            or log.committed > log.applied
            or self._read_states
            or self._dropped_reads
            or self._proposal_results
            or SoftState(self.lead, self.role) != self._soft_state
            or HardState(self.term, self.vote, log.committed) != self._handed_hard_state
        )

    def ready(self) -> Ready:
        """Hand out what to persist, send and apply. Call advance(ready) when done with it."""
        if self._outstanding is not None:
            raise RaftInvariantError("ready() called again before advance() of the previous Ready")
        if self._flush_appends and self.role == Role.LEADER:
            # Appends go out before what was queued earlier (answers to forwarded proposals,
            # read index answers): a follower's fsync is what a write waits for.
            queued, self._msgs = self._msgs, []
            self._flush()
            self._msgs.extend(queued)
        self._flush_appends = False
        rd = Ready()
        soft = SoftState(self.lead, self.role)
        if soft != self._soft_state:
            rd.soft_state = soft
            self._soft_state = soft
        hard = HardState(self.term, self.vote, self.log.committed)
        handed = self._handed_hard_state
        if hard != handed:
            rd.hard_state = hard
            rd._vote_changed = hard.term != handed.term or hard.vote != handed.vote
            self._handed_hard_state = hard
        rd.entries = self.log.unstable_entries()
        rd.committed_entries = self.log.next_committed(self.config.max_committed_bytes_per_ready)
        rd.messages = self._msgs
        self._msgs = []
        if rd.must_sync:
            rd._held = self._held
        else:
            rd.messages.extend(self._held)
        self._held = []
        rd.read_states = self._read_states
        self._read_states = []
        rd.dropped_reads = self._dropped_reads
        self._dropped_reads = []
        rd.proposals = self._proposal_results
        self._proposal_results = []
        self._outstanding = rd
        return rd

    def advance(self, rd: Ready) -> None:
        """The runtime has made rd.hard_state and rd.entries durable, sent rd.messages and applied
        rd.committed_entries. Releases the messages that waited for that durability."""
        if rd is not self._outstanding:
            raise RaftInvariantError("advance() with a Ready that is not the outstanding one")
        self._outstanding = None
        log = self.log
        if rd.entries:
            last = rd.entries[-1]
            log.stable_to(last.index, last.term)
            if self.role == Role.LEADER:
                if self.prs[self.id].maybe_update(log.unstable_offset - 1):
                    if self._maybe_commit():
                        self._notify_commit()
                    if self._forwarded_upto and self.quorum == 2:
                        self._durable_notice = True
                        self._flush_appends = True
        if rd.committed_entries:
            log.applied_to(rd.committed_entries[-1].index)
        if rd._held:
            self._msgs.extend(rd._held)

    # Messages out -----------------------------------------------------------------------------

    def _send(self, m: Message) -> None:
        self._msgs.append(m)

    def _send_after_persist(self, m: Message) -> None:
        """Messages that vouch for durable state (votes, append acks) wait for the next Ready."""
        self._held.append(m)

    def _new_request_id(self) -> int:
        self._next_request_id = (self._next_request_id + 1) & ((1 << 64) - 1)
        return self._next_request_id

    # Role changes -----------------------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if term != self.term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        timeout = self.config.election_timeout_ticks
        self.randomized_election_timeout = timeout + self.rng.randrange(timeout)
        self._votes = {}
        self.lead_transferee = NONE
        self.prs = {}
        self._pending_reads.clear()
        self._reads_before_commit.clear()
        self._flush_appends = False
        self._commit_notice = False
        self._commit_told = {}
        self._forwarded_upto = {}
        self._durable_notice = False
        self._durable_told = 0

    def _become_follower(self, term: int, lead: int) -> None:
        self._reset(term)
        self.role = Role.FOLLOWER
        self.lead = lead

    def _become_pre_candidate(self) -> None:
        check(self.role != Role.LEADER, "a leader cannot become pre-candidate")
        self._votes = {}
        self.lead = NONE
        self.role = Role.PRE_CANDIDATE

    def _become_candidate(self) -> None:
        check(self.role != Role.LEADER, "a leader cannot become candidate")
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = Role.CANDIDATE

    def _become_leader(self) -> None:
        check(self.role == Role.CANDIDATE, "only a candidate can become leader")
        self._reset(self.term)
        self.role = Role.LEADER
        self.lead = self.id
        log = self.log
        next_index = log.last_index() + 1
        for peer in self.voters + self.learners:
            self.prs[peer] = Progress(
                next_index, self.config.max_inflight_msgs, is_learner=peer in self.learners
            )
        own = self.prs[self.id]
        own.match = log.unstable_offset - 1  # what is durable locally
        own.become_replicate()
        own.next = next_index
        own.recent_active = True
        # The no-op lets this leader commit (and so serve reads) in its own term at once.
        log.append([Entry(self.term, next_index, EntryType.NOOP, b"")])
        self._flush_appends = True

    # Elections --------------------------------------------------------------------------------

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable and self.election_elapsed >= self.randomized_election_timeout:
            self.election_elapsed = 0
            self._campaign(pre_vote=self.config.pre_vote, transfer=False)

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.config.election_timeout_ticks:
            self.election_elapsed = 0
            if self.config.check_quorum:
                if not self._quorum_active():
                    self._become_follower(self.term, NONE)
                    return
                for peer, pr in self.prs.items():
                    if peer != self.id:
                        pr.recent_active = False
            self.lead_transferee = NONE  # a transfer that did not finish in time is abandoned
        if self.heartbeat_elapsed >= self.config.heartbeat_timeout_ticks:
            self.heartbeat_elapsed = 0
            self._bcast_heartbeat()

    def _quorum_active(self) -> bool:
        active = sum(1 for v in self.voters if self.prs[v].recent_active or v == self.id)
        return active >= self.quorum

    def _campaign(self, pre_vote: bool, transfer: bool) -> None:
        if not self.promotable:
            return
        if pre_vote:
            self._become_pre_candidate()
            msg_type, msg_term = _PRE_VOTE, self.term + 1
        else:
            self._become_candidate()
            msg_type, msg_term = _VOTE, self.term
        self._votes = {self.id: True}
        if self._poll_result() is True:
            self._won_poll()
            return
        last_index, last_term = self.log.last_index(), self.log.last_term()
        for voter in self.voters:
            if voter == self.id:
                continue
            m = Message(
                msg_type, voter, self.id, msg_term, log_term=last_term, index=last_index,
                force=transfer,
            )  # fmt: skip
            if msg_type == _VOTE:
                self._send_after_persist(m)  # our own vote must be durable first
            else:
                self._send(m)

    def _poll_result(self) -> bool | None:
        granted = sum(1 for v in self._votes.values() if v)
        if granted >= self.quorum:
            return True
        if len(self._votes) - granted > len(self.voters) - self.quorum:
            return False
        return None

    def _won_poll(self) -> None:
        if self.role == Role.PRE_CANDIDATE:
            self._campaign(pre_vote=False, transfer=False)
        else:
            self._become_leader()

    def _handle_vote_request(self, m: Message) -> None:
        is_pre = m.type == _PRE_VOTE
        can_vote = not self.rejoining and (
            self.vote == m.frm
            or (self.vote == NONE and self.lead == NONE)
            or (is_pre and m.term > self.term)
        )
        if "double_vote" in self._bugs and not is_pre:
            can_vote = True
        resp_type = _PRE_VOTE_RESP if is_pre else _VOTE_RESP
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            if is_pre:
                self._send(Message(resp_type, m.frm, self.id, m.term))
            else:
                self.election_elapsed = 0
                self.vote = m.frm
                self._send_after_persist(Message(resp_type, m.frm, self.id, m.term))
        else:
            self._send(Message(resp_type, m.frm, self.id, self.term, reject=True))

    def _step_candidate(self, m: Message) -> None:
        mtype = m.type
        if mtype == _APP or mtype == _HEARTBEAT:
            self._become_follower(m.term, m.frm)
            self._step_follower(m)
            return
        expected = _PRE_VOTE_RESP if self.role == Role.PRE_CANDIDATE else _VOTE_RESP
        if mtype != expected or m.frm not in self.voters:
            return
        self._votes.setdefault(m.frm, not m.reject)
        result = self._poll_result()
        if result is True:
            self._won_poll()
        elif result is False:
            self._become_follower(self.term, NONE)

    # Follower ---------------------------------------------------------------------------------

    def _step_follower(self, m: Message) -> None:
        mtype = m.type
        if mtype == _APP:
            self.election_elapsed = 0
            self.lead = m.frm
            if self.rejoining and self._rejoin_target < 0:
                self._rejoin_target = m.commit
            self._handle_append(m)
            if self.rejoining:
                self._maybe_finish_rejoin()
        elif mtype == _HEARTBEAT:
            self.election_elapsed = 0
            self.lead = m.frm
            last = self.log.last_index()
            if self.rejoining and m.commit > last:
                # The leader counts on the log this member lost: tell it where the log ends.
                self.log.commit_to(last)
                self._send(
                    Message(
                        _HEARTBEAT_RESP, m.frm, self.id, self.term, read_seq=m.read_seq,
                        reject=True, index=last,
                    )
                )  # fmt: skip
                return
            self.log.commit_to(m.commit)
            if self.rejoining:
                self._maybe_finish_rejoin()
            self._send(Message(_HEARTBEAT_RESP, m.frm, self.id, self.term, read_seq=m.read_seq))
        elif mtype == _TIMEOUT_NOW:
            self._campaign(pre_vote=False, transfer=True)

    def _commit_durable_pair(self, leader_durable: int) -> None:
        """Commit what this follower and its leader both hold durably, when the two are a quorum.

        An entry of the current term stored on a quorum is committed (§5.4.2), whoever counts.
        Holding (i, term) means holding the leader's log up to i (Log Matching), and the leader
        never drops its own entries, so min(leader's durable index, ours) is on both disks. The
        leader says its durable index only when its quorum is 2 too, and membership changes one
        voter at a time, so any quorum of either view meets this pair. A write forwarded from
        here is answered one hop after the leader's fsync, not three (ack, commit, notice).

        The leader's word is used when it arrives, never kept for later (when our own fsync
        ends): a leader whose data directory is lost meanwhile would leave a write acknowledged
        here on one disk only. A word that comes before our fsync ends leaves the commit to the
        leader, as without it."""
        if self.quorum != 2 or self.rejoining or self.id not in self.voters:
            return
        log = self.log
        candidate = min(leader_durable, log.unstable_offset - 1)
        if candidate > log.committed and log.term(candidate) == self.term:
            log.commit_to(candidate)

    def _maybe_finish_rejoin(self) -> None:
        log = self.log
        if self._rejoin_target < 0 or log.committed < self._rejoin_target:
            return
        if log.committed == 0 or log.term(log.committed) != self.term:
            # A leader's commit index only says what was committed before its term once it has
            # committed an entry of its own term: until then it may lag what this member helped
            # commit before losing its log (a new leader's first append can carry commit 0:
            # simulator seed 805416). Caught up means holding an entry of this term, committed.
            return
        self.rejoining = False
        if self.vote == NONE:
            # Count as having voted for the leader of this term: the one vote that cannot make a
            # second leader in it, and it is persisted with the next hard state.
            self.vote = self.lead

    def _handle_append(self, m: Message) -> None:
        log = self.log
        ack_now = "ack_before_sync" in self._bugs
        if m.index < log.committed:
            ack = Message(_APP_RESP, m.frm, self.id, self.term, index=log.committed)
        else:
            last_new = log.maybe_append(m.index, m.log_term, m.commit, m.entries)
            if last_new < 0:
                hint_index, hint_term = log.find_conflict_by_term(
                    min(m.index, log.last_index()), m.log_term
                )
                self._send(
                    Message(
                        _APP_RESP, m.frm, self.id, self.term, index=m.index, reject=True,
                        hint_index=hint_index, hint_term=hint_term,
                    )
                )  # fmt: skip
                return
            if m.hint_index > log.committed:
                self._commit_durable_pair(m.hint_index)
            if m.force and not m.entries:
                return  # a commit notice: the leader already knows this log matches
            ack = Message(_APP_RESP, m.frm, self.id, self.term, index=last_new)
        if ack_now:
            self._send(ack)
        else:
            self._send_after_persist(ack)

    # Leader -----------------------------------------------------------------------------------

    def _step_leader(self, m: Message) -> None:
        pr = self.prs.get(m.frm)
        if pr is None:
            return
        mtype = m.type
        if mtype == _APP_RESP:
            pr.recent_active = True
            self._handle_append_response(m, pr)
        elif mtype == _HEARTBEAT_RESP:
            pr.recent_active = True
            if m.reject and m.index < pr.match:
                pr.lost_log(m.index)  # a member that rejoined with an empty log
            pr.probe_sent = False
            if pr.state == ProgressState.REPLICATE and pr.is_paused():
                pr.inflight.popleft()  # an ack was probably lost: let one more append out
            if pr.match < self.log.last_index():
                # Entries it has not acknowledged: maybe they are all sent and an ack was lost.
                # An empty append then asks for a new ack, not a notice (which is not answered).
                self._send_append(m.frm, solicit_ack=True)
            if m.read_seq > pr.read_ack_seq and not pr.is_learner:
                pr.read_ack_seq = m.read_seq
                self._release_reads()

    def _handle_append_response(self, m: Message, pr: Progress) -> None:
        if m.reject:
            next_probe = m.hint_index
            if m.hint_term > 0:
                next_probe, _ = self.log.find_conflict_by_term(m.hint_index, m.hint_term)
            if pr.maybe_decrease_to(m.index, next_probe + 1):
                self._send_append(m.frm)
            return
        was_paused = pr.is_paused()
        if not pr.maybe_update(m.index):
            return
        if pr.state == ProgressState.PROBE:
            pr.become_replicate()
        if self._maybe_commit():
            self._notify_commit()
        elif was_paused:
            self._send_append(m.frm)
        while self._send_append(m.frm, send_if_empty=False):
            pass
        if m.frm == self.lead_transferee and pr.match == self.log.last_index():
            self._send(Message(_TIMEOUT_NOW, m.frm, self.id, self.term))

    def _send_append(self, to: int, send_if_empty: bool = True, solicit_ack: bool = False) -> bool:
        pr = self.prs[to]
        if pr.is_paused():
            return False
        log = self.log
        last = log.last_index()
        check(pr.next <= last + 1, f"progress of {to}: next {pr.next} beyond last {last} + 1")
        prev = pr.next - 1
        entries = log.slice(
            pr.next, last + 1, self.config.max_bytes_per_msg, self.config.max_entries_per_msg
        )
        if not entries and not send_if_empty:
            return False
        # An empty append to a follower in replicate state only carries the commit index: it is
        # a commit notice (force), which the follower does not acknowledge once accepted; with
        # solicit_ack it is a plain append, answered with the follower's match.
        notice = not entries and pr.state == ProgressState.REPLICATE and not solicit_ack
        durable = 0
        if to in self._forwarded_upto and self.quorum == 2:
            # Said only to a peer with forwarded writes waiting: each index said is a floor for
            # later read indexes (reads wait for it to apply).
            durable = self.prs[self.id].match
            if durable > self._durable_told:
                self._durable_told = durable
        self._send(
            Message(
                _APP, to, self.id, self.term, log_term=log.term(prev), index=prev,
                commit=log.committed, entries=entries, force=notice, hint_index=durable,
            )
        )  # fmt: skip
        self._commit_told[to] = log.committed
        if entries:
            pr.sent_entries(entries[-1].index)
        elif pr.state == ProgressState.PROBE:
            pr.probe_sent = True
        return True

    def _notify_commit(self) -> None:
        """The commit index moved. A follower whose clients wait for it (forwarded writes) hears
        it in the next ready(), alone. The others hear it with the next proposal's entries, or
        from send_commit_notice(): an empty append per commit would cost every node a message
        round (a wake-up, a Ready, an apply ahead of its next fsync) for nothing a client of
        the leader waits for. Reads at a follower do not depend on it: the heartbeats of a
        ReadIndex round carry the commit index, and a vouched read sends it (_leader_read)."""
        self._commit_notice = True
        if self._forwarded_upto:
            self._flush_appends = True

    def _flush(self) -> None:
        """Send every follower the entries it lacks. One that got none hears a new commit index
        through an empty append when its forwarded writes wait for it, or when
        send_commit_notice() asked; the others keep it for later (commit_notice_pending)."""
        notice = self._commit_notice
        everyone, self._notice_everyone = self._notice_everyone, False
        durable, self._durable_notice = self._durable_notice, False
        committed = self.log.committed
        forwarded = self._forwarded_upto
        told = self._commit_told
        unaware = False
        for peer in self.peers:
            sent = False
            while self._send_append(peer, send_if_empty=False):
                sent = True
            waiting = forwarded.get(peer, 0)
            forwarding = waiting > 0  # its clients wait for entries up to `waiting`
            if forwarding and waiting <= committed:
                del forwarded[peer]  # the commit index it carries answers those writes
                waiting = 0
            if not sent:
                if notice and told.get(peer, 0) < committed and (everyone or forwarding):
                    self._send_append(peer)
                elif durable and waiting:
                    self._send_append(peer)  # our durable index: that peer may commit by itself
            if told.get(peer, 0) < committed and not self.prs[peer].is_paused():
                unaware = True  # (a paused one hears it with the append that resumes it)
        self._commit_notice = notice and unaware

    def _bcast_heartbeat(self) -> None:
        committed = self.log.committed
        for peer in self.peers:
            pr = self.prs[peer]
            self._send(
                Message(
                    _HEARTBEAT, peer, self.id, self.term, commit=min(pr.match, committed),
                    read_seq=self._read_seq,
                )
            )  # fmt: skip

    def _maybe_commit(self) -> bool:
        matches = sorted((self.prs[v].match for v in self.voters), reverse=True)
        candidate = matches[self.quorum - 1]
        log = self.log
        if candidate <= log.committed:
            return False
        # §5.4.2: only entries of the current term are committed by counting replicas.
        if log.term(candidate) != self.term and "commit_old_term" not in self._bugs:
            return False
        first_in_term = log.term(log.committed) != self.term
        log.commit_to(candidate)
        if first_in_term and log.term(candidate) == self.term:
            waiting, self._reads_before_commit = self._reads_before_commit, []
            for ctx, requester in waiting:
                self._leader_read(ctx, requester)
        return True

    def _leader_append(self, datas: Sequence[bytes], entry_type: int) -> int:
        if self.lead_transferee != NONE:
            raise ProposalDroppedError(
                f"leader {self.id} is transferring leadership to {self.lead_transferee}"
            )
        log = self.log
        last = log.last_index()
        if last - log.committed + len(datas) > self.config.max_pending_proposals:
            raise ProposalDroppedError(
                f"leader {self.id} has {last - log.committed} uncommitted entries "
                f"(max_pending_proposals={self.config.max_pending_proposals})"
            )
        term = self.term
        first = last + 1
        if len(datas) == 1:
            log.append([Entry(term, first, entry_type, datas[0])])
        else:
            log.append([Entry(term, first + i, entry_type, d) for i, d in enumerate(datas)])
        self._flush_appends = True
        return first

    def _leader_read(self, ctx: bytes, requester: int, vouched: bool = False) -> None:
        """vouched: the requester sent this request in our term, so it followed us after its
        reads began. When the two of us are a quorum, no leader of a later term can have
        committed anything before those reads began (that needs a quorum in the later term, and
        neither of us was in one), so our commit index is a safe read index without a heartbeat
        round: a read at a follower costs one round trip to the leader instead of two."""
        log = self.log
        pending = len(self._pending_reads) + len(self._reads_before_commit)
        if pending >= self.config.max_pending_reads:
            self._answer_read(ctx, requester, 0, rejected=True)
            return
        if len(self.voters) == 1 or "read_without_quorum" in self._bugs:
            self._answer_read(ctx, requester, log.committed, rejected=False)
            return
        if log.term(log.committed) != self.term:
            # Our commit index may lag the true one until our no-op commits (§6.4).
            self._reads_before_commit.append((ctx, requester))
            return
        index = max(log.committed, self._durable_told)
        if vouched and self.quorum == 2 and requester in self.voters and requester != self.id:
            if self._commit_told.get(requester, 0) < log.committed:
                self._send_append(requester)  # so it learns the commit it must apply to read
            self._answer_read(ctx, requester, index, rejected=False)
            return
        self._read_seq += 1
        self._pending_reads.append((self._read_seq, index, ctx, requester))
        self.prs[self.id].read_ack_seq = self._read_seq
        self._bcast_heartbeat()

    def _release_reads(self) -> None:
        acks = sorted((self.prs[v].read_ack_seq for v in self.voters), reverse=True)
        confirmed = acks[self.quorum - 1]
        pending = self._pending_reads
        while pending and pending[0][0] <= confirmed:
            _, index, ctx, requester = pending.popleft()
            self._answer_read(ctx, requester, index, rejected=False)

    def _answer_read(self, ctx: bytes, requester: int, index: int, rejected: bool) -> None:
        if requester == self.id:
            if rejected:
                self._dropped_reads.append(ctx)
            else:
                self._read_states.append(ReadState(index, ctx))
            return
        self._send(
            Message(_READ_INDEX_RESP, requester, self.id, index=index, ctx=ctx, reject=rejected)
        )

    def _start_transfer(self, to_id: int) -> None:
        if to_id == self.id or to_id == self.lead_transferee:
            return
        self.lead_transferee = to_id
        self.election_elapsed = 0  # the transfer must finish within one election timeout
        if self.prs[to_id].match == self.log.last_index():
            self._send(Message(_TIMEOUT_NOW, to_id, self.id, self.term))
        else:
            self._send_append(to_id)

    # Term-less requests between followers and the leader --------------------------------------

    def _step_termless(self, m: Message) -> None:
        mtype = m.type
        if mtype == _PROP:
            self._handle_forwarded_proposal(m)
        elif mtype == _PROP_RESP:
            if len(m.ctx) != _REQUEST_ID_BYTES:
                return
            request_id = int.from_bytes(m.ctx, "big")
            if m.reject:
                self._proposal_results.append(Proposal(request_id, 0, 0, m.hint_index))
            else:
                self._proposal_results.append(
                    Proposal(request_id, m.log_term, m.index, m.hint_index)
                )
        elif mtype == _READ_INDEX:
            if self.role == Role.LEADER:
                self._leader_read(m.ctx, m.frm, vouched=m.term == self.term)
            else:
                self._answer_read(m.ctx, m.frm, 0, rejected=True)
        elif mtype == _READ_INDEX_RESP:
            if m.reject:
                self._dropped_reads.append(m.ctx)
            else:
                self._read_states.append(ReadState(m.index, m.ctx))
        elif mtype == _TRANSFER_LEADER:
            if self.role == Role.LEADER and m.index in self.voters:
                self._start_transfer(m.index)

    def _handle_forwarded_proposal(self, m: Message) -> None:
        count = len(m.entries)
        resp = Message(_PROP_RESP, m.frm, self.id, ctx=m.ctx, hint_index=count)
        types = {entry.type for entry in m.entries}
        if self.role != Role.LEADER or len(types) != 1 or not types <= {0, 2}:
            resp.reject = True
        else:
            try:
                first = self._leader_append([entry.data for entry in m.entries], m.entries[0].type)
            except ProposalDroppedError:
                resp.reject = True
            else:
                resp.log_term = self.term
                resp.index = first
                if m.frm in self.voters:
                    self._forwarded_upto[m.frm] = first + count - 1
        self._send(resp)


__all__ = ["RaftCore", "RaftInvariantError"]
