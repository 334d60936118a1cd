"""GET /tree/head, /verify/<key>, /tree/consistency: every served proof verifies, with scribe's
verifier and with an independent minimal RFC 9162 verifier written here from the RFC's recursive
definitions (PATH, SUBPROOF)."""

import base64
import hashlib

import pytest

import scribe
from engines.raftlog import LedgerLog, encode_ops
from scribe import Ledger
from scribe.client import Client
from scribe.http import LedgerBackend, create_app, start_server
from scribe.http.verifiable import VerifiableBackend
from scribe.merkle import MerkleTree
from scribe.raft.types import Entry, EntryType
from scribe.records import OP_PUT, Proof, TreeHead, encode_leaf_data
from scribe.signing import verify_tree_head_signature

# ---- an independent RFC 9162 verifier ------------------------------------------------------------


def _h(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_root_from_path(leaf: bytes, m: int, n: int, path: list[bytes]) -> bytes:
    """Invert PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) (or the mirror): the top sibling is last."""
    if n == 1:
        if path:
            raise ValueError("path too long")
        return leaf
    if not path:
        raise ValueError("path too short")
    k = _split(n)
    if m < k:
        return _h(rfc_root_from_path(leaf, m, k, path[:-1]), path[-1])
    return _h(path[-1], rfc_root_from_path(leaf, m - k, n - k, path[:-1]))


def rfc_verify_inclusion(leaf: bytes, m: int, n: int, path: list[bytes], root: bytes) -> bool:
    try:
        return 0 <= m < n and rfc_root_from_path(leaf, m, n, path) == root
    except ValueError:
        return False


def rfc_verify_consistency(m: int, n: int, old: bytes, new: bytes, proof: list[bytes]) -> bool:
    """Rebuild both roots from SUBPROOF(m, D[n], true), consuming the proof from its end."""
    if m == n:
        return not proof and old == new
    if m == 0:
        return not proof
    stack = list(proof)

    def rebuild(m: int, n: int, whole: bool) -> tuple[bytes, bytes]:
        if m == n:
            if whole:
                return old, old
            node = stack.pop()
            return node, node
        k = _split(n)
        if m <= k:
            right = stack.pop()
            o, w = rebuild(m, k, whole)
            return o, _h(w, right)
        left = stack.pop()
        o, w = rebuild(m - k, n - k, False)
        return _h(left, o), _h(left, w)

    try:
        got_old, got_new = rebuild(m, n, True)
    except IndexError:
        return False
    return not stack and got_old == old and got_new == new


def leaf_of(doc: dict) -> bytes:
    data = encode_leaf_data(
        doc["seq"],
        doc["ts_ms"],
        doc["op"],
        base64.b64decode(doc["key_b64"]),
        base64.b64decode(doc["value_b64"]),
    )
    return hashlib.sha256(b"\x00" + data).digest()


def proof_of(doc: dict) -> Proof:
    return Proof(
        doc["seq"],
        doc["ts_ms"],
        doc["op"],
        base64.b64decode(doc["key_b64"]),
        base64.b64decode(doc["value_b64"]),
        bytes.fromhex(doc["leaf_hash"]),
        doc["tree_size"],
        bytes.fromhex(doc["root"]),
        [bytes.fromhex(h) for h in doc["audit_path"]],
    )


def check_head(head: dict) -> None:
    assert set(head) == {"tree_size", "root", "ts_ms", "signature", "public_key"}
    for name in ("root", "signature", "public_key"):
        assert head[name] == head[name].lower()
    assert verify_tree_head_signature(
        head["public_key"],
        head["tree_size"],
        bytes.fromhex(head["root"]),
        head["ts_ms"],
        head["signature"],
    )


def check_served_proof(doc: dict) -> None:
    sth = doc["signed_tree_head"]
    check_head(sth)
    assert (sth["tree_size"], sth["root"]) == (doc["tree_size"], doc["root"])
    assert leaf_of(doc).hex() == doc["leaf_hash"]
    head = TreeHead(sth["tree_size"], bytes.fromhex(sth["root"]), sth["ts_ms"])
    assert scribe.verify_inclusion(proof_of(doc), head)
    assert rfc_verify_inclusion(
        leaf_of(doc),
        doc["seq"],
        doc["tree_size"],
        [bytes.fromhex(h) for h in doc["audit_path"]],
        bytes.fromhex(doc["root"]),
    )


# ---- the routes over the Flask test client -------------------------------------------------------


@pytest.fixture
def served(tmp_path):
    led = Ledger(str(tmp_path / "led"), segment_size=4096)
    backend = LedgerBackend(led, client_port=8080)
    client = create_app(backend).test_client()
    yield led, backend, client
    led.close()


def test_tree_head_of_empty_and_growing_ledger(served):
    led, _, client = served
    head = client.get("/tree/head").get_json()
    check_head(head)
    assert head["tree_size"] == 0 and head["root"] == hashlib.sha256(b"").hexdigest()
    for i in range(5):
        led.put(f"k{i}", "v")
    head = client.get("/tree/head").get_json()
    check_head(head)
    assert head["tree_size"] == 5 and head["root"] == led.tree_head().root.hex()
    assert head["ts_ms"] > 1_600_000_000_000  # when the node signed it
    assert client.get("/tree/head").get_json() == head  # same tree: the same signed head


def test_every_proof_verifies_both_ways(served):
    led, _, client = served
    sizes_roots = {}
    for i in range(40):
        led.apply_batch([(f"key/{i % 7}", f"v{i}")] if i % 5 else [(f"key/{i % 7}", None)])
        if i % 3 == 0:
            led.put(b"bin\x00ary", bytes(range(i % 256)))
        doc = client.get(f"/verify/key%2F{i % 7}").get_json()
        check_served_proof(doc)
        sizes_roots[doc["tree_size"]] = bytes.fromhex(doc["root"])
    sizes = sorted(sizes_roots)
    for a in sizes:
        for b in sizes:
            if a > b:
                continue
            r = client.get(f"/tree/consistency?first={a}&second={b}")
            assert r.status_code == 200, r.get_json()
            doc = r.get_json()
            assert (doc["first"], doc["second"]) == (a, b)
            proof = [bytes.fromhex(h) for h in doc["proof"]]
            assert scribe.verify_consistency(a, b, sizes_roots[a], sizes_roots[b], proof)
            assert rfc_verify_consistency(a, b, sizes_roots[a], sizes_roots[b], proof)
    doc = client.get("/verify/bin%00ary").get_json()
    check_served_proof(doc)
    assert base64.b64decode(doc["key_b64"]) == b"bin\x00ary"


def test_older_versions_and_errors(served):
    led, _, client = served
    seqs = [led.put("k", f"v{i}") for i in range(4)]
    led.put("other", "x")
    led.delete("k")
    for seq in seqs:
        doc = client.get(f"/verify/k?seq={seq}").get_json()
        check_served_proof(doc)
        assert (
            doc["seq"] == seq
            and base64.b64decode(doc["value_b64"]) == f"v{seqs.index(seq)}".encode()
        )
    latest = client.get("/verify/k").get_json()  # a tombstone is provable too
    assert latest["op"] == 2 and latest["value_b64"] == ""
    check_served_proof(latest)
    assert client.get("/verify/never").status_code == 404
    assert client.get("/verify/never").get_json()["error"] == "key_not_found"
    assert client.get("/verify/k?seq=4").status_code == 404  # seq 4 is "other"
    assert client.get("/verify/k?seq=99").status_code == 404
    for bad in ("/verify/k?seq=-1", "/verify/k?seq=x", "/verify/k?nope=1"):
        assert client.get(bad).status_code == 400, bad
    size = led.tree_head().size
    for bad in (
        "/tree/consistency",
        "/tree/consistency?first=1",
        "/tree/consistency?second=1",
        f"/tree/consistency?first=1&second={size + 1}",
        "/tree/consistency?first=3&second=2",
        "/tree/consistency?first=a&second=2",
        "/tree/consistency?first=1&second=2&x=1",
    ):
        r = client.get(bad)
        assert r.status_code == 400, bad
        assert set(r.get_json()) == {"error", "message"}
    assert client.get(f"/tree/consistency?first=0&second={size}").get_json()["proof"] == []
    assert client.get(f"/tree/consistency?first={size}&second={size}").get_json()["proof"] == []


def test_public_key_in_members_and_openapi(served):
    _, backend, client = served
    members = client.get("/cluster/members").get_json()["members"]
    assert members[0]["public_key"] == backend.public_key().hex()
    assert members[0]["public_key"] == client.get("/tree/head").get_json()["public_key"]
    paths = client.get("/openapi.json").get_json()["paths"]
    assert {"/tree/head", "/tree/consistency", "/verify/{key}"} <= set(paths)


def test_key_survives_restart_and_heads_are_durable(tmp_path):
    path = str(tmp_path / "led")
    with Ledger(path, flush_every_ms=60_000) as led:
        led.put("a", "1")  # not flushed: the head must not be signed before it is durable
        head = create_app(LedgerBackend(led)).test_client().get("/tree/head").get_json()
        assert head["tree_size"] == 1
    with Ledger(path) as led:
        again = create_app(LedgerBackend(led)).test_client().get("/tree/head").get_json()
    assert again["public_key"] == head["public_key"]
    assert again["root"] == head["root"]


# ---- the shared helper over raw record sources (what the cluster node uses) ------------------------


class _SourceBackend(VerifiableBackend):
    def __init__(self, key_dir, source):
        self.init_verification(key_dir, source=source)


def test_record_tree_over_a_segment_engine_matches_the_ledger(tmp_path):
    with Ledger(str(tmp_path / "led")) as led:
        for i in range(70):
            led.put(f"k{i % 9}", f"v{i}")
        reference = led.tree_head()
        expected_proof = led.prove("k3")
        engine = led._engine  # the Ledger's own engine exposes leaf_hashes/record/history
        helper = _SourceBackend(str(tmp_path / "keys"), engine)
        head = helper.signed_tree_head()
        assert (head.tree_size, head.root) == (reference.size, reference.root)
        proof, sth = helper.prove(b"k3")
        assert proof == expected_proof and sth.tree_size == proof.tree_size and sth.verify()
        assert helper.consistency(10, 70) == led.consistency(10, 70)
        led.put("k3", "newer")
        proof, sth = helper.prove(b"k3")
        assert proof.tree_size == 71 and scribe.verify_inclusion(proof, TreeHead(71, sth.root, 0))
        with pytest.raises(scribe.KeyNotFoundError):
            helper.prove(b"nothing")
        with pytest.raises(scribe.InvalidArgumentError):
            helper.consistency(5, 72)


def test_record_tree_over_a_ledger_log(tmp_path):
    log = LedgerLog(str(tmp_path / "node"), segment_bytes=4096)
    try:
        entries = []
        for index in range(1, 21):
            ops = [(OP_PUT, f"k{index % 4}".encode(), f"v{index}-{j}".encode()) for j in range(3)]
            entries.append(
                Entry(1, index, EntryType.NORMAL, encode_ops(1_700_000_000_000 + index, ops))
            )
        log.append(entries)
        log.apply_entries(entries)
        records = list(log.records())
        assert len(records) == 60
        tree = MerkleTree(b"".join(r.leaf_hash() for r in records))
        helper = _SourceBackend(str(tmp_path / "node"), log)
        head = helper.signed_tree_head()
        assert (head.tree_size, head.root) == (60, tree.root())
        proof, sth = helper.prove(b"k2")
        assert (proof.seq, proof.value) == (53, b"v18-2")  # entry 18's last op
        assert scribe.verify_inclusion(proof, TreeHead(sth.tree_size, sth.root, sth.ts_ms))
        first_root = tree.root(17)
        assert scribe.verify_consistency(17, 60, first_root, head.root, helper.consistency(17, 60))
    finally:
        log.close()


def test_uninitialised_mixin_is_a_clear_error(tmp_path):
    class Forgot(VerifiableBackend):
        pass

    with pytest.raises(scribe.ScribeError, match="init_verification"):
        Forgot().signed_tree_head()
    with pytest.raises(scribe.InvalidArgumentError):
        _SourceBackend.__new__(_SourceBackend).init_verification(str(tmp_path))


# ---- over a real server ---------------------------------------------------------------------------


def test_proofs_over_waitress(tmp_path):
    led = Ledger(str(tmp_path / "led"))
    server = start_server(create_app(LedgerBackend(led)))
    try:
        with Client(server.url) as c:
            for i in range(25):
                c.put(f"w{i % 6}", f"value {i}")
            head = c.tree_head()
            assert head.verify() and head.tree_size == 25
            for i in range(6):
                check_served_proof(c.verify_raw(f"w{i}"))
                proof, sth = c.verify(f"w{i}")
                assert scribe.verify_inclusion(proof, TreeHead(sth.tree_size, sth.root, sth.ts_ms))
            old = head
            c.batch([("w0", "x"), ("w1", None)])
            new = c.tree_head()
            proof = c.consistency(old.tree_size, new.tree_size)
            assert rfc_verify_consistency(old.tree_size, new.tree_size, old.root, new.root, proof)
    finally:
        server.stop()
        led.close()


def test_the_independent_verifier_rejects_what_it_should(served):
    led, _, client = served
    for i in range(13):
        led.put(f"k{i}", "v")
    doc = client.get("/verify/k5").get_json()
    leaf, path = leaf_of(doc), [bytes.fromhex(h) for h in doc["audit_path"]]
    root = bytes.fromhex(doc["root"])
    assert rfc_verify_inclusion(leaf, 5, 13, path, root)
    assert not rfc_verify_inclusion(leaf, 4, 13, path, root)
    assert not rfc_verify_inclusion(leaf, 5, 13, path[:-1], root)
    assert not rfc_verify_inclusion(leaf, 5, 13, [path[0][::-1], *path[1:]], root)
    old = led.tree_head()
    led.put("k99", "v")
    new = led.tree_head()
    proof = led.consistency(old.size, new.size)
    assert rfc_verify_consistency(old.size, new.size, old.root, new.root, proof)
    assert not rfc_verify_consistency(old.size, new.size, new.root, new.root, proof)
    assert not rfc_verify_consistency(old.size, new.size, old.root, old.root, proof)
    assert not rfc_verify_consistency(old.size, new.size, old.root, new.root, proof[1:])
