"""Errors raised by the pure VES core.

Every error is a `ValueError` with a stable `code`. The core never renders HTTP; `app/api/errors.py` maps these to a
400 response with `code` as the machine-readable reason. Messages name the offending field and what was expected,
never the value of a key, signature or payload.
"""

from __future__ import annotations


class VesError(ValueError):
    """Base class: input that violates VES.md. HTTP: 400 with `code`."""

    code = "INVALID"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidEncoding(VesError):
    """Bad hex, base64url, UUID, integer range or byte length (VES.md §Primitives). HTTP: 400."""

    code = "INVALID_ENCODING"


class CanonicalizationFailed(VesError):
    """A value RFC 8785 cannot encode (NaN, Infinity, integers beyond ±(2^53−1), lone surrogates).

    VES.md §Acceptance rules 1: the event MUST be rejected as `InvalidEvent`. HTTP: 400.
    """

    code = "INVALID_EVENT"


class UnsupportedVesVersion(VesError):
    """`ves_version` is neither 1 nor 2. HTTP: 400."""

    code = "UNSUPPORTED_VES_VERSION"


class ProofError(VesError):
    """A Merkle tree or inclusion proof cannot be built from the given leaves (empty batch, index out of range)."""

    code = "INVALID_PROOF"


class NoteError(VesError):
    """A signed note (C2SP signed-note) or checkpoint (C2SP tlog-checkpoint) that cannot be accepted. HTTP: 400."""

    code = "INVALID_NOTE"


class MalformedNote(NoteError):
    """The bytes are not a well-formed signed note, checkpoint text or verifier key (syntax, not signatures)."""

    code = "MALFORMED_NOTE"


class InvalidNoteSignature(NoteError):
    """A signature line of a known key (same name and key ID) does not verify: C2SP says reject the whole note.

    Carries `key_name` and `key_id` (uint32) as evidence.
    """

    code = "INVALID_NOTE_SIGNATURE"

    def __init__(self, message: str, key_name: str, key_id: int):
        super().__init__(message)
        self.key_name = key_name
        self.key_id = key_id


class UnverifiedNote(NoteError):
    """The note parsed, but no signature of a known key is on it. `note` holds what was parsed (untrusted)."""

    code = "UNVERIFIED_NOTE"

    def __init__(self, message: str, note: object):
        super().__init__(message)
        self.note = note
