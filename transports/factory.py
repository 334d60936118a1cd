"""transports.create: build the transport a node's config asks for."""

from __future__ import annotations

import os
from collections.abc import Mapping

from transports.base import PeerAddress, Transport
from transports.curve import CurveKeys
from transports.errors import TransportConfigError
from transports.faults import FaultFilter
from transports.limits import DEFAULT_LIMITS, TransportLimits
from transports.memory import MemoryHub, MemoryTransport, hub_for
from transports.shm_transport import ShmTransport
from transports.zmq_transport import ZmqTransport

KINDS = ("tcp", "ipc", "shm", "memory")


def create(
    kind: str,
    node_id: int,
    peers: Mapping[int, PeerAddress],
    *,
    run_dir: str,
    limits: TransportLimits | None = None,
    faults: FaultFilter | None = None,
    hub: MemoryHub | None = None,
    curve_keys: CurveKeys | None = None,
) -> Transport:
    """A new, not yet started transport for node_id.

    peers: every node of the cluster by id (this node's own entry is allowed and,
    for tcp, required: it is the address to bind). run_dir: the cluster directory,
    shared by all nodes of one cluster and by no other cluster; ipc puts its socket
    files there, shm derives its segment names from it, memory picks its hub by it.
    curve_keys: encrypt and authenticate tcp and ipc links (transports.curve); shm and memory
    stay inside one host and one user (0600 segments), they do not use keys.
    """
    if not isinstance(run_dir, str | os.PathLike) or not os.fspath(run_dir):
        raise TransportConfigError(f"run_dir must be a non-empty path, got {run_dir!r}")
    limits = DEFAULT_LIMITS if limits is None else limits
    if kind in ("tcp", "ipc"):
        if kind == "ipc" and not os.path.isdir(run_dir):
            raise TransportConfigError(f"ipc transport: run_dir {run_dir!r} is not a directory")
        return ZmqTransport(
            kind,
            node_id,
            peers,
            run_dir=run_dir,
            limits=limits,
            faults=faults,
            curve_keys=curve_keys,
        )
    if kind == "shm":
        return ShmTransport(node_id, peers, run_dir=run_dir, limits=limits, faults=faults)
    if kind == "memory":
        hub = hub_for(run_dir) if hub is None else hub
        return MemoryTransport(node_id, peers, limits=limits, hub=hub, faults=faults)
    raise TransportConfigError(
        f"unknown transport kind {kind!r}; expected one of {', '.join(KINDS)}"
    )
