"""The error hierarchy shared by services and blueprints.

Each error carries a stable machine-readable `code` and the HTTP status it maps to; `app/api/errors.py` is the only
place that renders them. Messages are a sentence, then context in parentheses; never a payload, key or signature.
"""

from __future__ import annotations


class SequencerError(Exception):
    """Base class. HTTP: `status` with body `{"error": message, "code": code, "request_id"}`."""

    status = 400
    code = "BAD_REQUEST"

    def __init__(self, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers = headers or {}


class BadRequest(SequencerError):
    status = 400
    code = "BAD_REQUEST"


class Unauthorized(SequencerError):
    """No key, an unknown key or a revoked key. HTTP 401 with `WWW-Authenticate: ApiKey`."""

    status = 401
    code = "UNAUTHORIZED"


class Forbidden(SequencerError):
    """The key may not touch that tenant/store or lacks the permission. The message never reveals whether the
    other tenant's data exists."""

    status = 403
    code = "FORBIDDEN"


class NotFound(SequencerError):
    status = 404
    code = "NOT_FOUND"


class Conflict(SequencerError):
    status = 409
    code = "CONFLICT"


class PayloadTooLarge(SequencerError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(SequencerError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class ServiceUnavailable(SequencerError):
    """The database is unreachable. Clients SHOULD retry after `Retry-After` seconds."""

    status = 503
    code = "SERVICE_UNAVAILABLE"
