"""Every limit of the transports, in one place, with units in the names.

A node builds one `TransportLimits` (usually the defaults) and passes it to
`transports.create`. The defaults suit a 3-5 node cluster on one host.
"""

from __future__ import annotations

import dataclasses

from transports.errors import TransportConfigError

KIB = 1024
MIB = 1024 * KIB

# Unix socket paths (sockaddr_un.sun_path) hold 108 bytes including the NUL.
UNIX_SOCKET_PATH_BYTES_MAX = 107


@dataclasses.dataclass(frozen=True)
class TransportLimits:
    # Largest frame send() accepts; larger frames are refused with False.
    frame_bytes_max: int = 64 * MIB
    # Frames queued towards one peer before send() starts refusing (ZeroMQ SNDHWM,
    # the shm backlog once the ring is full, the memory hub's per-link inbox).
    send_queue_frames_max: int = 1024
    # Bytes queued towards one peer outside ZeroMQ (shm backlog, memory inbox).
    send_queue_bytes_max: int = 256 * MIB
    # Frames ZeroMQ buffers on the receiving side before it stops reading (RCVHWM).
    recv_queue_frames_max: int = 4096
    # Reconnect interval of a link to a peer that is down or restarting.
    reconnect_interval_ms: int = 100
    # ZMTP heartbeats: a silent TCP connection is declared dead after the timeout.
    heartbeat_interval_ms: int = 1000
    heartbeat_timeout_ms: int = 3000
    # Size of one shared-memory ring (one per directed link). Pages are touched
    # lazily, so an idle link costs little.
    shm_ring_bytes: int = 8 * MIB
    # Frames are cut into chunks of at most this size inside a ring, so frames
    # larger than the ring still pass (streamed as the receiver drains).
    shm_chunk_bytes_max: int = 1 * MIB
    # While a shm backlog waits for ring space, retry at this interval even
    # without a wake-up (a safety net; wake-ups normally come first).
    shm_backlog_retry_ms: int = 5

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise TransportConfigError(
                    f"TransportLimits.{field.name} must be a positive int, got {value!r}"
                )
        if self.shm_ring_bytes % 16 != 0 or self.shm_ring_bytes < 4 * KIB:
            raise TransportConfigError(
                f"TransportLimits.shm_ring_bytes must be a multiple of 16 and at least 4096, "
                f"got {self.shm_ring_bytes}"
            )
        if self.shm_chunk_bytes_max > self.shm_ring_bytes // 4:
            # A chunk must fit the ring with room to spare, or a full-size chunk
            # could wait forever behind a partly drained ring.
            object.__setattr__(self, "shm_chunk_bytes_max", self.shm_ring_bytes // 4)
        if self.frame_bytes_max > 2**31:
            raise TransportConfigError("TransportLimits.frame_bytes_max must be at most 2 GiB")


DEFAULT_LIMITS = TransportLimits()
