"""Every HTTP limit is enforced before work is done: body, key, batch and range sizes, stalled
connections, and the loopback-only default address."""

from __future__ import annotations

import socket
import time

import pytest

from scribe import Ledger
from scribe.config import parse_config
from scribe.http import LedgerBackend, create_app, make_server
from scribe.http.limits import BATCH_OPS_MAX, KEY_BYTES_MAX, RANGE_LIMIT_MAX
from scribe.http.server import ServerThread

pytestmark = pytest.mark.timeout(60)
VALUE_LIMIT = 1024


class CountingBackend(LedgerBackend):
    """Counts writes that reach the backend: a refused request must not reach it."""

    writes = 0

    def put(self, key, value):
        self.writes += 1
        return super().put(key, value)

    def batch(self, ops):
        self.writes += 1
        return super().batch(ops)


@pytest.fixture
def app_and_backend(tmp_path):
    ledger = Ledger(str(tmp_path / "led"), flush_every_ms=1000)
    backend = CountingBackend(ledger)
    yield create_app(backend, max_value_bytes=VALUE_LIMIT, api_token="t"), backend
    ledger.close()


AUTH = {"Authorization": "Bearer t"}


def test_body_over_the_limit_is_413_before_the_backend(app_and_backend):
    app, backend = app_and_backend
    client = app.test_client()
    assert client.put("/kv/k", data=b"x" * (VALUE_LIMIT + 1), headers=AUTH).status_code == 413
    assert backend.writes == 0


def test_key_over_the_limit_is_400_before_the_backend(app_and_backend):
    app, backend = app_and_backend
    client = app.test_client()
    resp = client.put("/kv/" + "k" * (KEY_BYTES_MAX + 1), data=b"v", headers=AUTH)
    assert resp.status_code == 400 and str(KEY_BYTES_MAX) in resp.get_json()["message"]
    assert client.put("/kv/" + "k" * KEY_BYTES_MAX, data=b"v", headers=AUTH).status_code == 200
    assert backend.writes == 1


def test_batch_over_the_limit_is_400_before_the_backend(app_and_backend):
    app, backend = app_and_backend
    ops = [{"key": f"k{i}", "value": "v"} for i in range(BATCH_OPS_MAX + 1)]
    resp = app.test_client().post("/batch", json={"ops": ops}, headers=AUTH)
    assert resp.status_code == 400 and backend.writes == 0


def test_range_limit_over_the_maximum_is_400(app_and_backend):
    app, _ = app_and_backend
    client = app.test_client()
    assert client.get(f"/range?limit={RANGE_LIMIT_MAX + 1}").status_code == 400
    assert client.get(f"/range?limit={RANGE_LIMIT_MAX}").status_code == 200
    assert client.get("/records?limit=0").status_code == 400


def test_token_is_checked_before_the_body_is_read(app_and_backend):
    app, backend = app_and_backend
    resp = app.test_client().put("/kv/k", data=b"x" * (VALUE_LIMIT + 1))
    assert resp.status_code == 401 and backend.writes == 0


def test_a_stalled_request_is_cut_off(app_and_backend):
    app, _ = app_and_backend
    server = ServerThread(make_server(app, "127.0.0.1", 0, 2, channel_timeout_s=1))
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"PUT /kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
            started = time.monotonic()
            assert sock.recv(4096) == b""  # closed by the server, no answer to half a request
            assert time.monotonic() - started < 9
    finally:
        server.stop()


def test_the_node_listens_on_loopback_by_default(tmp_path):
    config = parse_config("[node]\nid = 1\n", tmp_path / "c.toml")
    assert config.network.listen_addr == "127.0.0.1"
