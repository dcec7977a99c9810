"""API key storage. Only SHA-256 hashes of keys are stored; the secret is shown once at creation."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from app.db.tables import api_keys


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: uuid.UUID
    key_prefix: str
    tenant_id: uuid.UUID | None
    store_ids: tuple[uuid.UUID, ...]
    permissions: str
    agent_id: uuid.UUID | None
    rate_limit: int | None
    description: str | None
    created_at: datetime.datetime
    revoked_at: datetime.datetime | None
    key_hash: bytes = b""


_COLUMNS = [api_keys.c[name] for name in (
    "key_id", "key_prefix", "tenant_id", "store_ids", "permissions", "agent_id", "rate_limit", "description",
    "created_at", "revoked_at", "key_hash")]


def _record(row) -> ApiKeyRecord:
    return ApiKeyRecord(**{**row._mapping, "store_ids": tuple(row.store_ids or ())})


def insert_api_key(conn: Connection, *, key_hash: bytes, key_prefix: str, tenant_id: uuid.UUID | None,
                   store_ids: list[uuid.UUID], permissions: str, agent_id: uuid.UUID | None,
                   rate_limit: int | None, description: str | None) -> ApiKeyRecord:
    row = conn.execute(
        api_keys.insert()
        .values(key_id=uuid.uuid4(), key_hash=key_hash, key_prefix=key_prefix, tenant_id=tenant_id,
                store_ids=store_ids, permissions=permissions, agent_id=agent_id, rate_limit=rate_limit,
                description=description)
        .returning(*_COLUMNS)
    ).one()
    return _record(row)


def find_api_key_by_hash(conn: Connection, key_hash: bytes) -> ApiKeyRecord | None:
    row = conn.execute(sa.select(*_COLUMNS).where(api_keys.c.key_hash == key_hash)).one_or_none()
    return _record(row) if row else None


def list_api_keys(conn: Connection, tenant_id: uuid.UUID | None) -> list[ApiKeyRecord]:
    query = sa.select(*_COLUMNS).order_by(api_keys.c.created_at, api_keys.c.key_id)
    if tenant_id is not None:
        query = query.where(api_keys.c.tenant_id == tenant_id)
    return [_record(row) for row in conn.execute(query)]


def list_api_keys_after(conn: Connection, tenant_id: uuid.UUID | None, after: tuple | None, limit: int
                        ) -> list[ApiKeyRecord]:
    """`list_api_keys` from just after `after` (`(created_at, key_id)` of the last key seen), at most `limit`."""
    query = sa.select(*_COLUMNS).order_by(api_keys.c.created_at, api_keys.c.key_id).limit(limit)
    if tenant_id is not None:
        query = query.where(api_keys.c.tenant_id == tenant_id)
    if after is not None:
        query = query.where(sa.tuple_(api_keys.c.created_at, api_keys.c.key_id) > sa.tuple_(*after))
    return [_record(row) for row in conn.execute(query)]


def get_api_key(conn: Connection, key_id: uuid.UUID) -> ApiKeyRecord | None:
    row = conn.execute(sa.select(*_COLUMNS).where(api_keys.c.key_id == key_id)).one_or_none()
    return _record(row) if row else None


def revoke_api_key(conn: Connection, key_id: uuid.UUID) -> bool:
    """Set `revoked_at` (first revocation wins). True when the key exists."""
    result = conn.execute(
        api_keys.update()
        .where(api_keys.c.key_id == key_id)
        .values(revoked_at=sa.func.coalesce(api_keys.c.revoked_at, sa.func.now()))
    )
    return result.rowcount == 1


def change_witnesses(conn: Connection, listener_application_name: str) -> tuple[str, set[int]]:
    """In the transaction changing api_keys: its txid (the NOTIFY payload of the trigger) and the backend pids of
    every listener connection open on this database now (each of them must acknowledge the change)."""
    row = conn.execute(sa.text(
        "SELECT txid_current()::text, coalesce(array_agg(pid), '{}') FROM pg_stat_activity "
        "WHERE application_name = :name AND datname = current_database()"), {"name": listener_application_name}).one()
    return row[0], set(row[1])
