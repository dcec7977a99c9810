"""VES-ENC-1 encrypted payloads, byte for byte as the original StateSet Sequencer computes and checks them.

Reference: `stateset/stateset-sequencer` `src/crypto/encrypt.rs` (hashes), `src/crypto/hash.rs` (salted plain hash)
and `VesSequencer::validate_payload_encrypted` in `src/infra/postgres/ves_sequencer.rs` (acceptance rules); every
difference from VES.md's older wording is recorded in docs/spec/VES.md. The sequencer never decrypts: it checks the
shape of `payload_encrypted` and recomputes `payload_cipher_hash`; `payload_plain_hash` of an encrypted event is
salted (`SHA256("VES_PAYLOAD_PLAIN_V1" || salt(16) || JCS(payload))`) and opaque to it, bound only through the AAD.

    payload_aad     = SHA256("VES_PAYLOAD_AAD_V1" || UUID(tenant) || UUID(store) || UUID(event_id)
                             || UUID(source_agent_id) || U32(agent_key_id) || STR(entity_type) || STR(entity_id)
                             || STR(event_type) || STR(created_at) || payload_plain_hash)
    recipients_hash = SHA256("VES_RECIPIENTS_V1" || for each recipient, in the order given:
                             U32(recipient_kid) || U32(len enc) || enc || U32(len ct) || ct)
    cipher_hash     = SHA256("VES_PAYLOAD_CIPHER_V1" || U32(1) || nonce(12) || payload_aad || U32(len ciphertext)
                             || ciphertext || tag(16) || recipients_hash)

`U32(1)` is fixed: the original writes 1 whatever `enc_version` says. Byte fields are base64url as the original's
`base64_url_decode` reads them: without padding or with canonical padding, unused trailing bits zero.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass

from app.ves.encoding import MAX_U32
from app.ves.encoding import b64u_decode
from app.ves.encoding import jcs
from app.ves.encoding import str_field
from app.ves.encoding import u32
from app.ves.encoding import uuid_bytes
from app.ves.errors import InvalidEncoding
from app.ves.hashing import HASH_SIZE
from app.ves.hashing import NONCE_SIZE
from app.ves.hashing import TAG_PAYLOAD_AAD
from app.ves.hashing import TAG_PAYLOAD_CIPHER
from app.ves.hashing import TAG_PAYLOAD_PLAIN
from app.ves.hashing import TAG_RECIPIENTS
from app.ves.hashing import TAG_SIZE

SALT_SIZE = 16
RECIPIENT_ENC_SIZE = 32
RECIPIENT_CT_SIZE = 48
CIPHER_HASH_ENC_VERSION = 1
ACCEPTED_ENC_VERSIONS = (1, 2, 3)
AEAD = "AES-256-GCM"
ACCEPTED_HPKE_MODES = ("base", "hybrid-base", "pqc-base")
ACCEPTED_HPKE_KEMS = ("X25519-HKDF-SHA256", "x25519+mlkem768", "mlkem768")
HPKE_KDF = "HKDF-SHA256"
DEFAULT_HPKE = {"mode": "base", "kem": "X25519-HKDF-SHA256", "kdf": "HKDF-SHA256", "aead": "AES-256-GCM"}
_HPKE_FIELDS = ("mode", "kem", "kdf", "aead")


@dataclass(frozen=True)
class Recipient:
    """One wrapped data key: `recipient_kid` (u32) and the decoded HPKE `enc` and `ct` bytes."""

    recipient_kid: int
    enc: bytes
    ct: bytes


@dataclass(frozen=True)
class PayloadEncrypted:
    """A decoded `payload_encrypted` object (the original's `PayloadEncrypted` struct).

    `wire` is the object as the original stores and serves it: exactly its seven fields (unknown keys dropped),
    strings as sent.
    """

    enc_version: int
    aead: str
    nonce: bytes
    ciphertext: bytes
    tag: bytes
    hpke: Mapping[str, str]
    recipients: tuple[Recipient, ...]
    wire: Mapping[str, object]


def _field(obj: Mapping, name: str, path: str) -> object:
    if name not in obj or obj[name] is None:
        raise InvalidEncoding(f"Missing field (field: {path}{name})")
    return obj[name]


def _text(obj: Mapping, name: str, path: str) -> str:
    value = _field(obj, name, path)
    if not isinstance(value, str):
        raise InvalidEncoding(f"Invalid {path}{name} (expected a string)")
    return value


def _u32(obj: Mapping, name: str, path: str) -> int:
    value = _field(obj, name, path)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_U32:
        raise InvalidEncoding(f"Invalid {path}{name} (expected an integer in 0..{MAX_U32})")
    return value


def _sized(value: str, size: int, field: str) -> bytes:
    data = b64u_decode(value, field)
    if len(data) != size:
        raise InvalidEncoding(f"Invalid {field} (expected base64url of {size} bytes)")
    return data


def decode_payload_encrypted(value: object) -> PayloadEncrypted:
    """Read `payload_encrypted` as the original deserialises it: the seven fields present and typed, nonce and tag
    base64url of 12 and 16 bytes, every other byte field base64url. Raises InvalidEncoding naming the field.

    This is what hashing needs; the sequencer's further acceptance rules are `check_payload_encrypted`.
    """
    if not isinstance(value, Mapping):
        raise InvalidEncoding("Invalid payload_encrypted (expected a JSON object)")
    path = "payload_encrypted."
    enc_version = _u32(value, "enc_version", path)
    aead = _text(value, "aead", path)
    nonce_text = _text(value, "nonce_b64u", path)
    ciphertext_text = _text(value, "ciphertext_b64u", path)
    tag_text = _text(value, "tag_b64u", path)
    hpke = _field(value, "hpke", path)
    if not isinstance(hpke, Mapping):
        raise InvalidEncoding("Invalid payload_encrypted.hpke (expected a JSON object)")
    hpke_wire = {name: _text(hpke, name, path + "hpke.") for name in _HPKE_FIELDS}
    listed = _field(value, "recipients", path)
    if isinstance(listed, (str, bytes)) or not isinstance(listed, Sequence):
        raise InvalidEncoding("Invalid payload_encrypted.recipients (expected a list)")
    recipients, recipients_wire = [], []
    for entry in listed:
        if not isinstance(entry, Mapping):
            raise InvalidEncoding("Invalid payload_encrypted.recipients (expected a list of objects)")
        where = path + "recipients[]."
        kid = _u32(entry, "recipient_kid", where)
        enc_text, ct_text = _text(entry, "enc_b64u", where), _text(entry, "ct_b64u", where)
        recipients.append(Recipient(kid, b64u_decode(enc_text, where + "enc_b64u"),
                                    b64u_decode(ct_text, where + "ct_b64u")))
        recipients_wire.append({"recipient_kid": kid, "enc_b64u": enc_text, "ct_b64u": ct_text})
    wire = {"enc_version": enc_version, "aead": aead, "nonce_b64u": nonce_text, "ciphertext_b64u": ciphertext_text,
            "tag_b64u": tag_text, "hpke": hpke_wire, "recipients": recipients_wire}
    return PayloadEncrypted(
        enc_version=enc_version, aead=aead, nonce=_sized(nonce_text, NONCE_SIZE, path + "nonce_b64u"),
        ciphertext=b64u_decode(ciphertext_text, path + "ciphertext_b64u"),
        tag=_sized(tag_text, TAG_SIZE, path + "tag_b64u"), hpke=hpke_wire, recipients=tuple(recipients), wire=wire,
    )


def check_payload_encrypted(sealed: PayloadEncrypted) -> None:
    """The original sequencer's acceptance rules for `payload_encrypted` (its default "legacy" security profile).

    `enc_version` 1–3; `aead` and `hpke.aead` "AES-256-GCM"; `hpke.mode` and `hpke.kem` one of the accepted names,
    `hpke.kdf` "HKDF-SHA256"; ciphertext not empty; at least one recipient, kids strictly ascending (sorted and
    unique); each `enc` 32 bytes and `ct` 48 bytes. Raises InvalidEncoding naming the field.
    """
    path = "payload_encrypted."
    if sealed.enc_version not in ACCEPTED_ENC_VERSIONS:
        raise InvalidEncoding("Invalid payload_encrypted.enc_version (expected 1, 2 or 3)")
    if sealed.aead != AEAD:
        raise InvalidEncoding(f"Invalid payload_encrypted.aead (expected {AEAD})")
    if sealed.hpke["mode"] not in ACCEPTED_HPKE_MODES:
        raise InvalidEncoding(f"Invalid payload_encrypted.hpke.mode (expected one of {', '.join(ACCEPTED_HPKE_MODES)})")
    if sealed.hpke["kem"] not in ACCEPTED_HPKE_KEMS:
        raise InvalidEncoding(f"Invalid payload_encrypted.hpke.kem (expected one of {', '.join(ACCEPTED_HPKE_KEMS)})")
    if sealed.hpke["kdf"] != HPKE_KDF:
        raise InvalidEncoding(f"Invalid payload_encrypted.hpke.kdf (expected {HPKE_KDF})")
    if sealed.hpke["aead"] != AEAD:
        raise InvalidEncoding(f"Invalid payload_encrypted.hpke.aead (expected {AEAD})")
    if not sealed.ciphertext:
        raise InvalidEncoding("Invalid payload_encrypted.ciphertext_b64u (must not be empty)")
    if not sealed.recipients:
        raise InvalidEncoding("Invalid payload_encrypted.recipients (must not be empty)")
    previous = None
    for recipient in sealed.recipients:
        if previous is not None and recipient.recipient_kid <= previous:
            raise InvalidEncoding(f"Invalid {path}recipients (must be sorted by recipient_kid, each kid once)")
        previous = recipient.recipient_kid
        if len(recipient.enc) != RECIPIENT_ENC_SIZE:
            raise InvalidEncoding(f"Invalid {path}recipients[].enc_b64u (expected {RECIPIENT_ENC_SIZE} bytes)")
        if len(recipient.ct) != RECIPIENT_CT_SIZE:
            raise InvalidEncoding(f"Invalid {path}recipients[].ct_b64u (expected {RECIPIENT_CT_SIZE} bytes)")


def payload_plain_hash_salted(payload: object, salt: bytes) -> bytes:
    """`SHA256("VES_PAYLOAD_PLAIN_V1" || salt(16) || JCS(payload))`: an encrypted event's `payload_plain_hash`.

    Only an agent or a recipient can compute it (the salt travels inside the ciphertext, before JCS(payload)).
    """
    if not isinstance(salt, (bytes, bytearray)) or len(salt) != SALT_SIZE:
        raise InvalidEncoding(f"Invalid payload salt (expected {SALT_SIZE} bytes)")
    return hashlib.sha256(TAG_PAYLOAD_PLAIN + bytes(salt) + jcs(payload)).digest()


def payload_aad(fields) -> bytes:
    """`payload_aad` (32 bytes): the AES-GCM associated data and the HPKE `info`. No `ves_version`, no
    `payload_kind`. `fields` is an `EventSigningFields`."""
    return hashlib.sha256(TAG_PAYLOAD_AAD + _aad_inputs(fields)).digest()


def _aad_inputs(fields) -> bytes:
    plain_hash = fields.payload_plain_hash
    if not isinstance(plain_hash, (bytes, bytearray)) or len(plain_hash) != HASH_SIZE:
        raise InvalidEncoding(f"Invalid payload_plain_hash (expected {HASH_SIZE} bytes)")
    return b"".join((
        uuid_bytes(fields.tenant_id, "tenant_id"),
        uuid_bytes(fields.store_id, "store_id"),
        uuid_bytes(fields.event_id, "event_id"),
        uuid_bytes(fields.source_agent_id, "source_agent_id"),
        u32(fields.agent_key_id),
        str_field(fields.entity_type, "entity_type"),
        str_field(fields.entity_id, "entity_id"),
        str_field(fields.event_type, "event_type"),
        str_field(fields.created_at, "created_at"),
        bytes(plain_hash),
    ))


def recipients_hash(recipients: Sequence[Recipient]) -> bytes:
    """`SHA256("VES_RECIPIENTS_V1" || RECIP_ENTRY...)` over the recipients in the order given (never re-sorted:
    `check_payload_encrypted` requires ascending kids)."""
    parts = [TAG_RECIPIENTS]
    for recipient in recipients:
        parts += [u32(recipient.recipient_kid), u32(len(recipient.enc)), recipient.enc,
                  u32(len(recipient.ct)), recipient.ct]
    return hashlib.sha256(b"".join(parts)).digest()


def payload_cipher_hash(payload_encrypted: PayloadEncrypted | Mapping[str, object], fields) -> bytes:
    """`payload_cipher_hash` of a `payload_encrypted` (decoded, or the wire object) for the event `fields`.

    A wire object is read with `decode_payload_encrypted` (raises InvalidEncoding); acceptance rules are not applied
    here, as the original's `compute_cipher_hash_from_encrypted` does not apply them.
    """
    sealed = payload_encrypted if isinstance(payload_encrypted, PayloadEncrypted) else (
        decode_payload_encrypted(payload_encrypted))
    return hashlib.sha256(b"".join((
        TAG_PAYLOAD_CIPHER,
        u32(CIPHER_HASH_ENC_VERSION),
        sealed.nonce,
        payload_aad(fields),
        u32(len(sealed.ciphertext)),
        sealed.ciphertext,
        sealed.tag,
        recipients_hash(sealed.recipients),
    ))).digest()


# --- The draft rule ------------------------------------------------------------------------------------------------
# Before the compatibility change this implementation followed VES.md's draft wording of VES-ENC-1: an AAD with
# U32(ves_version), recipients hashed as JCS text sorted by a *string* recipient_kid, no length prefixes. No client
# of the original ever produced it and ingest no longer accepts it; it is kept only so that `ves-verify` can still
# re-check events stored before the change. A draft `payload_encrypted` is recognised by its string kids, which the
# original's form cannot have (its kids are u32 integers).


def is_draft_payload_encrypted(value: object) -> bool:
    """True when `value` is a draft-rule `payload_encrypted`: a non-empty recipient list whose kids are all strings."""
    if not isinstance(value, Mapping):
        return False
    listed = value.get("recipients")
    return (isinstance(listed, list) and bool(listed)
            and all(isinstance(r, Mapping) and isinstance(r.get("recipient_kid"), str) for r in listed))


def draft_payload_cipher_hash(payload_encrypted: Mapping[str, object], fields) -> bytes:
    """The draft rule: `SHA256("VES_PAYLOAD_CIPHER_V1" || nonce || draft_aad || ciphertext || tag
    || SHA256("VES_RECIPIENTS_V1" || JCS(recipients sorted by recipient_kid)))` with
    `draft_aad = SHA256("VES_PAYLOAD_AAD_V1" || U32(ves_version) || <payload_aad's inputs>)`."""
    if not is_draft_payload_encrypted(payload_encrypted):
        raise InvalidEncoding("Invalid payload_encrypted (not a draft-rule object: recipient_kid must be strings)")
    for name in ("nonce_b64u", "ciphertext_b64u", "tag_b64u"):
        if not isinstance(payload_encrypted.get(name), str):
            raise InvalidEncoding(f"Missing field (field: payload_encrypted.{name})")
    recipients = payload_encrypted["recipients"]
    for recipient in recipients:
        for name in ("enc_b64u", "ct_b64u"):
            if not isinstance(recipient.get(name), str):
                raise InvalidEncoding(f"Invalid payload_encrypted.recipients[].{name} (expected a string)")
    ordered = sorted(recipients, key=lambda r: r["recipient_kid"])
    if len({r["recipient_kid"] for r in ordered}) != len(ordered):
        raise InvalidEncoding("Duplicate recipient (field: payload_encrypted.recipients[].recipient_kid)")
    nonce = _sized(payload_encrypted["nonce_b64u"], NONCE_SIZE, "payload_encrypted.nonce_b64u")
    tag = _sized(payload_encrypted["tag_b64u"], TAG_SIZE, "payload_encrypted.tag_b64u")
    ciphertext = b64u_decode(payload_encrypted["ciphertext_b64u"], "payload_encrypted.ciphertext_b64u")
    draft_aad = hashlib.sha256(TAG_PAYLOAD_AAD + u32(fields.ves_version) + _aad_inputs(fields)).digest()
    recipients_digest = hashlib.sha256(TAG_RECIPIENTS + jcs([dict(r) for r in ordered])).digest()
    return hashlib.sha256(TAG_PAYLOAD_CIPHER + nonce + draft_aad + ciphertext + tag + recipients_digest).digest()

