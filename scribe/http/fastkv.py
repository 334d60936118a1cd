"""A WSGI fast path for the two hottest requests: `PUT /kv/<key>` and `GET /kv/<key>`.

Flask's per-request machinery (request and app contexts, URL matching, hooks, a Response object)
costs about 150 us of Python per request, several times what a put or a linearizable get costs the
Raft loop, and on a 2-core node every microsecond the HTTP threads hold the GIL delays the loop.
This wrapper answers the plain form of those two requests itself, with byte-identical responses
and the same metrics, and hands every other request to Flask untouched:

- any other path, method (HEAD included) or a query string (`?consistency=stale`, ...);
- a key that is empty, over KEY_BYTES_MAX, or not UTF-8 once percent-decoded;
- a PUT without a plain decimal Content-Length within max_value_bytes, with a Transfer-Encoding,
  or without the right bearer token when one is configured;
- Flask configured for indented JSON (debug, or json.compact = False).

A failure after the backend was called (no leader, outcome unknown, ...) is answered by the app's
own error handlers, inside a Flask request context, so it reads exactly as on the Flask path.
"""

from __future__ import annotations

import hmac
import io
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from .backend import Backend
from .limits import JSON_BODY_OVERHEAD_BYTES, KEY_BYTES_MAX
from .metrics import HttpMetrics

