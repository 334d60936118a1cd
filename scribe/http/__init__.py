"""The HTTP API of a node (DESIGN §7): a Flask app over a Backend, served by Waitress."""

from .app import ROUTE_NAMES, create_app
from .backend import (
    CONSISTENCY_LEVELS,
    Backend,
    Entry,
    Health,
    LeaderInfo,
    Member,
    WriteResult,
)
from .embedded import LedgerBackend
from .server import PortInUseError, ServerThread, make_server, serve, start_server
from .verifiable import RecordTree, VerifiableBackend

__all__ = [
    "CONSISTENCY_LEVELS",
    "ROUTE_NAMES",
    "Backend",
    "Entry",
    "Health",
    "LeaderInfo",
    "LedgerBackend",
    "Member",
    "PortInUseError",
    "RecordTree",
    "ServerThread",
    "VerifiableBackend",
    "WriteResult",
    "create_app",
    "make_server",
    "serve",
    "start_server",
]
