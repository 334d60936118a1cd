"""The node's HTTP API (DESIGN §7) as a Flask app over a Backend.

    app = create_app(LedgerBackend(ledger), max_value_bytes=16 << 20, api_token=None)
    serve(app, "127.0.0.1", 8080)

Keys travel URL-path-encoded (`/kv/a%2Fb` is the key "a/b") and must be UTF-8 once decoded.
Keys that collide with a route name (`health`, `put`, `cluster`, ...) are reached through
`/kv/<key>`; on the short `/<key>` routes those names are reserved.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import PathConverter

from scribe.errors import KeyNotFoundError
from scribe.records import Proof, Record, Version
from scribe.signing import SignedTreeHead

from . import openapi
from .backend import Backend, Member, WriteResult
from .errors import ApiError, bad_request, register_error_handlers
from .fastkv import FastKv
from .inputs import (
    check_bearer,
    check_fields,
    consistency_arg,
    int_arg,
    key_from_path,
    key_from_text,
    query_args,
    read_body,
    read_json_object,
    value_from_json,
)
from .limits import (
    BATCH_OPS_MAX,
    JSON_BODY_OVERHEAD_BYTES,
    KEY_BYTES_MAX,
    RANGE_LIMIT_DEFAULT,
    RANGE_LIMIT_MAX,
    RECORDS_LIMIT_DEFAULT,
    RECORDS_LIMIT_MAX,
    VALUE_BYTES_MAX_DEFAULT,
)
from .metrics import HttpMetrics

SEQ_MAX = 2**63 - 1
# First path segments owned by routes (present or planned): never keys on the short /<key> routes.
ROUTE_NAMES = frozenset(
    {"kv", "put", "get", "batch", "range", "history", "records", "health", "cluster", "metrics"}
    | {"openapi.json", "verify", "tree"}
)
_RAW_PREFIX = "raw_"  # endpoint names of the short /<key> routes
_METHODS = ("GET", "PUT", "POST", "DELETE")


def _text(data: bytes) -> str | None:
    """The UTF-8 text of bytes, or None when they are not UTF-8 (the _b64 field carries them)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _write_answer(key: bytes, result: WriteResult) -> Response:
    return jsonify(key=_text(key), seq=result.seq, index=result.index)


def _member_json(member: Member | None) -> dict[str, Any]:
    if member is None:
        return {"host": None, "client_port": None, "url": None}
    url = f"http://{member.host}:{member.client_port}" if member.client_port else None
    return {
        "id": member.id,
        "host": member.host,
        "client_port": member.client_port,
        "raft_port": member.raft_port,
        "role": member.role,
        "url": url,
        "public_key": member.public_key.hex() if member.public_key else None,
    }


def _proof_json(proof: Proof, head: SignedTreeHead) -> dict[str, Any]:
    return {
        "seq": proof.seq,
        "ts_ms": proof.ts_ms,
        "op": proof.op,
        "key_b64": _b64(bytes(proof.key)),
        "value_b64": _b64(bytes(proof.value)),
        "leaf_hash": proof.leaf_hash.hex(),
        "tree_size": proof.tree_size,
        "root": proof.root.hex(),
        "audit_path": [h.hex() for h in proof.audit_path],
        "signed_tree_head": head.to_json(),
    }


def _version_json(version: Version) -> dict[str, Any]:
    value = bytes(version.value)
    return {
        "seq": version.seq,
        "ts_ms": version.ts_ms,
        "op": version.op,
        "value": _text(value),
        "value_b64": _b64(value),
    }


def _record_json(record: Record) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "ts_ms": record.ts_ms,
        "op": record.op,
        "key_b64": _b64(bytes(record.key)),
        "value_b64": _b64(bytes(record.value)),
    }


