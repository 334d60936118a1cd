"""A small Python client for a node's HTTP API (DESIGN §7), on the standard library only.

    from scribe.client import Client
    with Client("http://127.0.0.1:8001", token=None) as c:
        c.put("user:alice", b"Alice")
        c.get("user:alice")                   # b"Alice"
        proof, head = c.verify("user:alice")  # scribe.Proof, scribe.signing.SignedTreeHead

Errors are typed, with the server's message: 404 -> KeyNotFoundError, 503 -> NoLeaderError,
504 -> OutcomeUnknownError, any other 4xx -> InvalidArgumentError, 5xx -> ServerError; a node that
cannot be reached -> NodeUnreachableError; a 2xx answer that is not what the API promises ->
ResponseError. One Client keeps one keep-alive connection: use one Client per thread.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import socket
import urllib.parse
from collections.abc import Iterable
from typing import Any

from .errors import (
    InvalidArgumentError,
    KeyNotFoundError,
    NoLeaderError,
    OutcomeUnknownError,
    ScribeError,
)
from .records import OPS, Proof, Record, Version
from .signing import SignedTreeHead, hex_field

TIMEOUT_S_DEFAULT = 10.0
HASH_BYTES = 32


class NodeUnreachableError(ScribeError, ConnectionError):
    """The node could not be reached (refused, reset, timed out, bad address)."""


class ServerError(ScribeError):
    """The node answered 5xx (other than 503/504): a failure on its side."""


class ResponseError(ScribeError):
    """A 2xx answer whose body is not what the API promises."""


def _raise_for(status: int, body: bytes) -> None:
    code, message = "error", body[:500].decode("utf-8", "replace")
    try:
        doc = json.loads(body)
        if isinstance(doc, dict):
            code = str(doc.get("error", code))
            message = str(doc.get("message", message))
    except ValueError:
        pass
    text = f"HTTP {status} {code}: {message}"
    if status == 404:
        raise KeyNotFoundError(text)
    if status == 503:
        raise NoLeaderError(text)
    if status == 504:
        raise OutcomeUnknownError(text)
    if 400 <= status < 500:
        raise InvalidArgumentError(text)
    raise ServerError(text)


def _bytes(data: str | bytes | bytearray | memoryview, what: str) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise InvalidArgumentError(f"{what} must be str or bytes, not {type(data).__name__}")


def _b64(doc: dict[str, Any], name: str, where: str) -> bytes:
    text = doc.get(name)
    if not isinstance(text, str):
        raise ResponseError(f"{where}: {name} is missing")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ResponseError(f"{where}: {name} is not base64") from None


def _int(doc: dict[str, Any], name: str, where: str) -> int:
    value = doc.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ResponseError(f"{where}: {name} must be a non-negative integer, got {value!r}")
    return value


def _hashes(values: Any, where: str) -> list[bytes]:
    if not isinstance(values, list):
        raise ResponseError(f"{where} must be a list of hex hashes")
    out = []
    for i, text in enumerate(values):
        if not isinstance(text, str) or len(text) != 2 * HASH_BYTES:
            raise ResponseError(f"{where}[{i}] is not a 32-byte hex hash")
        try:
            out.append(bytes.fromhex(text))
        except ValueError:
            raise ResponseError(f"{where}[{i}] is not hex") from None
    return out


def parse_signed_tree_head(doc: Any) -> SignedTreeHead:
    try:
        return SignedTreeHead.from_json(doc)
    except InvalidArgumentError as exc:
        raise ResponseError(str(exc)) from None


def parse_proof(doc: Any) -> tuple[Proof, SignedTreeHead]:
    """A /verify/<key> body -> (Proof, SignedTreeHead); ResponseError when malformed."""
    where = "/verify answer"
    if not isinstance(doc, dict):
        raise ResponseError(f"{where} is not a JSON object")
    op = _int(doc, "op", where)
    if op not in OPS:
        raise ResponseError(f"{where}: unknown op {op}")
    try:
        leaf = hex_field(doc, "leaf_hash", HASH_BYTES, where)
        root = hex_field(doc, "root", HASH_BYTES, where)
    except InvalidArgumentError as exc:
        raise ResponseError(str(exc)) from None
    proof = Proof(
        seq=_int(doc, "seq", where),
        ts_ms=_int(doc, "ts_ms", where),
        op=op,
        key=_b64(doc, "key_b64", where),
        value=_b64(doc, "value_b64", where),
        leaf_hash=leaf,
        tree_size=_int(doc, "tree_size", where),
        root=root,
        audit_path=_hashes(doc.get("audit_path"), f"{where}: audit_path"),
    )
    return proof, parse_signed_tree_head(doc.get("signed_tree_head"))


def parse_record(doc: Any) -> Record:
    where = "/records item"
    if not isinstance(doc, dict):
        raise ResponseError(f"{where} is not a JSON object")
    return Record(
        _int(doc, "seq", where),
        _int(doc, "ts_ms", where),
        _int(doc, "op", where),
        _b64(doc, "key_b64", where),
        _b64(doc, "value_b64", where),
    )


def _stale(stale: bool) -> dict[str, Any]:
    return {"consistency": "stale"} if stale else {}


class Client:
    """The HTTP API of one node. Not thread-safe (one keep-alive connection)."""

    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = TIMEOUT_S_DEFAULT):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgumentError(f"node URL must be http://host:port, got {url!r}")
        self.url = url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        self._token = token
        self._timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    # ---- transport -----------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout_s)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: bytes | None = None,
        json_body: Any = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request; returns (status, headers, body) of a 2xx answer, else raises."""
        target = self._base + path
        if query:
            params = {k: v for k, v in query.items() if v is not None}
            if params:
                target += "?" + urllib.parse.urlencode(params)
        headers = {}
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self._token is not None and method in ("PUT", "POST", "DELETE"):
            headers["Authorization"] = f"Bearer {self._token}"
        # A kept-alive connection the server closed fails on first use: retry once on a new one,
        # only for requests that did not reach the server (a write is never sent twice blindly).
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request(method, target, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if attempt or method not in ("GET",):
                    raise NodeUnreachableError(f"{self.url}: {exc}") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                reason = "timed out" if isinstance(exc, socket.timeout) else str(exc)
                raise NodeUnreachableError(f"{self.url}: {reason}") from None
        if response.will_close:
            self.close()
        if not 200 <= response.status < 300:
            _raise_for(response.status, data)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def _json(self, path: str, **kwargs) -> Any:
        _, _, data = self.request("GET", path, **kwargs)
        try:
            return json.loads(data)
        except ValueError:
            raise ResponseError(f"{self.url}{path}: the answer is not JSON") from None

    @staticmethod
    def _key_path(prefix: str, key: str | bytes) -> str:
        return prefix + urllib.parse.quote(_bytes(key, "key"), safe="")

    # ---- writes --------------------------------------------------------------------------------

    def put(self, key: str | bytes, value: str | bytes) -> dict[str, Any]:
        """Write the key; returns {"key", "seq", "index"} once committed and durable."""
        _, _, data = self.request("PUT", self._key_path("/kv/", key), body=_bytes(value, "value"))
        return json.loads(data)

    def delete(self, key: str | bytes) -> dict[str, Any]:
        _, _, data = self.request("DELETE", self._key_path("/kv/", key))
        return json.loads(data)

    def batch(self, ops: Iterable[tuple[str | bytes, str | bytes | None]]) -> dict[str, Any]:
        """Apply [(key, value), ...] atomically (value None = delete); {"seq", "index", "count"}."""
        items = []
        for key, value in ops:
            k = _bytes(key, "key").decode("utf-8")
            if value is None:
                items.append({"key": k, "delete": True})
            else:
                items.append(
                    {"key": k, "value_b64": base64.b64encode(_bytes(value, "value")).decode()}
                )
        _, _, data = self.request("POST", "/batch", json_body={"ops": items})
        return json.loads(data)

    # ---- reads ---------------------------------------------------------------------------------

    def get(self, key: str | bytes, *, stale: bool = False) -> bytes:
        """The key's value; KeyNotFoundError when absent."""
        return self.get_with_seq(key, stale=stale)[1]

    def get_with_seq(self, key: str | bytes, *, stale: bool = False) -> tuple[int, bytes]:
        query = {"consistency": "stale"} if stale else None
        _, headers, data = self.request("GET", self._key_path("/kv/", key), query=query)
        return int(headers.get("x-scribe-seq", "-1")), data

    def range(
        self,
        start: str | None = None,
        end: str | None = None,
        prefix: str | None = None,
        limit: int | None = None,
        *,
        stale: bool = False,
    ) -> list[tuple[bytes, bytes]]:
        query = {"start": start, "end": end, "prefix": prefix, "limit": limit}
        if stale:
            query["consistency"] = "stale"
        items = self._json("/range", query=query)
        return [
            (_b64(item, "key_b64", "/range"), _b64(item, "value_b64", "/range")) for item in items
        ]

    def history(self, key: str | bytes, *, stale: bool = False) -> list[Version]:
        query = {"consistency": "stale"} if stale else None
        versions = self._json(self._key_path("/history/", key), query=query)
        return [
            Version(
                _int(v, "seq", "/history"),
                _int(v, "ts_ms", "/history"),
                _int(v, "op", "/history"),
                _b64(v, "value_b64", "/history"),
            )
            for v in versions
        ]

    def records(
        self, start: int = 0, limit: int | None = None, *, stale: bool = False
    ) -> list[Record]:
        query: dict[str, Any] = {"start": start, "limit": limit}
        if stale:
            query["consistency"] = "stale"
        docs = self._json("/records", query=query)
        if not isinstance(docs, list):
            raise ResponseError("/records answer is not a list")
        return [parse_record(d) for d in docs]

    # ---- the node ------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._json("/health")

    def members(self) -> list[dict[str, Any]]:
        return self._json("/cluster/members")["members"]

    def leader(self) -> dict[str, Any]:
        return self._json("/cluster/leader")

    def status(self) -> dict[str, Any]:
        return self._json("/cluster/status")

    # ---- verification --------------------------------------------------------------------------

    def tree_head(self, stale: bool = False) -> SignedTreeHead:
        """The node's signed tree head (the signature is not checked here). stale: the node's
        own tree as it is, without a ReadIndex round (what a monitor of each node wants)."""
        return parse_signed_tree_head(self._json("/tree/head", query=_stale(stale) or None))

    def verify(
        self, key: str | bytes, seq: int | None = None, stale: bool = False
    ) -> tuple[Proof, SignedTreeHead]:
        """The served inclusion proof of the key (or of its version `seq`) and signed head."""
        return parse_proof(self.verify_raw(key, seq, stale))

    def verify_raw(
        self, key: str | bytes, seq: int | None = None, stale: bool = False
    ) -> dict[str, Any]:
        query = _stale(stale)
        if seq is not None:
            query["seq"] = seq
        return self._json(self._key_path("/verify/", key), query=query or None)

    def consistency(self, first: int, second: int, stale: bool = False) -> list[bytes]:
        query = {"first": first, "second": second, **_stale(stale)}
        doc = self._json("/tree/consistency", query=query)
        if not isinstance(doc, dict) or doc.get("first") != first or doc.get("second") != second:
            raise ResponseError(f"/tree/consistency answered for other sizes: {doc!r:.200}")
        return _hashes(doc.get("proof"), "/tree/consistency: proof")
