"""AgentSigner reproduces the public vectors byte for byte and builds envelopes the verifier accepts."""

from __future__ import annotations

import re
import uuid

import pytest

from app.client import AgentSigner
from app.client import rfc3339_millis
from app.ves import EventSigningFields
from app.ves import InvalidEncoding
from app.ves import b64u_encode
from app.ves import event_signing_hash
from app.ves import parse_hex
from app.ves import payload_cipher_hash
from app.ves import payload_plain_hash
from app.ves import payload_plain_hash_salted
from app.ves import to_hex
from app.ves import verify_signature
from tests.client.conftest import load_vectors

SIGNING_CASES = load_vectors()["event_signing"]


@pytest.mark.parametrize("case", SIGNING_CASES, ids=[case["name"] for case in SIGNING_CASES])
def test_build_event_reproduces_the_signing_vectors(case):
    vector = case["event"]
    signer = AgentSigner(parse_hex(case["signer_seed"], 32, "seed"), vector["tenant_id"],
                         vector["source_agent_id"], vector["agent_key_id"])
    built = signer.build_event(
        vector["store_id"], vector["entity_type"], vector["entity_id"], vector["event_type"], vector["payload"],
        ves_version=vector["ves_version"], event_id=vector["event_id"], created_at=vector["created_at"],
        command_id=vector.get("command_id"), base_version=vector.get("base_version"),
    )
    assert signer.public_key_hex == case["signer_public_key"]
    assert built["agent_signature"] == case["expected"]["agent_signature"]
    assert built["payload_plain_hash"] == case["expected"]["payload_plain_hash"]
    assert {key: value for key, value in vector.items() if value is not None} == built


def test_seed_may_be_hex_and_repr_hides_it():
    seed = bytes(range(32))
    signer = AgentSigner(to_hex(seed), uuid.uuid4(), uuid.uuid4(), 7)
    assert signer.public_key == AgentSigner(seed, signer.tenant_id, signer.agent_id, 7).public_key
    assert seed.hex() not in repr(signer)
    assert signer.public_key_hex in repr(signer)


@pytest.mark.parametrize("key_id", [-1, 2**32, True, "1"])
def test_key_id_must_be_u32(key_id):
    with pytest.raises(ValueError):
        AgentSigner(bytes(32), uuid.uuid4(), uuid.uuid4(), key_id)


def test_defaults_are_a_fresh_event_id_and_now_in_millisecond_rfc3339():
    signer = AgentSigner(bytes(32), uuid.uuid4(), uuid.uuid4(), 1)
    first = signer.build_event(uuid.uuid4(), "order", "1", "OrderPlaced", {"a": 1})
    second = signer.build_event(first["store_id"], "order", "1", "OrderPlaced", {"a": 1})
    assert first["event_id"] != second["event_id"]
    assert uuid.UUID(first["event_id"]).version == 4
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["created_at"])
    assert "command_id" not in first and "base_version" not in first


def test_rfc3339_millis_truncates_to_milliseconds_in_utc():
    import datetime as dt

    moment = dt.datetime(2030, 5, 6, 9, 8, 7, 654321, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert rfc3339_millis(moment) == "2030-05-06T07:08:07.654Z"


def test_version_1_sends_but_does_not_sign_command_id_and_base_version():
    signer = AgentSigner(bytes(range(32)), uuid.uuid4(), uuid.uuid4(), 1)
    common = dict(event_id=uuid.uuid4(), created_at="2030-01-01T00:00:00.000Z")
    store = uuid.uuid4()
    plain = signer.build_event(store, "e", "1", "T", {}, **common)
    with_command = signer.build_event(store, "e", "1", "T", {}, command_id=uuid.uuid4(), base_version=3, **common)
    assert with_command["agent_signature"] == plain["agent_signature"]
    assert with_command["base_version"] == 3
    v2 = signer.build_event(store, "e", "1", "T", {}, ves_version=2, command_id=uuid.uuid4(), **common)
    assert v2["agent_signature"] != plain["agent_signature"]


def test_an_encrypted_payload_is_bound_by_its_cipher_hash_and_the_plaintext_is_not_sent():
    signer = AgentSigner(bytes(range(32)), uuid.uuid4(), uuid.uuid4(), 1)
    sealed = {"enc_version": 1, "aead": "AES-256-GCM", "nonce_b64u": b64u_encode(bytes(12)),
              "ciphertext_b64u": b64u_encode(b"secret bytes"), "tag_b64u": b64u_encode(bytes(16)),
              "hpke": {"mode": "base", "kem": "X25519-HKDF-SHA256", "kdf": "HKDF-SHA256", "aead": "AES-256-GCM"},
              "recipients": [{"recipient_kid": 1, "enc_b64u": b64u_encode(bytes(32)), "ct_b64u": b64u_encode(bytes(48))}]}
    salt = bytes(range(16))
    envelope = signer.build_event(uuid.uuid4(), "doc", "1", "DocSealed", {"secret": 1}, payload_encrypted=sealed,
                                  payload_salt=salt)
    fields = EventSigningFields.from_envelope(envelope)
    assert envelope["payload_kind"] == 1 and "payload" not in envelope
    assert fields.payload_plain_hash == payload_plain_hash_salted({"secret": 1}, salt) != payload_plain_hash({"secret": 1})
    assert fields.payload_cipher_hash == payload_cipher_hash(sealed, fields)
    assert any(fields.payload_cipher_hash)
    assert verify_signature(signer.public_key, event_signing_hash(fields), parse_hex(envelope["agent_signature"],
                                                                                        64, "sig"))
    with pytest.raises(InvalidEncoding, match="payload_salt"):
        signer.build_event(uuid.uuid4(), "doc", "1", "DocSealed", {"secret": 1}, payload_encrypted=sealed)


def test_an_uncanonicalisable_payload_is_refused_before_signing():
    signer = AgentSigner(bytes(32), uuid.uuid4(), uuid.uuid4(), 1)
    with pytest.raises(ValueError):
        signer.build_event(uuid.uuid4(), "e", "1", "T", {"x": float("nan")})
