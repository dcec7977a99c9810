"""Byte encodings of VES.md §Primitives: U32, U64, STR, UUID, JCS, and the hex/base64 wire forms.

Pure: stdlib and `rfc8785` only. Every malformed input raises a `VesError` subclass, never a bare
`TypeError`/`UnicodeEncodeError`, so the HTTP edge can answer 400 instead of 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid

import rfc8785

from app.ves.errors import CanonicalizationFailed
from app.ves.errors import InvalidEncoding

MAX_U32 = 2**32 - 1
MAX_U64 = 2**64 - 1
JCS_MAX_SAFE_INTEGER = 2**53 - 1
JCS_MAX_DEPTH = 512

_HEX_DIGITS = re.compile(r"[0-9a-fA-F]*")
_B64URL_CHARS = re.compile(r"[A-Za-z0-9_-]*")
_B64_CHARS = re.compile(r"[A-Za-z0-9+/]*")


def _unsigned(n: object, maximum: int, width: int, name: str) -> bytes:
    if isinstance(n, bool) or not isinstance(n, int):
        raise InvalidEncoding(f"{name} takes an integer (got {type(n).__name__})")
    if not 0 <= n <= maximum:
        raise InvalidEncoding(f"Integer out of {name} range (expected 0..{maximum})")
    return n.to_bytes(width, "big")


def u32(n: int) -> bytes:
    """`U32(n)`: 4 bytes big-endian. Raises InvalidEncoding for bools, negatives and n > 2^32−1."""
    return _unsigned(n, MAX_U32, 4, "U32")


def u64(n: int) -> bytes:
    """`U64(n)`: 8 bytes big-endian. Raises InvalidEncoding for bools, negatives and n > 2^64−1."""
    return _unsigned(n, MAX_U64, 8, "U64")


def parse_uuid(value: uuid.UUID | str, field: str = "uuid") -> uuid.UUID:
    """Parse a UUID given as `uuid.UUID` or string. Raises InvalidEncoding naming `field`."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise InvalidEncoding(f"Invalid {field} (expected a UUID string, got {type(value).__name__})")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidEncoding(f"Invalid {field} (expected a UUID)") from None


def uuid_bytes(value: uuid.UUID | str, field: str = "uuid") -> bytes:
    """`UUID(u)`: the 16 bytes in RFC 4122 network order."""
    return parse_uuid(value, field).bytes


def utf8(s: str, field: str = "string") -> bytes:
    """UTF-8 of `s` exactly as given (no normalisation). A lone surrogate raises CanonicalizationFailed."""
    if not isinstance(s, str):
        raise InvalidEncoding(f"Invalid {field} (expected a string, got {type(s).__name__})")
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalizationFailed(f"Invalid {field} (not encodable as UTF-8: lone surrogate)") from None


def str_field(s: str, field: str = "string") -> bytes:
    """`STR(s)`: `U32(len(utf8(s))) || utf8(s)`; length in bytes, not characters."""
    encoded = utf8(s, field)
    return u32(len(encoded)) + encoded


def jcs(value: object) -> bytes:
    """`JCS(v)`: RFC 8785 canonical JSON as UTF-8 bytes.

    Raises CanonicalizationFailed for NaN/Infinity, integers outside ±(2^53−1), lone surrogates (in keys or
    values), non-string keys and non-JSON types. Bools are JSON literals, not integers. The integer bound is
    rfc8785's own `IntegerDomainError` (pinned by tests/ves/test_encoding.py).

    Checked fast path: a value made only of objects with ASCII keys, arrays, strings, bools, null and integers within
    ±(2^53−1) — no floats — canonicalises to exactly what the C `json` encoder writes with sorted keys, compact
    separators and no ASCII escaping (RFC 8785 sorts keys by UTF-16 code units, which for ASCII is code-point order;
    both escape exactly `"`, `\\` and U+0000–U+001F, with the same short forms and lowercase `\\u00xx`). Anything
    else (a float, a non-ASCII key, a lone surrogate, a foreign type) goes to rfc8785, which decides and raises.
    tests/ves/test_encoding.py checks the two agree on generated values; about 4x faster on typical payloads
    (docs/PERFORMANCE.md).
    """
    deep, simple = _shape(value, JCS_MAX_DEPTH)
    if deep:
        raise CanonicalizationFailed(f"Payload cannot be canonicalised with RFC 8785 (nested deeper than {JCS_MAX_DEPTH})")
    if simple:
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                              allow_nan=False).encode("utf-8")
        except (ValueError, TypeError):  # a lone surrogate (UnicodeEncodeError): rfc8785 names the problem
            pass
    try:
        return rfc8785.dumps(value)
    except (ValueError, TypeError, RecursionError) as error:
        reason = str(error) if isinstance(error, rfc8785.CanonicalizationError) else type(error).__name__
        raise CanonicalizationFailed(f"Payload cannot be canonicalised with RFC 8785 ({reason})") from None


