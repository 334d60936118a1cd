"""The OpenAPI 3 description of the HTTP API, served at GET /openapi.json."""

from __future__ import annotations

from typing import Any

from .limits import BATCH_OPS_MAX, KEY_BYTES_MAX, RANGE_LIMIT_MAX, RECORDS_LIMIT_MAX

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_INT = {"type": "integer", "format": "int64"}
_STR = {"type": "string"}
_NULLABLE_STR = {"type": "string", "nullable": True}
_HEX = {"type": "string", "pattern": "^[0-9a-f]*$", "description": "lowercase hex"}
_KEY = {
    "name": "key",
    "in": "path",
    "required": True,
    "description": (
        f"the key, URL-path-encoded UTF-8 (%2F for '/', %0A for a line feed), 1..{KEY_BYTES_MAX}"
        " bytes"
    ),
    "schema": {"type": "string", "minLength": 1},
}
_CONSISTENCY = {
    "name": "consistency",
    "in": "query",
    "description": "linearizable (default: ReadIndex through the leader) or stale (local state)",
    "schema": {"type": "string", "enum": ["linearizable", "stale"]},
}
_READ_ERRORS = {
    "400": _error("bad key or query parameter"),
    "503": _error("no_leader: no leader to confirm a linearizable read (see Retry-After)"),
}


def _write_errors(auth: bool) -> dict[str, Any]:
    errors = {
        "400": _error("malformed input"),
        "413": _error("body or value over max_value_bytes"),
        "503": _error("no_leader: not applied, retry after Retry-After seconds"),
        "504": _error("outcome_unknown: proposed, not confirmed in time; it may be applied"),
    }
    if auth:
        errors["401"] = _error("missing or wrong bearer token")
    return errors


def _raw_key_item(auth: bool, max_value_bytes: int) -> dict[str, Any]:
    security = [{"bearer": []}] if auth else []
    return {
        "parameters": [_KEY],
        "put": {
            "summary": "Write the raw request body as the key's new value",
            "security": security,
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {
                        "schema": {
                            "type": "string",
                            "format": "binary",
                            "maxLength": max_value_bytes,
                        }
                    }
                },
            },
            "responses": {"200": _json(_ref("WriteResult"), "committed and durable")}
            | _write_errors(auth),
        },
        "get": {
            "summary": "The key's current value as raw bytes",
            "parameters": [_CONSISTENCY],
            "responses": {
                "200": {
                    "description": "the value",
                    "headers": {
                        "X-Scribe-Seq": {"description": "seq of the record", "schema": _INT}
                    },
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
                "404": _error("no such key"),
            }
            | _READ_ERRORS,
        },
        "delete": {
            "summary": "Append a tombstone record for the key",
            "security": security,
            "responses": {"200": _json(_ref("WriteResult"), "committed and durable")}
            | _write_errors(auth),
        },
    }


def _get(
    summary: str,
    schema: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
    errors: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": _json(schema)} | (errors or {}),
    }
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation}


