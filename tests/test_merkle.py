"""scribe.merkle against the known-answer vectors and a naive RFC 9162 §2.1 reference."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest

from scribe.errors import InvalidArgumentError
from scribe.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
    verify_inclusion_path,
)
from scribe.records import OP_DELETE, OP_PUT, Proof, Record, TreeHead, encode_leaf_data, leaf_hash

VECTORS_PATH = os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "vectors", "merkle.json"
)
REFERENCE_MAX_SIZE = 70
CACHE_HEIGHTS = (1, 2, 3, 6)


def _load_vectors() -> dict:
    candidates = [
        os.environ.get("SCRIBE_MERKLE_VECTORS", ""),
        os.path.join(os.path.dirname(__file__), "vectors", "merkle.json"),
        VECTORS_PATH,
        "/work/shared/vectors/merkle.json",
    ]
    for path in candidates:
        if path and os.path.exists(path):
            with open(path) as f:
                return json.load(f)
    pytest.skip("vectors/merkle.json not found (set SCRIBE_MERKLE_VECTORS)")


@pytest.fixture(scope="module")
def vectors() -> dict:
    return _load_vectors()


def _records(vectors: dict) -> list[Record]:
    return [
        Record(
            r["seq"],
            r["ts_ms"],
            r["op"],
            base64.b64decode(r["key_b64"]),
            base64.b64decode(r["value_b64"]),
        )
        for r in vectors["records"]
    ]


# -- the naive reference: RFC 9162 §2.1.1 MTH, §2.1.3.1 PATH, §2.1.4.1 PROOF, literally ----------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]  # the list holds leaf hashes already: MTH({d0}) = SHA-256(0x00 || d0)
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


def _leaves(count: int, salt: bytes = b"") -> list[bytes]:
    return [hashlib.sha256(salt + i.to_bytes(8, "big")).digest() for i in range(count)]


# -- known-answer vectors ----------------------------------------------------------------------


def test_vector_records_leaf_data_and_hashes(vectors):
    for rec, raw in zip(_records(vectors), vectors["records"], strict=True):
        data = encode_leaf_data(rec.seq, rec.ts_ms, rec.op, rec.key, rec.value)
        assert data.hex() == raw["leaf_data"]
        assert rec.leaf_data() == data
        assert leaf_hash(data).hex() == raw["leaf_hash"]
        assert rec.leaf_hash().hex() == raw["leaf_hash"]


@pytest.mark.parametrize("cache_min_height", CACHE_HEIGHTS)
def test_vector_roots(vectors, cache_min_height):
    hashes = [r.leaf_hash() for r in _records(vectors)]
    assert vectors["empty_root"] == EMPTY_ROOT.hex()
    grown = MerkleTree(cache_min_height=cache_min_height)
    assert grown.root().hex() == vectors["empty_root"]
    for n in range(1, len(hashes) + 1):
        grown.append(hashes[n - 1])
        assert grown.root().hex() == vectors["roots"][str(n)]
        assert root_of(hashes[:n]).hex() == vectors["roots"][str(n)]
    built = MerkleTree(b"".join(hashes), cache_min_height=cache_min_height)
    for size, root in vectors["roots"].items():
        assert built.root(int(size)).hex() == root
    assert root_of([]) == EMPTY_ROOT


@pytest.mark.parametrize("cache_min_height", CACHE_HEIGHTS)
def test_vector_inclusion_proofs(vectors, cache_min_height):
    hashes = [r.leaf_hash() for r in _records(vectors)]
    tree = MerkleTree(b"".join(hashes), cache_min_height=cache_min_height)
    for v in vectors["inclusion"]:
        index, size = v["index"], v["tree_size"]
        root = bytes.fromhex(vectors["roots"][str(size)])
        path = tree.inclusion_proof(index, size)
        assert [p.hex() for p in path] == v["audit_path"]
        assert verify_inclusion_path(hashes[index], index, size, path, root)
        assert verify_inclusion_path(hashes[index].hex(), index, size, v["audit_path"], root.hex())
        assert not verify_inclusion_path(hashes[index], index, size, path, EMPTY_ROOT)


@pytest.mark.parametrize("cache_min_height", CACHE_HEIGHTS)
def test_vector_consistency_proofs(vectors, cache_min_height):
    hashes = [r.leaf_hash() for r in _records(vectors)]
    tree = MerkleTree(b"".join(hashes), cache_min_height=cache_min_height)
    for v in vectors["consistency"]:
        first, second = v["first"], v["second"]
        r1 = bytes.fromhex(vectors["roots"][str(first)])
        r2 = bytes.fromhex(vectors["roots"][str(second)])
        proof = tree.consistency_proof(first, second)
        assert [p.hex() for p in proof] == v["proof"]
        assert verify_consistency(first, second, r1, r2, proof)
        assert verify_consistency(first, second, r1.hex(), r2.hex(), v["proof"])
        assert not verify_consistency(first, second, r2, r1, proof)


def test_vector_verify_inclusion_of_records(vectors):
    records = _records(vectors)
    tree = MerkleTree(b"".join(r.leaf_hash() for r in records))
    head = TreeHead(tree.size, tree.root(), records[-1].ts_ms)
    for rec in records:
        proof = Proof(*rec, rec.leaf_hash(), tree.size, tree.root(), tree.inclusion_proof(rec.seq))
        assert verify_inclusion(proof, head)


# -- the naive reference, every size, index and pair -------------------------------------------


@pytest.mark.parametrize("cache_min_height", CACHE_HEIGHTS)
def test_matches_reference_for_every_size_index_and_pair(cache_min_height):
    leaves = _leaves(REFERENCE_MAX_SIZE, salt=b"ref")
    roots = [ref_mth(leaves[:n]) for n in range(REFERENCE_MAX_SIZE + 1)]
    tree = MerkleTree(cache_min_height=cache_min_height)
    for n in range(REFERENCE_MAX_SIZE + 1):
        assert tree.size == n
        assert tree.root() == roots[n]
        if n < REFERENCE_MAX_SIZE:
            tree.append(leaves[n])
    for n in range(REFERENCE_MAX_SIZE + 1):
        assert tree.root(n) == roots[n]
        for i in range(n):
            path = tree.inclusion_proof(i, n)
            assert path == ref_path(i, leaves[:n]), (i, n)
            assert verify_inclusion_path(leaves[i], i, n, path, roots[n])
        for m in range(n + 1):
            proof = tree.consistency_proof(m, n)
            expected = [] if m == 0 else ref_proof(m, leaves[:n])
            assert proof == expected, (m, n)
            assert verify_consistency(m, n, roots[m], roots[n], proof), (m, n)


def test_large_tree_spot_checks_against_reference():
    count = 1100
    leaves = _leaves(count, salt=b"big")
    tree = MerkleTree(b"".join(leaves[:1000]))
    tree.extend(leaves[1000:])
    for n in (1, 63, 64, 65, 127, 128, 129, 511, 512, 513, 1000, 1024, 1025, 1100):
        assert tree.root(n) == ref_mth(leaves[:n])
        for i in {0, n // 3, n // 2, n - 1}:
            assert tree.inclusion_proof(i, n) == ref_path(i, leaves[:n])
        for m in {1, n // 2, n - 1}:
            if 0 < m < n:
                assert tree.consistency_proof(m, n) == ref_proof(m, leaves[:n])
    assert tree.inclusion_proof(5) == ref_path(5, leaves)
    assert tree.consistency_proof(700) == ref_proof(700, leaves)


def test_constructor_equals_incremental_growth():
    leaves = _leaves(300)
    grown = MerkleTree(cache_min_height=2)
    for h in leaves:
        grown.append(h)
    for source in (b"".join(leaves), bytearray(b"".join(leaves)), memoryview(b"".join(leaves))):
        built = MerkleTree(source, cache_min_height=2)
        assert built.size == 300
        assert all(built.root(n) == grown.root(n) for n in range(301))
    assert grown.leaf_hashes() == b"".join(leaves)
    assert grown.leaf_hashes(10, 12) == leaves[10] + leaves[11]
    assert grown.leaf_hash(299) == leaves[299]
    assert len(grown) == 300


def test_cache_holds_only_complete_subtrees_at_or_above_min_height():
    tree = MerkleTree(b"".join(_leaves(1000)), cache_min_height=4)
    # heights 4..9 hold 1000 >> h complete subtrees each
    assert tree.cache_bytes() == 32 * sum(1000 >> h for h in range(4, 10))


# -- truncate ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cache_min_height", (1, 3, 6))
def test_truncate_then_reappend_equals_fresh_tree(cache_min_height):
    leaves = _leaves(200)
    other = _leaves(200, salt=b"other")
    tree = MerkleTree(b"".join(leaves), cache_min_height=cache_min_height)
    tree.root()
    for cut in (199, 128, 127, 64, 17, 1, 0):
        tree.truncate(cut)
        assert tree.size == cut
        assert tree.root() == ref_mth(leaves[:cut])
        tree.extend(other[cut:150])
        fresh = MerkleTree(b"".join(leaves[:cut] + other[cut:150]))
        assert tree.root() == fresh.root()
        for n in (cut, 150, (cut + 150) // 2):
            assert tree.root(n) == fresh.root(n)
            if n:
                assert tree.inclusion_proof(n - 1, n) == fresh.inclusion_proof(n - 1, n)
        tree.truncate(cut)
        tree.extend(leaves[cut:])
        assert tree.root() == ref_mth(leaves)


def test_truncate_to_current_size_is_a_no_op():
    leaves = _leaves(10)
    tree = MerkleTree(b"".join(leaves))
    root = tree.root()
    tree.truncate(10)
    assert tree.root() == root


# -- invalid arguments ---------------------------------------------------------------------------


def test_invalid_arguments_raise_invalid_argument_error():
    tree = MerkleTree(b"".join(_leaves(10)))
    bad_calls = [
        lambda: tree.root(11),
        lambda: tree.root(-1),
        lambda: tree.root(True),
        lambda: tree.root("3"),
        lambda: tree.inclusion_proof(10),
        lambda: tree.inclusion_proof(5, 5),
        lambda: tree.inclusion_proof(-1),
        lambda: tree.inclusion_proof(0, 11),
        lambda: tree.inclusion_proof(0, 0),
        lambda: tree.consistency_proof(6, 5),
        lambda: tree.consistency_proof(11),
        lambda: tree.consistency_proof(-1, 5),
        lambda: tree.consistency_proof(1, 12),
        lambda: tree.truncate(11),
        lambda: tree.truncate(-1),
        lambda: tree.leaf_hash(10),
        lambda: tree.leaf_hashes(5, 11),
        lambda: tree.leaf_hashes(6, 5),
        lambda: tree.append(b"short"),
        lambda: tree.append("00" * 32),
        lambda: tree.append(None),
        lambda: tree.extend([b"\x00" * 32, b"\x00" * 33]),
        lambda: MerkleTree(b"\x00" * 33),
        lambda: MerkleTree(12),
        lambda: MerkleTree(cache_min_height=0),
        lambda: root_of([b"\x00" * 31]),
    ]
    for call in bad_calls:
        with pytest.raises(InvalidArgumentError):
            call()
    assert tree.size == 10  # the failed extend added nothing
    assert isinstance(InvalidArgumentError("x"), ValueError)


def test_append_accepts_bytes_like():
    tree = MerkleTree()
    h = _leaves(2)
    tree.append(bytearray(h[0]))
    tree.append(memoryview(h[1]))
    assert tree.root() == node_hash(h[0], h[1])


def test_empty_tree():
    tree = MerkleTree()
    assert tree.size == 0
    assert tree.root() == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert tree.consistency_proof(0) == []
    assert tree.cache_bytes() == 0


# -- verification edge cases --------------------------------------------------------------------


def test_verify_inclusion_path_rejects_bad_input_without_raising():
    leaves = _leaves(5)
    tree = MerkleTree(b"".join(leaves))
    root, path = tree.root(), tree.inclusion_proof(2)
    assert verify_inclusion_path(leaves[2], 2, 5, path, root)
    assert verify_inclusion_path(bytearray(leaves[2]), 2, 5, tuple(path), memoryview(root))
    bad = [
        (leaves[2], 5, 5, path, root),  # index == size
        (leaves[2], -1, 5, path, root),
        (leaves[2], 2, 0, path, root),
        (leaves[2], 2, -5, path, root),
        (leaves[2], True, 5, path, root),
        (leaves[2], 2, 5.0, path, root),
        (leaves[2], 2, 1 << 64, path, root),
        (leaves[2][:31], 2, 5, path, root),
        (leaves[2], 2, 5, path, root[:31]),
        (leaves[2], 2, 5, path, "zz" * 32),
        (leaves[2], 2, 5, path, root.hex() + " "),
        (leaves[2], 2, 5, [*path[:-1], path[-1][:31]], root),
        (leaves[2], 2, 5, b"".join(path), root),
        (leaves[2], 2, 5, None, root),
        (leaves[2], 2, 5, [root] * 65, root),
        (None, 2, 5, path, root),
    ]
    for args in bad:
        assert verify_inclusion_path(*args) is False, args


def test_verify_consistency_edge_cases():
    leaves = _leaves(8)
    tree = MerkleTree(b"".join(leaves))
    r = [tree.root(n) for n in range(9)]
    proof = tree.consistency_proof(3, 8)
    assert verify_consistency(3, 8, r[3], r[8], proof)
    # first == second: empty proof and equal roots
    assert verify_consistency(5, 5, r[5], r[5], [])
    assert not verify_consistency(5, 5, r[5], r[5], [r[5]])
    assert not verify_consistency(5, 5, r[5], r[6], [])
    # first == 0: empty proof, and the empty tree's root
    assert verify_consistency(0, 8, EMPTY_ROOT, r[8], [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, r[8], [])
    assert not verify_consistency(0, 8, EMPTY_ROOT, r[8], [r[8]])
    assert not verify_consistency(0, 8, r[3], r[8], [])
    # 0 < first < second needs a proof
    assert not verify_consistency(3, 8, r[3], r[8], [])
    assert not verify_consistency(4, 8, r[4], r[8], [])
    bad = [
        (8, 3, r[8], r[3], proof),
        (-1, 8, r[3], r[8], proof),
        (3, 9, r[3], r[8], proof),
        (3, 8, r[3][:31], r[8], proof),
        (3, 8, r[3], "g" * 64, proof),
        (3, 8, r[3], r[8], "".join(p.hex() for p in proof)),
        (3, 8, r[3], r[8], [*proof, 5]),
        (3, 8, r[3], r[8], None),
        (True, 8, r[3], r[8], proof),
        (3, 8.0, r[3], r[8], proof),
    ]
    for args in bad:
        assert verify_consistency(*args) is False, args


def _record_proof(records: list[Record], tree: MerkleTree, seq: int) -> Proof:
    rec = records[seq]
    return Proof(*rec, rec.leaf_hash(), tree.size, tree.root(), tree.inclusion_proof(seq))


def test_verify_inclusion_recomputes_the_leaf_from_the_record():
    records = [
        Record(i, 1_700_000_000_000 + i, OP_PUT, b"key%d" % i, b"value%d" % i) for i in range(12)
    ]
    records.append(Record(12, 1_700_000_000_100, OP_DELETE, b"key3", b""))
    tree = MerkleTree(b"".join(r.leaf_hash() for r in records))
    head = TreeHead(tree.size, tree.root(), records[-1].ts_ms)
    for seq in range(len(records)):
        proof = _record_proof(records, tree, seq)
        assert verify_inclusion(proof, head)
        tampered = [
            proof._replace(value=proof.value + b"!"),
            proof._replace(key=b"other"),
            proof._replace(seq=(seq + 1) % len(records)),
            proof._replace(ts_ms=proof.ts_ms + 1),
            proof._replace(op=3 if proof.op != 3 else 1),
            proof._replace(leaf_hash=records[(seq + 1) % len(records)].leaf_hash()),
            proof._replace(tree_size=proof.tree_size - 1),
            proof._replace(root=tree.root(tree.size - 1)),
            proof._replace(audit_path=proof.audit_path[:-1]),
            proof._replace(seq=-1),
            proof._replace(seq="0"),
            proof._replace(op=99),
            proof._replace(op=True),
            proof._replace(ts_ms=1 << 64),
            proof._replace(key="key0"),
            proof._replace(value=None),
        ]
        for bad in tampered:
            assert verify_inclusion(bad, head) is False, (seq, bad)
        assert not verify_inclusion(proof, head._replace(size=head.size + 1))
        assert not verify_inclusion(proof, head._replace(root=EMPTY_ROOT))
    assert not verify_inclusion(None, head)
    assert not verify_inclusion(_record_proof(records, tree, 0), None)


def test_verify_inclusion_accepts_hex_hashes():
    records = [Record(i, 5, OP_PUT, b"k", b"v%d" % i) for i in range(6)]
    tree = MerkleTree(b"".join(r.leaf_hash() for r in records))
    proof = _record_proof(records, tree, 4)
    hex_proof = proof._replace(
        leaf_hash=proof.leaf_hash.hex(),
        root=proof.root.hex(),
        audit_path=[p.hex() for p in proof.audit_path],
    )
    assert verify_inclusion(hex_proof, TreeHead(tree.size, tree.root().hex(), 5))
    assert verify_inclusion(hex_proof, TreeHead(tree.size, tree.root(), 5))