def _shape(value: object, limit: int) -> tuple[bool, bool]:
    """`(deeper than limit, eligible for the fast path)`, in one iterative walk (whatever the recursion limit)."""
    simple = True
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        kind = type(node)
        if kind is dict:
            if depth > limit:
                return True, False
            for key, child in node.items():
                if type(key) is not str or not key.isascii():
                    simple = False
                stack.append((child, depth + 1))
        elif kind is list or kind is tuple:
            if depth > limit:
                return True, False
            stack.extend((child, depth + 1) for child in node)
        elif kind is int:
            if not -JCS_MAX_SAFE_INTEGER <= node <= JCS_MAX_SAFE_INTEGER:
                simple = False
        elif kind is not str and kind is not bool and node is not None:
            simple = False  # floats, subclasses, foreign types: rfc8785 decides
    return False, simple


def parse_hex(value: str, length: int, field: str) -> bytes:
    """Decode `length` bytes of hex, with or without `0x`, any case (VES.md §Primitives: accepted and normalised).

    Raises InvalidEncoding naming `field` and the expected length for non-strings, non-hex or a wrong length.
    """
    expected = f"expected {length} bytes as 0x-prefixed hex, {2 + 2 * length} characters"
    if not isinstance(value, str):
        raise InvalidEncoding(f"Invalid {field} ({expected}; got {type(value).__name__})")
    digits = value[2:] if value[:2] in ("0x", "0X") else value
    if len(digits) != 2 * length or not _HEX_DIGITS.fullmatch(digits):
        raise InvalidEncoding(f"Invalid {field} ({expected})")
    return bytes.fromhex(digits)


def to_hex(data: bytes) -> str:
    """The wire form of bytes: `"0x"` + lowercase hex."""
    return "0x" + bytes(data).hex()


def b64u_encode(data: bytes) -> str:
    """base64url without padding (RFC 4648 §5)."""
    return base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode("ascii")


def b64u_decode(value: str, field: str = "base64url") -> bytes:
    """Decode base64url (RFC 4648 §5) as the original sequencer's `base64_url_decode` does: without padding, or with
    exactly the canonical `=` padding; unused trailing bits must be zero. Raises InvalidEncoding naming `field`."""
    if not isinstance(value, str):
        raise InvalidEncoding(f"Invalid {field} (expected a base64url string, got {type(value).__name__})")
    digits = value.rstrip("=")
    padding = len(value) - len(digits)
    if (not _B64URL_CHARS.fullmatch(digits) or len(digits) % 4 == 1
            or (padding and (len(value) % 4 or padding != -len(digits) % 4))):
        raise InvalidEncoding(f"Invalid {field} (expected base64url without padding)")
    decoded = base64.urlsafe_b64decode(digits + "=" * (-len(digits) % 4))
    if b64u_encode(decoded) != digits:
        raise InvalidEncoding(f"Invalid {field} (non-canonical base64url: unused bits must be zero)")
    return decoded


def _b64_any_alphabet(value: str) -> bytes | None:
    digits = value.rstrip("=").replace("-", "+").replace("_", "/")
    if not digits or not _B64_CHARS.fullmatch(digits) or len(digits) % 4 == 1:
        return None
    try:
        return base64.b64decode(digits + "=" * (-len(digits) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_key_material(value: str, length: int = 32, field: str = "key") -> bytes:
    """Decode key bytes given as hex (with or without `0x`, any case) or base64 (standard or urlsafe, padding optional).

    Used for `VES_SEQUENCER_SIGNING_KEY` (32-byte seed) and agent public keys. Hex is tried first, so a string that
    is valid hex of exactly `length` bytes is always read as hex. Raises InvalidEncoding naming `field` and `length`.
    """
    if not isinstance(value, str):
        raise InvalidEncoding(f"Invalid {field} (expected {length} bytes as hex or base64, got {type(value).__name__})")
    text = value.strip()
    digits = text[2:] if text[:2] in ("0x", "0X") else text
    if len(digits) == 2 * length and _HEX_DIGITS.fullmatch(digits):
        return bytes.fromhex(digits)
    decoded = _b64_any_alphabet(text)
    if decoded is None or len(decoded) != length:
        raise InvalidEncoding(f"Invalid {field} (expected {length} bytes as hex or base64)")
    return decoded
