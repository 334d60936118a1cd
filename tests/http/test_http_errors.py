"""Every error of the HTTP API is JSON {"error", "message"} with the right status; bad input is never a 500."""

import io
import json

import pytest

from scribe import InvalidArgumentError, NoLeaderError, OutcomeUnknownError
from scribe.errors import ClosedError, CorruptionError


def error_of(response, status):
    assert response.status_code == status, (response.status_code, response.data)
    assert response.content_type == "application/json"
    doc = response.get_json()
    assert set(doc) == {"error", "message"} and doc["message"]
    return doc["error"]


class ExplodingStream:
    """A request body of `size` bytes (so says its Content-Length) that fails the test if read."""

    def __init__(self, size):
        self.size = size
        self.pos = 0

    def tell(self):
        return self.pos

    def seek(self, offset, whence=0):
        self.pos = self.size if whence == 2 else offset
        return self.pos

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = readinto = read


# ---- 400 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"[1, 2]",
        b'"text"',
        b"\xff\xfe{}",
        b"[" * 100_000,
        b'{"key": "k", "value": "v"',
    ],
)
def test_malformed_json(client, body):
    assert error_of(client.post("/put", data=body), 400) == "invalid_json"
    assert error_of(client.post("/batch", data=body), 400) == "invalid_json"


@pytest.mark.parametrize(
    "doc",
    [
        {"value": "v"},
        {"key": "k"},
        {"key": 1, "value": "v"},
        {"key": "k", "value": None},
        {"key": "k", "value": ["v"]},
        {"key": "", "value": "v"},
        {"key": "k" * 4097, "value": "v"},
        {"key": "k", "value": "v", "ttl": 5},
        {"key": "k", "value": "v", "value_b64": "dg=="},
        {"key": "k", "value_b64": "not base64!"},
        {"key": "k", "value_b64": 7},
    ],
)
def test_put_json_bad_fields(client, ledger, doc):
    assert error_of(client.put("/put", json=doc), 400) == "invalid_argument"
    assert len(ledger) == 0


def test_put_json_non_utf8_key_and_value(client, ledger):
    # JSON can carry a lone surrogate, which has no UTF-8 encoding
    body = b'{"key": "\\ud800", "value": "v"}'
    assert "key" in client.put("/put", data=body).get_json()["message"]
    body = b'{"key": "k", "value": "\\udfff"}'
    assert error_of(client.put("/put", data=body), 400) == "invalid_argument"
    assert len(list(ledger.records())) == 0


def test_non_utf8_key_in_url(client):
    # a real server hands over %FF as the Latin-1 character \xff (PEP 3333)
    r = client.put("/kv/x", data=b"v", environ_overrides={"PATH_INFO": "/kv/\xff"})
    assert error_of(r, 400) == "invalid_argument"


def test_key_too_long_in_url(client):
    assert error_of(client.put("/kv/" + "k" * 4097, data=b"v"), 400) == "invalid_argument"
    assert client.put("/kv/" + "k" * 4096, data=b"v").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/range?limit=0",
        "/range?limit=-1",
        "/range?limit=abc",
        "/range?limit=10001",
        "/range?limit=" + "9" * 5000,
        "/range?limit=١٢",  # Unicode digits are not a limit
        "/range?limt=5",
        "/range?limit=1&limit=2",
        "/records?start=-1",
        "/records?start=x",
        "/records?limit=0",
        "/records?start=" + "9" * 40,
        "/kv/k?consistency=strong",
        "/get/k?nonsense=1",
        "/history/k?consistency=",
        "/health?verbose=1",
    ],
)
def test_bad_query_parameters(client, url):
    assert error_of(client.get(url), 400) == "invalid_argument"


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "0x10"])
def test_bad_content_length_is_400(client, ledger, length):
    environ = {"CONTENT_LENGTH": length}
    r = client.put("/kv/k", input_stream=io.BytesIO(b"abc"), environ_overrides=environ)
    assert error_of(r, 400) == "invalid_argument" and "Content-Length" in r.get_json()["message"]
    assert len(list(ledger.records())) == 0


