"""scribe.signing: the node key file and signatures over tree heads (DESIGN §2)."""

import hashlib
import os
import stat
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from scribe.errors import InvalidArgumentError
from scribe.signing import (
    KEY_FILE,
    KeyFileError,
    SignedTreeHead,
    load_or_create_key,
    public_key_bytes,
    sign_tree_head,
    tree_head_message,
    verify_tree_head_signature,
)

ROOT = hashlib.sha256(b"some root").digest()


def test_key_is_created_once_with_mode_0600_and_loaded_after(tmp_path):
    key = load_or_create_key(str(tmp_path / "data"))
    path = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_or_create_key(str(tmp_path / "data"))
    assert public_key_bytes(again) == public_key_bytes(key)
    assert [p.name for p in (tmp_path / "data").iterdir()] == [KEY_FILE]  # no temp file left


def test_a_damaged_key_file_is_a_clear_error(tmp_path):
    (tmp_path / KEY_FILE).write_bytes(b"not a key")
    with pytest.raises(KeyFileError, match=KEY_FILE):
        load_or_create_key(str(tmp_path))


def test_signature_covers_exactly_size_root_ts(tmp_path):
    key = load_or_create_key(str(tmp_path))
    head = sign_tree_head(key, 7, ROOT, 1_700_000_000_123)
    message = struct.pack(">Q", 7) + ROOT + struct.pack(">Q", 1_700_000_000_123)
    assert tree_head_message(7, ROOT, 1_700_000_000_123) == message
    # an independent check with the raw public key
    Ed25519PublicKey.from_public_bytes(head.public_key).verify(head.signature, message)
    doc = head.to_json()
    assert set(doc) == {"tree_size", "root", "ts_ms", "signature", "public_key"}
    assert doc["root"] == ROOT.hex() and doc["signature"] == doc["signature"].lower()
    assert SignedTreeHead.from_json(doc) == head
    assert head.verify()
    assert verify_tree_head_signature(doc["public_key"], 7, ROOT, head.ts_ms, doc["signature"])


def test_tampered_heads_fail(tmp_path):
    key = load_or_create_key(str(tmp_path))
    head = sign_tree_head(key, 7, ROOT, 1000)
    pk, sig = head.public_key.hex(), head.signature.hex()
    other_root = hashlib.sha256(b"other").digest()
    assert not verify_tree_head_signature(pk, 8, ROOT, 1000, sig)
    assert not verify_tree_head_signature(pk, 7, other_root, 1000, sig)
    assert not verify_tree_head_signature(pk, 7, ROOT, 1001, sig)
    flipped = bytearray(head.signature)
    flipped[5] ^= 1
    assert not verify_tree_head_signature(pk, 7, ROOT, 1000, flipped.hex())
    other_key = public_key_bytes(load_or_create_key(str(tmp_path / "other"))).hex()
    assert not verify_tree_head_signature(other_key, 7, ROOT, 1000, sig)
    # malformed inputs fail instead of raising
    for bad in ("", "zz" * 32, pk[:-2]):
        assert not verify_tree_head_signature(bad, 7, ROOT, 1000, sig)
    assert not verify_tree_head_signature(pk, -1, ROOT, 1000, sig)
    assert not verify_tree_head_signature(pk, 7, b"short", 1000, sig)


def test_from_json_names_the_bad_field():
    doc = {
        "tree_size": 1,
        "root": "ab",
        "ts_ms": 0,
        "signature": "00" * 64,
        "public_key": "00" * 32,
    }
    with pytest.raises(InvalidArgumentError, match="root"):
        SignedTreeHead.from_json(doc)
    with pytest.raises(InvalidArgumentError, match="tree_size"):
        SignedTreeHead.from_json({**doc, "tree_size": -1})
