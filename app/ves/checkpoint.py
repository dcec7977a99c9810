"""Checkpoints of LOG.md: C2SP tlog-checkpoint note texts, per-stream origins, signing and opening.

The note text is `<origin>\\n<tree size>\\n<base64 root hash>\\n` (then optional extension lines). A stream's
origin is `<LOG_ORIGIN>/<hex stream_id>`; its checkpoints are signed with the log key under the key name
`origin`, so its verifier key is `<origin>+<key ID>+<base64(0x01 || log public key)>` and differs per stream.

PURE: stdlib and PyNaCl only.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass

from app.ves.errors import MalformedNote
from app.ves.errors import NoteError
from app.ves.note import NoteSignature
from app.ves.note import NoteSigner
from app.ves.note import NoteVerifier
from app.ves.note import OpenedNote
from app.ves.note import is_valid_key_name
from app.ves.note import open_note
from app.ves.note import sign_note
from app.ves.tlog import HASH_SIZE
from app.ves.tlog import MAX_TREE_SIZE

__all__ = [
    "Checkpoint",
    "SignedCheckpoint",
    "open_checkpoint",
    "sign_checkpoint",
    "stream_origin",
    "stream_signer",
    "stream_verifier",
]


def stream_origin(log_origin: str, stream_id: bytes) -> str:
    """`<LOG_ORIGIN>/<lowercase hex stream_id>` (LOG.md §Checkpoints). `log_origin` MUST be a valid key name
    without a trailing `/`; `stream_id` is VES.md's 32-byte stream id."""
    if not is_valid_key_name(log_origin) or log_origin.endswith("/"):
        raise MalformedNote("Invalid log origin (expected a schema-less URL without spaces, '+' or trailing '/')")
    if not isinstance(stream_id, (bytes, bytearray)) or len(stream_id) != HASH_SIZE:
        raise MalformedNote(f"Invalid stream_id (expected {HASH_SIZE} bytes)")
    return f"{log_origin}/{bytes(stream_id).hex()}"


def stream_signer(origin: str, log_seed: bytes) -> NoteSigner:
    """The signer of one stream's checkpoints: the log key under the key name `origin`."""
    return NoteSigner(origin, log_seed)


def stream_verifier(origin: str, log_public_key: bytes) -> NoteVerifier:
    """The verifier of one stream's checkpoints; `.verifier_key` is the `X-Log-Vkey` string."""
    return NoteVerifier.for_key(origin, log_public_key)


def _is_decimal(line: str) -> bool:
    return line.isascii() and line.isdigit() and (line == "0" or not line.startswith("0"))


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: `tree_size` leaves with root `root_hash` (32 bytes), issued under `origin`."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise MalformedNote("Invalid checkpoint origin (expected one non-empty line)")
        size = self.tree_size
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_TREE_SIZE:
            raise MalformedNote(f"Invalid checkpoint tree size (expected 0..{MAX_TREE_SIZE})")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise MalformedNote(f"Invalid checkpoint root hash (expected {HASH_SIZE} bytes)")
        if any(not isinstance(line, str) or not line or "\n" in line for line in self.extensions):
            raise MalformedNote("Invalid checkpoint extension line (expected non-empty lines)")

    def text(self) -> str:
        """The note text, each line ending in `\\n` (C2SP tlog-checkpoint §Note text)."""
        lines = [self.origin, str(self.tree_size), base64.b64encode(self.root_hash).decode("ascii"),
                 *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text: at least three non-empty lines, each ending in `\\n`; the size in ASCII
        decimal without leading zeros; the root as canonical padded base64 of 32 bytes. Raises MalformedNote."""
        if not isinstance(text, str) or not text.endswith("\n"):
            raise MalformedNote("A checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(line == "" for line in lines):
            raise MalformedNote("A checkpoint needs origin, tree size and root hash lines, none empty")
        origin, size_line, root_line, *extensions = lines
        if not _is_decimal(size_line) or int(size_line) > MAX_TREE_SIZE:
            raise MalformedNote("Invalid checkpoint tree size (expected decimal without leading zeros)")
        try:
            root = base64.b64decode(root_line.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            raise MalformedNote("Invalid checkpoint root hash (expected base64)") from None
        if len(root) != HASH_SIZE or base64.b64encode(root).decode("ascii") != root_line:
            raise MalformedNote(f"Invalid checkpoint root hash (expected canonical base64 of {HASH_SIZE} bytes)")
        return cls(origin, int(size_line), root, tuple(extensions))


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint and the signed note that carries it (`note` is the exact bytes served)."""

    checkpoint: Checkpoint
    note: bytes
    verified: tuple[NoteSignature, ...] = ()
    unverified: tuple[NoteSignature, ...] = ()


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner,
                    cosignatures: Iterable[NoteSignature] = ()) -> bytes:
    """The signed note of `checkpoint` by `signer`, whose key name MUST be the checkpoint's origin (LOG.md), after
    any existing `cosignatures` (e.g. witnesses')."""
    if signer.key_name != checkpoint.origin:
        raise NoteError(f"The log key must sign under the checkpoint's origin (origin: {checkpoint.origin}, "
                        f"key name: {signer.key_name})")
    return sign_note(checkpoint.text(), [signer], tuple(cosignatures))


def open_checkpoint(message: bytes | str, verifier: NoteVerifier,
                    extra_verifiers: Iterable[NoteVerifier] = ()) -> SignedCheckpoint:
    """Verify a signed checkpoint against the log's `verifier` and parse it.

    The log's own signature MUST be present and valid, and the origin line MUST equal the verifier's key name (a
    checkpoint of another stream or deployment is refused). `extra_verifiers` (witnesses) are checked when their
    signatures are present. Raises MalformedNote, InvalidNoteSignature, UnverifiedNote or NoteError.
    """
    opened: OpenedNote = open_note(message, [verifier, *extra_verifiers])
    if not any(s.key_name == verifier.key_name and s.key_id == verifier.key_id for s in opened.verified):
        raise NoteError(f"The checkpoint is not signed by the log key (key: {verifier.key_name}+"
                        f"{verifier.key_id:08x})", code="UNVERIFIED_NOTE")
    checkpoint = Checkpoint.parse(opened.text)
    if checkpoint.origin != verifier.key_name:
        raise NoteError(f"The checkpoint's origin is not the log's (origin: {checkpoint.origin}, "
                        f"expected: {verifier.key_name})", code="WRONG_ORIGIN")
    raw = message.encode() if isinstance(message, str) else bytes(message)
    return SignedCheckpoint(checkpoint, raw, opened.verified, opened.unverified)
