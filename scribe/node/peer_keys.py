"""The CurveZMQ keys of a node's peer links, from its config's [security] section.

tcp and ipc links use them (transports.curve); shm is a local-only transport whose segments are
created mode 0600, so it is protected by file permissions and does not use keys.
"""

from __future__ import annotations

import logging

from scribe.config import NodeConfig
from transports.curve import CurveKeys, load_keys

CURVE_TRANSPORTS = ("tcp", "ipc")
log = logging.getLogger("scribe.node")


def curve_keys_for(config: NodeConfig, transport_kind: str) -> CurveKeys | None:
    """The node's keys when the config names them and the transport uses them, else None.

    Raises transports.TransportConfigError (the node does not start) when a key file is missing,
    malformed or readable by others, a member has no public key, or libzmq lacks CURVE.
    """
    security = config.security
    if not security.curve_enabled:
        return None
    if transport_kind not in CURVE_TRANSPORTS:
        log.info(
            "%s transport: curve keys unused (local-only links, 0600 shared memory)",
            transport_kind,
        )
        return None
    return load_keys(
        config.node_id,
        security.curve_secret_key_file,
        security.curve_public_keys_dir,
        [m.id for m in config.cluster.nodes],
    )
