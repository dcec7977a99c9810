"""Client-side checks of a stream's transparency log (LOG.md): signed checkpoints, inclusion against a checkpoint,
consistency between two. Trust comes from the log's public key (`GET /api/v1/ves/sequencer`'s `log_public_key`, or
one pinned by the caller), never from the server's own verdicts. Pure: app.ves only.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass

from app.ves import tlog
from app.ves.checkpoint import open_checkpoint
from app.ves.checkpoint import stream_origin
from app.ves.checkpoint import stream_verifier
from app.ves.errors import NoteError
from app.ves.hashing import stream_id
from app.ves.note import NoteVerifier


class LogVerificationError(Exception):
    """A checkpoint, inclusion or consistency proof did not verify. `check` names which (`checkpoint_signature`,
    `checkpoint_origin`, `log_key`, `inclusion`, `entry`, `consistency`, `fork`, `rollback`)."""

    def __init__(self, check: str, message: str):
        super().__init__(message)
        self.check = check
        self.message = message


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """A checkpoint whose signature was verified under `verifier_key`; `note` is the exact signed note."""

    origin: str
    tree_size: int
    root_hash: bytes
    note: bytes
    verifier_key: str

    def describe(self) -> str:
        """`<origin> size <n> root <base64>`: how a report names a checkpoint."""
        return f"{self.origin} size {self.tree_size} root {base64.b64encode(self.root_hash).decode()}"

    def to_dict(self) -> dict:
        return {"note": self.note.decode("utf-8"), "verifier_key": self.verifier_key}

    @classmethod
    def from_dict(cls, record: Mapping) -> VerifiedCheckpoint:
        """Re-verify a stored `{note, verifier_key}` (a bundle's or a monitor state file's)."""
        if not isinstance(record, Mapping) or not isinstance(record.get("note"), str) or not isinstance(
                record.get("verifier_key"), str):
            raise LogVerificationError("checkpoint_signature", "A stored checkpoint needs `note` and `verifier_key`")
        return open_log_checkpoint(record["note"].encode("utf-8"), record["verifier_key"])


def expected_verifier_key(log_origin: str, log_public_key: bytes, tenant_id: uuid.UUID | str,
                          store_id: uuid.UUID | str) -> str:
    """The verifier key a stream's checkpoints must be signed under, derived from the published origin and key."""
    return stream_verifier(stream_origin(log_origin, stream_id(tenant_id, store_id)), log_public_key).verifier_key


def open_log_checkpoint(note: bytes, verifier_key: str, expected_key: str | None = None) -> VerifiedCheckpoint:
    """Verify `note` under `verifier_key`; with `expected_key`, the served key must be exactly that one (same origin,
    same public key). Raises LogVerificationError."""
    if expected_key is not None and verifier_key != expected_key:
        raise LogVerificationError("log_key", f"The checkpoint is signed under {verifier_key!r}, not the expected "
                                              f"{expected_key!r}")
    try:
        verifier = NoteVerifier.parse(verifier_key)
        opened = open_checkpoint(note, verifier)
    except NoteError as error:
        raise LogVerificationError("checkpoint_signature", f"The checkpoint does not verify ({error})") from None
    checkpoint = opened.checkpoint
    return VerifiedCheckpoint(checkpoint.origin, checkpoint.tree_size, checkpoint.root_hash, bytes(note),
                              verifier_key)


def _hashes(values: object, what: str) -> list[bytes]:
    if not isinstance(values, list):
        raise LogVerificationError(what, f"The {what} proof is not a list")
    try:
        hashes = [bytes.fromhex(value) for value in values]
    except (TypeError, ValueError):
        raise LogVerificationError(what, f"The {what} proof holds a value that is not hex") from None
    if any(len(h) != tlog.HASH_SIZE for h in hashes):
        raise LogVerificationError(what, f"The {what} proof holds a value that is not 32 bytes")
    return hashes


def check_inclusion(body: Mapping, sequence_number: int, checkpoint: VerifiedCheckpoint,
                    entry: bytes | None = None) -> None:
    """`body` (`GET /api/v1/ves/log/inclusion/{n}` at the checkpoint's size) proves entry `n - 1` in `checkpoint`;
    with `entry` (the VES leaf hash computed locally from the event), the proven entry must be that one."""
    where = f"sequence number {sequence_number} in {checkpoint.describe()}"
    if body.get("leaf_index") != sequence_number - 1 or body.get("tree_size") != checkpoint.tree_size:
        raise LogVerificationError("inclusion", f"The inclusion proof is for another position or size ({where})")
    try:
        served_entry = bytes.fromhex(body.get("entry", ""))
    except (TypeError, ValueError):
        served_entry = b""
    if entry is not None and served_entry != entry:
        raise LogVerificationError("entry", f"The log holds another entry than the event's VES leaf hash ({where})")
    proof = _hashes(body.get("proof"), "inclusion")
    if len(served_entry) != tlog.HASH_SIZE or not tlog.verify_inclusion(
            sequence_number - 1, checkpoint.tree_size, tlog.hash_leaf(served_entry), proof, checkpoint.root_hash):
        raise LogVerificationError("inclusion", f"The inclusion proof does not verify ({where})")


def check_consistency(body: Mapping | Sequence, old: VerifiedCheckpoint, new: VerifiedCheckpoint) -> None:
    """`old` and `new` are checkpoints of one log and `new` extends `old`: same origin, `new` not smaller, same root
    at the same size, and the consistency proof (`GET /api/v1/ves/log/consistency`) verifies. The check names the
    failure: `rollback` (smaller), `fork` (other root at the same size, or a proof that does not verify)."""
    if old.origin != new.origin:
        raise LogVerificationError("checkpoint_origin", f"Checkpoints of two logs: {old.origin} and {new.origin}")
    if new.tree_size < old.tree_size:
        raise LogVerificationError("rollback", f"The log shrank: {new.describe()} is smaller than the earlier "
                                               f"{old.describe()}")
    if new.tree_size == old.tree_size:
        if new.root_hash != old.root_hash:
            raise LogVerificationError("fork", f"Two roots for one size: {old.describe()} and {new.describe()}")
        return
    proof = _hashes(body.get("proof") if isinstance(body, Mapping) else list(body), "consistency")
    if isinstance(body, Mapping) and (body.get("first"), body.get("second")) != (old.tree_size, new.tree_size):
        raise LogVerificationError("consistency", "The consistency proof is for other sizes")
    if not tlog.verify_consistency(old.tree_size, new.tree_size, proof, old.root_hash, new.root_hash):
        raise LogVerificationError("fork", f"{new.describe()} is not an extension of {old.describe()}: the "
                                           f"consistency proof does not verify")
