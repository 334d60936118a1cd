"""scribe.node.front.LoopFront against a real Waitress server (bound, not accepting) and a uvloop
loop on a thread, with a backend that settles writes and reads on that loop: what the front
answers itself, byte for byte as Waitress would, and what it hands over to Waitress."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import socket
import threading
import time

import pytest
import uvloop

from scribe.errors import InvalidArgumentError, NoLeaderError
from scribe.http import LedgerBackend, create_app, make_server
from scribe.http.server import ServerThread
from scribe.node.front import LoopFront

_DATE = re.compile(rb"\r\nDate: [^\r]*")


class LoopBackend(LedgerBackend):
    """The test ledger behind the node backend's two loop-side calls (start_put, start_get): it
    settles each future on the loop, a turn later, as the Raft loop would; `fault`, when set, is
    what the Waitress path's put and get raise too."""

    loop: asyncio.AbstractEventLoop
    started = 0
    fault: Exception | None = None
    hold: threading.Event | None = None  # set: answers wait until it is set

    def put(self, key, value):
        if self.fault is not None:
            raise self.fault
        return super().put(key, value)

    def get(self, key, consistency="linearizable"):
        if self.fault is not None and consistency == "linearizable":
            raise self.fault
        return super().get(key, consistency)

    def _later(self, future, fn) -> None:
        def settle() -> None:
            if self.hold is not None and not self.hold.is_set():
                self.loop.call_later(0.01, settle)
                return
            try:
                future.set_result(fn())
            except Exception as exc:
                future.set_exception(exc)

        self.loop.call_soon(settle)

    def start_put(self, key, value, done) -> None:
        if len(key) > 200:
            raise InvalidArgumentError("key too long for this test")
        self.started += 1
        future = concurrent.futures.Future()
        future.add_done_callback(done)
        self._later(future, lambda: self.put(key, value))

    def start_batch(self, ops, done) -> None:
        self.started += 1
        future = concurrent.futures.Future()
        future.add_done_callback(done)
        self._later(future, lambda: self.batch(ops))

    def start_get(self, key, done) -> None:
        self.started += 1
        future = concurrent.futures.Future()
        future.add_done_callback(done)
        self._later(future, lambda: self.get(key, "linearizable"))


@contextlib.contextmanager
def running_front(ledger, token: str | None = None):
    """A LoopFront on a uvloop thread over a Waitress server that does not accept."""
    backend = LoopBackend(ledger, node_id=1, client_port=8080)
    app = create_app(backend, max_value_bytes=1024, api_token=token)
    server = make_server(app, "127.0.0.1", 0, threads=4, accept=False)
    http = ServerThread(server)
    loop = uvloop.new_event_loop()
    backend.loop = loop
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    front = LoopFront(server, app.wsgi_app, backend)
    asyncio.run_coroutine_threadsafe(_call(front.start), loop).result(5)
    front.port = server.effective_port
    front.backend_for_test = backend
    try:
        yield front
    finally:
        asyncio.run_coroutine_threadsafe(_call(front.close), loop).result(5)
        http.stop()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.fixture
def front(ledger):
    with running_front(ledger) as running:
        yield running


async def _call(fn):
    return fn()


def _exchange(port: int, data: bytes, answers: int = 1, sock: socket.socket | None = None):
    """Send raw bytes, read `answers` complete responses (Content-Length framed)."""
    own = sock is None
    if own:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        if data:
            sock.sendall(data)
        out, buf = [], b""
        while len(out) < answers:
            head_end = buf.find(b"\r\n\r\n")
            if head_end >= 0:
                length = int(re.search(rb"Content-Length: (\d+)", buf[:head_end]).group(1))
                total = head_end + 4 + length
                if len(buf) >= total:
                    out.append(buf[:total])
                    buf = buf[total:]
                    continue
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed after {out!r} {buf!r}")
            buf += chunk
        return out
    finally:
        if own:
            sock.close()


def _put(key: str, value: bytes, extra: str = "") -> bytes:
    return (
        f"PUT /kv/{key} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(value)}\r\n{extra}\r\n"
    ).encode() + value


def _get(key: str, extra: str = "") -> bytes:
    return f"GET /kv/{key} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


