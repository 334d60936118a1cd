"""Prometheus metrics of a node: counters the loop bumps as plain ints, exported at scrape time.

The loop thread increments ints (no lock, no label lookup on the hot path); a Collector reads them
when /metrics is scraped. Only the fsync histogram is a prometheus_client object (one observe per
Ready).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

_FSYNC_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class NodeMetrics:
    """Counters of one node's Raft loop, and the registry that exports them."""

    def __init__(self, node_id: int, peers: Iterable[int]) -> None:
        self.node_id = node_id
        self.proposals = 0
        self.committed_entries = 0
        self.read_index_requests = 0
        self.leader_changes = 0
        self.malformed = 0
        self.sent: dict[int, int] = {peer: 0 for peer in peers}
        self.send_dropped: dict[int, int] = {peer: 0 for peer in self.sent}
        self.received: dict[int, int] = {peer: 0 for peer in self.sent}
        self.registry = CollectorRegistry(auto_describe=True)
        self.fsync_seconds = Histogram(
            "scribe_raft_fsync_seconds",
            "Duration of the one fsync per Raft Ready (hard state and entries)",
            buckets=_FSYNC_BUCKETS_S,
            registry=self.registry,
        )
        self._gauges: Callable[[], dict[str, Any]] = dict

    def watch(self, gauges: Callable[[], dict[str, Any]]) -> None:
        """Gauges read at scrape time: term, commit_index, applied_index, last_index, is_leader."""
        self._gauges = gauges
        self.registry.register(_Collector(self))


class _Collector(Collector):
    def __init__(self, metrics: NodeMetrics) -> None:
        self._m = metrics

    def collect(self):
        m = self._m
        for name, text, value in (
            ("scribe_raft_proposals", "Entries proposed through this node", m.proposals),
            ("scribe_raft_committed_entries", "Committed entries applied", m.committed_entries),
            ("scribe_raft_read_index_requests", "ReadIndex requests issued", m.read_index_requests),
            ("scribe_raft_leader_changes", "Times this node became leader", m.leader_changes),
            ("scribe_raft_malformed_frames", "Frames dropped as malformed", m.malformed),
        ):
            counter = CounterMetricFamily(name, text)
            counter.add_metric([], value)
            yield counter
        for name, text, table in (
            ("scribe_raft_messages_sent", "Raft messages sent, per peer", m.sent),
            ("scribe_raft_messages_dropped", "Raft messages the transport refused", m.send_dropped),
            ("scribe_raft_messages_received", "Raft messages received, per peer", m.received),
        ):
            counter = CounterMetricFamily(name, text, labels=["peer"])
            for peer, value in sorted(table.items()):
                counter.add_metric([str(peer)], value)
            yield counter
        for name, value in m._gauges().items():
            gauge = GaugeMetricFamily(f"scribe_raft_{name}", f"Raft {name.replace('_', ' ')}")
            gauge.add_metric([], value)
            yield gauge
