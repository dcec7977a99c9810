"""The domain's error hierarchy, raised by services, storage callers and the auth helper.

Each error carries a stable machine-readable `code` and a message: a sentence, then context in parentheses; never a
payload, key or signature. How an error is answered over HTTP (status, headers, body) is decided in one place,
`app/api/wire.py` (`ERROR_STATUSES`); nothing here knows a status code.
"""

from __future__ import annotations


class SequencerError(Exception):
    """Base class. `retry_after` (seconds), when set, tells the caller the condition is transient."""

    code = "BAD_REQUEST"

    def __init__(self, message: str, code: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.retry_after = retry_after


class InvalidRequest(SequencerError):
    """The caller asked for something malformed or impossible (answered 400)."""

    code = "BAD_REQUEST"


class Unauthenticated(SequencerError):
    """No key, an unknown key or a revoked key (answered 401 with `WWW-Authenticate: ApiKey`)."""

    code = "UNAUTHORIZED"


class NotPermitted(SequencerError):
    """The key may not touch that tenant/store or lacks the permission (answered 403). The message never reveals
    whether the other tenant's data exists."""

    code = "FORBIDDEN"


class NotFound(SequencerError):
    """No such thing, or one the caller may not see (answered 404)."""

    code = "NOT_FOUND"


class Conflict(SequencerError):
    """The request contradicts the stored state (answered 409)."""

    code = "CONFLICT"


class TooLarge(SequencerError):
    """A body, batch or payload over its configured limit (answered 413)."""

    code = "PAYLOAD_TOO_LARGE"


class Unavailable(SequencerError):
    """A dependency (the database, the chain) cannot serve the request now (answered 503). Callers SHOULD retry
    after `retry_after` seconds."""

    code = "SERVICE_UNAVAILABLE"


class IntegrityFailure(SequencerError):
    """Stored data no longer matches what was committed. Never caused by input (answered 500)."""

    code = "INTEGRITY_FAILURE"