def test_answers_byte_for_byte_as_waitress(front):
    backend = front.backend_for_test
    on_loop = _exchange(front.port, _put("a", b"one"))[0]
    assert backend.started == 1 and front.handed_over == 0
    # The same request with a Connection header goes to Waitress (and FastKv there).
    by_waitress = _exchange(front.port, _put("a", b"one", "Connection: keep-alive\r\n"))[0]
    assert front.handed_over == 1 and backend.started == 1
    assert on_loop.startswith(b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n")
    assert _DATE.sub(b"", on_loop).replace(b'"seq":0,"index":1', b"X") == _DATE.sub(
        b"", by_waitress
    ).replace(b'"seq":1,"index":2', b"X")
    for key in ("a", "missing", "%C3%A9t%C3%A9"):
        on_loop = _exchange(front.port, _get(key))[0]
        by_waitress = _exchange(front.port, _get(key, "Connection: keep-alive\r\n"))[0]
        assert _DATE.sub(b"", on_loop) == _DATE.sub(b"", by_waitress), key
    assert backend.started == 4


def test_hands_over_what_it_does_not_answer(front):
    backend = front.backend_for_test
    cases = [
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",  # another route
        b"GET /kv/a?consistency=stale HTTP/1.1\r\nHost: x\r\n\r\n",  # a query string
        b"GET /kv/a HTTP/1.0\r\nHost: x\r\n\r\n",  # HTTP/1.0
        b"DELETE /kv/a HTTP/1.1\r\nHost: x\r\n\r\n",  # another method
        _put("big", b"x" * 1025),  # over max_value_bytes: 413 from the app
        b"PUT /kv/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"GET /kv/ HTTP/1.1\r\nHost: x\r\n\r\n",  # an empty key: Flask's 404/400
    ]
    statuses = []
    for request in cases:
        answer = _exchange(front.port, request)[0]
        statuses.append(int(answer.split(b" ", 2)[1]))
    assert statuses[0] == 200 and statuses[3] == 200 and statuses[4] == 413
    assert statuses[5] == 200
    assert backend.started == 0 and front.handed_over == len(cases)


def test_a_connection_moves_to_waitress_mid_stream_and_keeps_order(front):
    backend = front.backend_for_test
    with socket.create_connection(("127.0.0.1", front.port), timeout=5) as sock:
        # Pipelined: two hot requests, then one for Waitress, then a hot one it serves too.
        data = _put("p", b"1") + _get("p") + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + _get("p")
        answers = _exchange(front.port, data, answers=4, sock=sock)
    assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 4
    assert answers[1].endswith(b"\r\n\r\n1") and answers[3].endswith(b"\r\n\r\n1")
    assert b'"status":"ok"' in answers[2]
    assert backend.started == 2 and front.handed_over == 1


def test_a_body_in_pieces_and_a_token(ledger):
    with running_front(ledger, token="s3cret") as front:
        backend, port = front.backend_for_test, front.port
        denied = _exchange(port, _put("t", b"v"))[0]
        assert denied.startswith(b"HTTP/1.1 401") and front.handed_over == 1
        request = _put("t", b"value", "Authorization: Bearer s3cret\r\n")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            for i in range(0, len(request), 7):
                sock.sendall(request[i : i + 7])
                time.sleep(0.002)
            answer = _exchange(port, b"", sock=sock)[0]
        assert answer.startswith(b"HTTP/1.1 200 OK") and backend.started == 1
        assert _exchange(port, _get("t"))[0].endswith(b"\r\n\r\nvalue")


def test_errors_read_as_the_apps_and_are_counted(front):
    backend = front.backend_for_test
    backend.fault = NoLeaderError("no leader elected yet")
    answer = _exchange(front.port, _put("e", b"v"))[0]
    by_waitress = _exchange(front.port, _put("e", b"v", "Connection: keep-alive\r\n"))[0]
    assert answer.startswith(b"HTTP/1.1 503 SERVICE UNAVAILABLE\r\n")
    assert _DATE.sub(b"", answer) == _DATE.sub(b"", by_waitress)
    backend.fault = None
    bad = _exchange(front.port, _put("k" * 201, b"v"))[0]  # refused before proposing
    assert bad.startswith(b"HTTP/1.1 400") and b"invalid_argument" in bad
    metrics = _exchange(front.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")[0].decode()
    assert 'scribe_http_requests_total{method="PUT",route="/kv/<path:key>",status="503"} 2.0' in (
        metrics
    )
    assert 'method="PUT",route="/kv/<path:key>",status="400"} 1.0' in metrics


def test_a_client_that_leaves_mid_request_costs_nothing(front):
    backend = front.backend_for_test
    backend.hold = threading.Event()
    sock = socket.create_connection(("127.0.0.1", front.port), timeout=5)
    sock.sendall(_put("gone", b"v"))
    deadline = time.monotonic() + 5
    while backend.started == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    sock.close()
    backend.hold.set()
    # The put is applied all the same (a read may come before it: the put was never answered).
    deadline = time.monotonic() + 5
    answer = b""
    while time.monotonic() < deadline and not answer.endswith(b"\r\n\r\nv"):
        answer = _exchange(front.port, _get("gone"))[0]
        time.sleep(0.01)
    assert answer.endswith(b"\r\n\r\nv"), answer
    deadline = time.monotonic() + 5
    while front.connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert front.connections == 0


def _wait_started(backend, count: int) -> None:
    deadline = time.monotonic() + 5
    while backend.started < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert backend.started == count


def test_a_client_that_half_closes_still_gets_its_answer(front):
    backend = front.backend_for_test
    backend.hold = threading.Event()
    with socket.create_connection(("127.0.0.1", front.port), timeout=5) as sock:
        sock.sendall(_put("half", b"v"))
        _wait_started(backend, 1)
        sock.shutdown(socket.SHUT_WR)  # seen by the front while the put is in flight
        time.sleep(0.05)
        backend.hold.set()
        answer = _exchange(front.port, b"", sock=sock)[0]
        assert answer.startswith(b"HTTP/1.1 200 OK")
        assert sock.recv(1) == b""  # then the front closes the connection
    deadline = time.monotonic() + 5
    while front.connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert front.connections == 0


def test_requests_sent_while_one_is_in_flight_wait_their_turn(front, monkeypatch):
    from scribe.node import front as front_module

    monkeypatch.setattr(front_module, "FRONT_PIPELINED_BYTES_MAX", 4096)
    backend = front.backend_for_test
    backend.hold = threading.Event()
    with socket.create_connection(("127.0.0.1", front.port), timeout=5) as sock:
        sock.sendall(_put("q0", b"first"))
        _wait_started(backend, 1)
        # 200 more puts (about 12 KB, over the patched limit) while the first is held: they stay
        # buffered (in the front, then in the kernel), and none starts before the first answer.
        rest = b"".join(_put(f"q{i}", b"v%d" % i) for i in range(1, 201))
        sock.sendall(rest)
        time.sleep(0.1)
        assert backend.started == 1
        (conn,) = front._conns.values()
        assert len(conn.buf) < 4096 + front_module.FRONT_RECV_BYTES
        backend.hold.set()
        answers = _exchange(front.port, b"", answers=201, sock=sock)
    assert all(a.startswith(b"HTTP/1.1 200 OK") for a in answers)
    assert backend.started == 201
    assert _exchange(front.port, _get("q200"))[0].endswith(b"\r\n\r\nv200")


def _batch(body: bytes, extra: str = "") -> bytes:
    return (
        f"POST /batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def test_batches_on_the_loop_and_refusals_from_the_app(front):
    backend = front.backend_for_test
    body = b'{"ops": [{"key": "b1", "value": "x"}, {"key": "b2", "delete": true}]}'
    on_loop = _exchange(front.port, _batch(body))[0]
    assert backend.started == 1 and front.handed_over == 0
    by_waitress = _exchange(front.port, _batch(body, "Connection: keep-alive\r\n"))[0]
    assert front.handed_over == 1 and backend.started == 1
    assert on_loop.startswith(b"HTTP/1.1 200 OK\r\n") and b'"count":2}' in on_loop
    positions = re.compile(rb'"seq":\d+,"index":\d+')
    assert positions.sub(b"", _DATE.sub(b"", on_loop)) == positions.sub(
        b"", _DATE.sub(b"", by_waitress)
    )
    refused = [
        b"not json",
        b"[1, 2]",
        b'{"ops": []}',
        b'{"ops": [{"key": "", "value": "x"}]}',
        b'{"ops": [{"key": "k"}], "extra": 1}',
    ]
    for bad in refused:
        answer = _exchange(front.port, _batch(bad))[0]
        assert answer.startswith(b"HTTP/1.1 400 BAD REQUEST\r\n"), (bad, answer)
    assert backend.started == 1 and front.handed_over == 1 + len(refused)
    metrics = _exchange(front.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")[0].decode()
    assert 'scribe_http_requests_total{method="POST",route="/batch",status="200"} 2.0' in metrics
