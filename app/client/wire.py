"""Tolerant readers of the wire shapes the sequencer serves, and the receipt check of VES.md §Sequencer receipt.

Ingest answers receipts in camelCase, the read API in snake_case; readers accept both so that one function verifies a
receipt wherever it came from. Pure: app.ves only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from app.ves import EventSigningFields
from app.ves import SIGNATURE_SIZE
from app.ves import VesError
from app.ves import event_signing_hash
from app.ves import leaf_hash
from app.ves import parse_hex
from app.ves import receipt_hash
from app.ves import verify_inclusion
from app.ves import verify_signature

_MISSING = object()


def field(record: Mapping, snake: str, default: object = None) -> object:
    """`record[snake]`, else its camelCase spelling, else `default`."""
    value = record.get(snake, _MISSING)
    if value is _MISSING:
        head, *rest = snake.split("_")
        value = record.get(head + "".join(part.title() for part in rest), _MISSING)
    return default if value is _MISSING else value


def event_receipt(event: Mapping) -> Mapping:
    """The receipt served with a read event (`sequencer_receipt`); the event itself when fields are flattened."""
    receipt = field(event, "sequencer_receipt")
    return receipt if isinstance(receipt, Mapping) else event


def signing_hash_of(event: Mapping) -> bytes:
    """The event signing hash (v1 or v2) recomputed from the envelope's signed fields. Raises VesError."""
    return event_signing_hash(EventSigningFields.from_envelope(event))


def optional_bytes(value: object, length: int, name: str) -> bytes | None:
    """Hex of `length` bytes, or None for a null/empty value. Raises InvalidEncoding for anything else."""
    if value in (None, "", "0x"):
        return None
    return parse_hex(value, length, name)


def expected_receipt_hash(receipt: Mapping, event: Mapping) -> bytes:
    """`receipt_hash` recomputed from the event and the receipt's sequence number. Raises VesError if malformed."""
    sequence_number = field(receipt, "sequence_number", field(event, "sequence_number"))
    return receipt_hash(
        event["tenant_id"], event["store_id"], event["event_id"], sequence_number, signing_hash_of(event)
    )


@dataclass(frozen=True)
class ReceiptKey:
    """One receipt-signing key version as `GET /api/v1/ves/sequencer` lists it (docs/KEYS.md)."""

    version: int
    public_key: bytes
    retired_at: dt.datetime | None = None


