"""verify_bundle over a correct bundle, then over copies with exactly one thing tampered: the report MUST name
that record and that check first."""

from __future__ import annotations

import pytest

from app.verify import Discrepancy
from app.verify import verify_bundle
from app.ves import parse_hex
from app.ves import to_hex
from tests.verify.conftest import build_bundle


def flip_byte(hex_value: str, index: int = 0) -> str:
    raw = bytearray(parse_hex(hex_value, len(hex_value) // 2 - 1, "value"))
    raw[index] ^= 0x01
    return to_hex(bytes(raw))


def event(bundle: dict, number: int) -> dict:
    return next(e for e in bundle["events"] if e["sequence_number"] == number)


def first(bundle: dict, **kwargs) -> Discrepancy:
    report = verify_bundle(bundle, **kwargs)
    assert not report.ok
    return report.first


def test_a_correct_bundle_verifies(bundle):
    report = verify_bundle(bundle)
    assert report.ok, report.summary()
    assert report.summary() == "verified 7 events in 2 commitments"
    assert (report.events_checked, report.commitments_checked) == (7, 2)


def test_one_changed_payload_byte_is_a_payload_hash_mismatch_at_that_event(bundle):
    event(bundle, 4)["payload"]["total"] = 401
    found = first(bundle)
    assert (found.sequence_number, found.check) == (4, "payload_plain_hash")
    assert found.found == event(bundle, 4)["payload_plain_hash"]
    assert found.expected != found.found


def test_a_changed_agent_signature_fails_the_signature_and_then_the_root(bundle):
    event(bundle, 2)["agent_signature"] = flip_byte(event(bundle, 2)["agent_signature"], 10)
    report = verify_bundle(bundle)
    assert (report.first.sequence_number, report.first.check) == (2, "agent_signature")
    assert [(d.batch_id, d.check) for d in report.discrepancies[1:]] == [
        (bundle["commitments"][0]["batch_id"], "merkle_root")
    ]


def test_a_changed_signed_field_breaks_the_agent_signature(bundle):
    event(bundle, 3)["entity_id"] = "o-other"
    found = first(bundle)
    assert (found.sequence_number, found.check) == (3, "agent_signature")


def test_a_v2_command_id_is_bound_by_the_signature(bundle):
    event(bundle, 6)["command_id"] = "00000000-0000-4000-8000-000000000000"
    found = first(bundle)
    assert (found.sequence_number, found.check) == (6, "agent_signature")


def test_a_changed_commitment_root_names_that_batch(bundle):
    commitment = bundle["commitments"][1]
    commitment["merkle_root"] = flip_byte(commitment["merkle_root"])
    found = first(bundle)
    assert (found.batch_id, found.check, found.sequence_number) == (commitment["batch_id"], "merkle_root", None)
    assert found.found == commitment["merkle_root"]


def test_a_changed_state_root_names_that_batch(bundle):
    commitment = bundle["commitments"][0]
    commitment["new_state_root"] = flip_byte(commitment["new_state_root"], 31)
    report = verify_bundle(bundle)
    assert (report.first.batch_id, report.first.check) == (commitment["batch_id"], "new_state_root")
    assert report.first.found == commitment["new_state_root"]
    assert len(report.discrepancies) == 1, "the next commitment chains from the recomputed root, which is intact"


def test_a_forked_chain_start_is_rejected(bundle):
    bundle["commitments"][0]["prev_state_root"] = to_hex(b"\x01" * 32)
    found = first(bundle)
    assert (found.batch_id, found.check) == (bundle["commitments"][0]["batch_id"], "prev_state_root")
    assert found.expected == to_hex(bytes(32))


def test_a_missing_event_is_a_gap_at_the_next_number(bundle):
    bundle["events"] = [e for e in bundle["events"] if e["sequence_number"] != 3]
    report = verify_bundle(bundle)
    assert (report.first.sequence_number, report.first.check) == (4, "sequence_contiguity")
    assert (report.first.expected, report.first.found) == (3, 4)
    assert report.discrepancies[1].check == "merkle_root"
    assert report.discrepancies[1].batch_id == bundle["commitments"][0]["batch_id"]


def test_a_missing_last_event_is_caught_against_the_exported_head(bundle):
    bundle["events"].pop()
    found = first(bundle)
    assert (found.check, found.expected, found.found) == ("sequence_contiguity", 7, 6)


def test_a_tampered_receipt_hash_and_a_foreign_sequencer_signature(bundle):
    receipt = event(bundle, 1)["sequencer_receipt"]
    receipt["receipt_hash"] = flip_byte(receipt["receipt_hash"])
    assert (first(bundle).sequence_number, first(bundle).check) == (1, "receipt_hash")

    other = build_bundle()
    other["sequencer"]["public_key"] = to_hex(bytes(range(32)))
    found = first(other)
    assert (found.sequence_number, found.check) == (1, "sequencer_signature")


def test_a_pinned_sequencer_key_must_match_the_bundle(bundle):
    found = first(bundle, sequencer_public_key=bytes(32))
    assert found.check == "sequencer_public_key"
    assert verify_bundle(bundle, sequencer_public_key=parse_hex(bundle["sequencer"]["public_key"], 32, "k")).ok


def test_an_unregistered_or_revoked_agent_key(bundle):
    bundle["agent_keys"][0]["revoked_at"] = "2030-01-01T00:00:02+00:00"
    found = first(bundle)
    assert (found.sequence_number, found.check) == (2, "agent_key_validity")

    bundle["agent_keys"] = []
    found = first(bundle)
    assert (found.sequence_number, found.check) == (1, "agent_key_registered")


def test_an_unsigned_event_uses_the_zero_signature_but_a_signed_one_may_not_drop_it(bundle):
    assert event(bundle, 5)["agent_signature"] is None
    assert verify_bundle(bundle).ok
    event(bundle, 5)["agent_signature"] = "0x" + "00" * 64
    assert verify_bundle(bundle).ok
    event(bundle, 1)["agent_signature"] = "0x" + "00" * 64
    found = first(bundle)
    assert (found.sequence_number, found.check) == (1, "agent_signature")


def test_commitment_contiguity_and_tree_shape(bundle):
    bundle["commitments"][1]["sequence_start"] = 5
    found = first(bundle)
    assert (found.batch_id, found.check, found.expected, found.found) == (
        bundle["commitments"][1]["batch_id"], "commitment_contiguity", 4, 5)

    shaped = build_bundle()
    shaped["commitments"][0]["tree_depth"] = 1
    found = first(shaped)
    assert (found.check, found.expected, found.found) == ("tree_depth", 2, 1)


def test_a_commitment_past_the_head_is_rejected():
    bundle = build_bundle(event_count=6, commitment_ends=(3, 6))
    bundle["head_sequence"] = 5
    bundle["range"]["to"] = 5
    bundle["events"].pop()
    found = first(bundle)
    assert (found.check, found.batch_id) == ("commitment_range", bundle["commitments"][1]["batch_id"])


def test_a_partial_range_checks_covered_commitments_and_chains_the_rest():
    bundle = build_bundle(event_count=7, commitment_ends=(3, 6))
    bundle["events"] = bundle["events"][3:]
    bundle["range"] = {"from": 4, "to": 7}
    report = verify_bundle(bundle)
    assert report.ok, report.summary()
    assert any("outside the bundle's range" in note for note in report.notes)
    bundle["commitments"][0]["new_state_root"] = flip_byte(bundle["commitments"][0]["new_state_root"])
    assert first(bundle).check == "new_state_root"


def test_a_chain_checker_is_called_per_commitment_with_the_stream_id(bundle):
    seen = []

    def checker(commitment, stream):
        seen.append((commitment["batch_id"], stream))
        if commitment is bundle["commitments"][1]:
            return Discrepancy("anchored_root", "not on chain", batch_id=commitment["batch_id"])
        return None

    report = verify_bundle(bundle, chain_checker=checker)
    assert [batch for batch, _ in seen] == [c["batch_id"] for c in bundle["commitments"]]
    assert len({stream for _, stream in seen}) == 1 and len(seen[0][1]) == 32
    assert [(d.check, d.batch_id) for d in report.discrepancies] == [
        ("anchored_root", bundle["commitments"][1]["batch_id"])]


@pytest.mark.parametrize(
    ("mutate", "check"),
    [
        (lambda b: b.update(format="other"), "bundle_format"),
        (lambda b: b.update(tenant_id="not-a-uuid"), "bundle_format"),
        (lambda b: b["events"][0].update(event_id="nope"), "event_envelope"),
        (lambda b: b["events"][1].update(store_id=b["events"][0]["event_id"]), "stream"),
        (lambda b: b["events"][2].update(payload_cipher_hash="0x" + "11" * 32), "payload_cipher_hash"),
        (lambda b: b["events"][2].update(sequence_number="3"), "sequence_contiguity"),
        (lambda b: b["commitments"][0].update(merkle_root="zz"), "commitment_format"),
    ],
    ids=["format", "tenant", "event_id", "foreign_stream", "cipher_hash", "string_sequence", "bad_root_hex"],
)
def test_malformed_records_are_discrepancies_not_exceptions(bundle, mutate, check):
    mutate(bundle)
    assert first(bundle).check == check


def test_describe_names_record_check_and_values(bundle):
    event(bundle, 4)["payload"]["total"] = 401
    text = verify_bundle(bundle).summary()
    assert text.startswith("FAILED: event sequence 4: payload_plain_hash failed:")
    assert event(bundle, 4)["payload_plain_hash"] in text


def _encrypted_bundle(draft: bool) -> dict:
    """A one-event bundle whose event is encrypted: in the original's VES-ENC-1, or in the draft rule events stored
    before the compatibility change were accepted under (string recipient kids)."""
    import dataclasses
    import uuid

    from app.client import AgentSigner
    from app.ves import Ed25519Signer
    from app.ves import EventSigningFields
    from app.ves import b64u_encode
    from app.ves import event_signing_hash
    from app.ves.encrypted import draft_payload_cipher_hash
    from tests.support.ves_enc import recipient_keypair
    from tests.support.ves_enc import sealed_event
    from tests.verify.conftest import AGENT
    from tests.verify.conftest import AGENT_SEED
    from tests.verify.conftest import SEQUENCER_SEED
    from tests.verify.conftest import STORE
    from tests.verify.conftest import TENANT
    from tests.verify.conftest import served_event

    bundle = build_bundle(event_count=1, commitment_ends=(), unsigned_at=0)
    signer = AgentSigner(AGENT_SEED, TENANT, AGENT, 1)
    envelope, _ = sealed_event(signer, STORE, "doc", "d-1", "DocSealed", {"secret": 1}, {3: recipient_keypair()[1]},
                               event_id=uuid.uuid4(), created_at="2030-01-01T00:00:00.500Z")
    if draft:
        envelope["payload_encrypted"] = {
            "nonce_b64u": b64u_encode(bytes(12)), "ciphertext_b64u": b64u_encode(b"sealed"),
            "tag_b64u": b64u_encode(bytes(16)), "recipients": [{"recipient_kid": "k1", "enc_b64u": "AA", "ct_b64u": "BB"}]}
        fields = EventSigningFields.from_envelope(envelope)
        fields = dataclasses.replace(fields, payload_cipher_hash=draft_payload_cipher_hash(
            envelope["payload_encrypted"], fields))
        envelope["payload_cipher_hash"] = to_hex(fields.payload_cipher_hash)
        envelope["agent_signature"] = to_hex(Ed25519Signer(AGENT_SEED).sign(event_signing_hash(fields)))
    bundle["events"] = [served_event(envelope, 1, Ed25519Signer(SEQUENCER_SEED))]
    return bundle


@pytest.mark.parametrize("draft", [False, True], ids=["original-form", "draft-form"])
def test_encrypted_events_verify_and_a_changed_ciphertext_is_named(draft):
    bundle = _encrypted_bundle(draft)
    assert verify_bundle(bundle).ok, verify_bundle(bundle).summary()
    sealed = event(bundle, 1)["payload_encrypted"]
    sealed["ciphertext_b64u"] = sealed["ciphertext_b64u"][:-2] + ("AA" if sealed["ciphertext_b64u"][-2:] != "AA"
                                                                   else "BA")
    found = first(bundle)
    assert (found.sequence_number, found.check) == (1, "payload_cipher_hash")
