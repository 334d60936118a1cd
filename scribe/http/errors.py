"""JSON errors: every failure the API answers is `{"error": code, "message": text}`.

Typed backend errors map to their status here, in one table, and Werkzeug's own 404/405/413 are
rewritten to the same shape, so a client never has to parse an HTML error page.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from scribe.errors import (
    ClosedError,
    InvalidArgumentError,
    NoLeaderError,
    OutcomeUnknownError,
    ScribeError,
)

from .limits import RETRY_AFTER_S

log = logging.getLogger("scribe.http")

# Werkzeug's HTTP status -> our error code
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """Raised by views and helpers; answered as JSON with `status`."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str, code: str = "invalid_argument") -> ApiError:
    return ApiError(400, code, message)


def too_large(message: str) -> ApiError:
    return ApiError(413, "payload_too_large", message)


def json_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    response = jsonify(error=code, message=message)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _api_error(exc: ApiError) -> Response:
    return json_error(exc.status, exc.code, exc.message, exc.headers)


def _http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = _HTTP_CODES.get(status, (exc.name or "error").lower().replace(" ", "_"))
    headers = {}
    allow = exc.get_response().headers.get("Allow")
    if allow:
        headers["Allow"] = allow
    return json_error(status, code, exc.description or exc.name or code, headers)


def _scribe_error(exc: ScribeError) -> Response:
    if isinstance(exc, InvalidArgumentError):
        return json_error(400, "invalid_argument", str(exc))
    if isinstance(exc, NoLeaderError):
        message = str(exc) or "no leader is known: the request was not applied"
        return json_error(503, "no_leader", message, {"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(exc, OutcomeUnknownError):
        message = str(exc) or "the write was proposed but not confirmed: it may have been applied"
        return json_error(504, "outcome_unknown", message)
    if isinstance(exc, ClosedError):
        return json_error(503, "unavailable", "the node is shutting down", {"Retry-After": "1"})
    log.exception("request failed")
    return json_error(500, "internal_error", f"{type(exc).__name__}: {exc}")


def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):  # Flask routes these here when no closer handler matched
        return _http_exception(exc)
    log.exception("unexpected error while serving a request")
    return json_error(500, "internal_error", "internal error (logged on the node)")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_exception)
    app.register_error_handler(ScribeError, _scribe_error)
    app.register_error_handler(Exception, _unexpected)