class _Api:
    """The views, bound to one backend and one set of limits."""

    def __init__(self, app: Flask, backend: Backend, max_value_bytes: int, api_token: str | None):
        self.app = app
        self.backend = backend
        self.max_value_bytes = max_value_bytes
        self.max_json_bytes = max_value_bytes + JSON_BODY_OVERHEAD_BYTES
        self.token = api_token.encode("utf-8") if api_token is not None else None

    # ---- raw key routes ----------------------------------------------------------------------

    def put_raw(self, key: str) -> Response:
        check_bearer(request, self.token)
        k = key_from_path(request, key)
        query_args(request, ())
        value = read_body(request, self.max_value_bytes)
        return _write_answer(k, self.backend.put(k, value))

    def get_raw(self, key: str) -> Response:
        args = query_args(request, ("consistency",))
        k = key_from_path(request, key)
        entry = self.backend.get(k, consistency_arg(args))
        if entry is None:
            raise ApiError(404, "key_not_found", f"key {key!r} not found")
        response = Response(bytes(entry.value), content_type="application/octet-stream")
        response.headers["X-Scribe-Seq"] = str(entry.seq)
        return response

    def delete_raw(self, key: str) -> Response:
        check_bearer(request, self.token)
        k = key_from_path(request, key)
        query_args(request, ())
        return _write_answer(k, self.backend.delete(k))

    def refuse_route_names(self, key: str) -> None:
        """On /<key>, a first segment that names a route is not a key: answer as the route would."""
        if key.split("/", 1)[0] not in ROUTE_NAMES:
            return
        adapter = self.app.create_url_adapter(request)
        allowed = []
        for method in _METHODS:
            try:
                endpoint, _ = adapter.match(request.path, method=method)
            except HTTPException:
                continue
            if not endpoint.startswith(_RAW_PREFIX):
                allowed.append(method)
        if allowed:
            message = (
                f"{request.method} is not allowed on {request.path}; use /kv/<key> for such keys"
            )
            raise ApiError(405, "method_not_allowed", message, {"Allow": ", ".join(allowed)})
        raise ApiError(
            404,
            "not_found",
            f"{key.split('/', 1)[0]!r} is a route name: reach such keys via /kv/<key>",
        )

    # ---- JSON writes -------------------------------------------------------------------------

    def put_json(self) -> Response:
        check_bearer(request, self.token)
        query_args(request, ())
        doc = read_json_object(request, self.max_json_bytes)
        check_fields(doc, "body", ("key",), ("value", "value_b64"))
        if "value" not in doc and "value_b64" not in doc:
            raise bad_request("body: missing field 'value'")
        key = key_from_text(doc["key"])
        value = value_from_json(doc, "body", self.max_value_bytes)
        return _write_answer(key, self.backend.put(key, value))

    def batch(self) -> Response:
        check_bearer(request, self.token)
        query_args(request, ())
        doc = read_json_object(request, self.max_json_bytes)
        parsed = parse_batch(doc, self.max_value_bytes)
        result = self.backend.batch(parsed)
        return jsonify(seq=result.seq, index=result.index, count=len(parsed))

    # ---- reads -------------------------------------------------------------------------------

    def range(self) -> Response:
        args = query_args(request, ("start", "end", "prefix", "limit", "consistency"))
        bounds = {}
        for name in ("start", "end", "prefix"):
            text = args.get(name, "")
            bounds[name] = text.encode("utf-8") if text else None
        limit = int_arg(args, "limit", RANGE_LIMIT_DEFAULT, 1, RANGE_LIMIT_MAX)
        items = self.backend.range(
            bounds["start"], bounds["end"], bounds["prefix"], limit, consistency_arg(args)
        )
        return jsonify(
            [
                {"key": _text(k), "value": _text(v), "key_b64": _b64(k), "value_b64": _b64(v)}
                for k, v in ((bytes(k), bytes(v)) for k, v in items)
            ]
        )

    def history(self, key: str) -> Response:
        args = query_args(request, ("consistency",))
        k = key_from_path(request, key)
        versions = self.backend.history(k, consistency_arg(args))
        if not versions:
            raise ApiError(404, "key_not_found", f"key {key!r} was never written")
        return jsonify([_version_json(v) for v in versions])

    def records(self) -> Response:
        args = query_args(request, ("start", "limit", "consistency"))
        start = int_arg(args, "start", 0, 0, SEQ_MAX)
        limit = int_arg(args, "limit", RECORDS_LIMIT_DEFAULT, 1, RECORDS_LIMIT_MAX)
        records = self.backend.records(start, limit, consistency_arg(args))
        return jsonify([_record_json(r) for r in records])

    # ---- the node ----------------------------------------------------------------------------

    def health(self) -> Response:
        query_args(request, ())
        h = self.backend.health()
        return jsonify(
            status="ok", node_id=h.node_id, role=h.role, leader_id=h.leader_id, term=h.term
        )

    def members(self) -> Response:
        query_args(request, ())
        own_id = self.backend.health().node_id
        own_key = self.backend.public_key()
        members = [
            m if m.public_key or m.id != own_id else dataclasses.replace(m, public_key=own_key)
            for m in self.backend.members()
        ]
        return jsonify(members=[_member_json(m) for m in members])

    def leader(self) -> Response:
        query_args(request, ())
        info = self.backend.leader()
        address = _member_json(info.member)
        return jsonify(
            leader_id=info.leader_id,
            term=info.term,
            host=address["host"],
            client_port=address["client_port"],
            url=address["url"],
        )

    def status(self) -> Response:
        query_args(request, ())
        return jsonify(dict(self.backend.status()))

    # ---- verification ------------------------------------------------------------------------

    def tree_head(self) -> Response:
        args = query_args(request, ("consistency",))
        self.backend.read_barrier(consistency_arg(args))
        return jsonify(self.backend.signed_tree_head().to_json())

    def verify(self, key: str) -> Response:
        args = query_args(request, ("seq", "consistency"))
        k = key_from_path(request, key)
        seq = int_arg(args, "seq", -1, 0, SEQ_MAX) if "seq" in args else None
        self.backend.read_barrier(consistency_arg(args))
        try:
            proof, head = self.backend.prove(k, seq)
        except KeyNotFoundError as exc:
            message = str(exc.args[0]) if exc.args else f"key {key!r} not found"
            raise ApiError(404, "key_not_found", message) from None
        return jsonify(_proof_json(proof, head))

    def consistency(self) -> Response:
        args = query_args(request, ("first", "second", "consistency"))
        for name in ("first", "second"):
            if name not in args:
                raise bad_request(f"missing query parameter {name!r}")
        first = int_arg(args, "first", 0, 0, SEQ_MAX)
        second = int_arg(args, "second", 0, 0, SEQ_MAX)
        if first > second:
            raise bad_request(f"first={first} is larger than second={second}")
        self.backend.read_barrier(consistency_arg(args))
        proof = self.backend.consistency(first, second)
        return jsonify(first=first, second=second, proof=[h.hex() for h in proof])