def _query_int(name: str, description: str, maximum: int) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": "integer", "minimum": 0, "maximum": maximum},
    }


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {"error": _STR, "message": _STR},
    },
    "WriteResult": {
        "type": "object",
        "required": ["key", "seq", "index"],
        "properties": {
            "key": _NULLABLE_STR,
            "seq": {**_INT, "description": "ledger seq of the record"},
            "index": {**_INT, "description": "Raft log index of the entry"},
        },
    },
    "PutRequest": {
        "type": "object",
        "required": ["key"],
        "properties": {
            "key": _STR,
            "value": {**_STR, "description": "stored as UTF-8"},
            "value_b64": {**_STR, "format": "byte", "description": "instead of value: any bytes"},
        },
    },
    "BatchRequest": {
        "type": "object",
        "required": ["ops"],
        "properties": {
            "ops": {
                "type": "array",
                "minItems": 1,
                "maxItems": BATCH_OPS_MAX,
                "items": {
                    "type": "object",
                    "required": ["key"],
                    "properties": {
                        "key": _STR,
                        "value": _STR,
                        "value_b64": {**_STR, "format": "byte"},
                        "delete": {"type": "boolean", "enum": [True]},
                    },
                },
            }
        },
    },
    "BatchResult": {
        "type": "object",
        "required": ["seq", "index", "count"],
        "properties": {"seq": _INT, "index": _INT, "count": _INT},
    },
    "RangeItem": {
        "type": "object",
        "properties": {
            "key": _NULLABLE_STR,
            "value": {**_NULLABLE_STR, "description": "null when the value is not UTF-8"},
            "key_b64": {**_STR, "format": "byte"},
            "value_b64": {**_STR, "format": "byte"},
        },
    },
    "Version": {
        "type": "object",
        "properties": {
            "seq": _INT,
            "ts_ms": _INT,
            "op": {"type": "integer", "description": "1 put, 2 delete, 3 clear"},
            "value": _NULLABLE_STR,
            "value_b64": {**_STR, "format": "byte"},
        },
    },
    "Record": {
        "type": "object",
        "properties": {
            "seq": _INT,
            "ts_ms": _INT,
            "op": {"type": "integer", "description": "1 put, 2 delete, 3 clear"},
            "key_b64": {**_STR, "format": "byte"},
            "value_b64": {**_STR, "format": "byte"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "node_id", "role", "leader_id", "term"],
        "properties": {
            "status": {"type": "string", "enum": ["ok"]},
            "node_id": _INT,
            "role": {"type": "string", "enum": ["leader", "follower", "candidate"]},
            "leader_id": {**_INT, "nullable": True},
            "term": _INT,
        },
    },
    "Member": {
        "type": "object",
        "properties": {
            "id": _INT,
            "host": _STR,
            "client_port": {**_INT, "nullable": True},
            "raft_port": {**_INT, "nullable": True},
            "role": _NULLABLE_STR,
            "url": _NULLABLE_STR,
            "public_key": {
                **_NULLABLE_STR,
                "description": "hex of the member's raw Ed25519 key, when known",
            },
        },
    },
    "SignedTreeHead": {
        "type": "object",
        "required": ["tree_size", "root", "ts_ms", "signature", "public_key"],
        "description": "Ed25519 signature over u64be(tree_size) || root || u64be(ts_ms)",
        "properties": {
            "tree_size": _INT,
            "root": {**_HEX, "description": "RFC 9162 Merkle root, 32 bytes"},
            "ts_ms": {**_INT, "description": "when the node signed the head (ms since the epoch)"},
            "signature": {**_HEX, "description": "raw Ed25519 signature, 64 bytes"},
            "public_key": {**_HEX, "description": "the node's raw Ed25519 public key, 32 bytes"},
        },
    },
    "InclusionProof": {
        "type": "object",
        "required": [
            "seq",
            "ts_ms",
            "op",
            "key_b64",
            "value_b64",
            "leaf_hash",
            "tree_size",
            "root",
            "audit_path",
            "signed_tree_head",
        ],
        "properties": {
            "seq": _INT,
            "ts_ms": _INT,
            "op": {"type": "integer", "description": "1 put, 2 delete, 3 clear"},
            "key_b64": {**_STR, "format": "byte"},
            "value_b64": {**_STR, "format": "byte"},
            "leaf_hash": {**_HEX, "description": "SHA-256(0x00 || leaf_data)"},
            "tree_size": _INT,
            "root": _HEX,
            "audit_path": {
                "type": "array",
                "items": _HEX,
                "description": "RFC 9162 §2.1.3 inclusion path, leaf level first",
            },
            "signed_tree_head": _ref("SignedTreeHead"),
        },
    },
    "ConsistencyProof": {
        "type": "object",
        "required": ["first", "second", "proof"],
        "properties": {
            "first": _INT,
            "second": _INT,
            "proof": {"type": "array", "items": _HEX, "description": "RFC 9162 §2.1.4"},
        },
    },
    "Leader": {
        "type": "object",
        "properties": {
            "leader_id": {**_INT, "nullable": True},
            "term": _INT,
            "host": _NULLABLE_STR,
            "client_port": {**_INT, "nullable": True},
            "url": _NULLABLE_STR,
        },
    },
}


