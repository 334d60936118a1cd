"""RaftBackend: the HTTP API's Backend over a NodeRuntime (writes through Raft, reads via ReadIndex).

Runs on Waitress threads. Every call hops onto the runtime's loop and waits on a future with a
timeout: writes come back once their entry is applied here (committed on a majority and fsynced
locally), linearizable reads once this node has applied up to a read index the leader confirmed.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from scribe.config import NodeConfig
from scribe.errors import InvalidArgumentError, NoLeaderError, OutcomeUnknownError
from scribe.http.backend import (
    ROLE_CANDIDATE,
    ROLE_FOLLOWER,
    ROLE_LEADER,
    Backend,
    Consistency,
    Entry,
    Health,
    LeaderInfo,
    Member,
    WriteResult,
)
from scribe.http.verifiable import VerifiableBackend
from scribe.limits import KEY_BYTES_MAX
from scribe.node.gil import SwitchIntervalByLoad
from scribe.node.limits import READ_TIMEOUT_MS, THREAD_WAIT_SLACK_MS, WRITE_TIMEOUT_MS
from scribe.node.runtime import NodeRuntime
from scribe.raft import Role
from scribe.records import Record, Version

OP_PUT = 1
OP_DELETE = 2

EncodeOps = Callable[[int, list[tuple[int, bytes, bytes]]], bytes]

_ROLE_NAMES = {
    Role.LEADER: ROLE_LEADER,
    Role.FOLLOWER: ROLE_FOLLOWER,
    Role.CANDIDATE: ROLE_CANDIDATE,
    Role.PRE_CANDIDATE: ROLE_CANDIDATE,
}


def role_name(role: Role) -> str:
    return _ROLE_NAMES[role]


def _check_key(key: bytes) -> None:
    if not key:
        raise InvalidArgumentError("key must not be empty")
    if len(key) > KEY_BYTES_MAX:
        raise InvalidArgumentError(f"key is {len(key)} bytes, over the limit of {KEY_BYTES_MAX}")


class RaftBackend(VerifiableBackend, Backend):
    """A Backend over one node of a Raft cluster. Thread-safe: all state lives on the loop.

    Tree heads and proofs come from VerifiableBackend over the log's leaf hashes; the node's
    Ed25519 key lives in its data_dir. Records are applied only once committed and fsynced, so
    every head it signs covers durable records only.
    """

    def __init__(
        self,
        runtime: NodeRuntime,
        config: NodeConfig,
        encode_ops: EncodeOps,
        *,
        write_timeout_ms: int = WRITE_TIMEOUT_MS,
        read_timeout_ms: int = READ_TIMEOUT_MS,
    ) -> None:
        self.runtime = runtime
        self.config = config
        self.node_id = config.node_id
        self._encode_ops = encode_ops
        self._max_value_bytes = config.storage.max_value_bytes
        self._write_wait_s = (write_timeout_ms + THREAD_WAIT_SLACK_MS) / 1000.0
        self._load = SwitchIntervalByLoad()
        self._read_wait_s = (read_timeout_ms + THREAD_WAIT_SLACK_MS) / 1000.0
        runtime.metrics.watch(self._gauges)
        self.init_verification(str(config.node.data_dir), source=runtime.log)

    # ---- writes ------------------------------------------------------------------------------

    def _entry_data(self, ops: list[tuple[int, bytes, bytes]]) -> bytes:
        for _op, key, value in ops:
            _check_key(key)
            if len(value) > self._max_value_bytes:
                raise InvalidArgumentError(
                    f"value is {len(value)} bytes, over the limit of {self._max_value_bytes}"
                )
        # The node that receives the request stamps the records; every replica applies the
        # same bytes, so every replica stores the same ts_ms.
        return self._encode_ops(time.time_ns() // 1_000_000, ops)

    def _write(self, ops: list[tuple[int, bytes, bytes]]) -> WriteResult:
        future = self.runtime.submit_write(self._entry_data(ops))
        try:
            with self._load:
                return future.result(self._write_wait_s)
        except concurrent.futures.TimeoutError:
            raise OutcomeUnknownError(
                "the write was not confirmed in time; it may still be applied"
            ) from None

    def put(self, key: bytes, value: bytes) -> WriteResult:
        return self._write([(OP_PUT, bytes(key), bytes(value))])

    def delete(self, key: bytes) -> WriteResult:
        return self._write([(OP_DELETE, bytes(key), b"")])

    def batch(self, ops: Sequence[tuple[bytes, bytes | None]]) -> WriteResult:
        return self._write(_batch_ops(ops))

    # ---- reads -------------------------------------------------------------------------------

    def _read(self, read: Callable[[], Any], consistency: Consistency) -> Any:
        if consistency not in ("linearizable", "stale"):
            raise InvalidArgumentError(f"unknown consistency {consistency!r}")
        future = self.runtime.submit_read(read, consistency == "linearizable")
        try:
            with self._load:
                return future.result(self._read_wait_s)
        except concurrent.futures.TimeoutError:
            raise NoLeaderError("the read was not served in time; retry") from None

    def read_barrier(self, consistency: Consistency = "linearizable") -> None:
        self._read(lambda: None, consistency)  # ReadIndex: applied up to a confirmed index

    def get(self, key: bytes, consistency: Consistency = "linearizable") -> Entry | None:
        return self._read(self._reader(key), consistency)

    def _reader(self, key: bytes) -> Callable[[], Entry | None]:
        state_log = self.runtime.log

        def read() -> Entry | None:
            found = state_log.get_with_seq(key)
            if found is None:
                return None
            seq, value = found
            return Entry(bytes(value), seq)

        return read

    # ---- on the loop thread (the node's HTTP front): no thread waits ------------------------

    def start_put(self, key: bytes, value: bytes, done: Callable[[Any], None]) -> None:
        """Propose a put from the loop thread; done(future) runs there once it is settled (a
        WriteResult, or the error the waiting path would raise). Bad input raises at once."""
        self._start_write([(OP_PUT, bytes(key), bytes(value))], done)

    def start_batch(
        self, ops: Sequence[tuple[bytes, bytes | None]], done: Callable[[Any], None]
    ) -> None:
        """batch() from the loop thread (see start_put): one entry, all ops or none."""
        self._start_write(_batch_ops(ops), done)

    def _start_write(self, ops: list[tuple[int, bytes, bytes]], done: Callable[[Any], None]):
        data = self._entry_data(ops)
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.add_done_callback(done)
        self.runtime.propose_here(data, future)

    def start_get(self, key: bytes, done: Callable[[Any], None]) -> None:
        """A linearizable get from the loop thread; done(future) gets an Entry or None."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.add_done_callback(done)
        self.runtime.read_here(self._reader(key), True, future)

    def range(
        self,
        start: bytes | None,
        end: bytes | None,
        prefix: bytes | None,
        limit: int,
        consistency: Consistency = "linearizable",
    ) -> list[tuple[bytes, bytes]]:
        state_log = self.runtime.log

        def read() -> list[tuple[bytes, bytes]]:
            items = state_log.scan(start=start, end=end, prefix=prefix)
            return [(bytes(k), bytes(v)) for k, v in itertools.islice(items, limit)]

        return self._read(read, consistency)

    def history(self, key: bytes, consistency: Consistency = "linearizable") -> list[Version]:
        state_log = self.runtime.log
        return self._read(lambda: list(state_log.history(key)), consistency)

    def records(
        self, start: int, limit: int, consistency: Consistency = "linearizable"
    ) -> list[Record]:
        state_log = self.runtime.log
        return self._read(lambda: list(state_log.records(start, start + limit)), consistency)

    # ---- the node and its cluster ------------------------------------------------------------

    def health(self) -> Health:
        rt = self.runtime
        leader = rt.leader_id or None
        return Health(node_id=self.node_id, role=role_name(rt.role), leader_id=leader, term=rt.term)

    def _member(self, member_id: int) -> Member | None:
        for m in self.config.cluster.nodes:
            if m.id == member_id:
                return Member(m.id, m.host, m.client_port, m.raft_port, self._role_of(m.id))
        return None

    def _role_of(self, member_id: int) -> str | None:
        rt = self.runtime
        if member_id == self.node_id:
            return role_name(rt.role)
        if rt.leader_id:
            return ROLE_LEADER if member_id == rt.leader_id else ROLE_FOLLOWER
        return None

    def members(self) -> list[Member]:
        return [self._member(m.id) for m in self.config.cluster.nodes]

    def leader(self) -> LeaderInfo:
        rt = self.runtime
        leader = rt.leader_id or None
        member = self._member(leader) if leader else None
        return LeaderInfo(leader_id=leader, term=rt.term, member=member)

    def status(self) -> Mapping[str, Any]:
        rt = self.runtime
        snapshot = rt.call(self._snapshot).result(self._read_wait_s)
        return {
            "node_id": self.node_id,
            "role": role_name(rt.role),
            "leader_id": rt.leader_id or None,
            "term": rt.term,
            **snapshot,
            "transport": self.config.network.transport,
            "tick_ms": self.config.consensus.tick_ms,
            "members": [m.id for m in self.config.cluster.nodes],
            "mode": "raft",
        }

    def _snapshot(self) -> dict[str, Any]:
        """Read on the loop thread, where the core and the log live."""
        core, state_log = self.runtime.core, self.runtime.log
        progress = {}
        if core.role == Role.LEADER:
            progress = {str(p): {"match": pr.match, "next": pr.next} for p, pr in core.prs.items()}
        return {
            "commit_index": core.commit_index,
            "applied_index": core.applied_index,
            "last_index": core.last_index,
            "records": state_log.next_seq,
            "keys": len(state_log),
            "progress": progress,
        }

    def _gauges(self) -> dict[str, Any]:
        rt = self.runtime
        return {
            "term": rt.term,
            "commit_index": rt.commit_index,
            "applied_index": rt.applied_index,
            "last_index": rt.last_index,
            "is_leader": 1 if rt.role == Role.LEADER else 0,
        }

    def metrics_registry(self) -> CollectorRegistry:
        return self.runtime.metrics.registry


def _batch_ops(ops: Sequence[tuple[bytes, bytes | None]]) -> list[tuple[int, bytes, bytes]]:
    """A batch's (key, value or None) as records to encode; refuses an empty batch."""
    encoded = [
        (OP_DELETE, bytes(k), b"") if v is None else (OP_PUT, bytes(k), bytes(v)) for k, v in ops
    ]
    if not encoded:
        raise InvalidArgumentError("a batch needs at least one operation")
    return encoded
