"""Creating, listing and revoking API keys (used by the admin API and the admin CLI)."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import Engine

from app.auth import PERMISSIONS
from app.auth import generate_api_key
from app.auth import hash_api_key
from app.auth import key_display_prefix
from app.db import api_keys as store
from app.db.api_keys import ApiKeyRecord
from app.errors import BadRequest

audit = logging.getLogger("stateset_sequencer.audit")


def create_api_key(engine: Engine, *, tenant_id: uuid.UUID | None, permissions: str,
                   store_ids: list[uuid.UUID] | None = None, agent_id: uuid.UUID | None = None,
                   rate_limit: int | None = None, description: str | None = None) -> tuple[str, ApiKeyRecord]:
    """Create a key and return `(secret, record)`. The secret exists only in the return value."""
    if permissions not in PERMISSIONS:
        raise BadRequest(f"permissions must be one of {', '.join(PERMISSIONS)}.", code="INVALID_REQUEST")
    if tenant_id is None and permissions != "admin":
        raise BadRequest("Only admin keys may omit tenant_id.", code="INVALID_REQUEST")
    secret = generate_api_key()
    with engine.begin() as conn:
        record = store.insert_api_key(
            conn, key_hash=hash_api_key(secret), key_prefix=key_display_prefix(secret), tenant_id=tenant_id,
            store_ids=sorted(set(store_ids or []), key=str), permissions=permissions, agent_id=agent_id,
            rate_limit=rate_limit, description=description,
        )
    audit.info("API key created", extra={"key_id": str(record.key_id), "key_prefix": record.key_prefix,
                                         "tenant_id": str(tenant_id) if tenant_id else None,
                                         "permissions": permissions})
    return secret, record


def list_api_keys(engine: Engine, tenant_id: uuid.UUID | None) -> list[ApiKeyRecord]:
    with engine.connect() as conn:
        return store.list_api_keys(conn, tenant_id)


def get_api_key(engine: Engine, key_id: uuid.UUID) -> ApiKeyRecord | None:
    with engine.connect() as conn:
        return store.get_api_key(conn, key_id)


def revoke_api_key(engine: Engine, key_id: uuid.UUID) -> bool:
    with engine.begin() as conn:
        found = store.revoke_api_key(conn, key_id)
    if found:
        audit.info("API key revoked", extra={"key_id": str(key_id)})
    return found
