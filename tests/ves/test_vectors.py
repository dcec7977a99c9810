"""Recompute every case of tests/vectors/ves_v1_public.json with app.ves (VES.md known answers)."""

from __future__ import annotations

from app import ves
from app.ves import EventSigningFields
from app.ves import parse_hex
from app.ves import to_hex


def h32(value: str) -> bytes:
    return parse_hex(value, 32, "hash")


def sig64(value: str) -> bytes:
    return parse_hex(value, 64, "signature")


def signing_fields(case: dict) -> EventSigningFields:
    """Cases give either the full envelope (`event`) or the signing-hash inputs directly (`fields`)."""
    return EventSigningFields.from_envelope(case["event"] if "event" in case else case["fields"])


def test_every_section_is_present_and_non_empty(vectors):
    assert vectors["format_version"] == 1
    for section in ("keys", "payload_hash", "event_signing", "receipts", "merkle_batches", "state_chains"):
        assert vectors[section], section
    versions = {case["event"]["ves_version"] for case in vectors["event_signing"] if "event" in case}
    assert versions == {1, 2}


def test_constants(vectors):
    assert to_hex(ves.PAD_LEAF) == vectors["constants"]["pad_leaf"]
    assert to_hex(ves.ZERO_HASH) == vectors["constants"]["zero_hash"]


def test_key_public_key_matches_seed(key_case):
    seed = h32(key_case["seed"])
    assert to_hex(ves.public_key_from_seed(seed)) == key_case["public_key"]
    assert ves.Ed25519Signer(seed).public_key == h32(key_case["public_key"])


def test_payload_hash(payload_case):
    assert ves.jcs(payload_case["payload"]) == payload_case["jcs"].encode("utf-8")
    assert to_hex(ves.payload_plain_hash(payload_case["payload"])) == payload_case["payload_plain_hash"]


def test_event_signing_payload_hashes(signing_case):
    expected = signing_case["expected"]
    if "event" in signing_case:
        event = signing_case["event"]
        assert ves.jcs(event["payload"]) == expected["payload_jcs"].encode("utf-8")
        assert to_hex(ves.payload_plain_hash(event["payload"])) == expected["payload_plain_hash"]
        assert event["payload_kind"] == ves.PAYLOAD_KIND_PLAIN
        assert expected["payload_cipher_hash"] == to_hex(ves.ZERO_HASH)
        assert event["agent_signature"] == expected["agent_signature"]
    fields = signing_fields(signing_case)
    assert to_hex(fields.payload_plain_hash) == expected["payload_plain_hash"]
    assert to_hex(fields.payload_cipher_hash) == expected["payload_cipher_hash"]


def test_event_signing_hash(signing_case):
    expected = signing_case["expected"]
    fields = signing_fields(signing_case)
    signing_hash = ves.event_signing_hash(fields)
    assert to_hex(signing_hash) == expected["event_signing_hash"]
    inner = ves.event_signing_hash_v1_inner(fields)
    if fields.ves_version == 1:
        assert "eventsig_v1_inner_hash" not in expected
        assert inner == signing_hash
    else:
        assert to_hex(inner) == expected["eventsig_v1_inner_hash"]
        assert inner != signing_hash


def test_event_signature_signs_and_verifies(signing_case):
    expected = signing_case["expected"]
    seed = h32(signing_case["signer_seed"])
    public_key = h32(signing_case["signer_public_key"])
    signing_hash = ves.event_signing_hash(signing_fields(signing_case))
    assert ves.public_key_from_seed(seed) == public_key
    assert to_hex(ves.sign(seed, signing_hash)) == expected["agent_signature"]
    assert ves.verify_signature(public_key, signing_hash, sig64(expected["agent_signature"]))
    assert not ves.verify_signature(public_key, ves.ZERO_HASH, sig64(expected["agent_signature"]))


def test_receipt_hash_and_sequencer_signature(receipt_case):
    signing_hash = h32(receipt_case["event_signing_hash"])
    receipt = ves.receipt_hash(
        receipt_case["tenant_id"],
        receipt_case["store_id"],
        receipt_case["event_id"],
        receipt_case["sequence_number"],
        signing_hash,
    )
    assert to_hex(receipt) == receipt_case["receipt_hash"]
    seed = h32(receipt_case["sequencer_seed"])
    public_key = h32(receipt_case["sequencer_public_key"])
    assert ves.public_key_from_seed(seed) == public_key
    assert to_hex(ves.Ed25519Signer(seed).sign(receipt)) == receipt_case["sequencer_signature"]
    assert ves.verify_signature(public_key, receipt, sig64(receipt_case["sequencer_signature"]))


