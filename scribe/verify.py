"""`scribe verify`: check a key's proof from a node locally, trusting nobody but earlier checks.

    python -m scribe verify KEY --node URL [--state FILE] [--seq N] [--public-key HEX]

What is checked, in order (any failure: exit 1 with the reason):

1. the node's public key: `--public-key` when given; else the key pinned for this URL in the state
   file (a node whose key changed is refused, like SSH); else it is pinned now (trust on first use);
2. the signature over the served tree head;
3. the inclusion proof: the leaf hash recomputed from the record's fields, the audit path up to the
   signed root (scribe.verify_inclusion);
4. consistency: the last head trusted for this key (state file) is a prefix of the new one
   (RFC 9162 consistency proof fetched from the node); a tree that shrank is refused.

Then the new head becomes the trusted one. The state file (default ~/.scribe/verify-state.json)
holds one entry per node public key: the URLs it was seen at and the newest head verified.
Exit codes: 0 verified, 1 a check failed, 2 bad usage, unreadable state or unreachable node.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

from .client import Client, NodeUnreachableError, ResponseError
from .errors import InvalidArgumentError, KeyNotFoundError, ScribeError
from .merkle import verify_consistency, verify_inclusion
from .records import TreeHead
from .signing import PUBLIC_KEY_BYTES, SignedTreeHead

EXIT_VERIFIED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
STATE_VERSION = 1
STATE_PATH_DEFAULT = os.path.join("~", ".scribe", "verify-state.json")
_OP_NAMES = {1: "put", 2: "delete", 3: "clear"}
_VALUE_SHOWN_BYTES = 80


class VerificationFailed(ScribeError):
    """A check failed: the node served something that does not prove what it claims."""


class StateFileError(ScribeError):
    """The state file cannot be read or written."""


def short(data: bytes | str, n: int = 16) -> str:
    text = data.hex() if isinstance(data, bytes) else data
    return text[:n] + "…" if len(text) > n else text


class TrustStore:
    """The verifier's memory: pinned node keys and the newest head verified for each."""

    def __init__(self, path: str | None):
        self.path = os.path.expanduser(path) if path else None
        self._keys: dict[str, dict[str, Any]] = {}
        if self.path and os.path.exists(self.path):
            self._load()

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError) as exc:
            raise StateFileError(f"cannot read the state file {self.path}: {exc}") from None
        if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
            raise StateFileError(f"{self.path} is not a version {STATE_VERSION} state file")
        keys = doc.get("keys")
        if not isinstance(keys, dict):
            raise StateFileError(f"{self.path}: 'keys' must be an object")
        for pk, entry in keys.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("urls"), list):
                raise StateFileError(f"{self.path}: the entry of key {pk} is malformed")
            if entry.get("head") is not None:
                try:
                    SignedTreeHead.from_json(entry["head"])
                except InvalidArgumentError as exc:
                    raise StateFileError(f"{self.path}: key {pk}: {exc}") from None
        self._keys = keys

    def save(self) -> None:
        """Write the whole state atomically (temporary file, fsync, rename)."""
        if not self.path:
            return
        directory = os.path.dirname(self.path) or "."
        try:
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".verify-state.", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"version": STATE_VERSION, "keys": self._keys}, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise StateFileError(f"cannot write the state file {self.path}: {exc}") from None

    def pinned_key(self, url: str) -> str | None:
        """The public key (hex) pinned for this node URL, if any."""
        for pk, entry in self._keys.items():
            if url in entry["urls"]:
                return pk
        return None

    def pin(self, public_key_hex: str, url: str) -> None:
        """Trust this key for this URL from now on (moving the URL off any older key)."""
        for entry in self._keys.values():
            if url in entry["urls"]:
                entry["urls"].remove(url)
        entry = self._keys.setdefault(
            public_key_hex,
            {"urls": [], "head": None, "pinned_ts_ms": time.time_ns() // 1_000_000},
        )
        entry["urls"].append(url)

    def head(self, public_key_hex: str) -> SignedTreeHead | None:
        entry = self._keys.get(public_key_hex)
        if entry is None or entry.get("head") is None:
            return None
        return SignedTreeHead.from_json(entry["head"])

    def heads(self) -> list[tuple[str, SignedTreeHead]]:
        """(a URL the key was seen at, its newest trusted head) for every key with a head."""
        out = []
        for pk, entry in self._keys.items():
            head = self.head(pk)
            if head is not None:
                out.append((entry["urls"][-1] if entry["urls"] else f"key {short(pk)}", head))
        return out

    def trust(self, head: SignedTreeHead) -> None:
        """Record `head` as the newest verified head of its key (never moves backwards)."""
        entry = self._keys[head.public_key.hex()]
        old = entry.get("head")
        if old is None or head.tree_size >= old["tree_size"]:
            entry["head"] = head.to_json()


def check_consistency(
    old: SignedTreeHead,
    new: SignedTreeHead,
    fetch_proof: Callable[[int, int], list[bytes]],
    old_name: str = "the trusted head",
    new_name: str = "the new head",
) -> None:
    """Raise VerificationFailed unless the tree of `old` is a prefix of the tree of `new`.

    `fetch_proof(first, second)` asks a node for the RFC 9162 consistency proof.
    """
    if old.tree_size > new.tree_size:
        raise VerificationFailed(
            f"{new_name} (size {new.tree_size}, root {new.root.hex()}) is smaller than "
            f"{old_name} (size {old.tree_size}, root {old.root.hex()}): the tree shrank"
        )
    if old.tree_size == new.tree_size:
        if old.root != new.root:
            raise VerificationFailed(
                f"two different roots for size {new.tree_size}: {old_name} has {old.root.hex()}, "
                f"{new_name} has {new.root.hex()} (a forked or rewritten ledger)"
            )
        return
    proof = fetch_proof(old.tree_size, new.tree_size)
    if not verify_consistency(old.tree_size, new.tree_size, old.root, new.root, proof):
        raise VerificationFailed(
            f"{new_name} (size {new.tree_size}, root {new.root.hex()}) is NOT consistent with "
            f"{old_name} (size {old.tree_size}, root {old.root.hex()}): the consistency proof "
            "fails, so the history was rewritten"
        )


def check_identity(
    store: TrustStore, url: str, presented: bytes, expected_hex: str | None
) -> str | None:
    """Check the node's key; returns a note to print when it was pinned now (first use)."""
    presented_hex = presented.hex()
    if expected_hex is not None:
        if presented_hex != expected_hex.lower():
            raise VerificationFailed(
                f"{url} signs with key {presented_hex}, not the expected {expected_hex.lower()}"
            )
        if store.pinned_key(url) != presented_hex:
            store.pin(presented_hex, url)
        return None
    pinned = store.pinned_key(url)
    if pinned is None:
        store.pin(presented_hex, url)
        return (
            f"TRUST ON FIRST USE: pinning public key {presented_hex} for {url}; later answers "
            "must be signed by this key (compare it with the one the operator publishes)"
        )
    if pinned != presented_hex:
        raise VerificationFailed(
            f"THE PUBLIC KEY OF {url} HAS CHANGED: pinned {pinned}, now {presented_hex}. "
            "Refusing: this may be another node or an impostor. If the change is legitimate, "
            "re-run with --public-key NEW_KEY"
        )
    return None


def check_head_signature(head: SignedTreeHead, url: str) -> None:
    if not head.verify():
        raise VerificationFailed(
            f"the tree head from {url} (size {head.tree_size}, root {head.root.hex()}) "
            "does not carry a valid signature of its key"
        )


def verify_key(
    client: Client,
    store: TrustStore,
    key: bytes,
    seq: int | None = None,
    expected_key_hex: str | None = None,
    say: Callable[[str], None] = print,
) -> str:
    """Run every check for `key` against the node; update the store; the "verified" line.

    Raises VerificationFailed (a check failed), KeyNotFoundError, NodeUnreachableError.
    """
    try:
        proof, head = client.verify(key, seq)
    except ResponseError as exc:
        raise VerificationFailed(f"the node's proof is malformed: {exc}") from None
    note = check_identity(store, client.url, head.public_key, expected_key_hex)
    if note:
        say(note)
    check_head_signature(head, client.url)
    if proof.tree_size != head.tree_size or proof.root != head.root:
        raise VerificationFailed(
            f"the proof is for size {proof.tree_size} root {proof.root.hex()} but the signed head "
            f"is for size {head.tree_size} root {head.root.hex()}"
        )
    if proof.key != key:
        raise VerificationFailed(f"the node proved key {proof.key!r}, not {key!r}")
    if seq is not None and proof.seq != seq:
        raise VerificationFailed(f"the node proved seq {proof.seq}, not {seq}")
    if not verify_inclusion(proof, TreeHead(head.tree_size, head.root, head.ts_ms)):
        raise VerificationFailed(
            f"the inclusion proof of {key!r} (seq {proof.seq}) does NOT verify against the signed "
            f"root {head.root.hex()} of size {head.tree_size}: the record or the tree was altered"
        )
    old = store.head(head.public_key.hex())
    if old is not None:
        check_consistency(
            old,
            head,
            client.consistency,
            f"the head trusted before (size {old.tree_size})",
            f"the node's head (size {head.tree_size})",
        )
    store.trust(head)
    value = proof.value[:_VALUE_SHOWN_BYTES]
    shown = (
        value.decode("utf-8", "replace") if value.isascii() else base64.b64encode(value).decode()
    )
    since = "first head trusted" if old is None else f"consistent with trusted size {old.tree_size}"
    return (
        f"verified: key={key.decode('utf-8', 'replace')!r} seq={proof.seq} "
        f"op={_OP_NAMES.get(proof.op, proof.op)} value={shown!r} in tree size={head.tree_size} "
        f"root={head.root.hex()} signed by {short(head.public_key.hex())} ({since})"
    )


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", help="the key to verify (UTF-8)")
    parser.add_argument("--node", required=True, help="node URL, e.g. http://127.0.0.1:8001")
    parser.add_argument(
        "--state",
        default=STATE_PATH_DEFAULT,
        help=f"trust state file (default {STATE_PATH_DEFAULT})",
    )
    parser.add_argument("--seq", type=int, help="verify this older version (seq) of the key")
    parser.add_argument(
        "--public-key", help="the node's Ed25519 public key (hex) instead of trust on first use"
    )
    parser.add_argument("--token", help="bearer token (only writes need one)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")


def run(args: argparse.Namespace) -> int:
    if args.seq is not None and args.seq < 0:
        print("scribe verify: --seq must be >= 0")
        return EXIT_USAGE
    if args.public_key is not None:
        try:
            if len(bytes.fromhex(args.public_key)) != PUBLIC_KEY_BYTES:
                raise ValueError
        except ValueError:
            print(f"scribe verify: --public-key must be {PUBLIC_KEY_BYTES} bytes of hex")
            return EXIT_USAGE
    try:
        store = TrustStore(args.state)
        client = Client(args.node, token=args.token, timeout_s=args.timeout)
    except (StateFileError, InvalidArgumentError) as exc:
        print(f"scribe verify: {exc}")
        return EXIT_USAGE
    key = args.key.encode("utf-8")
    try:
        with client:
            line = verify_key(client, store, key, args.seq, args.public_key)
    except VerificationFailed as exc:
        print(f"VERIFICATION FAILED: {exc}")
        return EXIT_FAILED
    except KeyNotFoundError as exc:
        print(f"VERIFICATION FAILED: {args.key!r} has no such record on {args.node} ({exc})")
        return EXIT_FAILED
    except NodeUnreachableError as exc:
        print(f"scribe verify: cannot reach the node: {exc}")
        return EXIT_USAGE
    except ScribeError as exc:
        print(f"scribe verify: the node refused the request: {exc}")
        return EXIT_USAGE
    try:
        store.save()
    except StateFileError as exc:
        print(line)
        print(f"scribe verify: {exc}")
        return EXIT_USAGE
    print(line)
    return EXIT_VERIFIED
