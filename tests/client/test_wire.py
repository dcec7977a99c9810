"""Local checks of receipts and proofs against the public vectors, and their strictness."""

from __future__ import annotations

import pytest

from app.client import proof_is_valid
from app.client import receipt_is_valid
from app.ves import parse_hex
from tests.client.conftest import load_vectors


def receipt_and_event(vectors):
    receipt = vectors["receipts"][0]
    event = next(case["event"] for case in vectors["event_signing"] if case["event"]["event_id"] ==
                 receipt["event_id"])
    key = parse_hex(receipt["sequencer_public_key"], 32, "key")
    return receipt, event, key


def test_a_vector_receipt_verifies_in_ingest_and_read_shapes(vectors):
    receipt, event, key = receipt_and_event(vectors)
    camel = {"eventId": receipt["event_id"], "sequenceNumber": 1, "receiptHash": receipt["receipt_hash"],
             "signatureAlg": "ed25519", "sequencerSignature": receipt["sequencer_signature"]}
    assert receipt_is_valid(camel, event, key)
    assert receipt_is_valid(receipt, event, key)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r, e: r.update(sequence_number=2),
        lambda r, e: r.update(event_id="00000000-0000-4000-8000-000000000000"),
        lambda r, e: e.update(entity_id="WIDGET-002"),
        lambda r, e: r.update(sequencer_signature="0x" + "00" * 64),
        lambda r, e: r.update(sequencer_signature=""),
        lambda r, e: r.update(receipt_hash="garbage"),
        lambda r, e: e.pop("tenant_id"),
    ],
    ids=["other_number", "other_event", "changed_event", "zero_signature", "no_signature", "bad_hex", "no_tenant"],
)
def test_a_tampered_receipt_or_event_fails(vectors, tamper):
    receipt, event, key = receipt_and_event(vectors)
    tamper(receipt, event)
    assert receipt_is_valid(receipt, event, key) is False


def test_a_receipt_does_not_verify_under_another_key(vectors):
    receipt, event, _ = receipt_and_event(vectors)
    assert not receipt_is_valid(receipt, event, bytes(32))


BATCHES = [batch for batch in load_vectors()["merkle_batches"] if batch.get("proofs")]


@pytest.mark.parametrize("batch", BATCHES, ids=[batch["name"] for batch in BATCHES])
def test_vector_proofs_verify_with_commitment_and_event(batch):
    events = {entry["sequence_number"]: {**entry["event"], "sequence_number": entry["sequence_number"]}
              for entry in batch["events"]}
    for proof in batch["proofs"]:
        proof = {**proof, "merkle_root": batch["merkle_root"]}
        assert proof_is_valid(proof)
        assert proof_is_valid(proof, batch, events[proof["sequence_number"]])


def test_proof_strictness(vectors):
    batch = next(b for b in vectors["merkle_batches"] if b.get("proofs") and b["leaf_count"] > 2)
    proof = {**batch["proofs"][0], "merkle_root": batch["merkle_root"]}
    assert proof_is_valid(proof, batch)
    other = next(entry for entry in batch["events"] if entry["sequence_number"] != proof["sequence_number"])
    assert not proof_is_valid(proof, batch, {**other["event"], "sequence_number": other["sequence_number"]})
    beyond = {**proof, "leaf_index": proof["leaf_index"] + 2 ** len(proof["proof_path"])}
    assert not proof_is_valid(beyond)
    assert not proof_is_valid({**proof, "proof_path": proof["proof_path"][:-1]}, batch)
    assert not proof_is_valid({**proof, "directions": [not d for d in proof["directions"]]})
    assert not proof_is_valid(proof, {**batch, "merkle_root": "0x" + "00" * 32})
    assert not proof_is_valid(proof, {**batch, "sequence_start": batch["sequence_start"] + 1})
    assert not proof_is_valid({**proof, "leaf_hash": "nothex"})