def test_receipt_vectors_cover_sequence_numbers_above_u32(vectors):
    assert max(case["sequence_number"] for case in vectors["receipts"]) > ves.MAX_U32


def test_merkle_batch_events(merkle_batch):
    for event_case in merkle_batch["events"]:
        event = event_case["event"]
        fields = EventSigningFields.from_envelope(event)
        assert ves.payload_plain_hash(event["payload"]) == fields.payload_plain_hash
        signing_hash = ves.event_signing_hash(fields)
        assert to_hex(signing_hash) == event_case["event_signing_hash"]
        seed = h32(event_case["signer_seed"])
        assert to_hex(ves.sign(seed, signing_hash)) == event["agent_signature"]
        assert ves.verify_signature(ves.public_key_from_seed(seed), signing_hash, sig64(event["agent_signature"]))
        leaf = ves.leaf_hash(
            merkle_batch["tenant_id"],
            merkle_batch["store_id"],
            event_case["sequence_number"],
            signing_hash,
            sig64(event["agent_signature"]),
        )
        assert to_hex(leaf) == event_case["leaf_hash"]


def test_merkle_batch_shape_and_root(merkle_batch):
    events = merkle_batch["events"]
    leaves = [h32(event["leaf_hash"]) for event in events]
    count = merkle_batch["leaf_count"]
    assert len(leaves) == count == merkle_batch["sequence_end"] - merkle_batch["sequence_start"] + 1
    assert [e["sequence_number"] for e in events] == list(
        range(merkle_batch["sequence_start"], merkle_batch["sequence_end"] + 1)
    )
    assert ves.padded_leaf_count(count) == merkle_batch["padded_leaf_count"]
    assert ves.tree_depth(count) == merkle_batch["tree_depth"]
    assert to_hex(ves.stream_id(merkle_batch["tenant_id"], merkle_batch["store_id"])) == merkle_batch["stream_id"]
    levels = ves.build_tree(leaves)
    assert len(levels) == merkle_batch["tree_depth"] + 1
    assert to_hex(levels[-1][0]) == to_hex(ves.merkle_root(leaves)) == merkle_batch["merkle_root"]


def test_merkle_batch_proofs(merkle_batch):
    leaves = [h32(event["leaf_hash"]) for event in merkle_batch["events"]]
    root = h32(merkle_batch["merkle_root"])
    assert merkle_batch["proofs"]
    for proof_case in merkle_batch["proofs"]:
        index = proof_case["sequence_number"] - merkle_batch["sequence_start"]
        assert index == proof_case["leaf_index"]
        proof = ves.inclusion_proof(leaves, index)
        assert to_hex(proof.leaf_hash) == proof_case["leaf_hash"]
        assert [to_hex(sibling) for sibling in proof.proof_path] == proof_case["proof_path"]
        assert proof.directions == proof_case["directions"]
        assert proof.merkle_root == root
        path = [h32(sibling) for sibling in proof_case["proof_path"]]
        assert ves.verify_inclusion(
            h32(proof_case["leaf_hash"]), root, path, index, merkle_batch["leaf_count"], proof_case["directions"]
        )
        assert ves.verify_inclusion(h32(proof_case["leaf_hash"]), root, path, index)


def test_merkle_batch_every_leaf_has_a_verifying_proof(merkle_batch):
    leaves = [h32(event["leaf_hash"]) for event in merkle_batch["events"]]
    root = h32(merkle_batch["merkle_root"])
    for index, leaf in enumerate(leaves):
        proof = ves.inclusion_proof(leaves, index)
        assert proof.leaf_hash == leaf
        assert ves.verify_inclusion(leaf, root, proof.proof_path, index, len(leaves), proof.directions)


def test_state_chain(state_chain, batches_by_name):
    stream = ves.stream_id(state_chain["tenant_id"], state_chain["store_id"])
    assert to_hex(stream) == state_chain["stream_id"]
    previous = ves.ZERO_HASH
    previous_end = 0
    for step in state_chain["steps"]:
        batch = batches_by_name[step["batch"]]
        assert (batch["tenant_id"], batch["store_id"]) == (state_chain["tenant_id"], state_chain["store_id"])
        assert step["merkle_root"] == batch["merkle_root"]
        assert (step["sequence_start"], step["sequence_end"], step["leaf_count"]) == (
            batch["sequence_start"],
            batch["sequence_end"],
            batch["leaf_count"],
        )
        assert step["sequence_start"] == previous_end + 1
        assert h32(step["prev_state_root"]) == previous
        new_root = ves.state_root(
            stream,
            previous,
            h32(step["merkle_root"]),
            step["sequence_start"],
            step["sequence_end"],
            step["leaf_count"],
        )
        assert to_hex(new_root) == step["new_state_root"]
        previous, previous_end = new_root, step["sequence_end"]
