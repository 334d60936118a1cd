"""Node-to-node transports of Scribe Ledger: tcp and ipc (ZeroMQ), shm, memory.

t = transports.create("tcp", node_id, peers, run_dir=cluster_dir)
await t.start()
t.send(peer_id, frame)          # -> bool, never blocks
from_id, frame = await t.recv()
t.start_receiving(deliver)      # or: deliver(from_id, frame) called per frame (what nodes use)
await t.close()
"""

from transports.base import PeerAddress, Transport, TransportStats
from transports.errors import (
    TransportBindError,
    TransportClosedError,
    TransportConfigError,
    TransportError,
    TransportStateError,
)
from transports.factory import KINDS, create
from transports.faults import FaultFilter
from transports.limits import DEFAULT_LIMITS, TransportLimits
from transports.memory import MemoryHub
from transports.shm_transport import cleanup as shm_cleanup

__all__ = [
    "DEFAULT_LIMITS",
    "KINDS",
    "FaultFilter",
    "MemoryHub",
    "PeerAddress",
    "Transport",
    "TransportBindError",
    "TransportClosedError",
    "TransportConfigError",
    "TransportError",
    "TransportLimits",
    "TransportStateError",
    "TransportStats",
    "create",
    "shm_cleanup",
]