def test_invalid_argument_from_the_backend_is_400(client, backend):
    backend.fault = InvalidArgumentError("value rejected by the ledger")
    r = client.put("/kv/k", data=b"v")
    assert error_of(r, 400) == "invalid_argument"
    assert r.get_json()["message"] == "value rejected by the ledger"


# ---- 401 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic s3cret"},
        {"Authorization": "s3cret"},
        {"Authorization": "Bearer s3cret-and-more"},
    ],
)
def test_writes_need_the_token(make_client, ledger, headers):
    client = make_client(api_token="s3cret")
    for r in (
        client.put("/kv/k", data=b"v", headers=headers),
        client.put("/k", data=b"v", headers=headers),
        client.delete("/kv/k", headers=headers),
        client.post("/put", json={"key": "k", "value": "v"}, headers=headers),
        client.post("/batch", json={"ops": [{"key": "k", "value": "v"}]}, headers=headers),
    ):
        assert error_of(r, 401) == "unauthorized"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert b"s3cret" not in r.data
    assert len(list(ledger.records())) == 0


def test_token_accepted_and_reads_stay_open(make_client):
    client = make_client(api_token="s3cret")
    for scheme in ("Bearer", "bearer"):
        headers = {"Authorization": f"{scheme} s3cret"}
        assert client.put("/kv/k", data=b"v", headers=headers).status_code == 200
    assert client.get("/kv/k").data == b"v"
    assert client.get("/health").status_code == 200


def test_401_comes_before_reading_the_body(make_client):
    client = make_client(api_token="s3cret")
    r = client.put("/kv/k", input_stream=ExplodingStream(10))
    assert error_of(r, 401) == "unauthorized"


def test_token_is_never_logged(make_client, caplog):
    client = make_client(api_token="s3cret")
    with caplog.at_level("DEBUG"):
        client.put("/kv/k", data=b"v", headers={"Authorization": "Bearer guess"})
        client.put("/kv/k", data=b"v", headers={"Authorization": "Bearer s3cret"})
    assert "s3cret" not in caplog.text


# ---- 404, 405 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/", "/cluster/nothing", "/kv/", "/get/", "/history/", "/tree/nothing", "/verify/"]
)
def test_unknown_route_is_json_404(client, url):
    assert error_of(client.get(url), 404) == "not_found"


@pytest.mark.parametrize(
    "method, url",
    [
        ("POST", "/kv/k"),
        ("GET", "/put"),
        ("DELETE", "/put"),
        ("GET", "/batch"),
        ("PUT", "/batch"),
        ("POST", "/range"),
        ("DELETE", "/records"),
        ("POST", "/metrics"),
        ("PUT", "/get/k"),
        ("PUT", "/cluster/status"),
    ],
)
def test_wrong_method_is_json_405(client, method, url):
    r = client.open(url, method=method, data=b"")
    assert error_of(r, 405) == "method_not_allowed"
    assert r.headers.get("Allow")


# ---- 413 ---------------------------------------------------------------------------------------


def test_413_from_content_length_before_reading_the_body(client, ledger):
    r = client.put("/kv/k", input_stream=ExplodingStream(1025))
    assert error_of(r, 413) == "payload_too_large"
    r = client.post("/put", input_stream=ExplodingStream(10**12))
    assert error_of(r, 413) == "payload_too_large"
    assert len(list(ledger.records())) == 0


def test_413_for_a_streamed_body(client, ledger):
    # no Content-Length (chunked): the body is read until it passes the limit, then refused
    environ = {"wsgi.input_terminated": True}
    r = client.put("/kv/k", input_stream=io.BytesIO(b"x" * 5000), environ_overrides=environ)
    assert error_of(r, 413) == "payload_too_large"
    r = client.put("/kv/k", input_stream=io.BytesIO(b"x" * 1024), environ_overrides=environ)
    assert r.status_code == 200 and ledger.get("k") == b"x" * 1024


