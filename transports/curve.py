"""CurveZMQ for the zmq transports: key files, and the ZAP handler that maps a key to a node id.

With keys configured, every peer link is encrypted and both ends are authenticated:

- a node's ROUTER is a CURVE server; its ZAP handler (an asyncio task in the transport's
  context, ZapHandler below) accepts a connection only when the client's long-term public key is one of the
  cluster's, and names the connection with that key's node id (the ZAP User-Id);
- a node's DEALERs are CURVE clients that know each peer's public key, so they talk only to the
  process holding that peer's secret key;
- the ZmqTransport compares the node id carried by each message's routing identity with the
  User-Id of the key that sent it, and drops the message when they differ: a node cannot speak
  for another one.

Key files are the ones `zmq.auth.create_certificates` writes: `node{i}.key` (public) in a
directory of public keys, `node{i}.key_secret` (secret, mode 0600) for the node itself.

The "shm" transport does not use these keys: it is local-only, its segments are created mode
0600 (readable and writable by the cluster's user only) and its wake-up sockets carry no data.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.asyncio
import zmq.auth
from zmq.utils import z85

from transports.errors import TransportConfigError

# The ZAP domain of peer links: the authenticator answers for this domain only.
ZAP_DOMAIN = "scribe-raft"
# Curve keys are 32 bytes, 40 characters in Z85.
CURVE_KEY_BYTES = 32
# Permission bits a secret key file must not have (group or others may read or write it).
SECRET_KEY_FORBIDDEN_MODE_BITS = stat.S_IRWXG | stat.S_IRWXO
SECRET_KEY_FILE_MODE = 0o600
PUBLIC_KEY_SUFFIX = ".key"
SECRET_KEY_SUFFIX = ".key_secret"
_PUBLIC_KEY_NAME = re.compile(r"^node(\d+)\.key$")


def require_curve() -> None:
    """Refuse to run with keys configured when this libzmq has no CURVE support."""
    if not zmq.has("curve"):
        raise TransportConfigError(
            f"CurveZMQ keys are configured but libzmq {zmq.zmq_version()} was built without "
            "CURVE support; install a pyzmq wheel with libsodium/curve, or remove the "
            "[security] curve_* keys"
        )


@dataclass(frozen=True)
class CurveKeys:
    """This node's key pair and every cluster member's public key (raw 32-byte keys)."""

    node_id: int
    public_key: bytes
    secret_key: bytes = field(repr=False)
    peer_keys: Mapping[int, bytes]  # node id -> public key; this node's own entry included

    def __post_init__(self) -> None:
        for name, key in (("public", self.public_key), ("secret", self.secret_key)):
            if len(key) != CURVE_KEY_BYTES:
                raise TransportConfigError(
                    f"node {self.node_id}: the {name} curve key is {len(key)} bytes, "
                    f"not {CURVE_KEY_BYTES}"
                )
        node_of_key: dict[bytes, int] = {}
        for node_id, key in self.peer_keys.items():
            if len(key) != CURVE_KEY_BYTES:
                raise TransportConfigError(f"node {node_id}: its public curve key is malformed")
            if key in node_of_key:
                raise TransportConfigError(
                    f"nodes {node_of_key[key]} and {node_id} have the same public curve key"
                )
            node_of_key[key] = node_id
        own = self.peer_keys.get(self.node_id)
        if own is not None and own != self.public_key:
            raise TransportConfigError(
                f"node {self.node_id}: the public key listed for this node does not match "
                "its secret key file"
            )


def _read_key_file(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    try:
        public_z85, secret_z85 = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise TransportConfigError(f"cannot read curve key file {str(path)!r}: {exc}") from None
    if secret and secret_z85 is None:
        raise TransportConfigError(f"{str(path)!r} holds no secret key (a public key file?)")
    try:
        public = z85.decode(public_z85)
        secret_raw = z85.decode(secret_z85) if secret_z85 is not None else None
    except ValueError as exc:
        raise TransportConfigError(f"{str(path)!r}: malformed Z85 key: {exc}") from None
    return public, secret_raw


def check_secret_key_mode(path: Path) -> None:
    """A secret key readable by group or others is refused, as ssh refuses such a key."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise TransportConfigError(
            f"cannot read curve secret key file {str(path)!r}: {exc}"
        ) from None
    if mode & SECRET_KEY_FORBIDDEN_MODE_BITS:
        raise TransportConfigError(
            f"curve secret key file {str(path)!r} has mode {stat.S_IMODE(mode):04o}: "
            f"it must be readable by its owner only (chmod {SECRET_KEY_FILE_MODE:o})"
        )


