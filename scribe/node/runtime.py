"""NodeRuntime: the one asyncio loop that drives a RaftCore (etcd-io/raft style).

Inputs: ticks every tick_ms, frames from the transport, proposals and reads handed over by the HTTP
threads. Output, per Ready, in this order: write hard state and entries, send the messages (the
core holds back any message that needs this Ready to be durable), apply the committed entries that
earlier Readies made durable if this node's clients wait for them (and answer them), ONE fsync on
the loop thread (proposals that arrive meanwhile go into the next Ready: group commit), send the
append acks and votes that waited for it, apply the other committed entries, serve reads whose
read index is applied, advance. A leader tells its followers a new commit index with the next
proposal's appends, or after COMMIT_NOTICE_DELAY_MS alone (at once for forwarded writes).
A Ready with nothing new to replicate (commit notices, heartbeats) applies before it sends when
this node's clients wait for some of its entries, and sends first otherwise (forwarded writes
wait for the commit notice at the follower that forwarded them, or, in a 3-node group, for the
leader's word that its fsync is done: the core then commits them at the follower).

The runtime owns the core and the log: both are touched only from the loop thread. HTTP threads
call submit_write / submit_read, which hop onto the loop with call_soon_threadsafe and return a
concurrent.futures.Future.

Everything that can make a Ready (a proposal, a frame, a tick) only schedules one "pump" callback
for the loop's next turn: callbacks already queued (more proposals, more frames) run first and join
the same Ready, and a message costs no task switch (frames come from the transport's
start_receiving, not from a task awaiting recv()).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from scribe.errors import NoLeaderError, OutcomeUnknownError, ScribeError
from scribe.http.backend import WriteResult
from scribe.node.limits import (
    APPLIED_RESULTS_KEPT,
    COMMIT_NOTICE_DELAY_MS,
    PROPOSALS_PER_READY_MAX,
    READ_ROUND_OVERLAP_MS,
    READ_TIMEOUT_MS,
    SWEEP_INTERVAL_MS,
    WRITE_TIMEOUT_MS,
)
from scribe.node.metrics import NodeMetrics
from scribe.raft import (
    Entry,
    EntryType,
    HardState,
    Message,
    RaftCore,
    Ready,
    Role,
    WireError,
    decode_message,
    encode_message,
)

log = logging.getLogger("scribe.node")

_READ_CTX_BYTES = 8


class StateLog(Protocol):
    """What the runtime needs from its log besides being the core's RaftStorage
    (engines.raftlog.LedgerLog is the product one)."""

    applied_index: int

    def set_hard_state(self, hard_state: HardState) -> None: ...

    def append(self, entries: list[Entry]) -> None: ...

    def sync(self) -> None: ...

    def apply_entries(self, entries: Sequence[Entry]) -> list[tuple[int, int, int]]: ...


class _Write:
    """A client write waiting for its entry: placed once (term, index) are known."""

    __slots__ = ("data", "future", "deadline", "term", "index")

    def __init__(self, data: bytes, future: concurrent.futures.Future, deadline: float) -> None:
        self.data = data
        self.future = future
        self.deadline = deadline
        self.term = 0
        self.index = 0


class _ReadGroup:
    """Reads that share one ReadIndex request (etcd batches linearizable reads the same way)."""

    __slots__ = ("reads", "index", "deadline")

    def __init__(self, reads: list[tuple[Callable[[], Any], concurrent.futures.Future]]) -> None:
        self.reads = reads
        self.index = -1  # -1 until the leader answers
        self.deadline = 0.0


def _settle(future: concurrent.futures.Future, result: Any = None, error: Exception | None = None):
    """Complete a future unless it is done already (a client may have given up on it)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class NodeRuntime:
    """One node's Raft loop. Build it, then `await run()` on the loop; `stop()` ends it."""

    def __init__(
        self,
        core: RaftCore,
        state_log: StateLog,
        transport: Any,
        tick_ms: int,
        metrics: NodeMetrics | None = None,
        write_timeout_ms: int = WRITE_TIMEOUT_MS,
        read_timeout_ms: int = READ_TIMEOUT_MS,
        on_rejoined: Callable[[], None] | None = None,
    ) -> None:
        if tick_ms <= 0:
            raise ValueError(f"tick_ms must be positive, got {tick_ms}")
        self.core = core
        self.log = state_log
        self.transport = transport
        self.node_id = core.id
        self.tick_s = tick_ms / 1000.0
        self.write_timeout_s = write_timeout_ms / 1000.0
        self.read_timeout_s = read_timeout_ms / 1000.0
        self.metrics = metrics if metrics is not None else NodeMetrics(core.id, core.peers)
        # Called once a core that started rejoining has caught up and made its vote durable.
        self._on_rejoined = on_rejoined if core.rejoining else None
        self.loop: asyncio.AbstractEventLoop | None = None
        # Published for other threads (health, logging): plain attributes, replaced atomically.
        self.role = Role.FOLLOWER
        self.leader_id = 0
        self.term = core.term
        self.commit_index = core.commit_index
        self.applied_index = core.applied_index
        self.last_index = core.last_index
        self._pump_scheduled = False
        self._stopping = False
        self._done: asyncio.Future | None = None  # resolved by stop(), failed by a pump error
        self._proposals: collections.deque[_Write] = collections.deque()
        self._by_request: dict[int, list[_Write]] = {}  # forwarded proposals awaiting placement
        self._by_index: dict[int, _Write] = {}  # placed writes awaiting their entry
        self._applied_results: collections.OrderedDict[int, tuple[int, int]] = (
            collections.OrderedDict()
        )  # index -> (term, last seq) of recent NORMAL entries
        self._new_reads: list[tuple[Callable[[], Any], concurrent.futures.Future]] = []
        self._read_groups: dict[bytes, _ReadGroup] = {}
        self._ready_reads: list[_ReadGroup] = []  # read index known, waiting for apply
        # Read contexts start at a random point: an answer to a request this node sent before a
        # restart (delayed in the network) never matches a read of its new life.
        self._read_ctx_counter = int.from_bytes(os.urandom(_READ_CTX_BYTES), "big") >> 1
        self._read_round_at = 0.0  # when the newest ReadIndex round was asked for
        self.read_round_overlap_s = READ_ROUND_OVERLAP_MS / 1000.0
        self._tasks: list[asyncio.Task] = []
        self.commit_notice_delay_s = COMMIT_NOTICE_DELAY_MS / 1000.0
        self._notice_timer: asyncio.TimerHandle | None = None

    # ---- called from any thread --------------------------------------------------------------

    def submit_write(self, data: bytes) -> concurrent.futures.Future:
        """Propose one NORMAL entry; the future gets a WriteResult or a ScribeError."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._loop().call_soon_threadsafe(self._on_write, data, future)
        return future

    def submit_read(self, read: Callable[[], Any], linearizable: bool) -> concurrent.futures.Future:
        """Run `read` on the loop thread (the log is not shared across threads); linearizable
        reads run once the applied index reaches a read index confirmed by the leader."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._loop().call_soon_threadsafe(self._on_read, read, linearizable, future)
        return future

    # ---- called on the loop thread (the node's HTTP front) ------------------------------------

    def propose_here(self, data: bytes, future: concurrent.futures.Future) -> None:
        """submit_write for a caller already on the loop thread: no hop; the future is settled
        on this thread, so its done-callbacks run here too."""
        self._on_write(data, future)

    def read_here(
        self, read: Callable[[], Any], linearizable: bool, future: concurrent.futures.Future
    ) -> None:
        """submit_read for a caller already on the loop thread (see propose_here)."""
        self._on_read(read, linearizable, future)

    def call(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        """Run fn on the loop thread and hand back its result (status snapshots, metrics)."""
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            try:
                _settle(future, fn())
            except Exception as exc:  # handed to the calling thread, which re-raises it
                _settle(future, error=exc)

        self._loop().call_soon_threadsafe(run)
        return future

    def _loop(self) -> asyncio.AbstractEventLoop:
        loop = self.loop
        if loop is None or self._stopping:
            raise NoLeaderError(f"node {self.node_id} is not running")
        return loop

    # ---- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Drive the core until stop(). The transport must be started already."""
        self.loop = loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        if self._stopping:
            self._done.set_result(None)
        self._publish()
        self._tasks = [
            asyncio.create_task(self._tick_loop(), name="raft-tick"),
            asyncio.create_task(self._sweep_loop(), name="raft-sweep"),
        ]
        self.transport.start_receiving(self._on_frame)
        receive_task = self.transport.receive_task
        if receive_task is not None:  # a transport that receives through recv()
            receive_task.add_done_callback(self._on_receive_end)
        self._schedule()
        try:
            await self._done
        finally:
            if self._notice_timer is not None:
                self._notice_timer.cancel()
                self._notice_timer = None
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._fail_everything(OutcomeUnknownError(f"node {self.node_id} stopped"))

    def stop(self) -> None:
        """Ask the loop to finish its current Ready and return from run(). Loop thread only."""
        self._stopping = True
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _fail(self, exc: Exception) -> None:
        """A pump or frame handler raised: run() raises it (the node stops; nothing half-done
        is acknowledged, as in a crash)."""
        self._stopping = True
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)

    def _on_receive_end(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._fail(task.exception())

    async def _tick_loop(self) -> None:
        next_at = time.monotonic()
        while True:
            next_at += self.tick_s
            delay = next_at - time.monotonic()
            if delay < -self.tick_s:
                # The loop was blocked for a while: do not fire a burst of catch-up ticks
                # (they would start an election at once); resume the rhythm from now.
                next_at = time.monotonic()
                delay = 0
            await asyncio.sleep(max(delay, 0))
            try:
                self.core.tick()
            except Exception as exc:
                self._fail(exc)
                return
            self._schedule()

    def _on_frame(self, from_id: int, frame: bytes) -> None:
        if self._stopping:
            return
        metrics = self.metrics
        try:
            m = decode_message(frame)
        except WireError as exc:
            metrics.malformed += 1
            log.warning("dropped a malformed frame from node %s: %s", from_id, exc)
            return
        if m.frm != from_id:
            metrics.malformed += 1
            log.warning("dropped a frame claiming node %s, sent by node %s", m.frm, from_id)
            return
        metrics.received[from_id] = metrics.received.get(from_id, 0) + 1
        try:
            self.core.step(m)
        except Exception as exc:
            self._fail(exc)
            return
        self._schedule()

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_MS / 1000.0)
            self._sweep(time.monotonic())

    def _schedule(self) -> None:
        """Run the pump on the loop's next turn, once however many inputs ask for it."""
        if not self._pump_scheduled:
            self._pump_scheduled = True
            self.loop.call_soon(self._pump)

    def _pump(self) -> None:
        self._pump_scheduled = False
        if self._stopping:
            return
        core = self.core
        try:
            self._drain_proposals()
            self._drain_reads()
            while core.has_ready() and not self._stopping:
                self._handle_ready(core.ready())
                # Proposals and reads that arrived during the fsync join the next Ready.
                self._drain_proposals()
                self._drain_reads()
            if self._notice_timer is None and core.commit_notice_pending:
                self._notice_timer = self.loop.call_later(
                    self.commit_notice_delay_s, self._on_notice_timer
                )
            self._publish()
        except Exception as exc:
            self._fail(exc)

    def _on_notice_timer(self) -> None:
        """No proposal carried the new commit index to the followers in time: send it alone."""
        self._notice_timer = None
        if self._stopping or not self.core.commit_notice_pending:
            return
        self.core.send_commit_notice()
        self._schedule()

    def _handle_ready(self, rd: Ready) -> None:
        core, state_log, metrics = self.core, self.log, self.metrics
        # rd was made after a rejoining core caught up: its hard state holds the vote it took then
        rejoined = self._on_rejoined is not None and not core.rejoining
        if rd.soft_state is not None:
            self._on_soft_state(rd.soft_state.leader_id, rd.soft_state.role)
        if rd.hard_state is not None:
            state_log.set_hard_state(rd.hard_state)
            self.term = rd.hard_state.term
        # First what tells which entries this node's clients wait for.
        for proposal in rd.proposals:
            self._place(proposal.request_id, proposal.term, proposal.index)
        for read_state in rd.read_states:
            group = self._read_groups.pop(read_state.ctx, None)
            if group is not None:
                group.index = read_state.index
                self._ready_reads.append(group)
        for ctx in rd.dropped_reads:
            group = self._read_groups.pop(ctx, None)
            if group is not None:
                self._new_reads.extend(group.reads)  # retried with the next batch
        # Committed entries below this Ready's first new entry were fsynced by an earlier Ready:
        # applied (and their writes answered) before this Ready's fsync when this node's clients
        # wait for them, after it otherwise. The rest were appended by this Ready (a follower
        # learning entries and their commit in one message) and wait for the fsync.
        durable, undurable = rd.committed_entries, []
        if rd.entries:
            state_log.append(rd.entries)
            first_new = rd.entries[0].index
            if durable and durable[-1].index >= first_new:
                cut = next(i for i, e in enumerate(durable) if e.index >= first_new)
                durable, undurable = durable[:cut], durable[cut:]
            # New entries: replicate first, so the followers' fsyncs overlap our own work.
            self._send(rd.messages)
            if durable and self._awaited(durable):
                # This node's clients wait for those: answered before the fsync. Otherwise they
                # wait for it: the append ack it releases is what a write at the leader awaits.
                self._apply(durable)
                durable = []
        elif durable and self._awaited(durable):
            # Nothing to replicate (commit notices, heartbeats) and writes of this node's clients
            # to answer: answer them first.
            self._apply(durable)
            self._send(rd.messages)
            durable = []
        else:
            # Otherwise the commit notices (or durable indexes) first: writes forwarded by a
            # follower wait for them.
            self._send(rd.messages)
        if rd.must_sync:
            self._serve_reads()  # reads whose index is applied need not wait for the fsync
            # On the loop thread: an executor round trip costs two thread wake-ups (0.2-0.6 ms
            # on a busy 2-core machine, more than the fsync itself), and the loop has nothing
            # else to do for this Ready meanwhile. os.fsync releases the GIL, so the HTTP threads
            # keep queueing proposals; they form the next Ready (group commit).
            started = time.perf_counter()
            state_log.sync()
            metrics.fsync_seconds.observe(time.perf_counter() - started)
            # Append acks and votes at once: the leader's commit waits for the ack, not for the
            # rest of this Ready and the next one.
            self._send(rd.take_after_sync())
        if durable:
            self._apply(durable)
        if undurable:
            self._apply(undurable)
        if rejoined:  # and that hard state is durable now
            log.info(
                "node %s caught up after rejoining at index %s: votes again",
                self.node_id,
                core.commit_index,
            )
            on_rejoined, self._on_rejoined = self._on_rejoined, None
            on_rejoined()
        core.advance(rd)
        self._serve_reads()

    def _awaited(self, entries: list[Entry]) -> bool:
        """Whether a client of this node waits for entries to apply (a write, a read)."""
        if self._ready_reads:
            return True
        by_index = self._by_index
        return bool(by_index) and any(e.index in by_index for e in entries)

    def _send(self, messages: list[Message]) -> None:
        transport, sent, dropped = self.transport, self.metrics.sent, self.metrics.send_dropped
        for m in messages:
            to = m.to
            if transport.send(to, encode_message(m)):
                sent[to] = sent.get(to, 0) + 1
            else:
                dropped[to] = dropped.get(to, 0) + 1
        if messages:
            # On their way before this Ready's fsync or apply, not after the pump returns: a
            # follower's fsync overlaps ours, an ack reaches the leader before our apply.
            transport.flush()

    # ---- writes ------------------------------------------------------------------------------

    def _on_write(self, data: bytes, future: concurrent.futures.Future) -> None:
        if self._stopping:
            _settle(future, error=NoLeaderError(f"node {self.node_id} is stopping"))
            return
        self._proposals.append(_Write(data, future, time.monotonic() + self.write_timeout_s))
        self._schedule()

    def _drain_proposals(self) -> None:
        pending = self._proposals
        if not pending:
            return
        batch = [pending.popleft() for _ in range(min(len(pending), PROPOSALS_PER_READY_MAX))]
        if pending:
            self._schedule()
        try:
            proposal = self.core.propose_batch([w.data for w in batch])
        except NoLeaderError as exc:  # includes ProposalDroppedError: certainly not appended
            for w in batch:
                _settle(w.future, error=NoLeaderError(str(exc)))
            return
        self.metrics.proposals += len(batch)
        if proposal.term == 0:  # forwarded to the leader: placement arrives in a later Ready
            self._by_request[proposal.request_id] = batch
            return
        for offset, w in enumerate(batch):
            self._place_one(w, proposal.term, proposal.index + offset)

    def _place(self, request_id: int, term: int, index: int) -> None:
        batch = self._by_request.pop(request_id, None)
        if batch is None:
            return  # the writes already timed out
        if term == 0:
            leader = self.core.leader_id
            for w in batch:
                _settle(w.future, error=NoLeaderError(f"leader {leader} refused the proposal"))
            return
        for offset, w in enumerate(batch):
            self._place_one(w, term, index + offset)

    def _place_one(self, w: _Write, term: int, index: int) -> None:
        w.term, w.index = term, index
        if index <= self.log.applied_index:
            # Placed after its index was applied (the answer raced the entry): settle it now.
            self._resolve_applied(w, self._applied_results.get(index))
            return
        previous = self._by_index.get(index)
        if previous is not None:
            # Two placements of one index: only one term can commit there; the older one lost.
            _settle(previous.future, error=self._superseded(previous))
        self._by_index[index] = w

    def _resolve_applied(self, w: _Write, applied: tuple[int, int] | None) -> None:
        if applied is None:
            _settle(w.future, error=OutcomeUnknownError(f"entry {w.index} applied, not tracked"))
        elif applied[0] == w.term:
            _settle(w.future, WriteResult(seq=applied[1], index=w.index))
        else:
            _settle(w.future, error=self._superseded(w))

    def _superseded(self, w: _Write) -> NoLeaderError:
        return NoLeaderError(
            f"entry {w.index} of term {w.term} was replaced by a new leader; it was not applied"
        )

    def _apply(self, entries: list[Entry]) -> None:
        results = self.log.apply_entries(entries)
        seqs = {index: last_seq for index, _first_seq, last_seq in results}
        kept, by_index = self._applied_results, self._by_index
        for entry in entries:
            index = entry.index
            if entry.type == EntryType.NORMAL:
                kept[index] = (entry.term, seqs.get(index, -1))
            w = by_index.pop(index, None) if by_index else None
            if w is None:
                continue
            if entry.type == EntryType.NORMAL and entry.term == w.term:
                _settle(w.future, WriteResult(seq=seqs[index], index=index))
            else:
                _settle(w.future, error=self._superseded(w))
        while len(kept) > APPLIED_RESULTS_KEPT:
            kept.popitem(last=False)
        last = entries[-1].index
        self.metrics.committed_entries += len(entries)
        self.applied_index = last
        self.commit_index = self.core.commit_index

    # ---- reads -------------------------------------------------------------------------------

    def _on_read(
        self, read: Callable[[], Any], linearizable: bool, future: concurrent.futures.Future
    ) -> None:
        if not linearizable:
            self._run_read(read, future)
            return
        self._new_reads.append((read, future))
        self._schedule()

    def _drain_reads(self) -> None:
        if not self._new_reads:
            return
        now = time.monotonic()
        if self._read_groups and now - self._read_round_at < self.read_round_overlap_s:
            # One ReadIndex round at a time (as etcd's read loop): reads arriving meanwhile share
            # the next round instead of each costing a heartbeat to every follower. A round not
            # answered within the overlap time (a lost message) no longer holds the next one back.
            return
        self._read_round_at = now
        group = _ReadGroup(self._new_reads)
        self._new_reads = []
        self._read_ctx_counter = (self._read_ctx_counter + 1) % (1 << (8 * _READ_CTX_BYTES))
        ctx = self._read_ctx_counter.to_bytes(_READ_CTX_BYTES, "big")
        group.deadline = now + self.read_timeout_s
        try:
            self.core.read_index(ctx)
        except NoLeaderError as exc:
            for _read, future in group.reads:
                _settle(future, error=NoLeaderError(str(exc)))
            return
        self.metrics.read_index_requests += 1
        self._read_groups[ctx] = group

    def _serve_reads(self) -> None:
        if not self._ready_reads:
            return
        applied = self.log.applied_index
        waiting = []
        for group in self._ready_reads:
            if group.index <= applied:
                for read, future in group.reads:
                    self._run_read(read, future)
            else:
                waiting.append(group)
        self._ready_reads = waiting

    def _run_read(self, read: Callable[[], Any], future: concurrent.futures.Future) -> None:
        try:
            result = read()
        except Exception as exc:  # the HTTP thread re-raises it (bad argument, corruption)
            _settle(future, error=exc)
        else:
            _settle(future, result)

    # ---- bookkeeping -------------------------------------------------------------------------

    def _sweep(self, now: float) -> None:
        """Give up on writes and reads past their deadline (a lost forward or answer)."""
        for request_id, batch in list(self._by_request.items()):
            if batch[0].deadline <= now:
                del self._by_request[request_id]
                for w in batch:
                    _settle(w.future, error=self._timed_out(w))
        for index, w in list(self._by_index.items()):
            if w.deadline <= now:
                del self._by_index[index]
                _settle(w.future, error=self._timed_out(w))
        for ctx, group in list(self._read_groups.items()):
            if group.deadline <= now:
                del self._read_groups[ctx]
                for _read, future in group.reads:
                    _settle(future, error=NoLeaderError("no leader confirmed the read in time"))
        kept = []
        for group in self._ready_reads:
            if group.deadline <= now:
                for _read, future in group.reads:
                    _settle(future, error=NoLeaderError("the read index was not applied in time"))
            else:
                kept.append(group)
        self._ready_reads = kept

    def _timed_out(self, w: _Write) -> OutcomeUnknownError:
        where = f"entry {w.index} of term {w.term}" if w.index else "a forwarded proposal"
        return OutcomeUnknownError(
            f"{where} was not confirmed within {self.write_timeout_s * 1000:.0f} ms; "
            "it may still be applied"
        )

    def _fail_everything(self, error: ScribeError) -> None:
        for w in self._proposals:
            _settle(w.future, error=NoLeaderError(f"node {self.node_id} stopped"))
        self._proposals.clear()
        for batch in self._by_request.values():
            for w in batch:
                _settle(w.future, error=error)
        self._by_request.clear()
        for w in self._by_index.values():
            _settle(w.future, error=error)
        self._by_index.clear()
        stopped = NoLeaderError(f"node {self.node_id} stopped")
        for _read, future in self._new_reads:
            _settle(future, error=stopped)
        for group in list(self._read_groups.values()) + self._ready_reads:
            for _read, future in group.reads:
                _settle(future, error=stopped)
        self._new_reads, self._read_groups, self._ready_reads = [], {}, []

    def _on_soft_state(self, leader_id: int, role: Role) -> None:
        old_role, old_leader = self.role, self.leader_id
        self.role, self.leader_id = role, leader_id
        self.term = self.core.term
        if role != old_role or leader_id != old_leader:
            log.info(
                "role %s -> %s, leader %s -> %s, term %s",
                old_role.name.lower(),
                role.name.lower(),
                old_leader or "none",
                leader_id or "none",
                self.core.term,
            )
        if role == Role.LEADER and old_role != Role.LEADER:
            self.metrics.leader_changes += 1
        if leader_id != old_leader and self._by_request:
            # Forwarded to a leader that is gone: its answer will not come. The proposal may have
            # been appended there, so the outcome is unknown; answering now lets clients retry
            # against the new leader instead of waiting out the full timeout.
            for batch in self._by_request.values():
                for w in batch:
                    _settle(
                        w.future,
                        error=OutcomeUnknownError(
                            f"leader {old_leader} lost before it placed the forwarded proposal; "
                            "it may still be applied"
                        ),
                    )
            self._by_request.clear()
        if leader_id != old_leader and leader_id and self._read_groups:
            # ReadIndex requests the old leader will not answer: reads are safe to ask again.
            for group in self._read_groups.values():
                self._new_reads.extend(group.reads)
            self._read_groups.clear()

    def _publish(self) -> None:
        core = self.core
        self.term = core.term
        self.commit_index = core.commit_index
        self.applied_index = core.applied_index
        self.last_index = core.last_index

    # ---- graceful stop -----------------------------------------------------------------------

    async def transfer_leadership(self, wait_s: float) -> bool:
        """If leader, hand leadership to the most caught-up voter; True once someone else leads."""
        core = self.core
        if core.role != Role.LEADER or not core.peers:
            return core.role != Role.LEADER
        voters = [p for p in core.peers if p in core.voters]
        if not voters:
            return False
        # The most caught-up voter among those that answered lately (a dead one never takes over).
        active = [p for p in voters if p in core.prs and core.prs[p].recent_active] or voters
        target = max(active, key=lambda p: core.prs[p].match if p in core.prs else -1)
        log.info("transferring leadership to node %s before stopping", target)
        core.transfer_leadership(target)
        self._schedule()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if core.role != Role.LEADER:
                return True
            await asyncio.sleep(self.tick_s / 4)
        return core.role != Role.LEADER
