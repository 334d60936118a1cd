"""Reading and checking what a client sent: bearer token, body, JSON, keys, query parameters.

Everything here raises ApiError (a JSON 4xx), never lets a bad input reach the backend as a 500.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Iterable
from typing import Any

from flask import Request

from .backend import CONSISTENCY_LEVELS
from .errors import ApiError, bad_request, too_large
from .limits import BODY_READ_CHUNK_BYTES, KEY_BYTES_MAX


def check_bearer(request: Request, token: bytes | None) -> None:
    """401 unless the request carries `Authorization: Bearer <token>` (when a token is configured)."""
    if token is None:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # compare_digest takes time independent of where the strings differ: no timing oracle
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
        raise ApiError(
            401,
            "unauthorized",
            "writes need the header Authorization: Bearer <api_token>",
            {"WWW-Authenticate": 'Bearer realm="scribe"'},
        )


def read_body(request: Request, limit_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed limit_bytes.

    A declared Content-Length over the limit is refused before a single body byte is read; a
    streamed (chunked) body is read in chunks and refused as soon as it passes the limit.
    """
    header = request.environ.get("CONTENT_LENGTH", "").strip()
    if header and not (header.isascii() and header.isdigit()):
        # Werkzeug would read such a body as empty: refuse rather than store a value never sent
        raise bad_request(f"Content-Length {header[:40]!r} is not a non-negative integer")
    declared = request.content_length
    if declared is not None and declared > limit_bytes:
        raise too_large(f"the body is {declared} bytes, over the limit of {limit_bytes} bytes")
    stream = request.stream
    chunks = []
    received = 0
    while True:
        chunk = stream.read(min(BODY_READ_CHUNK_BYTES, limit_bytes + 1 - received))
        if not chunk:
            return b"".join(chunks)
        received += len(chunk)
        if received > limit_bytes:
            raise too_large(f"the body is over the limit of {limit_bytes} bytes")
        chunks.append(chunk)


def read_json_object(request: Request, limit_bytes: int) -> dict[str, Any]:
    body = read_body(request, limit_bytes)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise bad_request(f"the body is not valid JSON: {exc}", "invalid_json") from None
    if not isinstance(doc, dict):
        raise bad_request("the body must be a JSON object", "invalid_json")
    return doc


def check_fields(
    doc: dict[str, Any], where: str, required: Iterable[str], optional: Iterable[str]
) -> None:
    allowed = set(required) | set(optional)
    for name in doc:
        if name not in allowed:
            raise bad_request(
                f"{where}: unknown field {name!r} (expected {', '.join(sorted(allowed))})"
            )
    for name in required:
        if name not in doc:
            raise bad_request(f"{where}: missing field {name!r}")


def key_from_text(text: Any, where: str = "key") -> bytes:
    """A key given as text (JSON or URL) -> its UTF-8 bytes, checked against the key limits."""
    if not isinstance(text, str):
        raise bad_request(f"{where} must be a string, got {type(text).__name__}")
    try:
        key = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800" from JSON
        raise bad_request(f"{where} is not valid Unicode (a lone surrogate?)") from None
    return check_key(key, where)


def check_key(key: bytes, where: str = "key") -> bytes:
    if not key:
        raise bad_request(f"{where} is empty")
    if len(key) > KEY_BYTES_MAX:
        raise bad_request(f"{where} is {len(key)} bytes, over the limit of {KEY_BYTES_MAX}")
    return key


def key_from_path(request: Request, decoded: str) -> bytes:
    """The key of a /kv/<key> style route: URL-decoded by the server, and required to be UTF-8.

    The WSGI server hands over the decoded path as Latin-1 text (PEP 3333); Werkzeug re-decodes it
    as UTF-8 and silently replaces invalid bytes with U+FFFD. Check the raw bytes so a key the
    client did not send is never written.
    """
    raw = request.environ.get("PATH_INFO", "")
    try:
        raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise bad_request("the key in the URL is not valid UTF-8 once percent-decoded") from None
    return key_from_text(decoded)


def value_from_json(doc: dict[str, Any], where: str, limit_bytes: int) -> bytes:
    """`value` (text, stored as UTF-8) or `value_b64` (any bytes) of a JSON op."""
    if "value" in doc and "value_b64" in doc:
        raise bad_request(f"{where}: give value or value_b64, not both")
    if "value_b64" in doc:
        encoded = doc["value_b64"]
        if not isinstance(encoded, str):
            raise bad_request(f"{where}: value_b64 must be a string")
        try:
            value = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request(f"{where}: value_b64 is not valid base64") from None
    else:
        text = doc.get("value")
        if not isinstance(text, str):
            raise bad_request(f"{where}: value must be a string, got {type(text).__name__}")
        try:
            value = text.encode("utf-8")
        except UnicodeEncodeError:
            raise bad_request(f"{where}: value is not valid Unicode (a lone surrogate?)") from None
    if len(value) > limit_bytes:
        raise too_large(
            f"{where}: the value is {len(value)} bytes, over max_value_bytes = {limit_bytes}"
        )
    return value


def query_args(request: Request, allowed: Iterable[str]) -> dict[str, str]:
    """The query parameters, refusing unknown or repeated ones (a typo must not be ignored)."""
    allowed = set(allowed)
    out = {}
    for name, values in request.args.lists():
        if name not in allowed:
            expected = ", ".join(sorted(allowed)) or "none"
            raise bad_request(f"unknown query parameter {name!r} (expected {expected})")
        if len(values) != 1:
            raise bad_request(f"query parameter {name!r} is given {len(values)} times")
        out[name] = values[0]
    return out


def int_arg(args: dict[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    text = args.get(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit():
        raise bad_request(f"query parameter {name}={text!r} is not a non-negative integer")
    if len(text) > len(str(maximum)) + 1:  # int() of thousands of digits is slow, and refused
        raise bad_request(f"query parameter {name} is out of range {minimum}..{maximum}")
    value = int(text)
    if not minimum <= value <= maximum:
        raise bad_request(f"query parameter {name}={value} is out of range {minimum}..{maximum}")
    return value


def consistency_arg(args: dict[str, str]) -> str:
    level = args.get("consistency", "linearizable")
    if level not in CONSISTENCY_LEVELS:
        raise bad_request(f"consistency={level!r} is not one of {', '.join(CONSISTENCY_LEVELS)}")
    return level
