"""The one place that turns exceptions into JSON error responses `{"error", "code", "request_id"}`.

No exception ever reaches the client as a stack trace: unexpected ones are logged with their traceback and answered
with a generic 500 body carrying the request id.
"""

from __future__ import annotations

import logging

from flask import Flask
from flask import g
from flask import jsonify
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from app.errors import SequencerError
from app.ves.errors import VesError

log = logging.getLogger("stateset_sequencer.api")

LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"
_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    411: "LENGTH_REQUIRED",
    413: "PAYLOAD_TOO_LARGE",
    414: "URI_TOO_LONG",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    431: "HEADERS_TOO_LARGE",
}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None):
    body = {"error": message, "code": code, "request_id": getattr(g, "request_id", None)}
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(SequencerError)
    def _sequencer_error(exc: SequencerError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.errorhandler(VesError)
    def _protocol_error(exc: VesError):
        return error_response(400, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        if status == 429:
            return error_response(429, "RATE_LIMITED", "Rate limit exceeded; retry after the Retry-After interval.")
        code = _HTTP_CODES.get(status, "HTTP_ERROR")
        message = {
            404: "Not found.",
            405: "Method not allowed on this path.",
            413: "Request body is larger than MAX_BODY_SIZE_BYTES.",
        }.get(status, exc.description or exc.name)
        headers = {}
        valid_methods = getattr(exc, "valid_methods", None)
        if status == 405 and valid_methods:
            headers["Allow"] = ", ".join(valid_methods)
        return error_response(status, code, message, headers)

    @app.errorhandler(DBAPIError)
    def _database_error(exc: DBAPIError):
        if getattr(exc.orig, "pgcode", None) == LOCK_NOT_AVAILABLE:
            log.warning("stream lock not granted within STREAM_LOCK_TIMEOUT_MS")
            return error_response(503, "STREAM_BUSY", "The stream is busy (its lock was not granted in time); "
                                  "nothing was written. Retry shortly.", {"Retry-After": "1"})
        if getattr(exc.orig, "pgcode", None) == QUERY_CANCELED:
            log.warning("database statement cancelled after DB_STATEMENT_TIMEOUT_MS")
            return error_response(503, "DATABASE_TIMEOUT", "A database statement took too long and was cancelled; "
                                  "nothing was written. Retry shortly.", {"Retry-After": "1"})
        if exc.connection_invalidated or _is_unavailable(exc):
            log.warning("database unavailable", extra={"error_type": type(exc.orig).__name__})
            return error_response(503, "DATABASE_UNAVAILABLE", "The database is unreachable; retry shortly.",
                                  {"Retry-After": "1"})
        log.exception("database error")
        return error_response(500, "INTERNAL_ERROR", "Internal error; see the server log for this request id.")

    @app.errorhandler(PoolTimeoutError)
    def _pool_exhausted(exc):
        log.warning("database connection pool exhausted")
        return error_response(503, "DATABASE_BUSY", "All database connections are busy; retry shortly.",
                              {"Retry-After": "1"})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "INTERNAL_ERROR", "Internal error; see the server log for this request id.")


def _is_unavailable(exc: DBAPIError) -> bool:
    import psycopg2

    return isinstance(exc.orig, (psycopg2.OperationalError, psycopg2.InterfaceError))