KV_RULE = "/kv/<path:key>"  # the Flask route these requests would match (the metrics label)
BATCH_RULE = "/batch"
_KV_PREFIX = "/kv/"
_OK = "200 OK"
_NOT_FOUND = "404 NOT FOUND"
_JSON = "application/json"
_OCTETS = "application/octet-stream"
_SLASH = ord("/")
_FIRST_PRINTABLE = 0x20

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FastKv:
    """WSGI middleware (install as `app.wsgi_app`); `wrapped` is Flask's own wsgi_app."""

    def __init__(
        self,
        app: Flask,
        wrapped: WsgiApp,
        backend: Backend,
        metrics: HttpMetrics,
        max_value_bytes: int,
        token: bytes | None,
    ) -> None:
        self.app = app
        self.wrapped = wrapped
        self._backend = backend
        self._metrics = metrics
        self._max_value_bytes = max_value_bytes
        self._max_json_bytes = max_value_bytes + JSON_BODY_OVERHEAD_BYTES  # the /batch route's
        self._token = token
        self._latency = {m: metrics.latency.labels(KV_RULE, m) for m in ("GET", "PUT")}
        self._counters: dict[tuple[str, int], Any] = {}
        # The hooks the app has now (the metrics' own, which this path replays): see _plain_app.
        self._hooks = _hooks(app)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        key = self.takes(environ)
        if key is None:
            return self.wrapped(environ, start_response)
        method = environ["REQUEST_METHOD"]
        path = environ["PATH_INFO"]
        if method == "PUT":
            value = self._put_body(environ)
            if value is None:
                return self.wrapped(environ, start_response)
            if len(value) != int(environ["CONTENT_LENGTH"]):
                # A short body: Flask answers it (400) from the bytes that did arrive.
                environ["wsgi.input"] = io.BytesIO(value)
                return self.wrapped(environ, start_response)
        metrics = self._metrics
        started = time.perf_counter()
        metrics.in_flight.inc()
        try:
            try:
                if method == "PUT":
                    status, headers, body = self._put(key, value)
                else:
                    status, headers, body = self._get(key, path)
            except Exception as exc:  # answered by the app's error handlers, as on the Flask path
                return self._error(environ, start_response, method, started, exc)
            self._count(method, status, started)
        finally:
            metrics.in_flight.dec()
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    @property
    def max_value_bytes(self) -> int:
        return self._max_value_bytes

    @property
    def in_flight(self) -> Any:
        """The app's gauge of requests being served."""
        return self._metrics.in_flight

    # ---- what this path takes (also asked by the node's loop front) --------------------------

    def takes(self, environ: dict[str, Any]) -> bytes | None:
        """The key when this path answers the request itself, None when Flask must (from the
        request line and headers; a PUT's length and token are put_length's)."""
        path = environ.get("PATH_INFO", "")
        if (
            environ.get("REQUEST_METHOD") not in ("GET", "PUT")
            or not path.startswith(_KV_PREFIX)
            or not self._plain(environ)
        ):
            return None
        return _key(path)

    def put_length(self, environ: dict[str, Any]) -> int | None:
        """The body length of a PUT this path may take, or None to hand it to Flask."""
        return self._body_length(environ, self._max_value_bytes)

    def batch_length(self, environ: dict[str, Any]) -> int | None:
        """The body length of a plain POST /batch the node's loop front may parse itself, or None
        for Flask (the front hands it over too when its body does not parse and check cleanly)."""
        if (
            environ.get("REQUEST_METHOD") != "POST"
            or environ.get("PATH_INFO") != BATCH_RULE
            or not self._plain(environ)
        ):
            return None
        return self._body_length(environ, self._max_json_bytes)

    def _plain(self, environ: dict[str, Any]) -> bool:
        """No query string, and the app answers as when this path was installed."""
        return (
            not environ.get("QUERY_STRING")
            and not self._indented_json()
            and _hooks(self.app) == self._hooks
        )

    def _body_length(self, environ: dict[str, Any], limit_bytes: int) -> int | None:
        """A plain decimal Content-Length within the limit, no Transfer-Encoding, and the token
        when one is set: the length, else None."""
        if self._token is not None and not self._authorized(environ):
            return None
        declared = environ.get("CONTENT_LENGTH", "")
        if (
            environ.get("HTTP_TRANSFER_ENCODING")
            or not declared.isascii()
            or not declared.isdigit()
            or int(declared) > limit_bytes
        ):
            return None
        return int(declared)

    # ---- the two requests --------------------------------------------------------------------

    def _put(self, key: bytes, value: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
        return self.put_answer(key, self._backend.put(key, value))

    def put_answer(self, key: bytes, result: Any) -> tuple[str, list[tuple[str, str]], bytes]:
        body = self._json({"key": key.decode("utf-8"), "seq": result.seq, "index": result.index})
        return _OK, [("Content-Type", _JSON)], body

    def _get(self, key: bytes, path: str) -> tuple[str, list[tuple[str, str]], bytes]:
        return self.get_answer(key, self._backend.get(key, "linearizable"))

    def batch_answer(self, result: Any, count: int) -> tuple[str, list[tuple[str, str]], bytes]:
        """What the /batch route's jsonify answers for a batch of `count` ops."""
        body = self._json({"seq": result.seq, "index": result.index, "count": count})
        return _OK, [("Content-Type", _JSON)], body

    def get_answer(self, key: bytes, entry: Any) -> tuple[str, list[tuple[str, str]], bytes]:
        if entry is None:
            text = key.decode("utf-8")
            body = self._json({"error": "key_not_found", "message": f"key {text!r} not found"})
            return _NOT_FOUND, [("Content-Type", _JSON)], body
        headers = [("Content-Type", _OCTETS), ("X-Scribe-Seq", str(entry.seq))]
        return _OK, headers, bytes(entry.value)

    # ---- checks ------------------------------------------------------------------------------

    def _put_body(self, environ: dict[str, Any]) -> bytes | None:
        """The body of a PUT the fast path may take, or None (left unread) to hand it to Flask."""
        length = self.put_length(environ)
        if length is None:
            return None
        return environ["wsgi.input"].read(length)

    def _authorized(self, environ: dict[str, Any]) -> bool:
        scheme, _, given = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self._token
        )

    def _indented_json(self) -> bool:
        compact = self.app.json.compact
        return compact is False or (compact is None and self.app.debug)

    # ---- answers -----------------------------------------------------------------------------

    def _json(self, doc: dict[str, Any]) -> bytes:
        # What jsonify writes in compact mode: app.json's settings, no spaces, a final newline.
        return (self.app.json.dumps(doc, separators=(",", ":")) + "\n").encode("utf-8")

    def count(self, method: str, status: str | int, started: float, rule: str = KV_RULE) -> None:
        """Count an answered request in the app's metrics (the loop front's answers too)."""
        if rule == KV_RULE:
            self._count(method, status, started)
            return
        self._metrics.latency.labels(rule, method).observe(time.perf_counter() - started)
        self._metrics.requests.labels(rule, method, str(status)[:3]).inc()

    def _count(self, method: str, status: str | int, started: float) -> None:
        code = int(str(status)[:3])
        self._latency[method].observe(time.perf_counter() - started)
        counter = self._counters.get((method, code))
        if counter is None:
            counter = self._metrics.requests.labels(KV_RULE, method, str(code))
            self._counters[(method, code)] = counter
        counter.inc()

    def _error(self, environ, start_response, method: str, started: float, exc: Exception):
        return self._error_response(environ, method, started, exc)(environ, start_response)

    def error_answer(
        self,
        environ: dict[str, Any],
        method: str,
        started: float,
        exc: Exception,
        rule: str = KV_RULE,
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """What the app's error handlers answer for exc (counted), as status, headers, body."""
        response = self._error_response(environ, method, started, exc, rule)
        return response.status, list(response.headers.items()), response.get_data()

    def _error_response(
        self, environ, method: str, started: float, exc: Exception, rule: str = KV_RULE
    ) -> Any:
        app = self.app
        with app.request_context(environ):
            response = app.make_response(app.handle_user_exception(exc))
        self.count(method, response.status_code, started, rule)
        return response


def _hooks(app: Flask) -> tuple:
    """The app's request hooks. Flask runs them; this path skips them and replays only the metrics'
    ones, so it is taken only while they are the same as when it was installed (create_app installs
    it last): a hook added later is never bypassed."""
    return (
        {k: list(v) for k, v in app.before_request_funcs.items()},
        {k: list(v) for k, v in app.after_request_funcs.items()},
        {k: list(v) for k, v in app.teardown_request_funcs.items()},
        {k: list(v) for k, v in app.url_value_preprocessors.items()},
    )


def _key(path: str) -> bytes | None:
    """The key of a /kv/ path (PATH_INFO is percent-decoded, Latin-1 per PEP 3333), or None when
    Flask must answer: empty, over the limit, not UTF-8, or a key Werkzeug's router does not hand
    to the /kv/ route as is (a leading slash, a control character such as a newline)."""
    try:
        key = path[len(_KV_PREFIX) :].encode("latin-1")
    except UnicodeEncodeError:
        return None
    if not key or len(key) > KEY_BYTES_MAX or key[0] == _SLASH or min(key) < _FIRST_PRINTABLE:
        return None
    try:
        key.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return key
