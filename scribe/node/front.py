"""The node's HTTP front on its Raft loop: the plain `PUT /kv/<key>`, `GET /kv/<key>` and
`POST /batch` are answered on the loop thread; every other request is served by Waitress and the
Flask app.

Under Waitress a put wakes the server thread, then a worker thread, which hands the request to the
Raft loop and sleeps until the loop hands the answer back: four thread handoffs and as many GIL
handoffs per request, which on a 2-core host cost more CPU than Raft itself
(docs/performance-history.md). Here the loop owns the client port's listening socket (Waitress's
server is built on it but does not accept) and reads each connection itself. While a connection's
requests are the plain form of the two hot requests, exactly what scribe.http.fastkv would answer
without Flask, the loop proposes the write or asks for the read index directly and writes the
answer from the callback that settles it, byte for byte what the Waitress path writes (same status
line, headers in Waitress's order, body, metrics). The first request that is anything else (another
route or method, a query string, HTTP/1.0, a Connection, Expect or Transfer-Encoding header, a
missing token, a body over the limit, a malformed head, a /batch body the route would refuse) hands
the connection, with every byte read so far, to Waitress, which serves it from then on as if it had
accepted it; so every refusal is the Flask app's own.

One request is in flight per connection (pipelined ones wait in its buffer); a connection idle
for CHANNEL_TIMEOUT_S is closed; past FRONT_CONNECTIONS_MAX connections new ones go to Waitress.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import socket
import time
import urllib.parse
from typing import Any

from waitress.server import BaseWSGIServer
from waitress.utilities import build_http_date

from scribe.http.app import parse_batch
from scribe.http.fastkv import BATCH_RULE, KV_RULE, FastKv
from scribe.http.limits import CHANNEL_CLEANUP_INTERVAL_S, CHANNEL_TIMEOUT_S
from scribe.node.limits import (
    FRONT_ACCEPTS_PER_WAKE_MAX,
    FRONT_CONNECTIONS_MAX,
    FRONT_HEAD_BYTES_MAX,
    FRONT_PIPELINED_BYTES_MAX,
    FRONT_RECV_BYTES,
)

log = logging.getLogger("scribe.node")

_HEAD_END = b"\r\n\r\n"
_PREFIX = b"/kv/"
_BATCH = BATCH_RULE.encode()
# Headers that change how a request or its connection is handled: Waitress takes those requests.
_HANDED_OVER_HEADERS = frozenset({"connection", "expect", "transfer-encoding", "upgrade"})


class _Conn:
    __slots__ = ("sock", "fd", "addr", "buf", "out", "busy", "reading", "writing", "last_s")

    def __init__(self, sock: socket.socket, addr: Any) -> None:
        self.sock: socket.socket | None = sock
        self.fd = sock.fileno()
        self.addr = addr
        self.buf = bytearray()
        self.out = b""  # answer bytes the socket has not taken yet
        self.busy = False  # a request is in flight or its answer is being written
        # Registered with the loop for reads / writes: each change is a system call, so the
        # reader stays registered while a request is in flight (see _on_readable).
        self.reading = False
        self.writing = False
        self.last_s = time.monotonic()


class LoopFront:
    """Start with start() on the loop thread; stop_accepting() then close() to stop."""

    def __init__(
        self,
        server: BaseWSGIServer,
        fastkv: FastKv,
        backend: Any,
        *,
        connections_max: int = FRONT_CONNECTIONS_MAX,
        idle_timeout_s: float = CHANNEL_TIMEOUT_S,
    ) -> None:
        self.server = server
        self.fastkv = fastkv
        self.backend = backend
        self.connections_max = connections_max
        self.idle_timeout_s = idle_timeout_s
        self.ident = server.adj.ident
        self.handed_over = 0  # connections given to Waitress (tests, metrics)
        self._listen: socket.socket = server.socket
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conns: dict[int, _Conn] = {}
        self._accepting = False
        self._sweeper: asyncio.TimerHandle | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self._listen.listen(self.server.adj.backlog)
        self._listen.setblocking(False)
        loop.add_reader(self._listen.fileno(), self._on_accept)
        self._accepting = True
        self._sweeper = loop.call_later(CHANNEL_CLEANUP_INTERVAL_S, self._sweep)

    def stop_accepting(self) -> None:
        """No new connection from now on (the listening socket stays Waitress's to close)."""
        if self._accepting:
            self._accepting = False
            self._loop.remove_reader(self._listen.fileno())

    def close(self) -> None:
        """Close every connection still on the loop (after the Raft loop settled its work)."""
        self.stop_accepting()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._conns.values()):
            self._drop(conn)

    @property
    def connections(self) -> int:
        return len(self._conns)

    # ---- connections -------------------------------------------------------------------------

    def _on_accept(self) -> None:
        for _ in range(FRONT_ACCEPTS_PER_WAKE_MAX):
            try:
                sock, addr = self._listen.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # a peer gone before accept(): nothing to serve
                log.debug("accept failed: %s", exc)
                return
            sock.setblocking(False)
            try:
                self.server.set_socket_options(sock)
            except OSError:
                sock.close()
                continue
            conn = _Conn(sock, self.server.fix_addr(addr))
            if len(self._conns) >= self.connections_max:
                self._hand_over(conn)  # Waitress applies its own connection limit
                continue
            self._conns[conn.fd] = conn
            self._start_reading(conn)

    def _on_readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(FRONT_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        if not data:
            if conn.busy:  # a client that half-closed after its request still gets the answer
                self._stop_reading(conn)
            else:
                self._drop(conn)
            return
        conn.buf += data
        conn.last_s = time.monotonic()
        if conn.busy:
            # A pipelined request: it waits in the buffer, and past FRONT_PIPELINED_BYTES_MAX
            # in the kernel (the client is not read from until the answer is written).
            if len(conn.buf) >= FRONT_PIPELINED_BYTES_MAX:
                self._stop_reading(conn)
            return
        self._serve_next(conn)

    def _start_reading(self, conn: _Conn) -> None:
        if not conn.reading:
            conn.reading = True
            self._loop.add_reader(conn.fd, self._on_readable, conn)

    def _stop_reading(self, conn: _Conn) -> None:
        if conn.reading:
            conn.reading = False
            self._loop.remove_reader(conn.fd)

    def _sweep(self) -> None:
        now = time.monotonic()
        for conn in list(self._conns.values()):
            if not conn.busy and now - conn.last_s > self.idle_timeout_s:
                self._drop(conn)
        self._sweeper = self._loop.call_later(CHANNEL_CLEANUP_INTERVAL_S, self._sweep)

    def _drop(self, conn: _Conn) -> None:
        sock = conn.sock
        if sock is None:
            return
        conn.sock = None
        self._conns.pop(conn.fd, None)
        self._loop.remove_reader(conn.fd)
        self._loop.remove_writer(conn.fd)
        sock.close()

    def _hand_over(self, conn: _Conn) -> None:
        """Waitress serves this connection from now on, starting with the bytes read so far."""
        sock, data = conn.sock, bytes(conn.buf)
        if sock is None:
            return
        conn.sock = None
        if self._conns.pop(conn.fd, None) is not None:
            self._loop.remove_reader(conn.fd)
            self._loop.remove_writer(conn.fd)
        self.handed_over += 1
        server = self.server

        def adopt() -> None:  # on Waitress's thread, which owns its socket map
            channel = server.channel_class(server, sock, conn.addr, server.adj, map=server._map)
            if data:
                channel.received(data)

        try:
            server.trigger.pull_trigger(adopt)
        except OSError:  # Waitress is stopping (its wake-up pipe is closed): nobody can serve it
            sock.close()

    # ---- requests ----------------------------------------------------------------------------

    def _serve_next(self, conn: _Conn) -> None:
        """Take the next complete request in the buffer, unless one is in flight."""
        if conn.busy or conn.sock is None:
            return
        buf = conn.buf
        end = buf.find(_HEAD_END, 0, FRONT_HEAD_BYTES_MAX)
        if end < 0:
            if len(buf) >= FRONT_HEAD_BYTES_MAX:
                self._hand_over(conn)
            return
        request = self._parse_head(bytes(buf[:end]))
        if request is None:
            self._hand_over(conn)
            return
        method, environ, key, length = request
        body_at = end + len(_HEAD_END)
        if len(buf) < body_at + length:
            return  # the rest of the body is on its way (length is within the route's limit)
        value = bytes(buf[body_at : body_at + length])
        if method == "POST":
            value = self._batch_ops(value)
            if value is None:  # Flask answers it, with the error it finds, from these bytes
                self._hand_over(conn)
                return
        del buf[: body_at + length]
        conn.busy = True
        self._start(conn, method, environ, key, value)

    def _parse_head(self, head: bytes) -> tuple[str, dict[str, Any], bytes, int] | None:
        """(method, environ, key, body length) of a request this front answers, else None."""
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or parts[2] != b"HTTP/1.1":
            return None
        method, target = parts[0], parts[1]
        if (method, target) != (b"POST", _BATCH) and (
            method not in (b"GET", b"PUT") or not target.startswith(_PREFIX)
        ):
            return None
        if b"?" in target or b"#" in target:
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
                return None  # obsolete line folding, a space before the colon, no colon
            try:
                lower = name.decode("ascii").lower()
            except UnicodeDecodeError:
                return None
            if lower in headers or lower in _HANDED_OVER_HEADERS:
                return None
            headers[lower] = value.strip().decode("latin-1")
        environ = {
            "REQUEST_METHOD": method.decode("ascii"),
            "PATH_INFO": urllib.parse.unquote_to_bytes(target).decode("latin-1"),
            "QUERY_STRING": "",
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        if "content-length" in headers:
            environ["CONTENT_LENGTH"] = headers["content-length"]
        if "authorization" in headers:
            environ["HTTP_AUTHORIZATION"] = headers["authorization"]
        if method == b"POST":
            length = self.fastkv.batch_length(environ)
            return None if length is None else ("POST", environ, b"", length)
        key = self.fastkv.takes(environ)
        if key is None:
            return None
        if method == b"GET":
            if environ.get("CONTENT_LENGTH", "0") != "0":
                return None
            return "GET", environ, key, 0
        length = self.fastkv.put_length(environ)
        if length is None:
            return None
        return "PUT", environ, key, length

    def _batch_ops(self, body: bytes) -> list[tuple[bytes, bytes | None]] | None:
        """The checked ops of a /batch body, or None when the route would refuse it."""
        try:
            doc = json.loads(body)
            if not isinstance(doc, dict):
                return None
            return parse_batch(doc, self.fastkv.max_value_bytes)
        except Exception:  # any refusal: the route's own error, from Flask
            return None

    def _start(self, conn: _Conn, method: str, environ: dict[str, Any], key: bytes, value: Any):
        fastkv = self.fastkv
        rule = BATCH_RULE if method == "POST" else KV_RULE
        started = time.perf_counter()
        wall_s = time.time()
        fastkv.in_flight.inc()

        def done(future: Any) -> None:  # on the loop thread, inside the Raft loop's apply
            try:
                try:
                    exc = future.exception()
                    if exc is not None:
                        answer = self._error(environ, method, started, exc, rule)
                    elif method == "PUT":
                        answer = fastkv.put_answer(key, future.result())
                    elif method == "POST":
                        answer = fastkv.batch_answer(future.result(), len(value))
                    else:
                        answer = fastkv.get_answer(key, future.result())
                    if exc is None:
                        fastkv.count(method, answer[0], started, rule)
                finally:
                    fastkv.in_flight.dec()
                self._answer(conn, answer, wall_s)
            except Exception:  # never let one connection's answer break the Raft loop's turn
                log.exception("answering %s on the loop failed; closing the connection", method)
                self._drop(conn)

        try:
            if method == "PUT":
                self.backend.start_put(key, value, done)
            elif method == "POST":
                self.backend.start_batch(value, done)
            else:
                self.backend.start_get(key, done)
        except Exception as exc:  # bad input found before proposing: answered as any failure
            refused: concurrent.futures.Future = concurrent.futures.Future()
            refused.set_exception(exc)
            done(refused)

    def _error(
        self, environ: dict[str, Any], method: str, started: float, exc: BaseException, rule: str
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        full = dict(environ)
        full.update(
            {
                "wsgi.url_scheme": "http",
                "SERVER_NAME": self.server.effective_host,
                "SERVER_PORT": str(self.server.effective_port),
                "SCRIPT_NAME": "",
            }
        )
        return self.fastkv.error_answer(full, method, started, exc, rule)

    # ---- answers -----------------------------------------------------------------------------

    def _answer(self, conn: _Conn, answer: tuple[str, list[tuple[str, str]], bytes], wall_s: float):
        if conn.sock is None:
            return  # the client left while its request was in flight
        status, headers, body = answer
        conn.out = _response_bytes(status, headers, body, self.ident, wall_s)
        self._flush(conn)

    def _flush(self, conn: _Conn) -> None:
        sock = conn.sock
        if sock is None:
            return
        try:
            sent = sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop(conn)
            return
        conn.out = conn.out[sent:]
        if conn.out:
            self._stop_reading(conn)  # a client that does not read its answers is not read from
            if not conn.writing:
                conn.writing = True
                self._loop.add_writer(conn.fd, self._flush, conn)
            return
        if conn.writing:
            conn.writing = False
            self._loop.remove_writer(conn.fd)
        conn.busy = False
        conn.last_s = time.monotonic()
        self._start_reading(conn)
        if conn.buf:  # a pipelined request: on the next turn (no recursion per request)
            self._loop.call_soon(self._serve_next, conn)


def _response_bytes(
    status: str, headers: list[tuple[str, str]], body: bytes, ident: str, wall_s: float
) -> bytes:
    """The status line and headers as Waitress writes them (names capitalized per word, a
    Content-Length, then Server and Date unless given, sorted by name), then the body."""
    named = [("-".join(p.capitalize() for p in k.split("-")), v) for k, v in headers]
    given = {k for k, _ in named}
    if "Content-Length" not in given:
        named.append(("Content-Length", str(len(body))))
    if "Server" not in given and ident:
        named.append(("Server", ident))
    if "Date" not in given:
        named.append(("Date", build_http_date(wall_s)))
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in sorted(named, key=lambda h: h[0])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