class KeyPathConverter(PathConverter):
    """Werkzeug's path converter, but `.` also matches a line feed: a key may hold one (%0A)."""

    regex = "[^/](?s:.)*?"


def create_app(
    backend: Backend,
    *,
    max_value_bytes: int = VALUE_BYTES_MAX_DEFAULT,
    api_token: str | None = None,
    import_name: str = "scribe.http",
) -> Flask:
    """The HTTP API of one node over `backend`.

    max_value_bytes caps a value (raw bodies: 413 from the Content-Length alone); api_token, when
    set, is required as `Authorization: Bearer <token>` on every write.
    """
    if isinstance(max_value_bytes, bool) or not isinstance(max_value_bytes, int):
        raise TypeError("max_value_bytes must be an int")
    if max_value_bytes < 0:
        raise ValueError(f"max_value_bytes must be >= 0, got {max_value_bytes}")
    if api_token is not None and (not isinstance(api_token, str) or not api_token):
        raise ValueError("api_token must be a non-empty string or None")

    app = Flask(import_name, static_folder=None)  # no /static route: it would shadow keys
    app.url_map.converters["path"] = KeyPathConverter
    app.url_map.merge_slashes = False  # /kv/a%2F%2Fb is the key "a//b", not a redirect
    app.json.sort_keys = False
    api = _Api(app, backend, max_value_bytes, api_token)
    metrics = HttpMetrics(backend.metrics_registry())

    def route(rule: str, endpoint: str, view, methods: list[str]) -> None:
        app.add_url_rule(rule, endpoint, view, methods=methods)

    route("/kv/<path:key>", "kv_put", api.put_raw, ["PUT"])
    route("/kv/<path:key>", "kv_get", api.get_raw, ["GET"])
    route("/kv/<path:key>", "kv_delete", api.delete_raw, ["DELETE"])
    for name, view, method in (
        ("put", api.put_raw, "PUT"),
        ("get", api.get_raw, "GET"),
        ("delete", api.delete_raw, "DELETE"),
    ):

        def raw_view(key: str, _view=view) -> Response:
            api.refuse_route_names(key)
            return _view(key)

        route("/<path:key>", _RAW_PREFIX + name, raw_view, [method])
    route("/put", "put_json", api.put_json, ["PUT", "POST"])
    route("/get/<path:key>", "get", api.get_raw, ["GET"])
    route("/batch", "batch", api.batch, ["POST"])
    route("/range", "range", api.range, ["GET"])
    route("/history/<path:key>", "history", api.history, ["GET"])
    route("/records", "records", api.records, ["GET"])
    route("/health", "health", api.health, ["GET"])
    route("/cluster/members", "cluster_members", api.members, ["GET"])
    route("/cluster/leader", "cluster_leader", api.leader, ["GET"])
    route("/cluster/status", "cluster_status", api.status, ["GET"])
    route("/metrics", "metrics", metrics.exposition, ["GET"])
    route("/tree/head", "tree_head", api.tree_head, ["GET"])
    route("/tree/consistency", "tree_consistency", api.consistency, ["GET"])
    route("/verify/<path:key>", "verify", api.verify, ["GET"])
    document = openapi.document(max_value_bytes=max_value_bytes, auth=api_token is not None)
    route("/openapi.json", "openapi", lambda: jsonify(document), ["GET"])

    register_error_handlers(app)
    metrics.install(app)
    app.extensions["scribe"] = {
        "backend": backend,
        "metrics": metrics,
        "max_body_bytes": api.max_json_bytes,  # the largest body any route accepts
    }
    # Last, once every hook is in place: plain PUT and GET /kv/<key> skip Flask's per-request cost.
    app.wsgi_app = FastKv(app, app.wsgi_app, backend, metrics, max_value_bytes, api.token)
    return app


