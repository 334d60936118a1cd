"""The data routes of the HTTP API (DESIGN §7) over a real scribe.Ledger."""

import base64
import json

import pytest

from scribe import OP_DELETE, OP_PUT, Ledger
from scribe.http import LedgerBackend, create_app


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("prefix", ["/kv/", "/"])
def test_raw_put_get_delete(client, prefix):
    r = client.put(prefix + "user:alice", data=b"Alice Smith")
    assert r.status_code == 200
    assert r.get_json() == {"key": "user:alice", "seq": 0, "index": 1}
    r = client.get(prefix + "user:alice")
    assert r.status_code == 200 and r.data == b"Alice Smith"
    assert r.content_type == "application/octet-stream"
    assert r.headers["X-Scribe-Seq"] == "0"
    r = client.delete(prefix + "user:alice")
    assert r.status_code == 200 and r.get_json() == {"key": "user:alice", "seq": 1, "index": 2}
    r = client.get(prefix + "user:alice")
    assert r.status_code == 404 and r.get_json()["error"] == "key_not_found"


def test_binary_values_round_trip(client):
    value = bytes(range(256)) * 3
    assert client.put("/kv/bin", data=value).status_code == 200
    assert client.get("/kv/bin").data == value
    assert client.put("/kv/empty", data=b"").status_code == 200
    r = client.get("/kv/empty")
    assert r.status_code == 200 and r.data == b""


def test_newest_version_wins_and_seq_header_follows(client):
    client.put("/kv/k", data=b"one")
    client.put("/kv/other", data=b"x")
    client.put("/kv/k", data=b"two")
    r = client.get("/kv/k")
    assert r.data == b"two" and r.headers["X-Scribe-Seq"] == "2"


@pytest.mark.parametrize(
    "url, key",
    [
        ("/kv/a%2Fb", "a/b"),
        ("/kv/a/b", "a/b"),
        ("/kv/a%2F%2Fb", "a//b"),
        ("/kv/dir/", "dir/"),
        ("/kv/with%20space", "with space"),
        ("/kv/%D0%BA%D0%BB%D1%8E%D1%87", "ключ"),
        ("/kv/ключ-🔑", "ключ-🔑"),
        ("/kv/100%25", "100%"),
        ("/kv/q%3Fx%3D1", "q?x=1"),
        ("/kv/line%0Afeed", "line\nfeed"),
        ("/kv/%0A", "\n"),
        ("/kv/tab%09cr%0D", "tab\tcr\r"),
    ],
)
def test_keys_are_url_path_encoded(client, ledger, url, key):
    r = client.put(url, data=b"v")
    assert r.status_code == 200, r.data
    assert r.get_json()["key"] == key
    assert ledger.get(key.encode()) == b"v"
    assert client.get(url).data == b"v"


@pytest.mark.parametrize(
    "name", ["health", "put", "get", "cluster/members", "metrics", "kv", "batch"]
)
def test_route_names_are_keys_through_kv(client, ledger, name):
    assert client.put(f"/kv/{name}", data=b"mine").status_code == 200
    assert client.get(f"/kv/{name}").data == b"mine"
    assert ledger.get(name) == b"mine"
    assert client.delete(f"/kv/{name}").status_code == 200


def test_route_names_are_not_keys_on_the_short_routes(client, ledger):
    r = client.put("/health", data=b"x")
    assert r.status_code == 405 and r.headers["Allow"] == "GET"
    assert r.get_json()["error"] == "method_not_allowed"
    assert client.delete("/cluster/members").status_code == 405
    r = client.put("/history/x", data=b"x")  # a route prefix: still not a key
    assert r.status_code == 405
    r = client.put("/kv", data=b"x")
    assert r.status_code == 404 and "/kv/" in r.get_json()["message"]
    assert len(list(ledger.records())) == 0
    assert client.get("/health").get_json()["status"] == "ok"
    assert client.put("/healthy", data=b"x").status_code == 200  # only whole segments are reserved


