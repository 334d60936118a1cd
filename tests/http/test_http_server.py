"""The app served by Waitress on a free port, spoken to with urllib; and group commit under load."""

import errno
import json
import socket
import threading
import urllib.error
import urllib.request

import pytest

from scribe import Ledger
from scribe.http import LedgerBackend, PortInUseError, create_app, make_server, start_server


def call(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


@pytest.fixture
def server(app):
    with start_server(app, "127.0.0.1", 0, threads=4) as running:
        yield running


def test_served_by_waitress(server):
    url = server.url
    status, body, _ = call("GET", url + "/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    value = b"\x00\x01value\xff"
    status, body, _ = call(
        "PUT", url + "/kv/contract%2Fkey", value, {"Content-Type": "application/octet-stream"}
    )
    assert status == 200 and json.loads(body)["key"] == "contract/key"
    status, body, headers = call("GET", url + "/kv/contract%2Fkey")
    assert status == 200 and body == value and headers["X-Scribe-Seq"] == "0"
    status, body, _ = call("GET", url + "/kv/%D0%BA%D0%BB%D1%8E%D1%87")
    assert status == 404 and json.loads(body)["error"] == "key_not_found"
    status, body, _ = call("PUT", url + "/kv/%FF", b"v")  # not UTF-8: refused, not mangled
    assert status == 400
    doc = json.dumps({"key": "user:alice", "value": "Alice Smith"}).encode()
    assert call("PUT", url + "/put", doc, {"Content-Type": "application/json"})[0] == 200
    assert call("GET", url + "/get/user:alice")[1] == b"Alice Smith"
    status, body, _ = call("GET", url + "/metrics")
    assert status == 200 and b"# TYPE" in body
    for route in (
        "/cluster/members",
        "/cluster/leader",
        "/cluster/status",
        "/history/contract%2Fkey",
        "/records?start=0&limit=5",
        "/openapi.json",
    ):
        assert call("GET", url + route)[0] == 200, route


def test_413_over_http(server):
    status, body, _ = call("PUT", server.url + "/kv/big", b"x" * 1025)
    assert status == 413 and json.loads(body)["error"] == "payload_too_large"


def test_chunked_body_over_http(server):
    def chunks():
        yield b"x" * 600
        yield b"y" * 600

    req = urllib.request.Request(server.url + "/kv/streamed", data=chunks(), method="PUT")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 413
    req = urllib.request.Request(
        server.url + "/kv/streamed", data=iter([b"ab", b"cd"]), method="PUT"
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
    assert call("GET", server.url + "/kv/streamed")[1] == b"abcd"


def test_stop_ends_the_server_when_its_wakeup_pipe_is_gone(app):
    """A server whose trigger cannot be pulled (EBADF: its descriptor closed under it) still
    stops, its thread ends and its port is released."""
    running = start_server(app, "127.0.0.1", 0, threads=2)
    assert call("GET", running.url + "/health")[0] == 200

    def broken_pull():
        raise OSError(errno.EBADF, "Bad file descriptor")

    running.server.trigger._physical_pull = broken_pull
    running.stop()
    assert not running._thread.is_alive()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(running.url + "/health", timeout=2)


def test_port_in_use_is_a_clear_error(app):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port}.*already in use"):
            make_server(app, "127.0.0.1", port)


def test_concurrent_writes_share_flushes(tmp_path):
    flushes = []
    led = Ledger(str(tmp_path / "led"), flush_every_ms=60_000)
    real_flush = led.flush

    def counting_flush():
        flushes.append(1)
        real_flush()

    led.flush = counting_flush
    writers, per_writer = 8, 25
    try:
        app = create_app(LedgerBackend(led))
        with start_server(app, threads=writers) as running:
            errors = []

            def writer(w):
                for i in range(per_writer):
                    status, _, _ = call("PUT", f"{running.url}/kv/w{w}-{i}", b"v")
                    if status != 200:
                        errors.append(status)

            threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert not errors
        total = writers * per_writer
        assert len(led) == total
        assert 1 <= len(flushes) <= total
        print(f"group commit: {total} concurrent writes, {len(flushes)} flushes")
    finally:
        led.close()
