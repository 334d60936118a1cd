"""A seeded deterministic simulator: N real RaftCores on a fake network and disk.

Everything random (message delays, drops, duplicates, partitions, crashes that lose unsynced
writes, restarts, lost disks (a node back empty, rejoining), the client workload, every core's
rng) derives from ONE seed, so a failure replays exactly with
`python tools/simulate.py --seed N --nodes K`.

After every event the checker verifies: election safety, log matching, leader completeness,
state-machine safety, that no committed entry is lost (every committed entry stays durable on a
quorum across crashes), and linearizable ReadIndex reads. After the faults heal it checks
liveness: a leader is elected and everything commits on every node within a bounded time.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from scribe.errors import NoLeaderError
from scribe.raft.config import RaftConfig
from scribe.raft.core import RaftCore
from scribe.raft.errors import RaftInvariantError
from scribe.raft.storage import MemoryRaftStorage
from scribe.raft.types import EntryType, Message, Ready, Role
from scribe.raft.wire import decode_message, encode_message

STEPS_PER_TICK = 10  # simulated time unit: one tick is 10 steps; delays are in steps


class SimulationFailure(Exception):
    """An invariant broke. The message names the seed and the command that replays it."""


@dataclass
class SimOptions:
    seed: int
    nodes: int = 3
    fault_ticks: int = 150  # ticks of random faults and client load
    liveness_ticks: int = 150  # bound for the cluster to converge once faults heal
    bugs: frozenset[str] = frozenset()
    encode_messages: bool = True  # round-trip every message through the wire format
    verbose: bool = False
    trace: Callable[[str], None] = print


@dataclass
class _Op:
    """One client write: where it was proposed and what became of it."""

    value: bytes
    node: int
    incarnation: int
    request_id: int
    term: int = 0
    index: int = 0
    acked: bool = False


@dataclass
class _Read:
    ctx: bytes
    node: int
    incarnation: int
    min_index: int  # the highest index acknowledged to any client before the read was issued
    read_index: int = -1


@dataclass
class _Node:
    node_id: int
    storage: MemoryRaftStorage = field(default_factory=MemoryRaftStorage)
    core: RaftCore | None = None
    incarnation: int = 0
    outstanding: Ready | None = None
    applied: int = 0
    seen_commit: int = 0
    last_value: bytes = b""
    reads_waiting: list[_Read] = field(default_factory=list)
    restart_at: int = -1
    # Lost its disk; a voter again once a Ready made after it caught up is synced.
    rejoining: bool = False
    rejoin_done: Ready | None = None
    notice_armed: bool = False  # the runtime's commit-notice timer is running


class Simulation:
    """One seeded run. `run()` raises SimulationFailure on any violation."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.seed = options.seed
        master = random.Random(options.seed)
        self.net_rng = random.Random(master.getrandbits(64))
        self.fault_rng = random.Random(master.getrandbits(64))
        self.client_rng = random.Random(master.getrandbits(64))
        self.core_seed = master.getrandbits(64)
        rng = random.Random(master.getrandbits(64))
        election = rng.randint(4, 10)
        self.config = RaftConfig(
            election_timeout_ticks=election,
            heartbeat_timeout_ticks=rng.randint(1, max(1, election // 3)),
            max_entries_per_msg=rng.choice((1, 2, 3, 8, 64)),
            max_bytes_per_msg=rng.choice((64, 256, 1 << 20)),
            max_inflight_msgs=rng.choice((1, 2, 4, 16)),
            max_pending_proposals=rng.choice((8, 64, 1024)),
            bugs=options.bugs,
        )
        # Fault intensities differ per seed so that runs cover calm and stormy networks.
        self.drop_prob = rng.choice((0.0, 0.02, 0.1, 0.25))
        self.dup_prob = rng.choice((0.0, 0.02, 0.1))
        self.max_delay_steps = rng.choice((2, 8, 20, 40))
        self.fault_prob = rng.choice((0.02, 0.05, 0.1))
        self.disk_delay_steps = rng.choice((0, 2, 8, 20))
        # A targeted adversary: cut a leader off right when it is elected or commits, the
        # moments when the rest of the group knows least about what it did.
        self.adversary_prob = rng.choice((0.0, 0.0, 0.1, 0.3))
        self.write_prob = rng.choice((0.2, 0.5, 1.0))
        self.read_prob = rng.choice((0.1, 0.3, 0.6))
        # Disk loss (a node restarted empty, rejoining) has its own stream, so that seeds without
        # it replay exactly as before it existed.
        self.disk_rng = random.Random(master.getrandbits(64))
        self.disk_loss_prob = self.disk_rng.choice((0.0, 0.0, 0.3, 0.6))
        # Half the seeds send append acks and votes the moment the fsync is done, as the node
        # runtime does (Ready.take_after_sync); the others leave them to the next Ready.
        self.send_after_sync = random.Random(master.getrandbits(64)).random() < 0.5
        # The runtime sends a commit index no proposal carried after COMMIT_NOTICE_DELAY_MS; here
        # after 0 to 3 ticks, per seed.
        self.notice_delay_steps = random.Random(master.getrandbits(64)).choice((0, 3, 10, 30))
        self.disks_lost = 0
        self.ids = list(range(1, options.nodes + 1))
        self.quorum = options.nodes // 2 + 1
        self.nodes = {i: _Node(i) for i in self.ids}
        self.blocked: set[tuple[int, int]] = set()  # (from, to) links that drop everything
        self.now = 0
        self._events: list[tuple[int, int, int, object]] = []
        self._event_seq = 0
        # Checker state.
        self.leaders: dict[int, int] = {}  # term -> node that led it
        self.committed: dict[int, tuple[int, int, bytes]] = {}  # index -> (term, type, data)
        self.max_committed = 0
        self.identity: dict[tuple[int, int], tuple[bytes, int]] = {}  # (index, term) -> data, prev
        self.ops: dict[tuple[int, int, int], _Op] = {}  # (node, incarnation, request_id) -> op
        self.ops_by_index: dict[tuple[int, int, int], _Op] = {}  # (node, incarnation, index)
        self.max_acked_index = 0
        self.value_counter = 0
        self.read_counter = 0
        self.reads_served = 0
        self.writes_acked = 0
        self.healing = False
        for node in self.nodes.values():
            self._start(node)

    # Reporting --------------------------------------------------------------------------------

    def replay_command(self) -> str:
        cmd = f"python tools/simulate.py --seed {self.seed} --nodes {self.options.nodes}"
        for bug in sorted(self.options.bugs):
            cmd += f" --mutation {bug}"
        return cmd

    def fail(self, what: str) -> None:
        raise SimulationFailure(
            f"seed {self.seed} ({self.options.nodes} nodes) at step {self.now} "
            f"(tick {self.now // STEPS_PER_TICK}): {what}\n  replay: {self.replay_command()} --verbose"
        )

    def _trace(self, text: str) -> None:
        if self.options.verbose:
            self.options.trace(f"[{self.now:7d}] {text}")

    # Event queue ------------------------------------------------------------------------------

    def _schedule(self, delay_steps: int, kind: int, payload: object) -> None:
        self._event_seq += 1
        heapq.heappush(self._events, (self.now + delay_steps, self._event_seq, kind, payload))

    # Node lifecycle ---------------------------------------------------------------------------

    def _start(self, node: _Node) -> None:
        rng = random.Random(f"{self.core_seed}-{node.node_id}-{node.incarnation}")
        try:
            node.core = RaftCore(
                node.node_id, self.ids, node.storage, self.config, rng, rejoining=node.rejoining
            )
        except RaftInvariantError as exc:
            self.fail(f"node {node.node_id} cannot restart: {exc}")
        node.outstanding = None
        node.applied = 0
        node.seen_commit = 0
        node.last_value = b""
        node.reads_waiting = []
        node.restart_at = -1
        node.rejoin_done = None
        node.notice_armed = False
        self._trace(
            f"node {node.node_id} starts (incarnation {node.incarnation})"
            + (" REJOINING with an empty log" if node.rejoining else "")
        )

    def _crash(self, node: _Node) -> None:
        self._trace(f"node {node.node_id} CRASHES, losing unsynced writes")
        node.core = None
        node.outstanding = None
        node.storage.crash()
        node.incarnation += 1
        self._check_durability()

    def _can_lose_disk(self, victim: _Node) -> bool:
        """Raft survives a lost disk like any failure: only while every committed entry, and
        every entry the victim may have acknowledged, stays durable on a quorum of the others,
        and one lost disk at a time. Without the victim the others must still make a quorum: a
        member that lost its disk does not vote until it has caught up from a leader, so in a
        1- or 2-node group nobody could be elected (by design: the group stops rather than risk
        a leader without committed entries)."""
        if any(n.rejoining for n in self.nodes.values()):
            return False
        if len(self.nodes) - 1 < self.quorum:
            return False
        index, term = self.max_committed, 0
        if index:
            term = self.committed[index][0]
        for node in self.nodes.values():
            core = node.core
            if core is not None and core.commit_index > index:
                index, term = core.commit_index, core.log.term(core.commit_index)
        # Acks the victim sent stay counted: a leader may still commit what it holds durably
        # beyond the commit index (seed 1600099, 5 nodes), so that must be on a quorum of the
        # others too (holding the last of it means holding the rest: Log Matching).
        last = victim.storage.synced_last_index()
        if last > index:
            index, term = last, victim.storage.synced_term(last)
        if index == 0:
            return True
        holders = sum(
            1
            for n in self.nodes.values()
            if n is not victim and n.storage.synced_term(index) == term
        )
        return holders >= self.quorum

    def _lose_disk(self, node: _Node) -> None:
        """The crashed node's data directory is gone: it comes back empty, with --rejoin. What it
        sent before is dropped too: an ack still in flight would vouch for entries it lost."""
        self._trace(f"node {node.node_id} LOSES ITS DISK: restarts empty and rejoins")
        node.storage = MemoryRaftStorage()
        node.rejoining = True
        self.disks_lost += 1
        kept = []
        for event in self._events:
            payload = event[3]
            if event[2] == _EV_DELIVER:
                m = decode_message(payload) if isinstance(payload, bytes) else payload
                if m.frm == node.node_id:
                    continue
            kept.append(event)
        heapq.heapify(kept)
        self._events = kept

    # The runtime loop of one node: persist, send, apply, advance -------------------------------

    def _pump(self, node: _Node) -> None:
        core = node.core
        while core is not None and node.outstanding is None and core.has_ready():
            rd = core.ready()
            if node.rejoining and not core.rejoining and node.rejoin_done is None:
                node.rejoin_done = rd  # made after it caught up: holds its vote for the leader
            storage = node.storage
            if rd.hard_state is not None:
                storage.set_hard_state(rd.hard_state)
            if rd.entries:
                self._check_log_matching(node, rd.entries)
                storage.append(rd.entries)
            for m in rd.messages:
                self._send(m)
            for proposal in rd.proposals:
                op = self.ops.get((node.node_id, node.incarnation, proposal.request_id))
                if op is not None:
                    self._placed(op, proposal.term, proposal.index)
            for read_state in rd.read_states:
                self._read_answered(node, read_state.index, read_state.ctx)
            if rd.must_sync:
                node.outstanding = rd
                self._schedule(
                    self.net_rng.randint(0, self.disk_delay_steps),
                    _EV_SYNC,
                    (node.node_id, node.incarnation),
                )
                return
            self._finish(node, rd)
        # (A node waiting for its fsync arms it from _on_sync's pump.)
        if (
            core is not None
            and node.outstanding is None
            and not node.notice_armed
            and core.commit_notice_pending
        ):
            node.notice_armed = True
            self._schedule(self.notice_delay_steps, _EV_NOTICE, (node.node_id, node.incarnation))

    def _on_notice_timer(self, node_id: int, incarnation: int) -> None:
        node = self.nodes[node_id]
        if node.incarnation != incarnation or node.core is None:
            return
        node.notice_armed = False
        node.core.send_commit_notice()
        self._after_input(node)

    def _finish(self, node: _Node, rd: Ready) -> None:
        if rd is node.rejoin_done:
            node.rejoining, node.rejoin_done = False, None  # durable: a full voter across restarts
            self._trace(f"node {node.node_id} caught up: votes again")
        for entry in rd.committed_entries:
            self._apply(node, entry)
        node.core.advance(rd)
        self._serve_reads(node)

    def _on_sync(self, node_id: int, incarnation: int) -> None:
        node = self.nodes[node_id]
        if node.incarnation != incarnation or node.outstanding is None:
            return
        node.storage.sync()
        rd, node.outstanding = node.outstanding, None
        if self.send_after_sync:
            for m in rd.take_after_sync():
                self._send(m)
        self._finish(node, rd)
        self._adversary(node)
        self._pump(node)

    # Network ----------------------------------------------------------------------------------

    def _send(self, m: Message) -> None:
        if (m.frm, m.to) in self.blocked:
            return
        rng = self.net_rng
        if not self.healing and rng.random() < self.drop_prob:
            return
        payload: object = encode_message(m) if self.options.encode_messages else m
        copies = 2 if (not self.healing and rng.random() < self.dup_prob) else 1
        for _ in range(copies):
            self._schedule(rng.randint(1, self.max_delay_steps), _EV_DELIVER, payload)

    def _deliver(self, payload: object) -> None:
        m = decode_message(payload) if isinstance(payload, bytes) else payload
        node = self.nodes[m.to]
        if node.core is None:
            return
        self._trace(f"deliver {m!r}")
        node.core.step(m)
        self._adversary(node)
        self._after_input(node)

    def _adversary(self, node: _Node) -> None:
        core = node.core
        if self.healing or core.role != Role.LEADER:
            return
        news = core.term not in self.leaders or core.commit_index > node.seen_commit
        if news and self.fault_rng.random() < self.adversary_prob:
            lid = node.node_id
            if self.fault_rng.random() < 0.5:
                self._trace(f"ADVERSARY isolates leader {lid}")
                self.blocked = {
                    (a, b) for a in self.ids for b in self.ids if (a == lid) != (b == lid)
                }
            else:
                self._trace(f"ADVERSARY crashes leader {lid}")
                self._check_node(node)
                self._crash(node)
                node.restart_at = self.now + STEPS_PER_TICK * self.fault_rng.randint(1, 30)

    def _after_input(self, node: _Node) -> None:
        if node.core is None:
            return
        self._pump(node)
        self._check_node(node)

    # Client workload --------------------------------------------------------------------------

    def _client_write(self, node: _Node) -> _Op | None:
        self.value_counter += 1
        value = b"v%d" % self.value_counter
        try:
            proposal = node.core.propose(value)
        except NoLeaderError:
            return None  # certainly not applied (includes ProposalDroppedError)
        op = _Op(value, node.node_id, node.incarnation, proposal.request_id)
        self.ops[(node.node_id, node.incarnation, proposal.request_id)] = op
        self._placed(op, proposal.term, proposal.index)
        self._trace(f"client proposes {value!r} at node {node.node_id} -> {proposal}")
        return op

    def _placed(self, op: _Op, term: int, index: int) -> None:
        op.term, op.index = term, index
        if index:
            self.ops_by_index[(op.node, op.incarnation, index)] = op

    def _client_read(self, node: _Node) -> None:
        self.read_counter += 1
        ctx = b"r%d" % self.read_counter
        try:
            node.core.read_index(ctx)
        except NoLeaderError:
            return
        node.reads_waiting.append(_Read(ctx, node.node_id, node.incarnation, self.max_acked_index))

    def _read_answered(self, node: _Node, index: int, ctx: bytes) -> None:
        for read in node.reads_waiting:
            if read.ctx == ctx and read.read_index < 0:
                if index < read.min_index:
                    self.fail(
                        f"stale read: ReadIndex {ctx!r} at node {node.node_id} answered index "
                        f"{index}, but index {read.min_index} was acknowledged before it was issued"
                    )
                read.read_index = index
                return

    def _serve_reads(self, node: _Node) -> None:
        keep = []
        for read in node.reads_waiting:
            if 0 <= read.read_index <= node.applied:
                # Served from the local state machine: must reflect every acknowledged write.
                if node.applied < read.min_index:
                    self.fail(
                        f"read {read.ctx!r} served at applied {node.applied} < {read.min_index}"
                    )
                expected = self._register_value_at(node.applied)
                if node.last_value != expected:
                    self.fail(f"read {read.ctx!r} at node {node.node_id} saw {node.last_value!r}")
                self.reads_served += 1
            else:
                keep.append(read)
        node.reads_waiting = keep

    def _register_value_at(self, index: int) -> bytes:
        for i in range(index, 0, -1):
            term, etype, data = self.committed[i]
            if etype == EntryType.NORMAL:
                return data
        return b""

    # Checks -----------------------------------------------------------------------------------

    def _apply(self, node: _Node, entry) -> None:
        if entry.index != node.applied + 1:
            self.fail(f"node {node.node_id} applied {entry.index} after {node.applied}")
        recorded = self.committed.get(entry.index)
        mine = (entry.term, entry.type, entry.data)
        if recorded is None:
            self.committed[entry.index] = mine
            self.max_committed = max(self.max_committed, entry.index)
        elif recorded != mine:
            self.fail(
                f"state machine safety: node {node.node_id} applied {mine} at {entry.index}, "
                f"another node applied {recorded}"
            )
        node.applied = entry.index
        if entry.type == EntryType.NORMAL:
            node.last_value = entry.data
        op = self._op_at(node, entry.index)
        if op is not None and not op.acked:
            if op.term == entry.term and op.value == entry.data:
                op.acked = True
                self.writes_acked += 1
                self.max_acked_index = max(self.max_acked_index, entry.index)
            elif op.term == entry.term:
                self.fail(
                    f"entry ({entry.term}, {entry.index}) holds {entry.data!r}, not {op.value!r}"
                )

    def _op_at(self, node: _Node, index: int) -> _Op | None:
        # Only writes proposed through this incarnation are acknowledged by it.
        return self.ops_by_index.get((node.node_id, node.incarnation, index))

    def _check_log_matching(self, node: _Node, entries) -> None:
        prev = entries[0].index - 1
        if prev > node.storage.last_index():
            self.fail(f"node {node.node_id} writes a gap at {entries[0].index}")
        prev_term = node.storage.term(prev)
        identity = self.identity
        for entry in entries:
            key = (entry.index, entry.term)
            mine = (entry.data, prev_term)
            known = identity.get(key)
            if known is None:
                identity[key] = mine
            elif known != mine:
                self.fail(
                    f"log matching: node {node.node_id} stores ({entry.term}, {entry.index}) with "
                    f"data/prev-term {mine}, another node stored {known}"
                )
            prev_term = entry.term

    def _check_node(self, node: _Node) -> None:
        core = node.core
        if core is None:
            return
        if core.role == Role.LEADER:
            holder = self.leaders.get(core.term)
            if holder is None:
                self.leaders[core.term] = node.node_id
                self._trace(f"node {node.node_id} is LEADER of term {core.term}")
                self._check_leader_completeness(node)
            elif holder != node.node_id:
                self.fail(
                    f"election safety: nodes {holder} and {node.node_id} lead term {core.term}"
                )
        commit = core.commit_index
        if commit > node.seen_commit:
            log = core.log
            for index in range(node.seen_commit + 1, commit + 1):
                recorded = self.committed.get(index)
                if recorded is not None and recorded[0] != log.term(index):
                    self.fail(
                        f"committed entry {index} (term {recorded[0]}) lost: node {node.node_id} "
                        f"commits term {log.term(index)} there"
                    )
            node.seen_commit = commit

    def _check_leader_completeness(self, node: _Node) -> None:
        log = node.core.log
        for index in range(1, self.max_committed + 1):
            recorded = self.committed.get(index)
            if recorded is not None and log.term(index) != recorded[0]:
                self.fail(
                    f"leader completeness: new leader {node.node_id} of term {node.core.term} "
                    f"lacks committed entry {index} (term {recorded[0]})"
                )

    def _check_durability(self) -> None:
        index = self.max_committed
        if index == 0:
            return
        term = self.committed[index][0]
        holders = sum(1 for n in self.nodes.values() if n.storage.synced_term(index) == term)
        if holders < self.quorum:
            self.fail(
                f"committed entry {index} (term {term}) is durable on only {holders} nodes, "
                f"fewer than a quorum of {self.quorum}"
            )

    # Faults -----------------------------------------------------------------------------------

    def _leader(self) -> _Node | None:
        best = None
        for node in self.nodes.values():
            core = node.core
            if core is not None and core.role == Role.LEADER:
                if best is None or core.term > best.core.term:
                    best = node
        return best

    def _inject_fault(self) -> None:
        rng = self.fault_rng
        kind = rng.randrange(7)
        ids = self.ids
        if kind == 0:  # symmetric partition into two random sides
            side = set(rng.sample(ids, rng.randint(1, len(ids) - 1)))
            self.blocked = {(a, b) for a in ids for b in ids if (a in side) != (b in side)}
            self._trace(f"PARTITION {sorted(side)} | {sorted(set(ids) - side)}")
        elif kind == 1:  # asymmetric: some links drop one way only
            links = [(a, b) for a in ids for b in ids if a != b]
            self.blocked = set(rng.sample(links, rng.randint(1, len(links) // 2)))
            self._trace(f"ASYMMETRIC blocked {sorted(self.blocked)}")
        elif kind == 2:  # isolate the leader
            leader = self._leader()
            if leader is not None:
                lid = leader.node_id
                self.blocked = {(a, b) for a in ids for b in ids if (a == lid) != (b == lid)}
                self._trace(f"ISOLATE leader {lid}")
        elif kind == 3:  # graceful leadership transfer to a random voter
            leader = self._leader()
            if leader is not None:
                target = rng.choice(ids)
                self._trace(f"TRANSFER leadership {leader.node_id} -> {target}")
                leader.core.transfer_leadership(target)
                self._after_input(leader)
        elif kind == 4:  # heal the network
            self.blocked = set()
            self._trace("HEAL network")
        else:  # crash a node (the leader half of the time) and restart it later
            up = [n for n in self.nodes.values() if n.core is not None]
            if not up:
                return
            leader = self._leader()
            victim = leader if (leader is not None and rng.random() < 0.5) else rng.choice(up)
            self._crash(victim)
            if self.disk_rng.random() < self.disk_loss_prob and self._can_lose_disk(victim):
                self._lose_disk(victim)
            victim.restart_at = self.now + STEPS_PER_TICK * rng.randint(1, 30)

    # Main loop --------------------------------------------------------------------------------

    def _tick_all(self, tick: int) -> None:
        for node in self.nodes.values():
            if node.core is None and 0 <= node.restart_at <= self.now:
                self._start(node)
            if node.core is not None:
                node.core.tick()
                self._after_input(node)

    def _client_step(self) -> None:
        rng = self.client_rng
        up = [n for n in self.nodes.values() if n.core is not None]
        if not up:
            return
        if rng.random() < self.write_prob:
            node = rng.choice(up)
            self._client_write(node)
            self._after_input(node)
        if rng.random() < self.read_prob:
            node = rng.choice(up)
            self._client_read(node)
            self._after_input(node)

    def _run_until(self, end_step: int) -> None:
        events = self._events
        while events and events[0][0] <= end_step:
            when, _, kind, payload = heapq.heappop(events)
            self.now = when
            if kind == _EV_DELIVER:
                self._deliver(payload)
            elif kind == _EV_SYNC:
                node_id, incarnation = payload
                self._on_sync(node_id, incarnation)
                self._check_node(self.nodes[node_id])
            elif kind == _EV_NOTICE:
                self._on_notice_timer(*payload)
        self.now = end_step

    def run(self) -> dict[str, int]:
        try:
            return self._run()
        except RaftInvariantError as exc:
            self.fail(f"core invariant violated: {exc}")
            raise  # unreachable: fail() raises

    def _run(self) -> dict[str, int]:
        options = self.options
        for tick in range(options.fault_ticks):
            self._run_until((tick + 1) * STEPS_PER_TICK)
            self._tick_all(tick)
            if self.fault_rng.random() < self.fault_prob:
                self._inject_fault()
            self._client_step()
        # Heal everything and demand progress within a bound.
        # Raft's liveness needs message and disk latency well below the election timeout.
        self.healing = True
        self.max_delay_steps = min(self.max_delay_steps, STEPS_PER_TICK // 2)
        self.disk_delay_steps = min(self.disk_delay_steps, STEPS_PER_TICK // 2)
        self.blocked = set()
        for node in self.nodes.values():
            if node.core is None:
                node.restart_at = self.now
        self._trace("=== faults healed: checking liveness ===")
        final: _Op | None = None
        start_tick = options.fault_ticks
        for tick in range(start_tick, start_tick + options.liveness_ticks):
            self._run_until((tick + 1) * STEPS_PER_TICK)
            self._tick_all(tick)
            leader = self._leader()
            if leader is None:
                continue
            if final is None or (not final.acked and final.term != leader.core.term):
                final = self._client_write(leader)  # a fresh write must commit everywhere
                self._after_input(leader)
            if final is not None and final.acked and self._converged(leader):
                return self._stats(tick - start_tick + 1)
        self.fail(f"liveness: no convergence within {options.liveness_ticks} ticks after healing")
        raise AssertionError("unreachable")

    def _converged(self, leader: _Node) -> bool:
        last = leader.core.last_index
        for node in self.nodes.values():
            core = node.core
            if core is None or core.commit_index != last or node.applied != last:
                return False
            if core.log.term(last) != leader.core.log.term(last):
                return False
        return True

    def _stats(self, heal_ticks: int) -> dict[str, int]:
        self._check_durability()
        return {
            "committed": self.max_committed,
            "writes_acked": self.writes_acked,
            "reads_served": self.reads_served,
            "leaders": len(self.leaders),
            "heal_ticks": heal_ticks,
            "disks_lost": self.disks_lost,
        }


_EV_DELIVER = 1
_EV_SYNC = 2
_EV_NOTICE = 3


def run_seed(
    seed: int, nodes: int = 3, bugs: frozenset[str] = frozenset(), **kwargs
) -> dict[str, int]:
    """Run one seeded simulation; raises SimulationFailure with the replay command on a bug."""
    return Simulation(SimOptions(seed=seed, nodes=nodes, bugs=frozenset(bugs), **kwargs)).run()