def test_json_put_and_get_route(client):
    for method in (client.put, client.post):
        r = method("/put", json={"key": "user:bob", "value": "Bob Johnson"})
        assert r.status_code == 200 and r.get_json()["key"] == "user:bob"
    r = client.get("/get/user:bob")
    assert r.status_code == 200 and r.data == b"Bob Johnson" and r.headers["X-Scribe-Seq"] == "1"
    assert client.get("/get/absent").status_code == 404
    r = client.put("/put", json={"key": "bin", "value_b64": b64(b"\x00\xff")})
    assert r.status_code == 200 and client.get("/kv/bin").data == b"\x00\xff"


def test_json_put_unicode(client):
    r = client.put("/put", json={"key": "ключ/🔑", "value": "значение ✓"})
    assert r.status_code == 200 and r.get_json()["key"] == "ключ/🔑"
    assert client.get("/kv/ключ%2F🔑").data == "значение ✓".encode()


def test_json_put_without_content_type(client):
    body = json.dumps({"key": "k", "value": "v"})
    r = client.put("/put", data=body, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200 and client.get("/kv/k").data == b"v"


def test_batch_applies_all_ops(client, ledger):
    client.put("/kv/gone", data=b"x")
    ops = [
        {"key": "a", "value": "1"},
        {"key": "b", "value_b64": b64(b"\x01\x02")},
        {"key": "gone", "delete": True},
    ]
    r = client.post("/batch", json={"ops": ops})
    assert r.status_code == 200 and r.get_json() == {"seq": 3, "index": 4, "count": 3}
    assert ledger.get("a") == b"1" and ledger.get("b") == b"\x01\x02" and ledger.get("gone") is None
    assert [rec.op for rec in ledger.records()] == [OP_PUT, OP_PUT, OP_PUT, OP_DELETE]


@pytest.mark.parametrize(
    "bad_op",
    [
        {"key": "", "value": "x"},
        {"key": "k"},
        {"key": "k", "value": 5},
        {"key": "k", "delete": False},
        {"key": "k", "delete": True, "value": "x"},
        {"key": "k", "value": "x", "extra": 1},
        {"value": "x"},
        "not an object",
        {"key": "k", "value_b64": "***"},
        {"key": "x" * 5000, "value": "x"},
    ],
)
def test_batch_with_one_invalid_op_applies_nothing(client, ledger, bad_op):
    ops = [{"key": "first", "value": "1"}, bad_op, {"key": "last", "value": "3"}]
    r = client.post("/batch", json={"ops": ops})
    assert r.status_code == 400, r.data
    assert "ops[1]" in r.get_json()["message"]
    assert len(list(ledger.records())) == 0


def test_batch_value_over_limit_is_413_and_applies_nothing(client, ledger):
    ops = [{"key": "first", "value": "1"}, {"key": "big", "value": "x" * 1025}]
    r = client.post("/batch", json={"ops": ops})
    assert r.status_code == 413 and len(list(ledger.records())) == 0


def test_batch_limits(client):
    from scribe.http.limits import BATCH_OPS_MAX

    assert client.post("/batch", json={"ops": []}).status_code == 400
    ops = [{"key": f"k{i}", "value": ""} for i in range(BATCH_OPS_MAX + 1)]
    r = create_app(client.application.extensions["scribe"]["backend"], max_value_bytes=1 << 20)
    r = r.test_client().post("/batch", json={"ops": ops})
    assert r.status_code == 400 and str(BATCH_OPS_MAX) in r.get_json()["message"]


def test_range(client):
    for key in ("a", "b/1", "b/2", "b/3", "c"):
        client.put(f"/kv/{key}", data=key.encode())
    client.put("/kv/bin", data=b"\xff")
    keys = lambda r: [item["key"] for item in r.get_json()]  # noqa: E731
    assert keys(client.get("/range")) == ["a", "b/1", "b/2", "b/3", "bin", "c"]
    assert keys(client.get("/range?start=b/2&end=c")) == ["b/2", "b/3", "bin"]
    assert keys(client.get("/range?prefix=b/")) == ["b/1", "b/2", "b/3"]
    assert keys(client.get("/range?prefix=b/&limit=2")) == ["b/1", "b/2"]
    assert keys(client.get("/range?start=&end=")) == keys(client.get("/range"))
    item = client.get("/range?prefix=bin").get_json()[0]
    assert item == {"key": "bin", "value": None, "key_b64": b64(b"bin"), "value_b64": b64(b"\xff")}
    assert client.get("/range?prefix=zzz").get_json() == []


def test_history(client):
    client.put("/kv/k", data=b"v1")
    client.put("/kv/k", data=b"v2")
    client.delete("/kv/k")
    versions = client.get("/history/k").get_json()
    assert [(v["seq"], v["op"], v["value"]) for v in versions] == [
        (0, OP_PUT, "v1"),
        (1, OP_PUT, "v2"),
        (2, OP_DELETE, ""),
    ]
    assert all(v["ts_ms"] > 0 and "value_b64" in v for v in versions)
    r = client.get("/history/never")
    assert r.status_code == 404 and r.get_json()["error"] == "key_not_found"


def test_records(client, ledger):
    client.put("/kv/a", data=b"\x00")
    client.post("/batch", json={"ops": [{"key": "b", "value": "2"}, {"key": "a", "delete": True}]})
    records = client.get("/records").get_json()
    assert [r["seq"] for r in records] == [0, 1, 2]
    assert records[0] == {
        "seq": 0,
        "ts_ms": records[0]["ts_ms"],
        "op": OP_PUT,
        "key_b64": b64(b"a"),
        "value_b64": b64(b"\x00"),
    }
    assert records[2]["op"] == OP_DELETE and records[2]["value_b64"] == ""
    from scribe.records import Record

    rebuilt = [
        Record(
            r["seq"],
            r["ts_ms"],
            r["op"],
            base64.b64decode(r["key_b64"]),
            base64.b64decode(r["value_b64"]),
        )
        for r in records
    ]
    assert rebuilt == list(ledger.records())  # a monitor can rebuild the leaves exactly
    assert [r["seq"] for r in client.get("/records?start=1&limit=1").get_json()] == [1]
    assert client.get("/records?start=99").get_json() == []


def test_stale_reads(client, backend):
    from scribe import NoLeaderError

    client.put("/kv/k", data=b"v")
    backend.fault = NoLeaderError("no leader")
    assert client.get("/kv/k").status_code == 503
    r = client.get("/kv/k?consistency=stale")
    assert r.status_code == 200 and r.data == b"v"
    assert client.get("/kv/k?consistency=linearizable").status_code == 503


def test_writes_are_flushed_before_the_answer(tmp_path):
    events = []

    class SpyLedger(Ledger):
        def put(self, key, value):
            seq = super().put(key, value)
            events.append(("put", seq))
            return seq

        def flush(self):
            super().flush()
            events.append(("flush", None))

    # flush_every_ms large: only the backend's own flush can make the write durable in time
    led = SpyLedger(str(tmp_path / "spy"), flush_every_ms=60_000)
    try:
        client = create_app(LedgerBackend(led)).test_client()
        assert client.put("/kv/k", data=b"v").status_code == 200
        assert events == [("put", 0), ("flush", None)]
    finally:
        led.close()
    with Ledger(str(tmp_path / "spy")) as reopened:
        assert reopened.get("k") == b"v"


def test_a_key_with_a_line_feed_is_reachable_on_every_key_route(client):
    assert client.put("/put", json={"key": "a\nb", "value": "v"}).status_code == 200
    for path in ("/a%0Ab", "/kv/a%0Ab", "/get/a%0Ab"):
        r = client.get(path)
        assert r.status_code == 200 and r.data == b"v", path
    assert client.get("/history/a%0Ab").get_json()[0]["value"] == "v"
    assert client.get("/verify/a%0Ab").status_code == 200
