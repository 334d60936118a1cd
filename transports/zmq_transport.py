"""ZeroMQ transports: "tcp" and "ipc" (ROUTER/DEALER, pyzmq with asyncio).

Each node binds one ROUTER socket and connects one DEALER per peer. A DEALER
carries a routing identity derived from its node id; the ROUTER prefixes every
incoming message with the identity of the connection it came from, and
`node_id_from_identity` turns it back into the sender id. That function is the
only place the sender id is derived.

With CurveKeys (transports/curve.py) every link is encrypted, the ROUTER accepts
connections from cluster keys only, and a message whose routing identity names
another node than the key that sent it (the connection's ZAP User-Id) is dropped.

Frames only ever flow DEALER -> ROUTER: a reply travels over the replier's own
DEALER, so each direction of a link is one independent ZeroMQ pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import struct
from collections.abc import Mapping

import zmq
import zmq.asyncio

from transports import curve
from transports.base import Deliver, FrameLike, PeerAddress, Transport
from transports.errors import (
    TransportBindError,
    TransportClosedError,
    TransportConfigError,
)
from transports.faults import FaultFilter
from transports.limits import TransportLimits
from transports.naming import ipc_socket_path

# Identities starting with a zero byte are reserved by ZeroMQ; ours start with "N".
_IDENTITY = struct.Struct(">cI")
_IDENTITY_TAG = b"N"

# Frames received back to back without going through asyncio before the receiver yields once to
# the event loop (so a flood of frames cannot starve the loop's other tasks).
_RECV_BURST_FRAMES_MAX = 64

# Frames at least this large are handed to ZeroMQ without a copy.
_ZERO_COPY_BYTES_MIN = 64 * 1024


def identity_for(node_id: int) -> bytes:
    """The routing identity a node's DEALER sockets present to their peers."""
    return _IDENTITY.pack(_IDENTITY_TAG, node_id)


def node_id_from_identity(identity: bytes) -> int | None:
    """The sender id carried by a routing identity, or None when it is not one of ours."""
    if len(identity) != _IDENTITY.size:
        return None
    tag, node_id = _IDENTITY.unpack(identity)
    if tag != _IDENTITY_TAG or node_id <= 0:
        return None
    return node_id


