"""A real VES-ENC-1 sealer and opener for tests, following the original's `src/crypto/encrypt.rs` step by step.

AES-256-GCM (pycryptodome) over `salt(16) || JCS(payload)` with `payload_aad` as associated data; the data key
wrapped per recipient with RFC 9180 HPKE base mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM, `info`
= `payload_aad`, empty `aad`. X25519 is PyNaCl's. The sequencer never decrypts: this exists so tests can build the
events the original's agents build, and open events the Node compatibility client builds (an implementation
independent of `tests/compat/lib/ves.mjs`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import uuid

from Crypto.Cipher import AES
from nacl.bindings import crypto_scalarmult
from nacl.bindings import crypto_scalarmult_base

from app.ves import EventSigningFields
from app.ves import b64u_decode
from app.ves import b64u_encode
from app.ves import jcs
from app.ves import payload_aad
from app.ves import payload_cipher_hash
from app.ves import payload_plain_hash_salted
from app.ves.encrypted import DEFAULT_HPKE

KEM_ID, KDF_ID, AEAD_ID = 0x0020, 0x0001, 0x0002
KEM_SUITE = b"KEM" + KEM_ID.to_bytes(2, "big")


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out, counter = out + block, counter + 1
    return out[:length]


def _labeled_extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, b"HPKE-v1" + suite + label + ikm)


def _labeled_expand(suite: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info, length)


def x25519_public_key(private_key: bytes) -> bytes:
    return crypto_scalarmult_base(private_key)


def hpke_suite(aead_id: int) -> bytes:
    return b"HPKE" + KEM_ID.to_bytes(2, "big") + KDF_ID.to_bytes(2, "big") + aead_id.to_bytes(2, "big")


HPKE_SUITE = hpke_suite(AEAD_ID)


def key_schedule(shared: bytes, info: bytes, suite: bytes = HPKE_SUITE, key_length: int = 32):
    """RFC 9180 §5.1 base mode: `(key, base_nonce)`. AES-256-GCM by default; AES-128-GCM (RFC 9180 A.1) with
    `hpke_suite(0x0001)` and `key_length=16`."""
    psk_id_hash = _labeled_extract(suite, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(suite, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash
    secret = _labeled_extract(suite, shared, b"secret", b"")
    return (_labeled_expand(suite, secret, b"key", context, key_length),
            _labeled_expand(suite, secret, b"base_nonce", context, 12))


def shared_secret(dh: bytes, enc: bytes, recipient_public: bytes) -> bytes:
    prk = _labeled_extract(KEM_SUITE, b"", b"eae_prk", dh)
    return _labeled_expand(KEM_SUITE, prk, b"shared_secret", enc + recipient_public, 32)


def hpke_seal(recipient_public: bytes, info: bytes, plaintext: bytes, ephemeral_private: bytes | None = None):
    """`(enc, ct)` of a single-shot base-mode seal with empty aad (the original's `wrap_dek_hpke`)."""
    ephemeral_private = ephemeral_private or os.urandom(32)
    enc = x25519_public_key(ephemeral_private)
    key, nonce = key_schedule(shared_secret(crypto_scalarmult(ephemeral_private, recipient_public), enc,
                                              recipient_public), info)
    ciphertext, tag = AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(plaintext)
    return enc, ciphertext + tag


def hpke_open(recipient_private: bytes, enc: bytes, info: bytes, sealed: bytes) -> bytes:
    """The original's `unwrap_dek_hpke`. Raises ValueError when the tag does not verify."""
    recipient_public = x25519_public_key(recipient_private)
    key, nonce = key_schedule(shared_secret(crypto_scalarmult(recipient_private, enc), enc, recipient_public),
                               info)
    return AES.new(key, AES.MODE_GCM, nonce=nonce).decrypt_and_verify(sealed[:-16], sealed[-16:])


@dataclasses.dataclass
class Sealed:
    payload_encrypted: dict
    payload_salt: bytes
    payload_plain_hash: bytes
    payload_cipher_hash: bytes


def seal(payload: object, fields: EventSigningFields, recipients: dict[int, bytes], *, salt: bytes | None = None,
         dek: bytes | None = None, nonce: bytes | None = None, ephemeral: dict[int, bytes] | None = None) -> Sealed:
    """`encrypt_payload_ves`: `fields` gives the event context (its hashes are ignored); `recipients` maps
    recipient_kid → X25519 public key. Random values may be fixed for known-answer tests."""
    salt = salt or os.urandom(16)
    plain_hash = payload_plain_hash_salted(payload, salt)
    fields = dataclasses.replace(fields, payload_plain_hash=plain_hash)
    aad = payload_aad(fields)
    dek, nonce = dek or os.urandom(32), nonce or os.urandom(12)
    ciphertext, tag = AES.new(dek, AES.MODE_GCM, nonce=nonce).update(aad).encrypt_and_digest(salt + jcs(payload))
    wrapped = []
    for kid in sorted(recipients):
        enc, ct = hpke_seal(recipients[kid], aad, dek, (ephemeral or {}).get(kid))
        wrapped.append({"recipient_kid": kid, "enc_b64u": b64u_encode(enc), "ct_b64u": b64u_encode(ct)})
    payload_encrypted = {"enc_version": 1, "aead": "AES-256-GCM", "nonce_b64u": b64u_encode(nonce),
                         "ciphertext_b64u": b64u_encode(ciphertext), "tag_b64u": b64u_encode(tag),
                         "hpke": dict(DEFAULT_HPKE), "recipients": wrapped}
    return Sealed(payload_encrypted, salt, plain_hash, payload_cipher_hash(payload_encrypted, fields))


def open_sealed(payload_encrypted: dict, fields: EventSigningFields, recipient_kid: int,
                recipient_private: bytes) -> tuple[bytes, bytes]:
    """`decrypt_payload_ves` up to the JSON: `(salt, JCS bytes)`; raises ValueError on any authentication failure.
    `fields.payload_plain_hash` must be the event's (salted) plain hash: it is inside the AAD."""
    aad = payload_aad(fields)
    entry = next(r for r in payload_encrypted["recipients"] if r["recipient_kid"] == recipient_kid)
    dek = hpke_open(recipient_private, b64u_decode(entry["enc_b64u"]), aad, b64u_decode(entry["ct_b64u"]))
    cipher = AES.new(dek, AES.MODE_GCM, nonce=b64u_decode(payload_encrypted["nonce_b64u"])).update(aad)
    plaintext = cipher.decrypt_and_verify(b64u_decode(payload_encrypted["ciphertext_b64u"]),
                                          b64u_decode(payload_encrypted["tag_b64u"]))
    return plaintext[:16], plaintext[16:]


def recipient_keypair(seed: bytes | None = None) -> tuple[bytes, bytes]:
    """An X25519 `(private, public)` pair for a payload recipient."""
    private = seed or os.urandom(32)
    return private, x25519_public_key(private)


def sealed_event(signer, store_id, entity_type: str, entity_id: str, event_type: str, payload: object,
                 recipients: dict[int, bytes], *, ves_version: int = 1, **build) -> tuple[dict, Sealed]:
    """A signed encrypted envelope from an `app.client.AgentSigner`, sealed as the original's agents seal it."""
    from app.client.signer import rfc3339_millis

    event_id = build.pop("event_id", None) or uuid.uuid4()
    created_at = build.pop("created_at", None) or rfc3339_millis()
    fields = EventSigningFields(
        ves_version=ves_version, tenant_id=uuid.UUID(signer.tenant_id), store_id=uuid.UUID(str(store_id)),
        event_id=uuid.UUID(str(event_id)), source_agent_id=uuid.UUID(signer.agent_id), agent_key_id=signer.key_id,
        entity_type=entity_type, entity_id=entity_id, event_type=event_type, created_at=created_at, payload_kind=1,
        payload_plain_hash=bytes(32), payload_cipher_hash=bytes(32))
    sealed = seal(payload, fields, recipients)
    envelope = signer.build_event(store_id, entity_type, entity_id, event_type, ves_version=ves_version,
                                  event_id=event_id, created_at=created_at, payload_encrypted=sealed.payload_encrypted,
                                  payload_plain_hash_hex=sealed.payload_plain_hash.hex(), **build)
    return envelope, sealed
