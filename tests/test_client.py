"""scribe.client.Client against a waitress-served LedgerBackend: every route, typed errors."""

import pytest

import scribe
from scribe import Ledger
from scribe.client import Client, NodeUnreachableError
from scribe.errors import (
    InvalidArgumentError,
    KeyNotFoundError,
    NoLeaderError,
    OutcomeUnknownError,
)
from scribe.http import LedgerBackend, create_app, start_server
from scribe.records import TreeHead

TOKEN = "s3cret"


class Faulty(LedgerBackend):
    """Writes raise `fault` when it is set (a cluster without leader, a lost outcome)."""

    fault = None

    def put(self, key, value):
        if self.fault is not None:
            raise self.fault
        return super().put(key, value)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    led = Ledger(str(tmp_path_factory.mktemp("client") / "led"))
    backend = Faulty(led, node_id=1)
    server = start_server(create_app(backend, api_token=TOKEN, max_value_bytes=1024))
    yield backend, server.url
    server.stop()
    led.close()


def test_writes_reads_and_listing(node):
    _, url = node
    with Client(url, token=TOKEN) as c:
        w = c.put("fruit/apple", "red")
        assert w["key"] == "fruit/apple" and w["index"] == w["seq"] + 1
        c.put(b"fruit/kiwi", b"\x00\xffgreen")
        assert c.get("fruit/apple") == b"red"
        seq, value = c.get_with_seq("fruit/kiwi")
        assert value == b"\x00\xffgreen" and seq == w["seq"] + 1
        assert c.get("fruit/apple", stale=True) == b"red"
        b = c.batch([("fruit/pear", "yellow"), ("fruit/apple", None)])
        assert b["count"] == 2
        assert c.range(prefix="fruit/") == [
            (b"fruit/kiwi", b"\x00\xffgreen"),
            (b"fruit/pear", b"yellow"),
        ]
        assert c.range(start="fruit/l", limit=1) == [(b"fruit/pear", b"yellow")]
        c.delete("fruit/pear")
        history = c.history("fruit/apple")
        assert [(v.op, v.value) for v in history] == [(1, b"red"), (2, b"")]
        records = c.records(0, 100)
        assert [r.seq for r in records] == list(range(len(records)))
        assert records[0].key == b"fruit/apple"
        assert c.health()["status"] == "ok"
        assert c.members()[0]["public_key"] == c.tree_head().public_key.hex()
        assert c.leader()["leader_id"] == 1
        assert c.status()["role"] == "leader"


def test_verification_calls(node):
    _, url = node
    with Client(url, token=TOKEN) as c:
        c.put("v/a", "1")
        first = c.tree_head()
        c.put("v/a", "2")
        proof, head = c.verify("v/a")
        assert head.verify() and proof.value == b"2" and head.tree_size == proof.tree_size
        assert scribe.verify_inclusion(proof, TreeHead(head.tree_size, head.root, head.ts_ms))
        older, _ = c.verify("v/a", seq=proof.seq - 1)
        assert older.value == b"1"
        path = c.consistency(first.tree_size, head.tree_size)
        assert scribe.verify_consistency(
            first.tree_size, head.tree_size, first.root, head.root, path
        )


def test_typed_errors_carry_the_servers_message(node):
    backend, url = node
    with Client(url, token=TOKEN) as c:
        with pytest.raises(KeyNotFoundError, match="key_not_found"):
            c.get("absent")
        with pytest.raises(KeyNotFoundError):
            c.verify("absent")
        with pytest.raises(InvalidArgumentError, match="payload_too_large"):
            c.put("big", b"x" * 2000)
        with pytest.raises(InvalidArgumentError, match="first=3 is larger"):
            c.consistency(3, 2)
        backend.fault = scribe.NoLeaderError("no leader right now")
        try:
            with pytest.raises(NoLeaderError, match="no leader right now"):
                c.put("k", "v")
            backend.fault = scribe.OutcomeUnknownError("lost track")
            with pytest.raises(OutcomeUnknownError, match="lost track"):
                c.put("k", "v")
        finally:
            backend.fault = None
        assert c.put("k", "v")["seq"] >= 0  # the connection is still usable
    with Client(url) as anonymous:  # no token: writes are refused, reads are not
        with pytest.raises(InvalidArgumentError, match="unauthorized"):
            anonymous.put("k", "v")
        assert anonymous.get("k") == b"v"


def test_unreachable_and_bad_urls():
    with pytest.raises(NodeUnreachableError):
        Client("http://127.0.0.1:1", timeout_s=2).health()
    for bad in ("127.0.0.1:8000", "ftp://host", "http://"):
        with pytest.raises(InvalidArgumentError):
            Client(bad)
