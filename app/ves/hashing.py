"""Domain-separated hashes of VES.md: plaintext payloads, event signing hash (v1/v2), receipts and stream ids.

Encrypted payloads (VES-ENC-1) are in `encrypted`.

Every function returns 32 raw bytes (SHA-256). Inputs are raw bytes and UUIDs; the hex wire form is parsed by
`EventSigningFields.from_envelope` or `encoding.parse_hex`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from app.ves.encoding import jcs
from app.ves.encoding import parse_hex
from app.ves.encoding import parse_uuid
from app.ves.encoding import str_field
from app.ves.encoding import u32
from app.ves.encoding import u64
from app.ves.encoding import uuid_bytes
from app.ves.errors import InvalidEncoding
from app.ves.errors import UnsupportedVesVersion

TAG_PAYLOAD_PLAIN = b"VES_PAYLOAD_PLAIN_V1"
TAG_PAYLOAD_CIPHER = b"VES_PAYLOAD_CIPHER_V1"
TAG_PAYLOAD_AAD = b"VES_PAYLOAD_AAD_V1"
TAG_RECIPIENTS = b"VES_RECIPIENTS_V1"
TAG_EVENTSIG_V1 = b"VES_EVENTSIG_V1"
TAG_EVENTSIG_V2 = b"VES_EVENTSIG_V2"
TAG_RECEIPT = b"VES_RECEIPT_V1"
TAG_LEAF = b"VES_LEAF_V1"
TAG_NODE = b"VES_NODE_V1"
TAG_PAD_LEAF = b"VES_PAD_LEAF_V1"
TAG_STREAM = b"VES_STREAM_V1"
TAG_STATE_ROOT = b"VES_STATE_ROOT_V1"

HASH_SIZE = 32
SIGNATURE_SIZE = 64
ZERO_HASH = bytes(HASH_SIZE)
SUPPORTED_VES_VERSIONS = (1, 2)
PAYLOAD_KIND_PLAIN = 0
PAYLOAD_KIND_ENCRYPTED = 1
NONCE_SIZE = 12
TAG_SIZE = 16

_ABSENT = b"\x00"
_PRESENT = b"\x01"


def require_bytes(value: object, length: int, field: str) -> bytes:
    """Return `value` as bytes if it is exactly `length` bytes long; otherwise raise InvalidEncoding naming `field`."""
    if not isinstance(value, (bytes, bytearray, memoryview)) or len(value) != length:
        raise InvalidEncoding(f"Invalid {field} (expected {length} bytes)")
    return bytes(value)


def stream_id(tenant_id: uuid.UUID | str, store_id: uuid.UUID | str) -> bytes:
    """`SHA256("VES_STREAM_V1" || UUID(tenant) || UUID(store))` (VES.md §Streams)."""
    return hashlib.sha256(TAG_STREAM + uuid_bytes(tenant_id, "tenant_id") + uuid_bytes(store_id, "store_id")).digest()


def payload_plain_hash(payload: object) -> bytes:
    """`SHA256("VES_PAYLOAD_PLAIN_V1" || JCS(payload))`. Raises CanonicalizationFailed if JCS cannot encode it."""
    return hashlib.sha256(TAG_PAYLOAD_PLAIN + jcs(payload)).digest()


@dataclass(frozen=True)
class EventSigningFields:
    """The agent-signed inputs of the event signing hash (VES.md §The event an agent signs).

    Hashes are raw 32-byte values. `command_id` and `base_version` are bound only by ves_version 2.
    """

    ves_version: int
    tenant_id: uuid.UUID
    store_id: uuid.UUID
    event_id: uuid.UUID
    source_agent_id: uuid.UUID
    agent_key_id: int
    entity_type: str
    entity_id: str
    event_type: str
    created_at: str
    payload_kind: int
    payload_plain_hash: bytes
    payload_cipher_hash: bytes
    command_id: uuid.UUID | None = None
    base_version: int | None = None

    @classmethod
    def from_envelope(cls, envelope: Mapping[str, object]) -> EventSigningFields:
        """Parse the signing fields of a wire envelope (UUID strings, 0x-hex hashes); other keys are ignored.

        Raises InvalidEncoding naming the first missing or malformed field. Integer ranges are checked when hashing.
        """
        if not isinstance(envelope, Mapping):
            raise InvalidEncoding("Invalid event (expected a JSON object)")

        def field(name: str) -> object:
            if name not in envelope:
                raise InvalidEncoding(f"Missing field (field: {name})")
            return envelope[name]

        def integer(name: str) -> int:
            value = field(name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidEncoding(f"Invalid {name} (expected an integer)")
            return value

        def text(name: str) -> str:
            value = field(name)
            if not isinstance(value, str):
                raise InvalidEncoding(f"Invalid {name} (expected a string)")
            return value

        command_id = envelope.get("command_id")
        base_version = envelope.get("base_version")
        if base_version is not None and (isinstance(base_version, bool) or not isinstance(base_version, int)):
            raise InvalidEncoding("Invalid base_version (expected an integer)")
        return cls(
            ves_version=integer("ves_version"),
            tenant_id=parse_uuid(field("tenant_id"), "tenant_id"),
            store_id=parse_uuid(field("store_id"), "store_id"),
            event_id=parse_uuid(field("event_id"), "event_id"),
            source_agent_id=parse_uuid(field("source_agent_id"), "source_agent_id"),
            agent_key_id=integer("agent_key_id"),
            entity_type=text("entity_type"),
            entity_id=text("entity_id"),
            event_type=text("event_type"),
            created_at=text("created_at"),
            payload_kind=integer("payload_kind"),
            payload_plain_hash=parse_hex(field("payload_plain_hash"), HASH_SIZE, "payload_plain_hash"),
            payload_cipher_hash=parse_hex(field("payload_cipher_hash"), HASH_SIZE, "payload_cipher_hash"),
            command_id=None if command_id is None else parse_uuid(command_id, "command_id"),
            base_version=base_version,
        )


def _agent_prefix(fields: EventSigningFields) -> bytes:
    """The preimage segment of h1 from `U32(ves_version)` through `STR(created_at)`."""
    return b"".join(
        (
            u32(fields.ves_version),
            uuid_bytes(fields.tenant_id, "tenant_id"),
            uuid_bytes(fields.store_id, "store_id"),
            uuid_bytes(fields.event_id, "event_id"),
            uuid_bytes(fields.source_agent_id, "source_agent_id"),
            u32(fields.agent_key_id),
            str_field(fields.entity_type, "entity_type"),
            str_field(fields.entity_id, "entity_id"),
            str_field(fields.event_type, "event_type"),
            str_field(fields.created_at, "created_at"),
        )
    )


def event_signing_hash_v1_inner(fields: EventSigningFields) -> bytes:
    """`h1 = SHA256("VES_EVENTSIG_V1" || U32(ves_version) || … || payload_plain_hash || payload_cipher_hash)`.

    The version field is `fields.ves_version` as given, so for version 2 this is the inner hash with `U32(2)`.
    """
    preimage = b"".join(
        (
            TAG_EVENTSIG_V1,
            _agent_prefix(fields),
            u32(fields.payload_kind),
            require_bytes(fields.payload_plain_hash, HASH_SIZE, "payload_plain_hash"),
            require_bytes(fields.payload_cipher_hash, HASH_SIZE, "payload_cipher_hash"),
        )
    )
    return hashlib.sha256(preimage).digest()


def event_signing_hash(fields: EventSigningFields) -> bytes:
    """`event_signing_hash`: h1 for ves_version 1; for 2, `SHA256("VES_EVENTSIG_V2" || h1 || cmd || base)` where
    cmd is `0x00` or `0x01 || UUID(command_id)` and base is `0x00` or `0x01 || U64(base_version)`.

    Raises UnsupportedVesVersion for any other version. The 32 bytes are the Ed25519 message the agent signs.
    """
    version = fields.ves_version
    if isinstance(version, bool) or version not in SUPPORTED_VES_VERSIONS:
        raise UnsupportedVesVersion(f"Unsupported ves_version (expected 1 or 2, got {version!r})")
    inner = event_signing_hash_v1_inner(fields)
    if version == 1:
        return inner
    command = _ABSENT if fields.command_id is None else _PRESENT + uuid_bytes(fields.command_id, "command_id")
    base = _ABSENT if fields.base_version is None else _PRESENT + u64(fields.base_version)
    return hashlib.sha256(TAG_EVENTSIG_V2 + inner + command + base).digest()


def receipt_hash(
    tenant_id: uuid.UUID | str,
    store_id: uuid.UUID | str,
    event_id: uuid.UUID | str,
    sequence_number: int,
    event_signing_hash: bytes,
) -> bytes:
    """`SHA256("VES_RECEIPT_V1" || UUID(tenant) || UUID(store) || UUID(event_id) || U64(sequence_number)
    || event_signing_hash)` (VES.md §Sequencer receipt). `sequence_number` is 1-based u64."""
    preimage = b"".join(
        (
            TAG_RECEIPT,
            uuid_bytes(tenant_id, "tenant_id"),
            uuid_bytes(store_id, "store_id"),
            uuid_bytes(event_id, "event_id"),
            u64(sequence_number),
            require_bytes(event_signing_hash, HASH_SIZE, "event_signing_hash"),
        )
    )
    return hashlib.sha256(preimage).digest()
