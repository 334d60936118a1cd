"""Names of the files, sockets and shared-memory segments a transport uses.

Everything is derived from run_dir (the cluster directory), so several
clusters on one host never collide, and from node ids.
"""

from __future__ import annotations

import hashlib
import os

from transports.errors import TransportConfigError
from transports.limits import UNIX_SOCKET_PATH_BYTES_MAX

# Every shared-memory segment of this package starts with this prefix
# (they appear as /dev/shm/<prefix>...).
SHM_NAME_PREFIX = "scribe-"


def run_dir_key(run_dir: str) -> str:
    """A short stable key for a run directory: the same directory gives the same key."""
    real = os.path.realpath(os.fspath(run_dir))
    return hashlib.sha256(real.encode()).hexdigest()[:12]


def ipc_socket_path(run_dir: str, node_id: int) -> str:
    path = os.path.join(os.path.realpath(run_dir), f"raft-node{node_id}.sock")
    if len(os.fsencode(path)) > UNIX_SOCKET_PATH_BYTES_MAX:
        raise TransportConfigError(
            f"ipc socket path {path!r} is longer than {UNIX_SOCKET_PATH_BYTES_MAX} bytes; "
            "use a shorter run_dir"
        )
    return path


def shm_ring_name(run_dir: str, sender_id: int, receiver_id: int) -> str:
    """Name of the ring that carries frames from sender_id to receiver_id."""
    return f"{SHM_NAME_PREFIX}{run_dir_key(run_dir)}-{sender_id}to{receiver_id}"


def shm_name_prefix(run_dir: str) -> str:
    return f"{SHM_NAME_PREFIX}{run_dir_key(run_dir)}-"


def shm_wake_address(run_dir: str, node_id: int) -> bytes:
    """Linux abstract-namespace address of a node's wake-up datagram socket.

    Abstract sockets leave no file behind, even after SIGKILL, and their names
    have no path-length problem; the run_dir key keeps clusters apart.
    """
    return f"\0scribe-wake-{run_dir_key(run_dir)}-{node_id}".encode()