def _tcp_endpoint(host: str, port: int) -> tuple[str, bool]:
    """A tcp:// endpoint for a host (IP literal or name) and whether it is IPv6."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        # libzmq binds to interface names or IP literals only: resolve names here.
        try:
            ip = ipaddress.ip_address(
                socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
            )
        except (OSError, IndexError) as exc:
            raise TransportConfigError(f"cannot resolve raft host {host!r}: {exc}") from exc
    if ip.version == 6:
        return f"tcp://[{ip}]:{port}", True
    return f"tcp://{ip}:{port}", False


class ZmqTransport(Transport):
    def __init__(
        self,
        kind: str,
        node_id: int,
        peers: Mapping[int, PeerAddress],
        *,
        run_dir: str,
        limits: TransportLimits,
        faults: FaultFilter | None = None,
        curve_keys: curve.CurveKeys | None = None,
    ) -> None:
        super().__init__(node_id, peers, limits, faults)
        if kind not in ("tcp", "ipc"):
            raise TransportConfigError(f"ZmqTransport kind must be 'tcp' or 'ipc', got {kind!r}")
        self.kind = kind
        if curve_keys is not None:
            curve.require_curve()
            if curve_keys.node_id != node_id:
                raise TransportConfigError(
                    f"curve keys of node {curve_keys.node_id} given to node {node_id}"
                )
            missing = sorted(set(self.peers) - set(curve_keys.peer_keys))
            if missing:
                raise TransportConfigError(
                    f"node {node_id}: no public curve key for peers {missing}"
                )
        self._curve = curve_keys
        self._authenticator: curve.ZapHandler | None = None
        # Messages dropped because their routing identity names another node than their key
        self.dropped_unauthenticated = 0
        self._run_dir = os.fspath(run_dir)
        # Endpoints are computed now, so a bad address fails at construction.
        self._bind_endpoint, self._bind_ipv6 = self._endpoint(node_id)
        self._peer_endpoints = {p: self._endpoint(p) for p in self.peers}
        self._ipc_path = ipc_socket_path(self._run_dir, node_id) if kind == "ipc" else None
        self._context: zmq.asyncio.Context | None = None
        self._router: zmq.asyncio.Socket | None = None
        self._router_now: zmq.Socket | None = None  # the same socket, for non-blocking receives
        self._recv_burst = 0
        self._dealers: dict[int, zmq.Socket] = {}
        self._pending_recv: asyncio.Future | None = None
        self._reader_loop: asyncio.AbstractEventLoop | None = None
        self._reader_fd: int | None = None
        self._bound = False

    def _endpoint(self, node_id: int) -> tuple[str, bool]:
        if self.kind == "ipc":
            return "ipc://" + ipc_socket_path(self._run_dir, node_id), False
        address = self.own_address if node_id == self.node_id else self.peers[node_id]
        if address is None:
            raise TransportConfigError(
                f"tcp transport of node {node_id}: the peer table has no address for this node"
            )
        return _tcp_endpoint(address.host, address.raft_port)

    async def start(self) -> None:
        self._check_startable()
        limits = self.limits
        context = zmq.asyncio.Context(io_threads=1)
        self._context = context
        try:
            if self._curve is not None:
                # The ZAP handler must be listening before the ROUTER accepts a connection
                self._authenticator = curve.ZapHandler(context, self._curve)
                self._authenticator.start()
            router = context.socket(zmq.ROUTER)
            self._router = router
            self._router_now = zmq.Socket.shadow(router.underlying)
            router.setsockopt(zmq.LINGER, 0)
            router.setsockopt(zmq.RCVHWM, limits.recv_queue_frames_max)
            # A restarted peer reconnects with the same identity: it takes over the route.
            router.setsockopt(zmq.ROUTER_HANDOVER, 1)
            # A peer sending an oversize message is disconnected instead of buffered.
            router.setsockopt(zmq.MAXMSGSIZE, limits.frame_bytes_max)
            router.setsockopt(zmq.IPV6, 1 if self._bind_ipv6 else 0)
            self._set_heartbeats(router)
            if self._curve is not None:
                curve.configure_server(router, self._curve)
            try:
                router.bind(self._bind_endpoint)
                self._bound = True
            except zmq.ZMQError as exc:
                raise TransportBindError(
                    f"node {self.node_id}: cannot bind {self._bind_endpoint}: {exc}"
                ) from exc
            for peer_id, (endpoint, ipv6) in self._peer_endpoints.items():
                # Plain (synchronous) sockets: send() uses NOBLOCK and never awaits.
                dealer = context.socket(zmq.DEALER, socket_class=zmq.Socket)
                self._dealers[peer_id] = dealer
                dealer.setsockopt(zmq.ROUTING_ID, identity_for(self.node_id))
                dealer.setsockopt(zmq.LINGER, 0)
                dealer.setsockopt(zmq.SNDHWM, limits.send_queue_frames_max)
                # Queue only on completed connections: frames to a down peer are refused
                # at once (EAGAIN -> False) instead of piling up.
                dealer.setsockopt(zmq.IMMEDIATE, 1)
                dealer.setsockopt(zmq.RECONNECT_IVL, limits.reconnect_interval_ms)
                dealer.setsockopt(zmq.RECONNECT_IVL_MAX, limits.reconnect_interval_ms)
                dealer.setsockopt(zmq.IPV6, 1 if ipv6 else 0)
                self._set_heartbeats(dealer)
                if self._curve is not None:
                    curve.configure_client(dealer, self._curve, peer_id)
                dealer.connect(endpoint)
        except BaseException:
            self._release()
            raise
        self._started = True

    def _set_heartbeats(self, sock: zmq.Socket) -> None:
        sock.setsockopt(zmq.HEARTBEAT_IVL, self.limits.heartbeat_interval_ms)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, self.limits.heartbeat_timeout_ms)
        sock.setsockopt(zmq.HEARTBEAT_TTL, self.limits.heartbeat_timeout_ms)

    def _send_frame(self, to_id: int, frame: FrameLike, size: int) -> bool:
        try:
            # Zero-copy only for immutable bytes: ZeroMQ reads the buffer later, from its
            # I/O thread, and a caller may reuse a bytearray right after send().
            zero_copy = size >= _ZERO_COPY_BYTES_MIN and isinstance(frame, bytes)
            self._dealers[to_id].send(frame, zmq.NOBLOCK, copy=not zero_copy)
        except zmq.Again:
            return False
        return True

    async def _recv_frame(self) -> tuple[int, bytes]:
        while True:
            router = self._router
            if self._closed or router is None:
                raise TransportClosedError(
                    f"{self.kind} transport of node {self.node_id} is closed"
                )
            if self._recv_burst >= _RECV_BURST_FRAMES_MAX:
                self._recv_burst = 0
                await asyncio.sleep(0)  # the loop's other tasks get their turn
                continue
            # With curve, frames are kept as zmq.Frame to read their User-Id property.
            parts = self._recv_now()
            if parts is None:
                self._recv_burst = 0
                future = router.recv_multipart(copy=self._curve is None)
                self._pending_recv = future
                try:
                    parts = await future
                except (asyncio.CancelledError, zmq.ZMQError) as exc:
                    if self._closed:
                        raise TransportClosedError(
                            f"{self.kind} transport of node {self.node_id} closed while receiving"
                        ) from exc
                    raise
                finally:
                    self._pending_recv = None
            received = self._unpack(parts)
            if received is not None:
                return received

    def _unpack(self, parts: list) -> tuple[int, bytes] | None:
        """(sender id, payload) of a received message, or None (counted) when it must be dropped."""
        if len(parts) != 2:
            self.stats.dropped_malformed += 1
            return None
        if self._curve is not None:
            identity, payload = parts[0].bytes, parts[1]
            from_id = node_id_from_identity(identity)
            if from_id is None or from_id not in self.peers:
                self.stats.dropped_malformed += 1
                return None
            if payload.get("User-Id") != str(from_id):
                # A member's key speaking as another member: never deliver it.
                self.dropped_unauthenticated += 1
                return None
            return from_id, payload.bytes
        from_id = node_id_from_identity(parts[0])
        if from_id is None or from_id not in self.peers:
            self.stats.dropped_malformed += 1
            return None
        return from_id, parts[1]

    def _recv_now(self) -> list | None:
        """A frame already queued, taken without asyncio's future machinery (several times
        cheaper per frame under load), or None when the caller must wait for one."""
        try:
            parts = self._router_now.recv_multipart(zmq.NOBLOCK, copy=self._curve is None)
        except zmq.Again:
            return None
        self._recv_burst += 1
        return parts

    def start_receiving(self, deliver: Deliver) -> None:
        """Frames are taken from the ROUTER in a reader callback on its file descriptor: no
        future, task switch or pyzmq poller per wake-up (0.1-0.2 ms less per message on a busy
        2-core host, where a Raft round trip is two messages)."""
        self._claim_receiving(deliver)
        loop = self._reader_loop = asyncio.get_running_loop()
        self._reader_fd = self._router_now.getsockopt(zmq.FD)
        loop.add_reader(self._reader_fd, self._on_readable)
        # ZeroMQ's descriptor is edge-triggered: frames queued before now would not wake it.
        loop.call_soon(self._on_readable)

    def _on_readable(self) -> None:
        router, deliver = self._router_now, self._receiver
        copy = self._curve is None
        for _ in range(_RECV_BURST_FRAMES_MAX):
            if self._closed or router is None:
                return
            try:
                parts = router.recv_multipart(zmq.NOBLOCK, copy=copy)
            except zmq.Again:
                return  # drained: the descriptor fires again for the next frame
            received = self._unpack(parts)
            if received is not None and self._accept(*received):
                deliver(*received)
            # Drained? Asked of ZMQ_EVENTS (2-4 us, and it re-arms the edge-triggered descriptor)
            # rather than learned from a recv that raises zmq.Again (18-20 us, mostly building the
            # exception), which would run between every frame and the Raft step it triggers.
            if self._closed or not router.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                return
        # A burst's worth taken: the loop's other callbacks go first, then the rest (the
        # descriptor does not fire again for frames already queued).
        self._reader_loop.call_soon(self._on_readable)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        pending = self._pending_recv
        if pending is not None and not pending.done():
            pending.cancel()
        if self._reader_fd is not None:
            self._reader_loop.remove_reader(self._reader_fd)
            self._reader_fd = None
        self._release()

    def _release(self) -> None:
        for dealer in self._dealers.values():
            dealer.close(linger=0)
        self._dealers.clear()
        self._router_now = None  # a shadow: closing the router closes it
        if self._router is not None:
            self._router.close(linger=0)
            self._router = None
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None
        if self._context is not None:
            self._context.term()
            self._context = None
        # libzmq leaves the ipc socket file behind on close; remove what we bound.
        if self._ipc_path is not None and self._bound:
            self._bound = False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._ipc_path)