def test_value_at_and_over_the_limit(client):
    assert client.put("/kv/k", data=b"x" * 1024).status_code == 200
    assert error_of(client.put("/kv/k", data=b"x" * 1025), 413) == "payload_too_large"
    assert client.put("/put", json={"key": "k", "value": "x" * 1024}).status_code == 200
    r = client.put("/put", json={"key": "k", "value": "x" * 1025})
    assert error_of(r, 413) == "payload_too_large"


# ---- 503, 504, 500 -----------------------------------------------------------------------------


def test_no_leader_is_503_with_retry_after(client, backend, ledger):
    backend.fault = NoLeaderError()
    for r in (
        client.put("/kv/k", data=b"v"),
        client.delete("/kv/k"),
        client.post("/put", json={"key": "k", "value": "v"}),
        client.post("/batch", json={"ops": [{"key": "k", "value": "v"}]}),
        client.get("/kv/k"),
    ):
        assert error_of(r, 503) == "no_leader"
        assert int(r.headers["Retry-After"]) >= 1
    assert len(list(ledger.records())) == 0


def test_outcome_unknown_is_504(client, backend):
    backend.fault = OutcomeUnknownError("proposed at index 7, not confirmed in 5 s")
    r = client.put("/kv/k", data=b"v")
    assert error_of(r, 504) == "outcome_unknown"
    assert "index 7" in r.get_json()["message"]


def test_flush_failure_is_outcome_unknown(client, ledger, monkeypatch):
    def broken_flush():
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(ledger, "flush", broken_flush)
    assert error_of(client.put("/kv/k", data=b"v"), 504) == "outcome_unknown"


def test_server_side_failures_are_json(client, backend):
    backend.fault = ClosedError("the ledger is closed")
    assert error_of(client.put("/kv/k", data=b"v"), 503) == "unavailable"
    backend.fault = CorruptionError("bad checksum", "00000001.seg", 4096)
    assert error_of(client.put("/kv/k", data=b"v"), 500) == "internal_error"
    backend.fault = RuntimeError("a bug")
    r = client.put("/kv/k", data=b"v")
    assert error_of(r, 500) == "internal_error" and "a bug" not in r.get_json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"ops": None},
        {"ops": {"key": "k"}},
        {"ops": [None]},
        {"ops": [[]]},
        {"ops": [{"key": None, "value": "v"}]},
        {"ops": [{"key": "k", "delete": "yes"}]},
        {"ops": [{"key": "k", "delete": 1}]},
        {"ops": [{"key": {"nested": 1}, "value": "v"}]},
        {"ops": [{"key": "k", "value": 1.5}]},
        {"ops": [], "extra": 1},
        {},
    ],
)
def test_odd_batches_are_400(client, body):
    r = client.post("/batch", data=json.dumps(body))
    assert error_of(r, 400) == "invalid_argument"


@pytest.mark.parametrize("path", ["/tree/head", "/verify/k", "/tree/consistency?first=1&second=1"])
def test_verification_routes_are_linearizable_reads_unless_stale(client, backend, path):
    assert client.put("/kv/k", data=b"v").status_code == 200
    joiner = "&" if "?" in path else "?"
    assert client.get(path).status_code == 200
    assert client.get(path + joiner + "consistency=stale").status_code == 200
    assert backend.barriers == ["linearizable", "stale"]
    r = client.get(path + joiner + "consistency=eventual")
    assert error_of(r, 400) == "invalid_argument"
    backend.fault = NoLeaderError("no leader")
    assert error_of(client.get(path), 503) == "no_leader"  # not proved from a stale node
    assert client.get(path + joiner + "consistency=stale").status_code == 200
