"""ves-verify and receipt key versions (docs/KEYS.md), and bundles in both hex forms (issue 11 items 2 and 4).

The fixture bundle is written the way bundles were before issue 11: `0x` hex in every response field and no key
versions. It must keep verifying; so must the same bundle in today's plain-hex form, and one whose receipts were
signed by two key versions."""

from __future__ import annotations

import copy

from app.verify import verify_bundle
from app.ves import Ed25519Signer
from app.ves import parse_hex
from tests.verify.conftest import SEQUENCER_SEED

RESPONSE_BYTE_FIELDS = {"receipt_hash", "sequencer_signature", "event_signing_hash", "merkle_root",
                        "prev_state_root", "new_state_root", "public_key"}
ENVELOPE_FIELDS = {"payload_plain_hash", "payload_cipher_hash", "agent_signature"}
OTHER_SEED = bytes(range(200, 232))


def _plain(value):
    """The bundle with every response byte field in today's plain form (envelope fields keep `0x`)."""
    if isinstance(value, dict):
        return {k: (v[2:] if k in RESPONSE_BYTE_FIELDS and isinstance(v, str) and v.startswith("0x") else _plain(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _rotated(bundle: dict, from_number: int) -> dict:
    """Receipts of events >= `from_number` re-signed by a second key version; the bundle lists both."""
    rotated = copy.deepcopy(bundle)
    first, second = Ed25519Signer(SEQUENCER_SEED), Ed25519Signer(OTHER_SEED)
    rotated["sequencer"]["public_key"] = second.public_key.hex()
    rotated["sequencer"]["keys"] = [
        {"version": 1, "public_key": first.public_key.hex(), "valid_from": "2029-01-01T00:00:00+00:00",
         "valid_until": "2030-01-01T00:00:04+00:00", "retired_at": None, "current": False},
        {"version": 2, "public_key": second.public_key.hex(), "valid_from": "2030-01-01T00:00:04+00:00",
         "valid_until": None, "retired_at": None, "current": True},
    ]
    for event in rotated["events"]:
        receipt = event["sequencer_receipt"]
        if event["sequence_number"] >= from_number:
            receipt["sequencer_key_version"] = 2
            receipt["sequencer_signature"] = second.sign(parse_hex(receipt["receipt_hash"], 32, "h")).hex()
        else:
            receipt["sequencer_key_version"] = 1
    return rotated


def test_a_bundle_in_the_old_0x_form_and_in_the_plain_form_both_verify(bundle):
    assert bundle["events"][0]["sequencer_receipt"]["receipt_hash"].startswith("0x")
    assert verify_bundle(bundle).ok
    plain = _plain(bundle)
    assert not plain["events"][0]["sequencer_receipt"]["receipt_hash"].startswith("0x")
    assert plain["events"][0]["agent_signature"].startswith("0x")
    report = verify_bundle(plain)
    assert report.ok, report.summary()
    assert report.events_checked == 7


def test_receipts_of_two_key_versions_each_verify_against_their_own_key(bundle):
    rotated = _plain(_rotated(bundle, 4))
    report = verify_bundle(rotated)
    assert report.ok, report.summary()
    # Without the version list, only the current key is known: the older receipts fail.
    del rotated["sequencer"]["keys"]
    for event in rotated["events"]:
        event["sequencer_receipt"].pop("sequencer_key_version")
    first = verify_bundle(rotated).first
    assert (first.sequence_number, first.check) == (1, "sequencer_signature")


def test_a_receipt_labelled_with_the_wrong_or_an_unknown_version_fails(bundle):
    rotated = _rotated(bundle, 4)
    rotated["events"][4]["sequencer_receipt"]["sequencer_key_version"] = 1
    first = verify_bundle(rotated).first
    assert (first.sequence_number, first.check) == (5, "sequencer_signature")
    rotated = _rotated(bundle, 4)
    rotated["events"][1]["sequencer_receipt"]["sequencer_key_version"] = 9
    first = verify_bundle(rotated).first
    assert (first.sequence_number, first.check) == (2, "sequencer_key_version")


def test_a_retired_version_is_refused_from_its_cutoff_on(bundle):
    rotated = _rotated(bundle, 4)
    rotated["sequencer"]["keys"][0]["retired_at"] = "2030-01-01T00:00:03+00:00"  # event 3 is sequenced at :03
    report = verify_bundle(rotated)
    assert [(d.sequence_number, d.check) for d in report.discrepancies][:1] == [(3, "sequencer_key_version")]
    assert all(d.sequence_number not in (1, 2) for d in report.discrepancies)
