"""Parsing and checking one event envelope: VES.md acceptance rules 1, 2 and 4, as pure functions.

No Flask, no database: `parse_signed_envelope` turns an envelope (a JSON object under VES.md's field names;
`app/api/wire.py` resolves camelCase spellings) into a `ParsedEvent` or raises `EventRejected` with the API.md reason.
Key lookup (rule 3), idempotency (rule 5) and authorisation (rule 6) need state and live in `services/ingest.py`.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import re
import uuid
from dataclasses import dataclass
from dataclasses import field

from app.ves import hashing
from app.ves.encoding import MAX_U32
from app.ves.encoding import MAX_U64
from app.ves.encoding import jcs
from app.ves.encoding import parse_hex
from app.ves.encrypted import check_payload_encrypted
from app.ves.encrypted import decode_payload_encrypted
from app.ves.encrypted import payload_cipher_hash
from app.ves.errors import VesError
from app.ves.hashing import EventSigningFields
from app.ves.signing import verify_signature

ENTITY_TYPE_MAX = 128
EVENT_TYPE_MAX = 256
ENTITY_ID_MAX = 512
CREATED_AT_MAX = 64
NIL_UUID = uuid.UUID(int=0)
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


class EventRejected(Exception):
    """An event fails an acceptance rule. `reason` is one of API.md's rejection reasons; `original` the original
    sequencer's reason string when it is not the default for `reason` (`original_reason`)."""

    def __init__(self, reason: str, message: str, event_id: str | None = None, original: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.event_id = event_id
        self.original = original or original_reason(reason, message)


_ORIGINAL_REASONS = {
    "UnsupportedVesVersion": "unsupported_version",
    "PayloadHashMismatch": "invalid_payload_hash",
    "UnknownAgentKey": "agent_key_invalid: Agent key not found",
    "AgentKeyRevoked": "agent_key_invalid: Agent key has been revoked",
    "AgentKeyNotValid": "agent_key_invalid: Agent key has expired",
    "SignatureVerificationFailed": "invalid_signature",
    "DuplicateEventConflict": "duplicate_event_id",
    "SchemaValidationFailed": "schema_validation",
    "SchemaMissing": "schema_validation",
    "PayloadTooLarge": "payload_too_large",
    "Forbidden": "forbidden",
}
_FIELD_IN_MESSAGE = re.compile(r"^(?:Missing field \(field: ([\w.]+)|Invalid ([a-z_][\w.]*) )")


def original_reason(reason: str, message: str) -> str:
    """The original sequencer's `VesRejectionReason` Display for one of our reasons (docs/spec/COMPAT.md §2.1):
    `schema_validation: <field>` for a malformed envelope, `agent_key_invalid: <msg>` for key problems, etc."""
    if reason == "InvalidEvent":
        match = _FIELD_IN_MESSAGE.match(message)
        name = (match.group(1) or match.group(2)) if match else None
        return f"schema_validation: {name}" if name else "schema_validation: event"
    return _ORIGINAL_REASONS.get(reason, "schema_validation")


_LEGACY_REASONS = {
    "InvalidEvent": "SchemaValidation", "SchemaValidationFailed": "SchemaValidation",
    "SchemaMissing": "SchemaValidation", "VersionConflict": "VersionConflict",
    "PayloadHashMismatch": "InvalidPayloadHash", "Forbidden": "Unauthorized",
}


def legacy_reason(reason: str, original: str) -> str:
    """The original's legacy `RejectionReason` name (its `POST /api/v1/events/ingest`)."""
    if reason == "DuplicateEventConflict":
        return "DuplicateCommandId" if original == "duplicate_command_id" else "DuplicateEventId"
    return _LEGACY_REASONS.get(reason, "Other")


@dataclass
class ParsedEvent:
    """An envelope that passed the stateless checks; the column values of its `events` row, minus sequencing."""

    index: int
    fields: EventSigningFields
    payload: object
    payload_encrypted: dict | None
    created_at: datetime.datetime | None
    event_signing_hash: bytes
    agent_signature: bytes | None
    payload_size: int
    extra: dict = field(default_factory=dict)

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.fields.tenant_id

    @property
    def store_id(self) -> uuid.UUID:
        return self.fields.store_id

    @property
    def stream(self) -> tuple[uuid.UUID, uuid.UUID]:
        return (self.fields.tenant_id, self.fields.store_id)

    @property
    def event_id(self) -> uuid.UUID:
        return self.fields.event_id

    @property
    def entity(self) -> tuple[str, str]:
        return (self.fields.entity_type, self.fields.entity_id)


def event_id_of(envelope: object) -> str | None:
    """The envelope's event_id as sent (for rejection entries), if it is a string."""
    if isinstance(envelope, dict):
        value = envelope.get("event_id")
        if isinstance(value, str) and len(value) <= 64 and value.isascii():
            return value
    return None


def _invalid(message: str) -> EventRejected:
    return EventRejected("InvalidEvent", message)


def _require_int(envelope: dict, name: str, maximum: int, required: bool = True) -> int | None:
    value = envelope.get(name)
    if value is None:
        if required:
            raise _invalid(f"Missing field (field: {name}).")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise _invalid(f"Invalid {name} (expected an integer in 0..{maximum}).")
    return value


def _require_uuid(envelope: dict, name: str, required: bool = True) -> uuid.UUID | None:
    value = envelope.get(name)
    if value is None:
        if required:
            raise _invalid(f"Missing field (field: {name}).")
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise _invalid(f"Invalid {name} (expected a UUID string).")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _invalid(f"Invalid {name} (expected a UUID string).") from None


def _require_text(envelope: dict, name: str, maximum: int) -> str:
    value = envelope.get(name)
    if value is None:
        raise _invalid(f"Missing field (field: {name}).")
    if not isinstance(value, str) or not value or len(value.encode("utf-8", "surrogatepass")) > maximum:
        raise _invalid(f"Invalid {name} (expected a string of 1 to {maximum} UTF-8 bytes).")
    check_storable_text(value, name)
    return value


def is_storable_text(value: str) -> bool:
    """PostgreSQL text cannot hold U+0000, and UTF-8 cannot encode a lone surrogate."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_storable_json(value: object) -> bool:
    """Every string of a JSON value, object keys included, is storable text (PostgreSQL jsonb refuses U+0000), and
    every number is finite (`1e400` parses as infinity, which jsonb refuses too)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if not is_storable_text(node):
                return False
        elif isinstance(node, float):
            if not math.isfinite(node):
                return False
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return True


def check_storable_text(value: str, name: str) -> None:
    if not is_storable_text(value):
        raise _invalid(f"Invalid {name} (U+0000 and lone surrogates are not allowed).")


def parse_created_at(value: object) -> tuple[str, datetime.datetime | None]:
    """Validate `created_at` as RFC 3339 and return it byte-for-byte plus its parsed instant (for indexing only)."""
    if not isinstance(value, str) or len(value) > CREATED_AT_MAX or not _RFC3339.match(value):
        raise _invalid("Invalid created_at (expected an RFC 3339 timestamp such as 2025-01-01T00:00:00.000Z).")
    text = value.replace("z", "Z").replace("t", "T")
    fraction = re.search(r"\.(\d+)", text)
    if fraction and len(fraction.group(1)) > 6:
        text = text.replace(fraction.group(0), "." + fraction.group(1)[:6])
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        raise _invalid("Invalid created_at (not a real calendar date and time).") from None
    return value, parsed


def canonical_payload(payload: object, max_size: int, name: str = "payload") -> bytes:
    """JCS bytes of a payload, checked for size and storability (PostgreSQL jsonb refuses U+0000)."""
    try:
        canonical = jcs(payload)
    except VesError as exc:
        raise _invalid(f"Invalid {name} ({exc.message}).") from None
    if len(canonical) > max_size:
        raise EventRejected(
            "PayloadTooLarge", f"The {name} is {len(canonical)} bytes canonicalised (limit {max_size})."
        )
    if b"\\u0000" in canonical:
        raise _invalid(f"Invalid {name} (U+0000 is not allowed in strings).")
    return canonical


def parse_signed_envelope(envelope: object, index: int, max_payload_size: int) -> ParsedEvent:
    """Apply VES.md acceptance rules 1 (shape), 2 (hashes) and 4 (signature, given the key later) up to the point
    that needs the key registry. Raises `EventRejected`.

    The signature itself is checked by `verify_agent_signature` once the key is known.
    """
    if isinstance(envelope, EventRejected):
        raise envelope
    if not isinstance(envelope, dict):
        raise _invalid("Invalid event (expected a JSON object).")
    event_id = event_id_of(envelope)
    try:
        parsed = _parse_signed(envelope, index, max_payload_size)
    except EventRejected as rejection:
        rejection.event_id = event_id
        raise
    return parsed


def _parse_signed(envelope: dict, index: int, max_payload_size: int) -> ParsedEvent:
    version = envelope.get("ves_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise _invalid("Invalid ves_version (expected the integer 1 or 2).")
    if version not in hashing.SUPPORTED_VES_VERSIONS:
        raise EventRejected("UnsupportedVesVersion", f"ves_version {version} is not supported (expected 1 or 2).")
    event_id = _require_uuid(envelope, "event_id")
    tenant_id = _require_uuid(envelope, "tenant_id")
    store_id = _require_uuid(envelope, "store_id")
    source_agent_id = _require_uuid(envelope, "source_agent_id")
    agent_key_id = _require_int(envelope, "agent_key_id", MAX_U32)
    entity_type = _require_text(envelope, "entity_type", ENTITY_TYPE_MAX)
    entity_id = _require_text(envelope, "entity_id", ENTITY_ID_MAX)
    event_type = _require_text(envelope, "event_type", EVENT_TYPE_MAX)
    created_at_raw, created_at = parse_created_at(envelope.get("created_at"))
    payload_kind = envelope.get("payload_kind")
    if isinstance(payload_kind, bool) or payload_kind not in (0, 1):
        raise _invalid("Invalid payload_kind (expected 0 for plaintext or 1 for encrypted).")
    command_id = _require_uuid(envelope, "command_id", required=False)
    base_version = _require_int(envelope, "base_version", MAX_U64, required=False)
    try:
        plain_hash = parse_hex(envelope.get("payload_plain_hash"), 32, "payload_plain_hash")
        cipher_hash = parse_hex(envelope.get("payload_cipher_hash"), 32, "payload_cipher_hash")
        signature = parse_hex(envelope.get("agent_signature"), 64, "agent_signature")
    except VesError as exc:
        raise _invalid(exc.message + ".") from None

    fields = EventSigningFields(
        ves_version=version, tenant_id=tenant_id, store_id=store_id, event_id=event_id,
        source_agent_id=source_agent_id, agent_key_id=agent_key_id, entity_type=entity_type, entity_id=entity_id,
        event_type=event_type, created_at=created_at_raw, payload_kind=payload_kind, payload_plain_hash=plain_hash,
        payload_cipher_hash=cipher_hash, command_id=command_id, base_version=base_version,
    )
    payload, payload_encrypted, size = _check_payload_hashes(envelope, fields, max_payload_size)
    return ParsedEvent(
        index=index, fields=fields, payload=payload, payload_encrypted=payload_encrypted, created_at=created_at,
        event_signing_hash=hashing.event_signing_hash(fields), agent_signature=signature, payload_size=size,
    )


def _check_payload_hashes(envelope: dict, fields: EventSigningFields, max_size: int):
    """Rule 2: recompute payload hashes. Plaintext: both hashes. Encrypted: `payload_encrypted` must pass the
    original's VES-ENC-1 checks and hash to `payload_cipher_hash`; its (salted) `payload_plain_hash` cannot be
    checked without the key. It is kept as the original stores it: its seven fields, unknown keys dropped."""
    if fields.payload_kind == hashing.PAYLOAD_KIND_PLAIN:
        if "payload" not in envelope:
            raise _invalid("Missing field (field: payload).")
        if envelope.get("payload_encrypted") is not None:
            raise _invalid("A plaintext event (payload_kind 0) must not carry payload_encrypted.")
        payload = envelope["payload"]
        canonical = canonical_payload(payload, max_size)
        expected = hashlib.sha256(hashing.TAG_PAYLOAD_PLAIN + canonical).digest()
        if expected != fields.payload_plain_hash:
            raise EventRejected("PayloadHashMismatch", "payload_plain_hash does not match the canonical payload.")
        if fields.payload_cipher_hash != hashing.ZERO_HASH:
            raise EventRejected("PayloadHashMismatch", "payload_cipher_hash must be 32 zero bytes for plaintext.",
                                original="invalid_cipher_hash")
        return payload, None, len(canonical)
    encrypted = envelope.get("payload_encrypted")
    if not isinstance(encrypted, dict):
        raise _invalid("Missing field (field: payload_encrypted; an object for payload_kind 1).")
    if envelope.get("payload") is not None:
        raise _invalid("An encrypted event (payload_kind 1) must not carry a plaintext payload.")
    try:
        sealed = decode_payload_encrypted(encrypted)
        check_payload_encrypted(sealed)
        expected = payload_cipher_hash(sealed, fields)
    except VesError as exc:
        raise _invalid(exc.message + ".") from None
    canonical = canonical_payload(sealed.wire, max_size, "payload_encrypted")
    if expected != fields.payload_cipher_hash:
        raise EventRejected("PayloadHashMismatch", "payload_cipher_hash does not match payload_encrypted.",
                            original="invalid_cipher_hash")
    return None, dict(sealed.wire), len(canonical)


def verify_agent_signature(event: ParsedEvent, public_key: bytes) -> None:
    """Rule 4: the agent signature verifies over `event_signing_hash` under the registered key."""
    if not verify_signature(public_key, event.event_signing_hash, event.agent_signature):
        raise EventRejected("SignatureVerificationFailed",
                            "agent_signature does not verify over the event signing hash with the registered key.",
                            str(event.event_id))


def _check_legacy_payload_hash(raw: dict, canonical: bytes) -> None:
    """The original's legacy rule (`verify_payload_hash`): a `payload_hash` sent with an unsigned event is
    SHA-256 of the canonical JSON payload, no domain tag (hex, `0x` optional)."""
    sent = raw.get("payload_hash")
    if sent is None:
        return
    try:
        claimed = parse_hex(sent, 32, "payload_hash")
    except VesError as exc:
        raise _invalid(f"Invalid payload_hash ({exc.message}).") from None
    if claimed != hashlib.sha256(canonical).digest():
        raise EventRejected("PayloadHashMismatch", "payload_hash is not SHA-256 of the canonical JSON payload.",
                            original="invalid_payload_hash")


def parse_unsigned_event(raw: object, index: int, agent_id: uuid.UUID, max_payload_size: int,
                         now: datetime.datetime) -> ParsedEvent:
    """An event of the unsigned endpoint: the sequencer computes the hashes; `agent_key_id` 0, no signature."""
    if isinstance(raw, EventRejected):
        raise raw
    if not isinstance(raw, dict):
        raise _invalid("Invalid event (expected a JSON object).")
    event_id_text = event_id_of(raw)
    try:
        event_id = _require_uuid(raw, "event_id")
        tenant_id = _require_uuid(raw, "tenant_id")
        store_id = _require_uuid(raw, "store_id")
        entity_type = _require_text(raw, "entity_type", ENTITY_TYPE_MAX)
        entity_id = _require_text(raw, "entity_id", ENTITY_ID_MAX)
        event_type = _require_text(raw, "event_type", EVENT_TYPE_MAX)
        if raw.get("created_at") is None:
            created_at_raw = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        else:
            created_at_raw = raw["created_at"]
        created_at_raw, created_at = parse_created_at(created_at_raw)
        command_id = _require_uuid(raw, "command_id", required=False)
        base_version = _require_int(raw, "base_version", MAX_U64, required=False)
        if "payload" not in raw:
            raise _invalid("Missing field (field: payload).")
        canonical = canonical_payload(raw["payload"], max_payload_size)
        _check_legacy_payload_hash(raw, canonical)
    except EventRejected as rejection:
        rejection.event_id = event_id_text
        raise
    fields = EventSigningFields(
        ves_version=1, tenant_id=tenant_id, store_id=store_id, event_id=event_id, source_agent_id=agent_id,
        agent_key_id=0, entity_type=entity_type, entity_id=entity_id, event_type=event_type,
        created_at=created_at_raw, payload_kind=0,
        payload_plain_hash=hashlib.sha256(hashing.TAG_PAYLOAD_PLAIN + canonical).digest(),
        payload_cipher_hash=hashing.ZERO_HASH, command_id=command_id, base_version=base_version,
    )
    return ParsedEvent(
        index=index, fields=fields, payload=raw["payload"], payload_encrypted=None, created_at=created_at,
        event_signing_hash=hashing.event_signing_hash(fields), agent_signature=None, payload_size=len(canonical),
    )
