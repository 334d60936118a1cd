"""Serving an app with Waitress: `serve()` blocks; `start_server()` runs it on a thread (tests, runtime)."""

from __future__ import annotations

import errno
import logging
import threading

from flask import Flask
from waitress import wasyncore
from waitress.server import BaseWSGIServer, create_server

from scribe.errors import ScribeError

from .limits import CHANNEL_CLEANUP_INTERVAL_S, CHANNEL_TIMEOUT_S, SERVER_THREADS_DEFAULT

log = logging.getLogger("scribe.http")
_STOP_TIMEOUT_S = 10.0


class PortInUseError(ScribeError, OSError):
    """The HTTP port is taken by another process."""


def make_server(
    app: Flask,
    host: str,
    port: int,
    threads: int = SERVER_THREADS_DEFAULT,
    *,
    channel_timeout_s: float = CHANNEL_TIMEOUT_S,
    accept: bool = True,
) -> BaseWSGIServer:
    """A bound, listening Waitress server (port 0 picks a free port: see .effective_port).

    A connection idle or stalled in mid-request for channel_timeout_s is closed. With
    accept=False the socket is bound but neither listening nor accepted by Waitress: another
    acceptor (the node's loop front) hands it connections.
    """
    body_bytes_max = app.extensions.get("scribe", {}).get("max_body_bytes")
    options = {
        "channel_timeout": channel_timeout_s,
        "cleanup_interval": min(CHANNEL_CLEANUP_INTERVAL_S, channel_timeout_s),
    }
    if body_bytes_max is not None:
        # The app answers an oversized body with a JSON 413 from its Content-Length, before
        # reading it. Waitress buffers a body before calling the app, so it refuses at the
        # header stage (plain-text 413) anything past twice the app's limit: a hostile
        # Content-Length never costs disk.
        options["max_request_body_size"] = 2 * body_bytes_max + 1
    try:
        return create_server(
            app, host=host, port=port, threads=threads, ident="scribe", _start=accept, **options
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                errno.EADDRINUSE, f"cannot serve HTTP on {host}:{port}: the port is already in use"
            ) from None
        raise


def serve(app: Flask, host: str, port: int, threads: int = SERVER_THREADS_DEFAULT) -> None:
    """Serve until interrupted. Raises PortInUseError when the port is taken."""
    server = make_server(app, host, port, threads)
    log.info("serving HTTP on http://%s:%s", server.effective_host, server.effective_port)
    server.run()


class ServerThread:
    """A Waitress server on a daemon thread; stop() closes it and joins its threads."""

    def __init__(self, server: BaseWSGIServer):
        self.server = server
        self.host = server.effective_host
        self.port = server.effective_port
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=server.run, name=f"http-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server = self.server
        # Sockets belong to the server's loop thread: close them from there, via its trigger.
        try:
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        except OSError as exc:
            # The wake-up pipe is gone (its descriptor was closed under the server): the loop
            # cannot be woken. Empty its map, so it ends after its current select() (within
            # asyncore_loop_timeout), then close the sockets once it no longer selects on them.
            log.warning(
                "HTTP server on port %s: wake-up pipe unusable (%s); closing", self.port, exc
            )
            orphans = dict(server._map)
            server._map.clear()
            self._thread.join(_STOP_TIMEOUT_S)
            wasyncore.close_all(orphans, ignore_all=True)
        self._thread.join(_STOP_TIMEOUT_S)
        server.task_dispatcher.shutdown()
        if self._thread.is_alive():
            raise ScribeError(f"the HTTP server on port {self.port} did not stop")

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start_server(
    app: Flask, host: str = "127.0.0.1", port: int = 0, threads: int = SERVER_THREADS_DEFAULT
) -> ServerThread:
    """Serve on a background thread; port 0 picks a free port (see .port, .url)."""
    return ServerThread(make_server(app, host, port, threads))
