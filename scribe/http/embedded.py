"""LedgerBackend: the HTTP API over one embedded scribe.Ledger (a single node, always the leader).

Durability: a write is answered only after a flush() that covers it. Concurrent writers share
flushes (group commit): while one thread flushes, the others queue; the next flush covers all of
them, so N concurrent writes cost about one fsync instead of N.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from scribe.errors import OutcomeUnknownError
from scribe.records import Record, Version

from .backend import (
    ROLE_LEADER,
    Backend,
    Consistency,
    Entry,
    Health,
    LeaderInfo,
    Member,
    WriteResult,
)
from .verifiable import VerifiableBackend

# A single node is the leader of one everlasting term.
_TERM = 1
_FLUSH_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class _LedgerCollector(Collector):
    """Gauges read from the ledger at scrape time."""

    def __init__(self, backend: LedgerBackend):
        self._backend = backend

    def collect(self):
        records = GaugeMetricFamily("scribe_ledger_records", "Records in the ledger (tree size)")
        records.add_metric([], self._backend.record_count())
        keys = GaugeMetricFamily("scribe_ledger_keys", "Live keys in the ledger")
        keys.add_metric([], len(self._backend.ledger))
        return [records, keys]


class LedgerBackend(VerifiableBackend, Backend):
    """A Backend over one scribe.Ledger; `index` is seq + 1 (one log entry per record).

    The ledger is thread-safe (DESIGN §3), so reads go straight to it. Tree heads are signed with
    the key in `key_dir` (default: the ledger's directory), created on first use.
    """

    def __init__(
        self,
        ledger: Any,
        node_id: int = 1,
        *,
        host: str = "127.0.0.1",
        client_port: int | None = None,
        key_dir: str | None = None,
    ):
        self.ledger = ledger
        self.node_id = node_id
        self._host = host
        self._client_port = client_port
        # Writers take _write_lock only to append; flushes run outside it (group commit).
        self._write_lock = threading.Lock()
        self._durable = threading.Condition()
        self._flushing = False
        self._written_seq = -1  # newest seq appended through this backend
        self._durable_seq = -1  # newest seq known flushed
        self._registry = CollectorRegistry(auto_describe=True)
        self._flush_seconds = Histogram(
            "scribe_ledger_flush_seconds",
            "Duration of ledger flushes (fsync) behind writes",
            buckets=_FLUSH_BUCKETS_S,
            registry=self._registry,
        )
        self._written = Counter(
            "scribe_ledger_written_records",
            "Records written through the API",
            registry=self._registry,
        )
        self._registry.register(_LedgerCollector(self))
        self.init_verification(key_dir if key_dir is not None else ledger.path, prover=ledger)

    # ---- writes ------------------------------------------------------------------------------

    def _write(self, append, count: int) -> WriteResult:
        with self._write_lock:
            seq = append()
            self._written_seq = max(self._written_seq, seq)
        self._written.inc(count)
        self._wait_durable(seq)
        return WriteResult(seq=seq, index=seq + 1)

    def _wait_durable(self, seq: int) -> None:
        """Return once a flush that started after `seq` was appended has completed."""
        with self._durable:
            while self._durable_seq < seq:
                if not self._flushing:
                    break
                self._durable.wait()
            else:
                return
            self._flushing = True
            with self._write_lock:
                target = self._written_seq  # everything appended so far is covered by this flush
        started = time.perf_counter()
        try:
            self.ledger.flush()
        except Exception as exc:
            with self._durable:
                self._flushing = False
                self._durable.notify_all()
            # The record is in the ledger but may not be on disk: a definite failure would lie.
            raise OutcomeUnknownError(f"the write was applied but its flush failed: {exc}") from exc
        self._flush_seconds.observe(time.perf_counter() - started)
        with self._durable:
            self._flushing = False
            self._durable_seq = max(self._durable_seq, target)
            self._durable.notify_all()

    def ensure_durable(self, size: int) -> None:
        """Flush (shared with concurrent writers) unless records 0..size-1 are known durable."""
        if size <= 0:
            return
        with self._write_lock:
            # Records may have been appended to the ledger directly, not through this backend.
            self._written_seq = max(self._written_seq, size - 1)
        self._wait_durable(size - 1)

    def put(self, key: bytes, value: bytes) -> WriteResult:
        return self._write(lambda: self.ledger.put(key, value), 1)

    def delete(self, key: bytes) -> WriteResult:
        return self._write(lambda: self.ledger.delete(key), 1)

    def batch(self, ops: Sequence[tuple[bytes, bytes | None]]) -> WriteResult:
        ops = list(ops)
        return self._write(lambda: self.ledger.apply_batch(ops), len(ops))

    # ---- reads: one node, so every read is linearizable ---------------------------------------

    def get(self, key: bytes, consistency: Consistency = "linearizable") -> Entry | None:
        found = self.ledger.get_with_seq(key)
        if found is None:
            return None
        seq, value = found
        return Entry(bytes(value), seq)

    def range(
        self,
        start: bytes | None,
        end: bytes | None,
        prefix: bytes | None,
        limit: int,
        consistency: Consistency = "linearizable",
    ) -> list[tuple[bytes, bytes]]:
        return list(itertools.islice(self.ledger.scan(start=start, end=end, prefix=prefix), limit))

    def history(self, key: bytes, consistency: Consistency = "linearizable") -> list[Version]:
        return list(self.ledger.history(key))

    def records(
        self, start: int, limit: int, consistency: Consistency = "linearizable"
    ) -> list[Record]:
        return list(self.ledger.records(start, start + limit))

    # ---- the node ----------------------------------------------------------------------------

    def record_count(self) -> int:
        return self.ledger.tree_head().size

    def _self_member(self) -> Member:
        return Member(self.node_id, self._host, self._client_port, None, ROLE_LEADER)

    def health(self) -> Health:
        return Health(node_id=self.node_id, role=ROLE_LEADER, leader_id=self.node_id, term=_TERM)

    def members(self) -> list[Member]:
        return [self._self_member()]

    def leader(self) -> LeaderInfo:
        return LeaderInfo(leader_id=self.node_id, term=_TERM, member=self._self_member())

    def status(self) -> Mapping[str, Any]:
        records = self.record_count()
        return {
            "node_id": self.node_id,
            "role": ROLE_LEADER,
            "leader_id": self.node_id,
            "term": _TERM,
            "commit_index": records,
            "applied_index": records,
            "records": records,
            "keys": len(self.ledger),
            "mode": "embedded",
        }

    def metrics_registry(self) -> CollectorRegistry:
        return self._registry
