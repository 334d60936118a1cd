"""A Scribe Ledger node: the Raft runtime loop, its HTTP Backend, and `python -m scribe.node`.

node = Node(load_config("config-node1.toml"))
await node.serve()          # until node.request_stop()
"""

from scribe.node.backend import RaftBackend
from scribe.node.metrics import NodeMetrics
from scribe.node.node import Node, NodeStartError, OpenedLog, open_ledger_log, raft_config
from scribe.node.runtime import NodeRuntime, StateLog

__all__ = [
    "Node",
    "NodeMetrics",
    "NodeRuntime",
    "NodeStartError",
    "OpenedLog",
    "RaftBackend",
    "StateLog",
    "open_ledger_log",
    "raft_config",
]
