"""Agent signing keys (the VES key registry), keyed by `(tenant_id, agent_id, key_id)`. Rows are never deleted:
revocation sets `revoked_at`, so events signed before it stay verifiable."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.db.tables import agent_keys


@dataclass(frozen=True)
class AgentKeyRecord:
    tenant_id: uuid.UUID
    agent_id: uuid.UUID
    key_id: int
    public_key: bytes
    valid_from: datetime.datetime | None
    valid_to: datetime.datetime | None
    revoked_at: datetime.datetime | None
    created_at: datetime.datetime

    def status_at(self, moment: datetime.datetime) -> str:
        """`valid`, `revoked` or `not_valid` (outside [valid_from, valid_to]) at `moment` (VES.md rule 3)."""
        if self.revoked_at is not None and self.revoked_at <= moment:
            return "revoked"
        if self.valid_from is not None and moment < self.valid_from:
            return "not_valid"
        if self.valid_to is not None and moment > self.valid_to:
            return "not_valid"
        return "valid"


def _record(row) -> AgentKeyRecord:
    return AgentKeyRecord(**row._mapping)


_COLUMNS = [agent_keys.c[n] for n in ("tenant_id", "agent_id", "key_id", "public_key", "valid_from", "valid_to",
                                      "revoked_at", "created_at")]


def insert_agent_key_if_absent(conn: Connection, tenant_id: uuid.UUID, agent_id: uuid.UUID, key_id: int,
                               public_key: bytes, valid_from, valid_to) -> tuple[AgentKeyRecord, bool]:
    """Insert the key unless `(tenant, agent, key_id)` exists. Returns `(stored record, created)`."""
    inserted = conn.execute(
        pg_insert(agent_keys)
        .values(tenant_id=tenant_id, agent_id=agent_id, key_id=key_id, public_key=public_key,
                valid_from=valid_from, valid_to=valid_to)
        .on_conflict_do_nothing(index_elements=["tenant_id", "agent_id", "key_id"])
        .returning(*_COLUMNS)
    ).one_or_none()
    if inserted is not None:
        return _record(inserted), True
    return get_agent_key(conn, tenant_id, agent_id, key_id), False


def get_agent_key(conn: Connection, tenant_id: uuid.UUID, agent_id: uuid.UUID, key_id: int) -> AgentKeyRecord | None:
    row = conn.execute(
        sa.select(*_COLUMNS).where(agent_keys.c.tenant_id == tenant_id, agent_keys.c.agent_id == agent_id,
                                   agent_keys.c.key_id == key_id)
    ).one_or_none()
    return _record(row) if row else None


def find_agent_keys(conn: Connection, tenant_id: uuid.UUID,
                    coordinates: set[tuple[uuid.UUID, int]]) -> dict[tuple[uuid.UUID, int], AgentKeyRecord]:
    """Load the keys named by `(agent_id, key_id)` pairs of one tenant in one query."""
    if not coordinates:
        return {}
    pairs = sa.tuple_(agent_keys.c.agent_id, agent_keys.c.key_id).in_(sorted(coordinates, key=str))
    rows = conn.execute(sa.select(*_COLUMNS).where(agent_keys.c.tenant_id == tenant_id, pairs))
    return {(r.agent_id, r.key_id): _record(r) for r in rows}


def list_agent_keys(conn: Connection, tenant_id: uuid.UUID, agent_id: uuid.UUID | None = None) -> list[AgentKeyRecord]:
    query = sa.select(*_COLUMNS).where(agent_keys.c.tenant_id == tenant_id)
    if agent_id is not None:
        query = query.where(agent_keys.c.agent_id == agent_id)
    return [_record(r) for r in conn.execute(query.order_by(agent_keys.c.agent_id, agent_keys.c.key_id))]


def list_agent_keys_after(conn: Connection, tenant_id: uuid.UUID, agent_id: uuid.UUID | None, after: tuple | None,
                          limit: int) -> list[AgentKeyRecord]:
    """`list_agent_keys` from just after `after` (`(agent_id, key_id)` of the last key seen), at most `limit`."""
    query = sa.select(*_COLUMNS).where(agent_keys.c.tenant_id == tenant_id)
    if agent_id is not None:
        query = query.where(agent_keys.c.agent_id == agent_id)
    if after is not None:
        query = query.where(sa.tuple_(agent_keys.c.agent_id, agent_keys.c.key_id) > sa.tuple_(*after))
    return [_record(r) for r in conn.execute(query.order_by(agent_keys.c.agent_id, agent_keys.c.key_id).limit(limit))]


def revoke_agent_key(conn: Connection, tenant_id: uuid.UUID, agent_id: uuid.UUID, key_id: int) -> AgentKeyRecord | None:
    """Set `revoked_at` now unless already revoked (the first revocation time is kept)."""
    row = conn.execute(
        agent_keys.update()
        .where(agent_keys.c.tenant_id == tenant_id, agent_keys.c.agent_id == agent_id, agent_keys.c.key_id == key_id)
        .values(revoked_at=sa.func.coalesce(agent_keys.c.revoked_at, sa.func.now()))
        .returning(*_COLUMNS)
    ).one_or_none()
    return _record(row) if row else None