def parse_batch(doc: dict[str, Any], max_value_bytes: int) -> list[tuple[bytes, bytes | None]]:
    """The ops of a POST /batch body (a JSON object), checked: (key, value), value None for a
    delete. Raises the 400 the route answers (the node's loop front asks it too)."""
    check_fields(doc, "body", ("ops",), ())
    ops = doc["ops"]
    if not isinstance(ops, list) or not ops:
        raise bad_request("body: ops must be a non-empty array")
    if len(ops) > BATCH_OPS_MAX:
        raise bad_request(f"body: {len(ops)} ops, over the limit of {BATCH_OPS_MAX} per batch")
    parsed: list[tuple[bytes, bytes | None]] = []
    value_limit = max_value_bytes
    for i, op in enumerate(ops):
        # The common shape, {"key": str, "value": str} within the limits, is taken in a few
        # checks; anything else (and every error message) goes through the full checks below.
        if type(op) is dict and len(op) == 2 and "value" in op and "key" in op:
            key_text, value_text = op["key"], op["value"]
            if type(key_text) is str and type(value_text) is str:
                try:
                    key, value = key_text.encode("utf-8"), value_text.encode("utf-8")
                except UnicodeEncodeError:
                    key = value = b""
                if 0 < len(key) <= KEY_BYTES_MAX and 0 < len(value) <= value_limit:
                    parsed.append((key, value))
                    continue
        where = f"ops[{i}]"
        if not isinstance(op, dict):
            raise bad_request(f"{where} must be an object")
        if "delete" in op:
            check_fields(op, where, ("key", "delete"), ())
            if op["delete"] is not True:
                raise bad_request(f"{where}: delete must be true")
            parsed.append((key_from_text(op["key"], f"{where}.key"), None))
            continue
        check_fields(op, where, ("key",), ("value", "value_b64"))
        if "value" not in op and "value_b64" not in op:
            raise bad_request(f"{where}: missing field 'value' (or 'delete': true)")
        key = key_from_text(op["key"], f"{where}.key")
        parsed.append((key, value_from_json(op, where, max_value_bytes)))
    return parsed