def load_keys(
    node_id: int, secret_key_file: Path, public_keys_dir: Path, cluster_ids: Iterable[int]
) -> CurveKeys:
    """This node's keys from its secret key file, and the public key of every cluster member
    from `public_keys_dir/node{i}.key`. A member without a key file is an error, so a typo in a
    directory never leaves a link unauthenticated."""
    require_curve()
    check_secret_key_mode(secret_key_file)
    public, secret = _read_key_file(secret_key_file, secret=True)
    if not public_keys_dir.is_dir():
        raise TransportConfigError(
            f"curve public keys directory {str(public_keys_dir)!r} is not a directory"
        )
    peer_keys: dict[int, bytes] = {}
    for member in sorted(set(cluster_ids)):
        path = public_keys_dir / f"node{member}{PUBLIC_KEY_SUFFIX}"
        if not path.is_file():
            raise TransportConfigError(
                f"no public curve key for node {member}: {str(path)!r} is missing"
            )
        peer_keys[member], _ = _read_key_file(path, secret=False)
    if secret is None:  # _read_key_file(secret=True) never returns None; explicit for -O
        raise TransportConfigError(f"{str(secret_key_file)!r} holds no secret key")
    return CurveKeys(node_id, public, secret, peer_keys)


def node_ids_in(public_keys_dir: Path) -> list[int]:
    """Node ids that have a public key file in a directory (ascending)."""
    ids = []
    for entry in public_keys_dir.iterdir():
        match = _PUBLIC_KEY_NAME.match(entry.name)
        if match:
            ids.append(int(match.group(1)))
    return sorted(ids)


def generate_keys(secret_dir: Path, public_dir: Path, node_id: int) -> tuple[Path, Path]:
    """Write a fresh key pair for node_id unless it exists: (secret file, public file).

    The secret file lands in secret_dir (made mode 0700) with mode 0600; the public one in
    public_dir, readable by all (public keys are not secrets).
    """
    require_curve()
    secret_dir.mkdir(parents=True, exist_ok=True)
    secret_dir.chmod(0o700)
    public_dir.mkdir(parents=True, exist_ok=True)
    name = f"node{node_id}"
    secret_file = secret_dir / (name + SECRET_KEY_SUFFIX)
    public_file = public_dir / (name + PUBLIC_KEY_SUFFIX)
    if secret_file.is_file() and public_file.is_file():
        return secret_file, public_file
    # create_certificates writes both files with the umask's mode: restrict it meanwhile
    previous_umask = os.umask(0o077)
    try:
        written_public, written_secret = zmq.auth.create_certificates(secret_dir, name)
    finally:
        os.umask(previous_umask)
    os.chmod(written_secret, SECRET_KEY_FILE_MODE)
    os.replace(written_public, public_file)
    os.chmod(public_file, 0o644)
    return secret_file, public_file


# ZAP (RFC 27) frames: request = version, request id, domain, address, routing id, mechanism,
# credentials...; reply = version, request id, status code, status text, user id, metadata.
ZAP_ENDPOINT = "inproc://zeromq.zap.01"
_ZAP_VERSION = b"1.0"
_ZAP_REQUEST_FRAMES = 7  # with CURVE, the one credential is the client's long-term public key


class ZapHandler:
    """The ZAP handler of one transport's context: accepts cluster keys only, and names each
    connection with the node id of its key (User-Id), which every message on it then carries.

    It answers from an asyncio task; libzmq asks it once per connection handshake.
    """

    def __init__(self, context: zmq.asyncio.Context, keys: CurveKeys) -> None:
        self._node_of_key = {key: node_id for node_id, key in keys.peer_keys.items()}
        self._socket = context.socket(zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind(ZAP_ENDPOINT)
        self._task: asyncio.Task | None = None
        self.refused = 0  # handshakes refused: a key that is not the cluster's

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._serve(), name="zap-handler")

    def reply_to(self, request: list[bytes]) -> list[bytes]:
        if len(request) < 2:
            return [_ZAP_VERSION, b"", b"400", b"malformed request", b"", b""]
        request_id = request[1]
        if len(request) != _ZAP_REQUEST_FRAMES or request[0] != _ZAP_VERSION:
            return [_ZAP_VERSION, request_id, b"400", b"malformed request", b"", b""]
        domain, mechanism, client_key = request[2], request[5], request[6]
        node_id = self._node_of_key.get(client_key)
        if domain != ZAP_DOMAIN.encode() or mechanism != b"CURVE" or node_id is None:
            self.refused += 1
            return [_ZAP_VERSION, request_id, b"400", b"not a cluster key", b"", b""]
        return [_ZAP_VERSION, request_id, b"200", b"OK", str(node_id).encode(), b""]

    async def _serve(self) -> None:
        sock = self._socket
        while True:
            request = await sock.recv_multipart()
            await sock.send_multipart(self.reply_to(request))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._socket.close(linger=0)


def configure_server(sock: zmq.Socket, keys: CurveKeys) -> None:
    """Make a ROUTER a CURVE server whose connections are checked by the ZAP domain."""
    sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN.encode())
    # Without a ZAP handler answering, refuse rather than accept every key.
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret_key)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public_key)


def configure_client(sock: zmq.Socket, keys: CurveKeys, peer_id: int) -> None:
    """Make a DEALER a CURVE client that only talks to the holder of peer_id's secret key."""
    server_key = keys.peer_keys.get(peer_id)
    if server_key is None:
        raise TransportConfigError(f"node {keys.node_id}: no public curve key for peer {peer_id}")
    sock.setsockopt(zmq.CURVE_SERVERKEY, server_key)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public_key)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret_key)
