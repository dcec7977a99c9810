"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, and verifier key strings.

A signed note is a text ending in `\\n`, one empty line, then one or more lines `— <key name> <base64(key ID ||
signature)>\\n` (U+2014 EM DASH, space). The key ID is `SHA-256(key name || 0x0A || 0x01 || public key)[:4]`,
read as a big-endian uint32, and a verifier key is `<key name>+<8 hex digits of key ID>+<base64(0x01 ||
public key)>` — the formats of Go's `golang.org/x/mod/sumdb/note`, which our interop test checks against.

Rules applied on parsing (C2SP signed-note): valid UTF-8, no ASCII control character but `\\n`; the text is
separated from the signatures by the *last* empty line; key names are non-empty, without Unicode spaces or `+`.
Base64 is RFC 4648 §4 with padding, and must be canonical. `open_note` ignores signatures of unknown keys, rejects
the note if a known key's signature fails, and requires at least one verified signature.

PURE: stdlib and PyNaCl only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass

from app.ves.errors import InvalidNoteSignature
from app.ves.errors import MalformedNote
from app.ves.errors import NoteError
from app.ves.errors import UnverifiedNote
from app.ves.signing import PUBLIC_KEY_SIZE
from app.ves.signing import Ed25519Signer
from app.ves.signing import verify_signature

__all__ = [
    "ED25519",
    "MAX_SIGNATURES",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "OpenedNote",
    "is_valid_key_name",
    "key_id",
    "open_note",
    "parse_note",
    "sign_note",
]

ED25519 = 0x01
"""The C2SP signed-note signature type byte of Ed25519."""

MAX_SIGNATURES = 100
"""Most signature lines accepted on one note (C2SP: at least 16; Go's note package: 100)."""

_EM_DASH_SPACE = "\u2014 "
_SEPARATOR = b"\n\n"


def is_valid_key_name(name: object) -> bool:
    """C2SP signed-note: non-empty, no Unicode space, no `+`; we also refuse ASCII control characters."""
    return (isinstance(name, str) and name != "" and "+" not in name
            and not any(ch.isspace() or ch < " " for ch in name))


def key_id(key_name: str, public_key: bytes, signature_type: int = ED25519) -> int:
    """`SHA-256(key name || 0x0A || signature type || public key)[:4]` as a big-endian uint32 (C2SP signed-note)."""
    if not is_valid_key_name(key_name):
        raise MalformedNote("Invalid key name (expected non-empty, no spaces, no '+')")
    digest = hashlib.sha256(key_name.encode() + b"\n" + bytes([signature_type]) + bytes(public_key)).digest()
    return int.from_bytes(digest[:4], "big")


def _b64decode(text: str) -> bytes:
    """Strict RFC 4648 §4 base64: padded, standard alphabet, canonical (re-encodes to the same text)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise MalformedNote("Invalid base64 (expected standard, padded base64)") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise MalformedNote("Invalid base64 (not in canonical form)")
    return raw


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the signing key's name and uint32 ID, and the signature bytes that follow the ID."""

    key_name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        """`— <key name> <base64(key ID || signature)>\\n`."""
        encoded = base64.b64encode(self.key_id.to_bytes(4, "big") + self.signature).decode("ascii")
        return f"{_EM_DASH_SPACE}{self.key_name} {encoded}\n"


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted Ed25519 key under a name: verifies that key's signature lines."""

    key_name: str
    key_id: int
    public_key: bytes

    @classmethod
    def for_key(cls, key_name: str, public_key: bytes) -> NoteVerifier:
        """The verifier of `public_key` (32 bytes) named `key_name`; raises MalformedNote for a bad name or key."""
        if not isinstance(public_key, (bytes, bytearray)) or len(public_key) != PUBLIC_KEY_SIZE:
            raise MalformedNote(f"Invalid Ed25519 public key (expected {PUBLIC_KEY_SIZE} bytes)")
        return cls(key_name, key_id(key_name, public_key), bytes(public_key))

    @classmethod
    def parse(cls, verifier_key: str) -> NoteVerifier:
        """Parse `<name>+<8 hex key ID>+<base64(0x01 || public key)>`; the key ID MUST match the name and key.

        Raises MalformedNote for any other shape, an unknown signature type or a mismatched key ID.
        """
        if not isinstance(verifier_key, str):
            raise MalformedNote("Invalid verifier key (expected a string)")
        parts = verifier_key.split("+", 2)
        if len(parts) != 3:
            raise MalformedNote("Invalid verifier key (expected <name>+<key id>+<key>)")
        name, hex_id, encoded = parts
        if not is_valid_key_name(name):
            raise MalformedNote("Invalid verifier key (bad key name)")
        if len(hex_id) != 8 or any(ch not in "0123456789abcdefABCDEF" for ch in hex_id):
            raise MalformedNote("Invalid verifier key (the key ID must be 8 hex digits)")
        key = _b64decode(encoded)
        if len(key) != 1 + PUBLIC_KEY_SIZE or key[0] != ED25519:
            raise MalformedNote("Invalid verifier key (expected type 0x01 and a 32-byte Ed25519 key)")
        verifier = cls.for_key(name, key[1:])
        if verifier.key_id != int(hex_id, 16):
            raise MalformedNote("Invalid verifier key (the key ID does not match the name and key)")
        return verifier

    @property
    def verifier_key(self) -> str:
        """`<name>+<8 hex key ID>+<base64(0x01 || public key)>`."""
        encoded = base64.b64encode(bytes([ED25519]) + self.public_key).decode("ascii")
        return f"{self.key_name}+{self.key_id:08x}+{encoded}"

    def verify(self, text: bytes, signature: NoteSignature) -> bool:
        """True iff `signature` is this key's (same name and ID) and is a valid Ed25519 signature of `text`."""
        return (signature.key_name == self.key_name and signature.key_id == self.key_id
                and verify_signature(self.public_key, text, signature.signature))


