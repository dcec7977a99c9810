"""Build and sign VES envelopes as an agent (VES.md §The event an agent signs)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping

from app.ves import PAYLOAD_KIND_ENCRYPTED
from app.ves import PAYLOAD_KIND_PLAIN
from app.ves import ZERO_HASH
from app.ves import Ed25519Signer
from app.ves import EventSigningFields
from app.ves import InvalidEncoding
from app.ves import event_signing_hash
from app.ves import parse_hex
from app.ves import parse_uuid
from app.ves import payload_cipher_hash
from app.ves import payload_plain_hash
from app.ves import payload_plain_hash_salted
from app.ves import to_hex


def rfc3339_millis(moment: dt.datetime | None = None) -> str:
    """`moment` (default: now) in UTC as RFC 3339 with milliseconds and `Z`, e.g. `2025-12-20T18:31:01.123Z`."""
    moment = (moment or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class AgentSigner:
    """One agent signing key: `(tenant_id, agent_id, key_id)` in the registry, and its 32-byte Ed25519 seed.

    `repr` never shows the seed.
    """

    def __init__(self, seed32: bytes | str, tenant_id: uuid.UUID | str, agent_id: uuid.UUID | str, key_id: int):
        seed = parse_hex(seed32, 32, "seed") if isinstance(seed32, str) else seed32
        self._signer = Ed25519Signer(seed)
        self.tenant_id = str(parse_uuid(tenant_id, "tenant_id"))
        self.agent_id = str(parse_uuid(agent_id, "agent_id"))
        if isinstance(key_id, bool) or not isinstance(key_id, int) or not 0 <= key_id < 2**32:
            raise InvalidEncoding("Invalid key_id (expected a u32)")
        self.key_id = key_id

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key to register (`POST /api/v1/agents/keys`)."""
        return self._signer.public_key

    @property
    def public_key_hex(self) -> str:
        return to_hex(self.public_key)

    def build_event(
        self,
        store_id: uuid.UUID | str,
        entity_type: str,
        entity_id: str,
        event_type: str,
        payload: object = None,
        *,
        ves_version: int = 1,
        event_id: uuid.UUID | str | None = None,
        created_at: str | None = None,
        command_id: uuid.UUID | str | None = None,
        base_version: int | None = None,
        payload_encrypted: Mapping[str, object] | None = None,
        payload_plain_hash_hex: str | None = None,
        payload_salt: bytes | None = None,
    ) -> dict:
        """A complete signed envelope: every agent-authored field, both payload hashes and `agent_signature`.

        Plaintext: `payload` is sent and hashed with JCS. Encrypted (VES-ENC-1, as the original computes it): pass the
        sealed `payload_encrypted` and either `payload_plain_hash_hex` or the plaintext `payload` with the 16-byte
        `payload_salt` sealed in front of it (hashed salted, never sent); `event_id` and `created_at` MUST be the
        values the ciphertext's AAD was computed with. `command_id` and
        `base_version` are sent with either version but signed only by version 2.
        Raises VesError (CanonicalizationFailed, InvalidEncoding, UnsupportedVesVersion) for unsignable input.
        """
        encrypted = payload_encrypted is not None
        if encrypted:
            if payload_plain_hash_hex is not None:
                plain_hash = parse_hex(payload_plain_hash_hex, 32, "payload_plain_hash")
            elif payload_salt is not None:
                plain_hash = payload_plain_hash_salted(payload, payload_salt)
            else:
                raise InvalidEncoding("An encrypted event needs payload_plain_hash_hex, or payload and payload_salt")
        else:
            plain_hash = payload_plain_hash(payload)
        fields = EventSigningFields(
            ves_version=ves_version,
            tenant_id=parse_uuid(self.tenant_id),
            store_id=parse_uuid(store_id, "store_id"),
            event_id=parse_uuid(event_id, "event_id") if event_id is not None else uuid.uuid4(),
            source_agent_id=parse_uuid(self.agent_id),
            agent_key_id=self.key_id,
            entity_type=entity_type,
            entity_id=entity_id,
            event_type=event_type,
            created_at=created_at if created_at is not None else rfc3339_millis(),
            payload_kind=PAYLOAD_KIND_ENCRYPTED if encrypted else PAYLOAD_KIND_PLAIN,
            payload_plain_hash=plain_hash,
            payload_cipher_hash=ZERO_HASH,
            command_id=parse_uuid(command_id, "command_id") if command_id is not None else None,
            base_version=base_version,
        )
        if encrypted:
            fields = dataclasses.replace(fields, payload_cipher_hash=payload_cipher_hash(payload_encrypted, fields))
        signing_hash = event_signing_hash(fields)
        envelope = {
            "ves_version": fields.ves_version,
            "event_id": str(fields.event_id),
            "tenant_id": str(fields.tenant_id),
            "store_id": str(fields.store_id),
            "source_agent_id": str(fields.source_agent_id),
            "agent_key_id": fields.agent_key_id,
            "entity_type": fields.entity_type,
            "entity_id": fields.entity_id,
            "event_type": fields.event_type,
            "created_at": fields.created_at,
            "payload_kind": fields.payload_kind,
            "payload_plain_hash": to_hex(fields.payload_plain_hash),
            "payload_cipher_hash": to_hex(fields.payload_cipher_hash),
            "agent_signature": to_hex(self._signer.sign(signing_hash)),
        }
        if encrypted:
            envelope["payload_encrypted"] = dict(payload_encrypted)
        else:
            envelope["payload"] = payload
        if command_id is not None:
            envelope["command_id"] = str(fields.command_id)
        if base_version is not None:
            envelope["base_version"] = base_version
        return envelope

    def __repr__(self) -> str:
        return (
            f"AgentSigner(tenant_id={self.tenant_id}, agent_id={self.agent_id}, key_id={self.key_id}, "
            f"public_key={self.public_key_hex})"
        )

