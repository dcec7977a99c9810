"""The Flask error handlers: every exception becomes the `Error` body `{"error", "code", "request_id"}`.

Domain errors answer as `app/api/wire.py` maps them (`answer_for`); routing errors, database outages and anything
unexpected are classified here. No exception ever reaches the client as a stack trace: unexpected ones are logged
with their traceback and answered with a generic 500 body carrying the request id.
"""

from __future__ import annotations

import logging

from flask import Flask
from flask import g
from flask import jsonify
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from app.api.wire import ErrorAnswer
from app.api.wire import answer_for
from app.api.wire import error_body
from app.errors import SequencerError
from app.logging import FAULT_LOG_INTERVAL_SECONDS
from app.logging import EveryInterval
from app.ves.errors import VesError

log = logging.getLogger("stateset_sequencer.api")

LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"
RETRY_SOON = {"Retry-After": "1"}
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
    429: "rate_limited",
    431: "HEADERS_TOO_LARGE",
}
_HTTP_MESSAGES = {
    404: "Not found.",
    405: "Method not allowed on this path.",
    413: "Request body is larger than MAX_BODY_SIZE_BYTES.",
    429: "Rate limit exceeded; retry after the Retry-After interval.",
}
_OUTAGE_LOG = EveryInterval(FAULT_LOG_INTERVAL_SECONDS)
INTERNAL = ErrorAnswer(500, "INTERNAL_ERROR", "Internal error; see the server log for this request id.", {})


def respond(answer: ErrorAnswer):
    """The error body. The message may quote the request (a field name with a lone surrogate, which UTF-8 cannot
    encode): such characters are written as `\\udXXX` escapes, so the error itself never fails to render."""
    message = answer.message.encode("utf-8", "backslashreplace").decode("utf-8")
    response = jsonify(error_body(answer.code, message, getattr(g, "request_id", None)))
    response.status_code = answer.status
    response.headers.update(answer.headers)
    return response


def http_answer(exc: HTTPException) -> ErrorAnswer:
    """A routing or protocol error raised by Werkzeug/Flask (404, 405 with `Allow`, 413, 429, ...)."""
    status = exc.code or 500
    headers = {}
    valid_methods = getattr(exc, "valid_methods", None)
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(valid_methods)
    message = _HTTP_MESSAGES.get(status, exc.description or exc.name)
    return ErrorAnswer(status, _HTTP_CODES.get(status, "HTTP_ERROR"), message, headers)


def database_answer(exc: DBAPIError) -> ErrorAnswer:
    """503 while the database is unreachable, a stream lock is busy or a statement timed out; else a 500."""
    if getattr(exc.orig, "pgcode", None) == LOCK_NOT_AVAILABLE:
        log.warning("stream lock not granted within STREAM_LOCK_TIMEOUT_MS")
        return ErrorAnswer(503, "STREAM_BUSY", "The stream is busy (its lock was not granted in time); nothing was "
                           "written. Retry shortly.", RETRY_SOON)
    if getattr(exc.orig, "pgcode", None) == QUERY_CANCELED:
        log.warning("database statement cancelled after DB_STATEMENT_TIMEOUT_MS")
        return ErrorAnswer(503, "DATABASE_TIMEOUT", "A database statement took too long and was cancelled; nothing "
                           "was written. Retry shortly.", RETRY_SOON)
    if exc.connection_invalidated or _is_unavailable(exc):
        occurrences = _OUTAGE_LOG.due("database unavailable")
        if occurrences is not None:
            log.warning("database unavailable", extra={"error_type": type(exc.orig).__name__,
                                                       "occurrences": occurrences,
                                                       "repeats_suppressed_seconds": _OUTAGE_LOG.seconds})
        return ErrorAnswer(503, "DATABASE_UNAVAILABLE", "The database is unreachable; retry shortly.", RETRY_SOON)
    log.exception("database error")
    return INTERNAL


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(SequencerError)
    @app.errorhandler(VesError)
    def _domain_error(exc):
        answer = answer_for(exc)
        if answer.status >= 500 and answer.status != 503:
            log.error("integrity failure", extra={"code": answer.code})
        return respond(answer)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return respond(http_answer(exc))

    @app.errorhandler(DBAPIError)
    def _database_error(exc: DBAPIError):
        return respond(database_answer(exc))

    @app.errorhandler(PoolTimeoutError)
    def _pool_exhausted(exc):
        log.warning("database connection pool exhausted")
        return respond(ErrorAnswer(503, "DATABASE_BUSY", "All database connections are busy; retry shortly.",
                                   RETRY_SOON))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return respond(INTERNAL)


def _is_unavailable(exc: DBAPIError) -> bool:
    import psycopg2

    return isinstance(exc.orig, (psycopg2.OperationalError, psycopg2.InterfaceError))
