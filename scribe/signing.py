"""Signed tree heads: the node's Ed25519 key and the signature over a tree head (DESIGN §2).

    signed message = u64be(tree_size) || root (32 bytes) || u64be(ts_ms)

A node keeps one private key in `<data_dir>/node.key` (PKCS#8 PEM, mode 0600), created on first
start and loaded after. Public keys and signatures travel as lowercase hex of their raw bytes
(32 and 64 bytes).
"""

from __future__ import annotations

import logging
import os
import stat
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import InvalidArgumentError, ScribeError

log = logging.getLogger("scribe.signing")

KEY_FILE = "node.key"
KEY_FILE_MODE = 0o600
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
ROOT_BYTES = 32
U64_MAX = (1 << 64) - 1
_U64 = struct.Struct(">Q")


class KeyFileError(ScribeError):
    """The node's key file exists but cannot be read as an Ed25519 private key."""


@dataclass(frozen=True)
class SignedTreeHead:
    """A tree head and the node's signature over it; `to_json` is the /tree/head body."""

    tree_size: int
    root: bytes
    ts_ms: int
    signature: bytes
    public_key: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "ts_ms": self.ts_ms,
            "signature": self.signature.hex(),
            "public_key": self.public_key.hex(),
        }

    @classmethod
    def from_json(cls, doc: Any) -> SignedTreeHead:
        """Parse a /tree/head body; raises InvalidArgumentError naming the bad field."""
        if not isinstance(doc, dict):
            raise InvalidArgumentError("a signed tree head must be a JSON object")
        for name in ("tree_size", "ts_ms"):
            value = doc.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= U64_MAX:
                raise InvalidArgumentError(f"signed tree head: {name} must be a u64, got {value!r}")
        return cls(
            tree_size=doc["tree_size"],
            root=hex_field(doc, "root", ROOT_BYTES, "signed tree head"),
            ts_ms=doc["ts_ms"],
            signature=hex_field(doc, "signature", SIGNATURE_BYTES, "signed tree head"),
            public_key=hex_field(doc, "public_key", PUBLIC_KEY_BYTES, "signed tree head"),
        )

    def verify(self) -> bool:
        """Is the signature valid for this head under its own public key?"""
        return verify_tree_head_signature(
            self.public_key.hex(), self.tree_size, self.root, self.ts_ms, self.signature.hex()
        )


def hex_field(doc: dict[str, Any], name: str, size: int, where: str) -> bytes:
    """doc[name] as bytes from lowercase hex of exactly `size` bytes."""
    text = doc.get(name)
    if not isinstance(text, str) or len(text) != 2 * size:
        raise InvalidArgumentError(f"{where}: {name} must be {size} bytes of hex, got {text!r}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InvalidArgumentError(f"{where}: {name} is not hex: {text!r}") from None


def tree_head_message(tree_size: int, root: bytes, ts_ms: int) -> bytes:
    """The exact bytes a tree head signature covers."""
    if (
        not isinstance(tree_size, int)
        or isinstance(tree_size, bool)
        or not 0 <= tree_size <= U64_MAX
    ):
        raise InvalidArgumentError(f"tree_size must be a u64, got {tree_size!r}")
    if not isinstance(ts_ms, int) or isinstance(ts_ms, bool) or not 0 <= ts_ms <= U64_MAX:
        raise InvalidArgumentError(f"ts_ms must be a u64, got {ts_ms!r}")
    if not isinstance(root, (bytes, bytearray)) or len(root) != ROOT_BYTES:
        raise InvalidArgumentError(f"root must be {ROOT_BYTES} bytes")
    return _U64.pack(tree_size) + bytes(root) + _U64.pack(ts_ms)


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def sign_tree_head(
    key: Ed25519PrivateKey, tree_size: int, root: bytes, ts_ms: int
) -> SignedTreeHead:
    """Sign u64be(tree_size) || root || u64be(ts_ms) with the node's key."""
    signature = key.sign(tree_head_message(tree_size, root, ts_ms))
    return SignedTreeHead(tree_size, bytes(root), ts_ms, signature, public_key_bytes(key))


def verify_tree_head_signature(
    public_key_hex: str, tree_size: int, root: bytes, ts_ms: int, signature_hex: str
) -> bool:
    """Does `signature_hex` sign this tree head under `public_key_hex`? Never raises on bad input."""
    try:
        public = Ed25519PublicKey.from_public_bytes(_strict_hex(public_key_hex, PUBLIC_KEY_BYTES))
        signature = _strict_hex(signature_hex, SIGNATURE_BYTES)
        message = tree_head_message(tree_size, root, ts_ms)
    except (ValueError, TypeError):  # InvalidArgumentError is a ValueError
        return False
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _strict_hex(text: object, size: int) -> bytes:
    if not isinstance(text, str) or len(text) != 2 * size:
        raise ValueError(f"expected {size} bytes of hex")
    return bytes.fromhex(text)


def load_or_create_key(data_dir: str) -> Ed25519PrivateKey:
    """The node's signing key from `<data_dir>/node.key`, created (atomically, mode 0600) if absent.

    Creation writes a temporary file and hard-links it into place, so two processes starting at
    once end up with the same key and a crash never leaves a half-written key file.
    """
    path = os.path.join(data_dir, KEY_FILE)
    if not os.path.exists(path):
        os.makedirs(data_dir, exist_ok=True)
        _create_key_file(path)
    return _load_key_file(path)


def _create_key_file(path: str) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process created the key first: keep theirs
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    dir_fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    log.info("created the node's signing key %s", path)


def _load_key_file(path: str) -> Ed25519PrivateKey:
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        log.warning("%s is readable by others (mode %o): it should be 0600", path, mode)
    with open(path, "rb") as f:
        data = f.read()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key
