"""Event signing hash (v1/v2) field binding, envelope parsing and receipts (encrypted payloads: test_encrypted.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid

import pytest

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
