"""Event signing hash (v1/v2) field binding, envelope parsing, encrypted payload hashes and receipts.

The encrypted-payload checks compare against a reference written from the VES.md formulas in this file
(there are no public VES-ENC-1 vectors yet).
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


@pytest.fixture
def v1_envelope(vectors) -> dict:
    return dict(next(case["event"] for case in vectors["event_signing"] if case["event"]["ves_version"] == 1))


@pytest.fixture(scope="session")
def v1_fields(vectors) -> EventSigningFields:
    """Immutable (frozen dataclass), so sharing it across hypothesis examples is safe."""
    return EventSigningFields.from_envelope(
        next(case["event"] for case in vectors["event_signing"] if case["event"]["ves_version"] == 1)
    )


ALTERED_FIELD_VALUES = {
    "tenant_id": uuid.UUID(int=1),
    "store_id": uuid.UUID(int=2),
    "event_id": uuid.UUID(int=3),
    "source_agent_id": uuid.UUID(int=4),
    "agent_key_id": 2,
    "entity_type": "InventoryItem2",
    "entity_id": "WIDGET-001 ",
    "event_type": "inventoryadjusted",
    "created_at": "2025-12-20T18:31:01.123+00:00",
    "payload_kind": 1,
    "payload_plain_hash": b"\x01" * 32,
    "payload_cipher_hash": b"\x01" * 32,
}


@pytest.mark.parametrize("name", list(ALTERED_FIELD_VALUES))
def test_every_signed_field_changes_the_v1_hash(v1_fields, name):
    altered = dataclasses.replace(v1_fields, **{name: ALTERED_FIELD_VALUES[name]})
    assert ves.event_signing_hash(altered) != ves.event_signing_hash(v1_fields)


def test_string_fields_are_length_prefixed_so_boundaries_cannot_shift(v1_fields):
    shifted = dataclasses.replace(v1_fields, entity_type="ab", entity_id="c")
    original = dataclasses.replace(v1_fields, entity_type="a", entity_id="bc")
    assert ves.event_signing_hash(shifted) != ves.event_signing_hash(original)


def test_v1_leaves_command_id_and_base_version_unsigned(v1_fields):
    with_extras = dataclasses.replace(v1_fields, command_id=uuid.UUID(int=9), base_version=7)
    assert ves.event_signing_hash(with_extras) == ves.event_signing_hash(v1_fields)


def test_v2_binds_command_id_and_base_version(v1_fields):
    v2 = dataclasses.replace(v1_fields, ves_version=2)
    hashes = {
        ves.event_signing_hash(v2),
        ves.event_signing_hash(dataclasses.replace(v2, command_id=uuid.UUID(int=0))),
        ves.event_signing_hash(dataclasses.replace(v2, command_id=uuid.UUID(int=1))),
        ves.event_signing_hash(dataclasses.replace(v2, base_version=0)),
        ves.event_signing_hash(dataclasses.replace(v2, base_version=1)),
        ves.event_signing_hash(dataclasses.replace(v2, base_version=2**40)),
        ves.event_signing_hash(dataclasses.replace(v2, command_id=uuid.UUID(int=1), base_version=1)),
    }
    assert len(hashes) == 7
    assert ves.event_signing_hash_v1_inner(v2) != ves.event_signing_hash_v1_inner(v1_fields)


def test_v2_hash_matches_the_formula(v1_fields):
    v2 = dataclasses.replace(v1_fields, ves_version=2, command_id=uuid.UUID(int=5), base_version=2**33)
    inner = ves.event_signing_hash_v1_inner(v2)
    cmd = b"\x01" + uuid.UUID(int=5).bytes
    base = b"\x01" + (2**33).to_bytes(8, "big")
    assert ves.event_signing_hash(v2) == hashlib.sha256(b"VES_EVENTSIG_V2" + inner + cmd + base).digest()
    absent = dataclasses.replace(v2, command_id=None, base_version=None)
    inner_absent = ves.event_signing_hash_v1_inner(absent)
    expected = hashlib.sha256(b"VES_EVENTSIG_V2" + inner_absent + b"\x00" + b"\x00").digest()
    assert ves.event_signing_hash(absent) == expected


@pytest.mark.parametrize("version", [0, 3, -1, True, 2**32])
def test_unsupported_ves_version(v1_fields, version):
    with pytest.raises(ves.UnsupportedVesVersion) as raised:
        ves.event_signing_hash(dataclasses.replace(v1_fields, ves_version=version))
    assert raised.value.code == "UNSUPPORTED_VES_VERSION"
    assert isinstance(raised.value, ves.VesError)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"agent_key_id": 2**32}, InvalidEncoding),
        ({"agent_key_id": -1}, InvalidEncoding),
        ({"payload_kind": 2**32}, InvalidEncoding),
        ({"payload_plain_hash": bytes(31)}, InvalidEncoding),
        ({"payload_cipher_hash": "00" * 32}, InvalidEncoding),
        ({"entity_id": "x\udc00"}, ves.CanonicalizationFailed),
        ({"ves_version": 2, "base_version": 2**64}, InvalidEncoding),
        ({"ves_version": 2, "command_id": "nope"}, InvalidEncoding),
    ],
    ids=repr,
)
def test_unencodable_fields_raise_ves_errors(v1_fields, changes, error):
    with pytest.raises(error):
        ves.event_signing_hash(dataclasses.replace(v1_fields, **changes))


def test_from_envelope_parses_wire_forms(v1_envelope, v1_fields):
    assert isinstance(v1_fields.tenant_id, uuid.UUID)
    assert v1_fields.payload_plain_hash == bytes.fromhex(v1_envelope["payload_plain_hash"][2:])
    assert v1_fields.command_id is None and v1_fields.base_version is None
    upper = {**v1_envelope, "payload_plain_hash": v1_envelope["payload_plain_hash"][2:].upper()}
    assert EventSigningFields.from_envelope(upper) == v1_fields


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("tenant_id", "not-a-uuid"),
        ("event_id", 7),
        ("payload_plain_hash", "0x1234"),
        ("payload_cipher_hash", None),
        ("agent_key_id", "1"),
        ("ves_version", True),
        ("entity_type", 5),
        ("command_id", "zzz"),
        ("base_version", "3"),
    ],
)
def test_from_envelope_names_the_malformed_field(v1_envelope, name, value):
    with pytest.raises(InvalidEncoding) as raised:
        EventSigningFields.from_envelope({**v1_envelope, name: value})
    assert name in str(raised.value)


@pytest.mark.parametrize("name", ["tenant_id", "created_at", "payload_cipher_hash", "payload_kind"])
def test_from_envelope_names_the_missing_field(v1_envelope, name):
    del v1_envelope[name]
    with pytest.raises(InvalidEncoding) as raised:
        EventSigningFields.from_envelope(v1_envelope)
    assert name in str(raised.value)


def test_stream_id_orders_tenant_before_store():
    tenant, store = uuid.UUID(int=1), uuid.UUID(int=2)
    assert ves.stream_id(tenant, store) == hashlib.sha256(b"VES_STREAM_V1" + tenant.bytes + store.bytes).digest()
    assert ves.stream_id(tenant, store) != ves.stream_id(store, tenant)


def test_receipt_hash_field_errors():
    ids = (uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3))
    assert len(ves.receipt_hash(*ids, 2**64 - 1, bytes(32))) == 32
    with pytest.raises(InvalidEncoding):
        ves.receipt_hash(*ids, 2**64, bytes(32))
    with pytest.raises(InvalidEncoding):
        ves.receipt_hash(*ids, 1, bytes(64))
    assert ves.receipt_hash(*ids, 1, bytes(32)) != ves.receipt_hash(*ids, 2, bytes(32))


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def reference_cipher_hash(payload_encrypted: dict, fields: EventSigningFields) -> bytes:
    """VES.md §Encrypted payloads, written out independently of app.ves."""

    def string(s: str) -> bytes:
        return len(s.encode()).to_bytes(4, "big") + s.encode()

    aad = hashlib.sha256(
        b"VES_PAYLOAD_AAD_V1"
        + fields.ves_version.to_bytes(4, "big")
        + fields.tenant_id.bytes
        + fields.store_id.bytes
        + fields.event_id.bytes
        + fields.source_agent_id.bytes
        + fields.agent_key_id.to_bytes(4, "big")
        + string(fields.entity_type)
        + string(fields.entity_id)
        + string(fields.event_type)
        + string(fields.created_at)
        + fields.payload_plain_hash
    ).digest()
    recipients = sorted(payload_encrypted["recipients"], key=lambda r: r["recipient_kid"])
    recipients_digest = hashlib.sha256(b"VES_RECIPIENTS_V1" + rfc8785.dumps(recipients)).digest()

    def raw(name: str) -> bytes:
        text = payload_encrypted[name]
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    return hashlib.sha256(
        b"VES_PAYLOAD_CIPHER_V1"
        + raw("nonce_b64u")
        + aad
        + raw("ciphertext_b64u")
        + raw("tag_b64u")
        + recipients_digest
    ).digest()


recipient_strategy = st.fixed_dictionaries(
    {
        "recipient_kid": st.binary(min_size=1, max_size=8).map(b64u),
        "enc_b64u": st.binary(min_size=32, max_size=32).map(b64u),
        "ct_b64u": st.binary(min_size=0, max_size=48).map(b64u),
    }
)
encrypted_strategy = st.fixed_dictionaries(
    {
        "nonce_b64u": st.binary(min_size=12, max_size=12).map(b64u),
        "ciphertext_b64u": st.binary(min_size=0, max_size=64).map(b64u),
        "tag_b64u": st.binary(min_size=16, max_size=16).map(b64u),
        "recipients": st.lists(recipient_strategy, min_size=1, max_size=4, unique_by=lambda r: r["recipient_kid"]),
    }
)


@settings(max_examples=60, deadline=None)
@given(payload_encrypted=encrypted_strategy, shuffle_seed=st.randoms(use_true_random=False))
def test_payload_cipher_hash_matches_reference_and_ignores_recipient_order(v1_fields, payload_encrypted, shuffle_seed):
    fields = dataclasses.replace(v1_fields, payload_kind=ves.PAYLOAD_KIND_ENCRYPTED)
    expected = reference_cipher_hash(payload_encrypted, fields)
    assert ves.payload_cipher_hash(payload_encrypted, fields) == expected
    shuffled = list(payload_encrypted["recipients"])
    shuffle_seed.shuffle(shuffled)
    assert ves.payload_cipher_hash({**payload_encrypted, "recipients": shuffled}, fields) == expected


@pytest.fixture
def payload_encrypted() -> dict:
    return {
        "nonce_b64u": b64u(bytes(range(12))),
        "ciphertext_b64u": b64u(b"ciphertext"),
        "tag_b64u": b64u(bytes(range(16))),
        "recipients": [
            {"recipient_kid": b64u(b"k2"), "enc_b64u": b64u(bytes(32)), "ct_b64u": b64u(b"wrapped-2")},
            {"recipient_kid": b64u(b"k1"), "enc_b64u": b64u(bytes(32)), "ct_b64u": b64u(b"wrapped-1")},
        ],
    }


def test_payload_aad_binds_plain_hash_but_not_payload_kind_or_cipher_hash(v1_fields):
    aad = ves.payload_aad(v1_fields)
    assert ves.payload_aad(dataclasses.replace(v1_fields, payload_kind=1, payload_cipher_hash=b"\x07" * 32)) == aad
    assert ves.payload_aad(dataclasses.replace(v1_fields, payload_plain_hash=b"\x07" * 32)) != aad


def test_payload_cipher_hash_binds_every_part(v1_fields, payload_encrypted):
    baseline = ves.payload_cipher_hash(payload_encrypted, v1_fields)
    variants = [
        {**payload_encrypted, "nonce_b64u": b64u(bytes(12))},
        {**payload_encrypted, "ciphertext_b64u": b64u(b"ciphertexu")},
        {**payload_encrypted, "tag_b64u": b64u(bytes(16))},
        {**payload_encrypted, "recipients": payload_encrypted["recipients"][:1]},
    ]
    for variant in variants:
        assert ves.payload_cipher_hash(variant, v1_fields) != baseline
    assert ves.payload_cipher_hash(payload_encrypted, dataclasses.replace(v1_fields, entity_id="other")) != baseline


@pytest.mark.parametrize(
    ("mutation", "field"),
    [
        (lambda p: {**p, "nonce_b64u": b64u(bytes(11))}, "nonce_b64u"),
        (lambda p: {**p, "nonce_b64u": b64u(bytes(13))}, "nonce_b64u"),
        (lambda p: {**p, "tag_b64u": b64u(bytes(15))}, "tag_b64u"),
        (lambda p: {**p, "ciphertext_b64u": "not base64!"}, "ciphertext_b64u"),
        (lambda p: {k: v for k, v in p.items() if k != "recipients"}, "recipients"),
        (lambda p: {**p, "recipients": "k1"}, "recipients"),
        (lambda p: {**p, "recipients": [{"recipient_kid": b64u(b"k"), "enc_b64u": b64u(b"e")}]}, "ct_b64u"),
        (lambda p: {**p, "recipients": [{"recipient_kid": 7, "enc_b64u": "", "ct_b64u": ""}]}, "recipient_kid"),
        (lambda p: {**p, "recipients": ["k1"]}, "recipients"),
        (lambda p: {**p, "recipients": [p["recipients"][0], {**p["recipients"][0], "ct_b64u": ""}]}, "recipient_kid"),
    ],
    ids=["short-nonce", "long-nonce", "short-tag", "bad-ciphertext", "no-recipients", "recipients-string",
         "recipient-missing-ct", "recipient-kid-int", "recipient-not-object", "duplicate-recipient-kid"],
)
def test_malformed_payload_encrypted_is_invalid_encoding(v1_fields, payload_encrypted, mutation, field):
    with pytest.raises(InvalidEncoding) as raised:
        ves.payload_cipher_hash(mutation(payload_encrypted), v1_fields)
    assert field in str(raised.value)
