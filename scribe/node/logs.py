"""Node logging: every line carries the node id, its Raft role and term (to stderr, or a file)."""

from __future__ import annotations

import logging
import sys
from typing import Any

LOG_FORMAT = (
    "%(asctime)s node%(node_id)s %(raft_role)s t%(raft_term)s %(levelname)s %(name)s: %(message)s"
)


class RaftContextFilter(logging.Filter):
    """Stamps records with the node's current role and term, read from the runtime if attached."""

    def __init__(self, node_id: int) -> None:
        super().__init__()
        self.node_id = node_id
        self.runtime: Any = None

    def filter(self, record: logging.LogRecord) -> bool:
        record.node_id = self.node_id
        runtime = self.runtime
        if runtime is None:
            record.raft_role, record.raft_term = "starting", "-"
        else:
            record.raft_role, record.raft_term = runtime.role.name.lower(), runtime.term
        return True


def setup_logging(
    node_id: int, level: str = "INFO", log_file: str | None = None
) -> RaftContextFilter:
    """Configure the root logger once for a node process; returns the filter to attach a runtime."""
    handler: logging.Handler
    if log_file:
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    context = RaftContextFilter(node_id)
    handler.addFilter(context)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Waitress logs every queue backlog at WARNING; that is load, not a fault.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    return context
