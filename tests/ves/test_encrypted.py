"""VES-ENC-1 as the original computes it: payload_aad, recipients_hash, payload_cipher_hash, decoding and acceptance.

`reference_cipher_hash` below is written out from the original's `src/crypto/encrypt.rs` independently of app.ves;
known answers from the original's own vector files are in test_original_vectors.py.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import uuid

import pytest
import rfc8785
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from app import ves
from app.ves import EventSigningFields
from app.ves import InvalidEncoding
from app.ves.encrypted import decode_payload_encrypted
from app.ves.encrypted import draft_payload_cipher_hash
from app.ves.encrypted import is_draft_payload_encrypted


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def raw(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="session")
def v1_fields(vectors) -> EventSigningFields:
    event = next(case["event"] for case in vectors["event_signing"] if case["event"]["ves_version"] == 1)
    return dataclasses.replace(EventSigningFields.from_envelope(event), payload_kind=ves.PAYLOAD_KIND_ENCRYPTED)


def be32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def aad_inputs(fields: EventSigningFields) -> bytes:
    def string(s: str) -> bytes:
        return be32(len(s.encode())) + s.encode()

    return (fields.tenant_id.bytes + fields.store_id.bytes + fields.event_id.bytes + fields.source_agent_id.bytes
            + be32(fields.agent_key_id) + string(fields.entity_type) + string(fields.entity_id)
            + string(fields.event_type) + string(fields.created_at) + fields.payload_plain_hash)


def reference_cipher_hash(payload_encrypted: dict, fields: EventSigningFields) -> bytes:
    """encrypt.rs compute_payload_aad, compute_recipients_hash and compute_payload_cipher_hash, line by line."""

    aad = hashlib.sha256(b"VES_PAYLOAD_AAD_V1" + aad_inputs(fields)).digest()
    recipients = hashlib.sha256()
    recipients.update(b"VES_RECIPIENTS_V1")
    for recipient in payload_encrypted["recipients"]:
        enc, ct = raw(recipient["enc_b64u"]), raw(recipient["ct_b64u"])
        recipients.update(be32(recipient["recipient_kid"]) + be32(len(enc)) + enc + be32(len(ct)) + ct)
    ciphertext = raw(payload_encrypted["ciphertext_b64u"])
    return hashlib.sha256(
        b"VES_PAYLOAD_CIPHER_V1" + be32(1) + raw(payload_encrypted["nonce_b64u"]) + aad + be32(len(ciphertext))
        + ciphertext + raw(payload_encrypted["tag_b64u"]) + recipients.digest()
    ).digest()


HPKE = {"mode": "base", "kem": "X25519-HKDF-SHA256", "kdf": "HKDF-SHA256", "aead": "AES-256-GCM"}

recipient_strategy = st.fixed_dictionaries({
    "recipient_kid": st.integers(min_value=0, max_value=2**32 - 1),
    "enc_b64u": st.binary(min_size=0, max_size=40).map(b64u),
    "ct_b64u": st.binary(min_size=0, max_size=64).map(b64u),
})
encrypted_strategy = st.fixed_dictionaries({
    "enc_version": st.integers(min_value=0, max_value=2**32 - 1),
    "aead": st.text(max_size=12),
    "nonce_b64u": st.binary(min_size=12, max_size=12).map(b64u),
    "ciphertext_b64u": st.binary(min_size=0, max_size=80).map(b64u),
    "tag_b64u": st.binary(min_size=16, max_size=16).map(b64u),
    "hpke": st.just(HPKE),
    "recipients": st.lists(recipient_strategy, min_size=0, max_size=4),
})


@settings(max_examples=80, deadline=None)
@given(payload_encrypted=encrypted_strategy)
def test_payload_cipher_hash_matches_the_reference(v1_fields, payload_encrypted):
    assert ves.payload_cipher_hash(payload_encrypted, v1_fields) == reference_cipher_hash(payload_encrypted, v1_fields)


@pytest.fixture
def payload_encrypted() -> dict:
    return {
        "enc_version": 1, "aead": "AES-256-GCM", "nonce_b64u": b64u(bytes(range(12))),
        "ciphertext_b64u": b64u(b"ciphertext"), "tag_b64u": b64u(bytes(range(16))), "hpke": dict(HPKE),
        "recipients": [
            {"recipient_kid": 1, "enc_b64u": b64u(bytes(32)), "ct_b64u": b64u(b"\x01" * 48)},
            {"recipient_kid": 2, "enc_b64u": b64u(b"\x02" * 32), "ct_b64u": b64u(b"\x03" * 48)},
        ],
    }


def test_payload_aad_binds_the_event_context_but_not_version_kind_or_cipher_hash(v1_fields):
    aad = ves.payload_aad(v1_fields)
    assert ves.payload_aad(dataclasses.replace(v1_fields, payload_kind=0, payload_cipher_hash=b"\x07" * 32)) == aad
    assert ves.payload_aad(dataclasses.replace(v1_fields, ves_version=2)) == aad
    for change in ({"payload_plain_hash": b"\x07" * 32}, {"agent_key_id": 9}, {"created_at": "2025-01-01T00:00:00Z"},
                   {"event_id": uuid.UUID(int=5)}, {"source_agent_id": uuid.UUID(int=6)}):
        assert ves.payload_aad(dataclasses.replace(v1_fields, **change)) != aad


def test_recipients_are_hashed_in_the_order_given_with_integer_kids(v1_fields, payload_encrypted):
    baseline = ves.payload_cipher_hash(payload_encrypted, v1_fields)
    swapped = {**payload_encrypted, "recipients": payload_encrypted["recipients"][::-1]}
    assert ves.payload_cipher_hash(swapped, v1_fields) != baseline
    with pytest.raises(InvalidEncoding, match="sorted"):
        ves.check_payload_encrypted(decode_payload_encrypted(swapped))
    entry = decode_payload_encrypted(payload_encrypted).recipients[0]
    assert ves.recipients_hash([entry]) == hashlib.sha256(
        b"VES_RECIPIENTS_V1" + (1).to_bytes(4, "big") + (32).to_bytes(4, "big") + bytes(32)
        + (48).to_bytes(4, "big") + b"\x01" * 48).digest()


def test_payload_cipher_hash_binds_every_hashed_part(v1_fields, payload_encrypted):
    baseline = ves.payload_cipher_hash(payload_encrypted, v1_fields)
    first = payload_encrypted["recipients"][0]
    variants = [
        {**payload_encrypted, "nonce_b64u": b64u(bytes(12))},
        {**payload_encrypted, "ciphertext_b64u": b64u(b"ciphertexu")},
        {**payload_encrypted, "tag_b64u": b64u(bytes(16))},
        {**payload_encrypted, "recipients": payload_encrypted["recipients"][:1]},
        {**payload_encrypted, "recipients": [{**first, "recipient_kid": 3}, payload_encrypted["recipients"][1]]},
        {**payload_encrypted, "recipients": [{**first, "enc_b64u": b64u(b"\x09" * 32)}, payload_encrypted["recipients"][1]]},
        {**payload_encrypted, "recipients": [{**first, "ct_b64u": b64u(b"\x09" * 48)}, payload_encrypted["recipients"][1]]},
    ]
    for variant in variants:
        assert ves.payload_cipher_hash(variant, v1_fields) != baseline
    assert ves.payload_cipher_hash(payload_encrypted, dataclasses.replace(v1_fields, entity_id="other")) != baseline


def test_fields_outside_the_hash_do_not_change_it(v1_fields, payload_encrypted):
    """The original hashes U32(1) whatever enc_version says, and neither aead nor hpke; the signature binds only the
    hash, so the sequencer checks those fields by rule (check_payload_encrypted) instead."""
    baseline = ves.payload_cipher_hash(payload_encrypted, v1_fields)
    for change in ({"enc_version": 3}, {"aead": "x"}, {"hpke": {**HPKE, "mode": "pqc-base"}}, {"extra": 1}):
        assert ves.payload_cipher_hash({**payload_encrypted, **change}, v1_fields) == baseline


def test_length_prefixes_keep_ciphertext_and_recipient_boundaries_apart(v1_fields, payload_encrypted):
    one = {**payload_encrypted, "recipients": [{"recipient_kid": 1, "enc_b64u": b64u(b"ab"), "ct_b64u": b64u(b"c")}]}
    other = {**payload_encrypted, "recipients": [{"recipient_kid": 1, "enc_b64u": b64u(b"a"), "ct_b64u": b64u(b"bc")}]}
    assert ves.payload_cipher_hash(one, v1_fields) != ves.payload_cipher_hash(other, v1_fields)


def test_decoded_wire_object_keeps_the_seven_fields_as_sent(payload_encrypted):
    padded = {**payload_encrypted, "tag_b64u": payload_encrypted["tag_b64u"] + "==", "note": "dropped",
              "hpke": {**HPKE, "extra": 1},
              "recipients": [{**payload_encrypted["recipients"][0], "x": 1}, payload_encrypted["recipients"][1]]}
    wire = decode_payload_encrypted(padded).wire
    assert list(wire) == ["enc_version", "aead", "nonce_b64u", "ciphertext_b64u", "tag_b64u", "hpke", "recipients"]
    assert wire["tag_b64u"] == padded["tag_b64u"] and wire["hpke"] == HPKE
    assert wire["recipients"] == payload_encrypted["recipients"]


@pytest.mark.parametrize(
    ("mutation", "field"),
    [
        (lambda p: {**p, "nonce_b64u": b64u(bytes(11))}, "nonce_b64u"),
        (lambda p: {**p, "nonce_b64u": b64u(bytes(13))}, "nonce_b64u"),
        (lambda p: {**p, "tag_b64u": b64u(bytes(15))}, "tag_b64u"),
        (lambda p: {**p, "ciphertext_b64u": "not base64!"}, "ciphertext_b64u"),
        (lambda p: {**p, "ciphertext_b64u": "QR"}, "ciphertext_b64u"),
        (lambda p: {**p, "ciphertext_b64u": "QQ="}, "ciphertext_b64u"),
        (lambda p: {**p, "ciphertext_b64u": "QQ+/"}, "ciphertext_b64u"),
        (lambda p: {k: v for k, v in p.items() if k != "recipients"}, "recipients"),
        (lambda p: {k: v for k, v in p.items() if k != "hpke"}, "hpke"),
        (lambda p: {k: v for k, v in p.items() if k != "enc_version"}, "enc_version"),
        (lambda p: {**p, "aead": None}, "aead"),
        (lambda p: {**p, "hpke": {"mode": "base", "kem": "X25519-HKDF-SHA256", "aead": "AES-256-GCM"}}, "kdf"),
        (lambda p: {**p, "hpke": "base"}, "hpke"),
        (lambda p: {**p, "enc_version": "1"}, "enc_version"),
        (lambda p: {**p, "enc_version": 1.0}, "enc_version"),
        (lambda p: {**p, "recipients": "k1"}, "recipients"),
        (lambda p: {**p, "recipients": ["k1"]}, "recipients"),
        (lambda p: {**p, "recipients": [{"recipient_kid": 1, "enc_b64u": b64u(b"e")}]}, "ct_b64u"),
        (lambda p: {**p, "recipients": [{"recipient_kid": "k1", "enc_b64u": "", "ct_b64u": ""}]}, "recipient_kid"),
        (lambda p: {**p, "recipients": [{"recipient_kid": -1, "enc_b64u": "", "ct_b64u": ""}]}, "recipient_kid"),
        (lambda p: {**p, "recipients": [{"recipient_kid": 2**32, "enc_b64u": "", "ct_b64u": ""}]}, "recipient_kid"),
        (lambda p: {**p, "recipients": [{"recipient_kid": True, "enc_b64u": "", "ct_b64u": ""}]}, "recipient_kid"),
        (lambda p: {**p, "recipients": [{"recipient_kid": 1, "enc_b64u": "A", "ct_b64u": ""}]}, "enc_b64u"),
    ],
    ids=["short-nonce", "long-nonce", "short-tag", "bad-ciphertext", "nonzero-trailing-bits", "short-padding",
         "standard-alphabet", "no-recipients", "no-hpke", "no-enc-version", "null-aead", "hpke-missing-kdf",
         "hpke-string", "enc-version-string", "enc-version-float", "recipients-string", "recipient-not-object",
         "recipient-missing-ct", "recipient-kid-string", "recipient-kid-negative", "recipient-kid-too-big",
         "recipient-kid-bool", "enc-one-char"],
)
def test_malformed_payload_encrypted_is_invalid_encoding(v1_fields, payload_encrypted, mutation, field):
    with pytest.raises(InvalidEncoding) as raised:
        ves.payload_cipher_hash(mutation(payload_encrypted), v1_fields)
    assert field in str(raised.value)


@pytest.mark.parametrize("text", ["", "QQ", "QQ==", "QUI", "QUI=", "QUJD"])
def test_base64url_accepts_unpadded_and_canonically_padded(text):
    assert b64u(ves.b64u_decode(text)) == text.rstrip("=")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"enc_version": 0}, "enc_version"), ({"enc_version": 4}, "enc_version"), ({"aead": "AES-128-GCM"}, "aead"),
        ({"hpke": {**HPKE, "mode": "auth"}}, "hpke.mode"), ({"hpke": {**HPKE, "kem": "P-256"}}, "hpke.kem"),
        ({"hpke": {**HPKE, "kdf": "HKDF-SHA512"}}, "hpke.kdf"), ({"hpke": {**HPKE, "aead": "x"}}, "hpke.aead"),
        ({"ciphertext_b64u": ""}, "ciphertext_b64u"), ({"recipients": []}, "recipients"),
        ({"recipients": [{"recipient_kid": 1, "enc_b64u": b64u(bytes(32)), "ct_b64u": b64u(bytes(48))}] * 2},
         "recipients"),
        ({"recipients": [{"recipient_kid": 1, "enc_b64u": b64u(bytes(33)), "ct_b64u": b64u(bytes(48))}]}, "enc_b64u"),
        ({"recipients": [{"recipient_kid": 1, "enc_b64u": b64u(bytes(32)), "ct_b64u": b64u(bytes(32))}]}, "ct_b64u"),
    ],
)
def test_acceptance_rules_of_the_original(payload_encrypted, change, field):
    ves.check_payload_encrypted(decode_payload_encrypted(payload_encrypted))
    with pytest.raises(InvalidEncoding) as raised:
        ves.check_payload_encrypted(decode_payload_encrypted({**payload_encrypted, **change}))
    assert field in str(raised.value)


@pytest.mark.parametrize("change", [{"enc_version": 2}, {"enc_version": 3}, {"hpke": {**HPKE, "mode": "hybrid-base"}},
                                    {"hpke": {**HPKE, "mode": "pqc-base", "kem": "mlkem768"}},
                                    {"hpke": {**HPKE, "kem": "x25519+mlkem768"}}])
def test_the_originals_default_profile_accepts_these(payload_encrypted, change):
    ves.check_payload_encrypted(decode_payload_encrypted({**payload_encrypted, **change}))


def test_draft_rule_is_recognised_only_by_string_kids(v1_fields, payload_encrypted):
    """Events stored under VES.md's draft rule (string kids) still verify with it; the original's form never does."""
    draft = {"nonce_b64u": b64u(bytes(12)), "ciphertext_b64u": b64u(b"x"), "tag_b64u": b64u(bytes(16)),
             "recipients": [{"recipient_kid": "k2", "enc_b64u": "AAAA", "ct_b64u": "BBBB"},
                            {"recipient_kid": "k1", "enc_b64u": "CCCC", "ct_b64u": "DDDD"}]}
    assert is_draft_payload_encrypted(draft) and not is_draft_payload_encrypted(payload_encrypted)
    assert not is_draft_payload_encrypted({**draft, "recipients": [*draft["recipients"], {"recipient_kid": 3}]})
    draft_fields = dataclasses.replace(v1_fields, ves_version=2)
    aad = hashlib.sha256(b"VES_PAYLOAD_AAD_V1" + be32(2) + aad_inputs(draft_fields)).digest()
    recipients = hashlib.sha256(b"VES_RECIPIENTS_V1" + rfc8785.dumps(
        sorted(draft["recipients"], key=lambda r: r["recipient_kid"]))).digest()
    expected = hashlib.sha256(b"VES_PAYLOAD_CIPHER_V1" + bytes(12) + aad + b"x" + bytes(16) + recipients).digest()
    assert draft_payload_cipher_hash(draft, draft_fields) == expected
    with pytest.raises(InvalidEncoding):
        ves.payload_cipher_hash(draft, draft_fields)
    with pytest.raises(InvalidEncoding):
        draft_payload_cipher_hash(payload_encrypted, draft_fields)
