"""Errors raised by the SDK. The server's error body is `{"error", "code", "request_id"}` (API.md §Conventions)."""

from __future__ import annotations


class SequencerAPIError(Exception):
    """The sequencer answered with an error status, or could not be reached after every retry.

    `status` is the HTTP status (0 when no response arrived), `code` the server's UPPER_SNAKE code, `message` its
    human sentence and `request_id` the `X-Request-ID` to quote in a support request.
    """

    def __init__(self, status: int, code: str, message: str, request_id: str | None = None):
        super().__init__(f"{message} (status: {status}, code: {code}, request_id: {request_id})")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id

    @property
    def retryable(self) -> bool:
        """True for outcomes a retry of the same request may fix: no response, 429 and 5xx."""
        return self.status == 0 or self.status == 429 or self.status >= 500