def document(*, max_value_bytes: int, auth: bool) -> dict[str, Any]:
    """The OpenAPI document; `auth` says whether writes need the bearer token."""
    security = [{"bearer": []}] if auth else []
    json_write = {
        "summary": "Write a key from JSON (the seed's tutorial route)",
        "security": security,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref("PutRequest")}},
        },
        "responses": {"200": _json(_ref("WriteResult"), "committed and durable")}
        | _write_errors(auth),
    }
    paths: dict[str, Any] = {
        "/kv/{key}": _raw_key_item(auth, max_value_bytes),
        "/{key}": _raw_key_item(auth, max_value_bytes)
        | {"summary": "Short form of /kv/{key}; route names (health, put, ...) are not keys here"},
        "/put": {"put": json_write, "post": json_write},
        "/get/{key}": {
            "parameters": [_KEY],
            "get": _raw_key_item(auth, max_value_bytes)["get"]
            | {"summary": "The key's value as the body (the seed's tutorial route)"},
        },
        "/batch": {
            "post": {
                "summary": "Apply several puts and deletes atomically: all or none",
                "security": security,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("BatchRequest")}},
                },
                "responses": {"200": _json(_ref("BatchResult"), "committed and durable")}
                | _write_errors(auth),
            }
        },
        "/range": _get(
            "Live keys and values in key order, [start, end)",
            {"type": "array", "items": _ref("RangeItem")},
            [
                {"name": "start", "in": "query", "schema": _STR},
                {"name": "end", "in": "query", "schema": _STR, "description": "exclusive"},
                {"name": "prefix", "in": "query", "schema": _STR},
                _query_int("limit", "at most this many keys", RANGE_LIMIT_MAX),
                _CONSISTENCY,
            ],
            _READ_ERRORS,
        ),
        "/history/{key}": _get(
            "Every version of the key, oldest first",
            {"type": "array", "items": _ref("Version")},
            [_KEY, _CONSISTENCY],
            {"404": _error("the key was never written")} | _READ_ERRORS,
        ),
        "/records": _get(
            "Ledger records in seq order (every Merkle leaf)",
            {"type": "array", "items": _ref("Record")},
            [
                _query_int("start", "first seq", 2**63 - 1),
                _query_int("limit", "at most this many records", RECORDS_LIMIT_MAX),
                _CONSISTENCY,
            ],
            _READ_ERRORS,
        ),
        "/health": _get("Liveness and the node's view of the cluster", _ref("Health")),
        "/cluster/members": _get(
            "The cluster's members",
            {
                "type": "object",
                "properties": {"members": {"type": "array", "items": _ref("Member")}},
            },
        ),
        "/cluster/leader": _get("The current leader, if known", _ref("Leader")),
        "/cluster/status": _get("Raft and ledger status of this node", {"type": "object"}),
        "/openapi.json": _get("This document", {"type": "object"}),
        "/tree/head": _get(
            "The node's signed tree head over every record",
            _ref("SignedTreeHead"),
            [_CONSISTENCY],
            _READ_ERRORS,
        ),
        "/tree/consistency": _get(
            "Proof that the tree of `first` records is a prefix of the tree of `second` records",
            _ref("ConsistencyProof"),
            [
                {**_query_int("first", "size of the older tree", 2**63 - 1), "required": True},
                {**_query_int("second", "size of the newer tree", 2**63 - 1), "required": True},
                _CONSISTENCY,
            ],
            _READ_ERRORS | {"400": _error("missing, malformed or out-of-range sizes")},
        ),
        "/verify/{key}": _get(
            "Inclusion proof of the key's newest record, with the signed head of the same tree",
            _ref("InclusionProof"),
            [
                _KEY,
                _query_int("seq", "prove this older version of the key instead", 2**63 - 1),
                _CONSISTENCY,
            ],
            {"404": _error("the key (or that version of it) was never written")} | _READ_ERRORS,
        ),
    }
    paths["/metrics"] = {
        "get": {
            "summary": "Prometheus metrics",
            "responses": {
                "200": {"description": "OK", "content": {"text/plain": {"schema": _STR}}}
            },
        }
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Scribe Ledger node API",
            "version": API_VERSION,
            "description": "A verifiable, append-only key-value ledger. Errors are "
            '{"error": code, "message": text}; unknown routes are 404 and wrong methods 405.',
        },
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