class NoteSigner:
    """Signs note texts with a 32-byte Ed25519 seed under `key_name`. `repr` never shows the seed."""

    __slots__ = ("key_name", "verifier", "_signer")

    def __init__(self, key_name: str, seed: bytes):
        self._signer = Ed25519Signer(seed)
        self.verifier = NoteVerifier.for_key(key_name, self._signer.public_key)
        self.key_name = key_name

    @property
    def key_id(self) -> int:
        return self.verifier.key_id

    @property
    def public_key(self) -> bytes:
        return self.verifier.public_key

    def sign(self, text: bytes) -> NoteSignature:
        """The signature line over the exact note text bytes (final newline included)."""
        return NoteSignature(self.key_name, self.key_id, self._signer.sign(text))

    def __repr__(self) -> str:
        return f"NoteSigner({self.verifier.verifier_key!r})"


def _check_characters(message: bytes) -> str:
    try:
        decoded = message.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedNote("A note must be valid UTF-8") from None
    if any(ch < " " and ch != "\n" for ch in decoded):
        raise MalformedNote("A note must not contain control characters other than newline")
    return decoded


@dataclass(frozen=True)
class Note:
    """A note text (ending in `\\n`) and its signature lines, in order. Parsing does not verify anything."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> bytes:
        """The signed note: text, an empty line, one line per signature."""
        return (self.text + "\n" + "".join(signature.line() for signature in self.signatures)).encode()


def parse_note(message: bytes | str) -> Note:
    """Split a signed note into its text and signature lines (C2SP signed-note syntax). Raises MalformedNote."""
    if isinstance(message, str):
        message = message.encode("utf-8", "surrogatepass")
    if not isinstance(message, (bytes, bytearray, memoryview)):
        raise MalformedNote("A note must be bytes or text")
    message = bytes(message)
    _check_characters(message)
    split = message.rfind(_SEPARATOR)
    if split < 0:
        raise MalformedNote("A note needs an empty line before its signatures")
    text, block = message[:split + 1].decode(), message[split + 2:].decode()
    if not block or not block.endswith("\n"):
        raise MalformedNote("A note needs at least one signature line, ending in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote(f"Too many signatures on a note (at most {MAX_SIGNATURES})")
    signatures = []
    for line in lines:
        if not line.startswith(_EM_DASH_SPACE):
            raise MalformedNote("A signature line must start with an em dash and a space")
        name, _, encoded = line[len(_EM_DASH_SPACE):].partition(" ")
        if not is_valid_key_name(name) or not encoded:
            raise MalformedNote("A signature line needs a valid key name and a signature")
        raw = _b64decode(encoded)
        if len(raw) < 5:
            raise MalformedNote("A signature must hold a 4-byte key ID and at least one signature byte")
        signatures.append(NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return Note(text, tuple(signatures))


def sign_note(text: str, signers: Sequence[NoteSigner], existing: Sequence[NoteSignature] = ()) -> bytes:
    """The signed note of `text` with the `existing` signatures (e.g. witness cosignatures), then one per signer;
    an existing signature by one of the signers' keys is replaced. Raises MalformedNote for a text that is not a
    valid note text (must end in `\\n`; UTF-8 without control characters but newline)."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise MalformedNote("A note text must end with a newline")
    body = text.encode("utf-8", "surrogatepass")
    _check_characters(body)
    if not signers and not existing:
        raise MalformedNote("A signed note needs at least one signature")
    replaced = {(signer.key_name, signer.key_id) for signer in signers}
    kept = [signature for signature in existing if (signature.key_name, signature.key_id) not in replaced]
    return Note(text, tuple(kept) + tuple(signer.sign(body) for signer in signers)).encode()


@dataclass(frozen=True)
class OpenedNote:
    """A note whose `verified` signatures were checked against trusted keys; `unverified` ones are of unknown keys
    (e.g. witnesses the caller does not know) and prove nothing."""

    text: str
    verified: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]


def open_note(message: bytes | str, verifiers: Iterable[NoteVerifier]) -> OpenedNote:
    """Parse `message` and check its signatures against `verifiers` (C2SP signed-note §Signatures).

    Signatures whose (key name, key ID) match no verifier are ignored (kept in `unverified`, duplicates dropped).
    Every signature of a known key MUST verify, else InvalidNoteSignature; at least one must, else UnverifiedNote.
    Raises MalformedNote for bad syntax and NoteError for two different verifiers with one name and ID.
    """
    note = parse_note(message)
    known: dict[tuple[str, int], NoteVerifier] = {}
    for verifier in verifiers:
        slot = (verifier.key_name, verifier.key_id)
        if slot in known and known[slot] != verifier:
            raise NoteError(f"Ambiguous verifier keys (two keys named {verifier.key_name} "
                            f"with key ID {verifier.key_id:08x})")
        known[slot] = verifier
    body = note.text.encode()
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    for signature in note.signatures:
        verifier = known.get((signature.key_name, signature.key_id))
        if verifier is None:
            if signature not in unverified:
                unverified.append(signature)
            continue
        if not verifier.verify(body, signature):
            raise InvalidNoteSignature(
                f"A signature of a known key does not verify (key: {signature.key_name}+{signature.key_id:08x})",
                signature.key_name, signature.key_id)
        if signature not in verified:
            verified.append(signature)
    if not verified:
        raise UnverifiedNote("The note has no signature of a known key", note)
    return OpenedNote(note.text, tuple(verified), tuple(unverified))