def parse_instant(value: object) -> dt.datetime | None:
    """An RFC 3339 instant (`Z` or an offset), else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def receipt_keys(sequencer_info: Mapping) -> dict[int, ReceiptKey]:
    """The key versions of a sequencer description (`keys`), by version; empty for a server (or a bundle written)
    before key versions existed. Raises VesError for a malformed entry."""
    keys = {}
    for entry in sequencer_info.get("keys") or []:
        version = field(entry, "version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise VesError(f"Invalid sequencer key version {version!r}", code="INVALID_ENCODING")
        keys[version] = ReceiptKey(version, parse_hex(field(entry, "public_key"), 32, "keys[].public_key"),
                                   parse_instant(field(entry, "retired_at")))
    return keys


def receipt_key_problem(receipt: Mapping, sequenced_at: object, keys: Mapping[int, ReceiptKey],
                        fallback: bytes | None) -> tuple[bytes | None, str | None]:
    """`(public key, None)` to check the receipt with, or `(None, why not)`.

    With key versions known, the receipt's `sequencer_key_version` picks the key; an unknown version, or one retired
    at or before the event's `sequenced_at`, is refused. A receipt without a version (written before versions
    existed) and a description without versions use `fallback` (the single published key)."""
    version = field(receipt, "sequencer_key_version")
    if not keys or version is None:
        return fallback, None if fallback is not None else "no receipt key published"
    key = keys.get(version)
    if key is None:
        return None, f"receipt signed by unknown sequencer key version {version!r}"
    moment = parse_instant(sequenced_at) if not isinstance(sequenced_at, dt.datetime) else sequenced_at
    if key.retired_at is not None and (moment is None or moment >= key.retired_at):
        return None, (f"sequencer key version {version} was retired from {key.retired_at.isoformat()}; this receipt "
                      f"is for an event sequenced at {sequenced_at}")
    return key.public_key, None


def receipt_is_valid(receipt: Mapping, event: Mapping, sequencer_public_key: bytes | Mapping[int, ReceiptKey]) -> bool:
    """True iff the receipt names this event, its hash is recomputed exactly and the sequencer's Ed25519 signature
    verifies over it. A receipt with `signature_alg` "none" cannot be verified and is False. Never raises.

    `sequencer_public_key` is one key, or the key versions (`receipt_keys`): then the receipt's
    `sequencer_key_version` picks the key, and a version retired at or before the event's `sequenced_at` is
    False."""
    if isinstance(sequencer_public_key, Mapping):
        sequenced_at = field(receipt, "sequenced_at", field(event, "sequenced_at"))
        chosen, _ = receipt_key_problem(receipt, sequenced_at, sequencer_public_key, None)
        if chosen is None:
            return False
        sequencer_public_key = chosen
    try:
        if str(field(receipt, "event_id", event["event_id"])).lower() != str(event["event_id"]).lower():
            return False
        expected = expected_receipt_hash(receipt, event)
        if parse_hex(field(receipt, "receipt_hash"), 32, "receipt_hash") != expected:
            return False
        signature = optional_bytes(field(receipt, "sequencer_signature"), SIGNATURE_SIZE, "sequencer_signature")
    except (VesError, KeyError, TypeError):
        return False
    return signature is not None and verify_signature(sequencer_public_key, expected, signature)


def proof_is_valid(proof: Mapping, commitment: Mapping | None = None, event: Mapping | None = None) -> bool:
    """True iff the inclusion proof folds to its `merkle_root` under the strict rules of VES.md §Merkle commitments.

    With `commitment`, the proof MUST also be for that commitment's root, `leaf_index` MUST equal
    `sequence_number - sequence_start` and the leaf count is known (so padding slots and short paths fail).
    With `event` (a served envelope with `sequence_number`), the leaf hash MUST be the one recomputed from it.
    Never raises: malformed input is False.
    """
    try:
        leaf = parse_hex(field(proof, "leaf_hash"), 32, "leaf_hash")
        root = parse_hex(field(proof, "merkle_root"), 32, "merkle_root")
        path = [parse_hex(sibling, 32, "proof_path[]") for sibling in field(proof, "proof_path")]
        leaf_index = field(proof, "leaf_index")
        directions = field(proof, "directions")
        leaf_count = None
        if commitment is not None:
            if parse_hex(field(commitment, "merkle_root"), 32, "merkle_root") != root:
                return False
            sequence_number = field(proof, "sequence_number")
            if sequence_number is not None and leaf_index != sequence_number - field(commitment, "sequence_start"):
                return False
            leaf_count = field(commitment, "leaf_count")
        if event is not None:
            signature = optional_bytes(field(event, "agent_signature"), SIGNATURE_SIZE, "agent_signature")
            expected_leaf = leaf_hash(
                event["tenant_id"], event["store_id"], field(event, "sequence_number"), signing_hash_of(event),
                signature,
            )
            if expected_leaf != leaf:
                return False
    except (VesError, KeyError, TypeError, ValueError):
        return False
    return verify_inclusion(leaf, root, path, leaf_index, leaf_count, directions)


def event_leaf_hash(event: Mapping) -> bytes:
    """The event's VES leaf hash (`VES_LEAF_V1`), recomputed from the served envelope: its transparency-log entry
    (LOG.md). Raises VesError/KeyError for a malformed event."""
    signature = optional_bytes(field(event, "agent_signature"), SIGNATURE_SIZE, "agent_signature")
    if signature is not None and not any(signature):
        signature = None
    return leaf_hash(event["tenant_id"], event["store_id"], field(event, "sequence_number"), signing_hash_of(event),
                     signature)
