"""A correct audit bundle built from first principles: events signed with AgentSigner, receipts signed with a
sequencer seed, commitments and state roots chained with app.ves.merkle. Tests tamper with copies of it."""

from __future__ import annotations

import copy
import uuid

import pytest

from app.client import AgentSigner
from app.verify import BUNDLE_FORMAT
from app.ves import Ed25519Signer
from app.ves import EventSigningFields
from app.ves import ZERO_HASH
from app.ves import event_signing_hash
from app.ves import leaf_hash
from app.ves import merkle_root
from app.ves import padded_leaf_count
from app.ves import parse_hex
from app.ves import payload_plain_hash
from app.ves import receipt_hash
from app.ves import state_root
from app.ves import stream_id
from app.ves import to_hex
from app.ves import tree_depth

SEQUENCER_SEED = bytes(range(100, 132))
AGENT_SEED = bytes(range(1, 33))
TENANT = "4f0c1f3e-2a55-4e45-9d4e-0c7c6f2b1a01"
STORE = "b1d2c3e4-5f60-4a7b-8c9d-0e1f2a3b4c5d"
AGENT = "26f1b94f-9b48-4d80-ae3c-5af305fc1062"
UNSIGNED_AGENT = "9a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def served_event(envelope: dict, number: int, sequencer: Ed25519Signer) -> dict:
    """The envelope as GET /api/v1/ves/events serves it: plus sequence number, time and signed receipt."""
    signing_hash = event_signing_hash(EventSigningFields.from_envelope(envelope))
    receipt = receipt_hash(envelope["tenant_id"], envelope["store_id"], envelope["event_id"], number, signing_hash)
    return {
        **envelope,
        "sequence_number": number,
        "sequenced_at": f"2030-01-01T00:00:{number:02d}.000000+00:00",
        "sequencer_receipt": {
            "sequencer_id": "test-sequencer",
            "event_id": envelope["event_id"],
            "sequence_number": number,
            "receipt_hash": to_hex(receipt),
            "signature_alg": "ed25519",
            "sequencer_signature": to_hex(sequencer.sign(receipt)),
        },
    }


def unsigned_envelope(number: int) -> dict:
    """An event as the unsigned endpoint stores it: agent_key_id 0, hashes computed by the sequencer, no signature."""
    payload = {"note": f"unsigned {number}"}
    return {
        "ves_version": 1, "event_id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"unsigned-{number}")),
        "tenant_id": TENANT, "store_id": STORE, "source_agent_id": UNSIGNED_AGENT, "agent_key_id": 0,
        "entity_type": "note", "entity_id": "n-1", "event_type": "NoteAdded",
        "created_at": "2030-01-01T00:00:00.000Z", "payload_kind": 0, "payload": payload,
        "payload_plain_hash": to_hex(payload_plain_hash(payload)), "payload_cipher_hash": to_hex(ZERO_HASH),
        "agent_signature": None,
    }


def commitment_for(events: list[dict], start: int, end: int, prev: bytes, batch: int) -> dict:
    leaves = []
    for event in events[start - 1 : end]:
        signing_hash = event_signing_hash(EventSigningFields.from_envelope(event))
        signature = parse_hex(event["agent_signature"], 64, "sig") if event["agent_signature"] else None
        leaves.append(leaf_hash(TENANT, STORE, event["sequence_number"], signing_hash, signature))
    root = merkle_root(leaves)
    count = end - start + 1
    new = state_root(stream_id(TENANT, STORE), prev, root, start, end, count)
    return {
        "batch_id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"batch-{batch}")), "tenant_id": TENANT, "store_id": STORE,
        "ves_version": 1, "tree_depth": tree_depth(count), "leaf_count": count,
        "padded_leaf_count": padded_leaf_count(count), "merkle_root": to_hex(root),
        "prev_state_root": to_hex(prev), "new_state_root": to_hex(new), "sequence_start": start,
        "sequence_end": end, "committed_at": "2030-01-01T00:01:00Z",
    }


def build_bundle(event_count: int = 7, commitment_ends: tuple[int, ...] = (3, 6), unsigned_at: int = 5) -> dict:
    """`event_count` events (v1 and v2 alternating, one unsigned at `unsigned_at`) and commitments ending at
    `commitment_ends` (the first starts at 1, each next at the previous end + 1)."""
    signer = AgentSigner(AGENT_SEED, TENANT, AGENT, 1)
    sequencer = Ed25519Signer(SEQUENCER_SEED)
    events = []
    for number in range(1, event_count + 1):
        if number == unsigned_at:
            envelope = unsigned_envelope(number)
        else:
            version = 2 if number % 2 == 0 else 1
            envelope = signer.build_event(
                STORE, "order", f"o-{number % 3}", "OrderPlaced", {"total": number * 100, "items": ["a", "b"]},
                ves_version=version, event_id=uuid.uuid5(uuid.NAMESPACE_OID, f"event-{number}"),
                created_at="2030-01-01T00:00:00.123Z",
                command_id=uuid.uuid5(uuid.NAMESPACE_OID, f"command-{number}") if version == 2 else None,
                base_version=number if version == 2 else None,
            )
        events.append(served_event(envelope, number, sequencer))
    commitments = []
    prev, start = ZERO_HASH, 1
    for batch, end in enumerate(commitment_ends):
        commitment = commitment_for(events, start, end, prev, batch)
        commitments.append(commitment)
        prev, start = parse_hex(commitment["new_state_root"], 32, "root"), end + 1
    return {
        "format": BUNDLE_FORMAT,
        "sequencer": {"sequencer_id": "test-sequencer", "public_key": to_hex(sequencer.public_key),
                      "signature_alg": "ed25519"},
        "tenant_id": TENANT, "store_id": STORE, "range": {"from": 1, "to": event_count},
        "head_sequence": event_count, "events": events,
        "agent_keys": [{"tenant_id": TENANT, "agent_id": AGENT, "key_id": 1, "public_key": signer.public_key_hex,
                        "valid_from": "2029-01-01T00:00:00+00:00", "valid_to": None, "revoked_at": None}],
        "commitments": commitments, "exported_at": "2030-01-01T00:02:00.000Z",
    }


_BUNDLE = build_bundle()


@pytest.fixture
def bundle() -> dict:
    """A fresh deep copy of the correct bundle (7 events, commitments 1..3 and 4..6), safe to tamper with."""
    return copy.deepcopy(_BUNDLE)
