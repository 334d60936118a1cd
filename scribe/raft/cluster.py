"""LocalCluster: N RaftCores wired by a hand-driven in-memory network, for scenario tests and
benchmarks. Nothing happens unless the test says so: tick(), deliver(), stabilize().

Each node's runtime follows the production order: persist (and sync), send, apply, advance.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from scribe.raft.config import RaftConfig
from scribe.raft.core import RaftCore
from scribe.raft.storage import MemoryRaftStorage
from scribe.raft.types import Entry, EntryType, Message, MessageType, Proposal, ReadState, Role


class LocalCluster:
    def __init__(
        self,
        size: int = 3,
        config: RaftConfig | None = None,
        seed: int = 0,
        encode: bool = False,
    ) -> None:
        self.ids = list(range(1, size + 1))
        self.config = config or RaftConfig()
        self.seed = seed
        self.encode = encode
        self.storages = {i: MemoryRaftStorage() for i in self.ids}
        self.nodes: dict[int, RaftCore | None] = {}
        self.incarnations = dict.fromkeys(self.ids, 0)
        self.applied: dict[int, list[Entry]] = {i: [] for i in self.ids}
        self.read_states: dict[int, list[ReadState]] = {i: [] for i in self.ids}
        self.proposals: dict[int, list[Proposal]] = {i: [] for i in self.ids}
        self.blocked: set[tuple[int, int]] = set()
        self.inbox: list[Message] = []  # sent, not yet delivered
        self.sent: list[Message] = []  # everything that ever left a node (for assertions)
        for i in self.ids:
            self._boot(i)

    def _boot(self, node_id: int, rejoining: bool = False) -> None:
        rng = random.Random(f"{self.seed}-{node_id}-{self.incarnations[node_id]}")
        self.nodes[node_id] = RaftCore(
            node_id, self.ids, self.storages[node_id], self.config, rng, rejoining=rejoining
        )
        self.applied[node_id] = []

    # Access -----------------------------------------------------------------------------------

    def node(self, node_id: int) -> RaftCore:
        core = self.nodes[node_id]
        if core is None:
            raise KeyError(f"node {node_id} is down")
        return core

    def up(self) -> list[int]:
        return [i for i in self.ids if self.nodes[i] is not None]

    def leaders(self) -> list[int]:
        return [i for i in self.up() if self.node(i).role == Role.LEADER]

    def leader(self) -> int:
        """The id of the single leader with the highest term among live nodes."""
        leaders = sorted(self.leaders(), key=lambda i: self.node(i).term)
        if not leaders:
            raise AssertionError("no leader")
        return leaders[-1]

    def log_terms(self, node_id: int) -> list[int]:
        core = self.node(node_id)
        return [core.log.term(i) for i in range(1, core.last_index + 1)]

    def applied_data(self, node_id: int) -> list[bytes]:
        return [e.data for e in self.applied[node_id] if e.type == EntryType.NORMAL]

    # Faults -----------------------------------------------------------------------------------

    def isolate(self, node_id: int) -> None:
        for other in self.ids:
            if other != node_id:
                self.blocked.add((node_id, other))
                self.blocked.add((other, node_id))

    def partition(self, *groups: Iterable[int]) -> None:
        side = {}
        for number, group in enumerate(groups):
            for node_id in group:
                side[node_id] = number
        self.blocked = {(a, b) for a in self.ids for b in self.ids if side[a] != side[b]}

    def heal(self) -> None:
        self.blocked = set()

    def crash(self, node_id: int) -> None:
        """Stop a node; writes it did not sync are lost (here every Ready is synced)."""
        self.nodes[node_id] = None
        self.storages[node_id].crash()
        self.incarnations[node_id] += 1

    def lose_disk(self, node_id: int) -> None:
        """Crash a node and replace its storage with an empty one (its data directory was lost)."""
        self.crash(node_id)
        self.storages[node_id] = MemoryRaftStorage()

    def restart(self, node_id: int, rejoining: bool = False) -> None:
        self._boot(node_id, rejoining)

    # Driving ----------------------------------------------------------------------------------

    def tick(self, count: int = 1, nodes: Iterable[int] | None = None) -> None:
        """Tick the given (default: all live) nodes count times, stabilizing after each tick."""
        for _ in range(count):
            for node_id in list(nodes) if nodes is not None else self.up():
                if self.nodes[node_id] is not None:
                    self.node(node_id).tick()
            self.stabilize()

    def process_ready(self, node_id: int) -> bool:
        """Run one runtime loop iteration on node_id. True if there was a Ready."""
        core = self.nodes[node_id]
        if core is None or not core.has_ready():
            return False
        rd = core.ready()
        storage = self.storages[node_id]
        if rd.hard_state is not None:
            storage.set_hard_state(rd.hard_state)
        storage.append(rd.entries)
        if rd.must_sync:
            storage.sync()
        for m in rd.messages:
            self.sent.append(m)
            if (m.frm, m.to) not in self.blocked:
                self.inbox.append(m)
        self.applied[node_id].extend(rd.committed_entries)
        self.read_states[node_id].extend(rd.read_states)
        self.proposals[node_id].extend(rd.proposals)
        core.advance(rd)
        return True

    def deliver(self, limit: int | None = None) -> int:
        """Deliver queued messages in FIFO order (new ones queue behind). Returns how many."""
        delivered = 0
        while self.inbox and (limit is None or delivered < limit):
            m = self.inbox.pop(0)
            delivered += 1
            if (m.frm, m.to) in self.blocked or self.nodes.get(m.to) is None:
                continue
            if self.encode:
                from scribe.raft.wire import decode_message, encode_message

                m = decode_message(encode_message(m))
            self.node(m.to).step(m)
        return delivered

    def stabilize(self, max_rounds: int = 10_000, notices: bool = True) -> None:
        """Process every Ready and deliver every message until the cluster is quiet. A leader's
        pending commit notice goes out once nothing else moves, as the node runtime's timer
        sends it when no proposal carried it (notices=False: that timer never fires)."""
        for _ in range(max_rounds):
            busy = False
            for node_id in self.ids:
                while self.process_ready(node_id):
                    busy = True
            if self.inbox:
                self.deliver()
                busy = True
            if not busy and notices:
                for node_id in self.up():
                    core = self.node(node_id)
                    if core.commit_notice_pending:
                        core.send_commit_notice()
                        busy = True
            if not busy:
                return
        raise AssertionError(f"cluster did not settle within {max_rounds} rounds")

    def elect(self, node_id: int) -> None:
        """Make node_id campaign now and settle."""
        self.node(node_id).campaign()
        self.stabilize()

    def propose(self, node_id: int, data: bytes) -> Proposal:
        proposal = self.node(node_id).propose(data)
        self.stabilize()
        return proposal

    def messages_of(self, mtype: MessageType) -> list[Message]:
        return [m for m in self.sent if m.type == mtype]
