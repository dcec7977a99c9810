"""Agents as the original sequencer knows them: the holders of API keys with an `agent_id`; the audit of public
self-registration; and the bounded aggregate reads of the admin overview (`/api/v1/admin/*`)."""

from __future__ import annotations

import datetime
import uuid

import sqlalchemy as sa
from sqlalchemy import Connection

from app.db.api_keys import ApiKeyRecord
from app.db.tables import agent_registrations
from app.db.tables import api_keys
from app.db.tables import streams

ACTIVE_WINDOW = datetime.timedelta(hours=24)
_KEY_COLUMNS = [api_keys.c[name] for name in (
    "key_id", "key_prefix", "tenant_id", "store_ids", "permissions", "agent_id", "rate_limit", "description",
    "created_at", "revoked_at", "key_hash")]


def api_keys_of_agent(conn: Connection, agent_id: uuid.UUID, tenant_id: uuid.UUID | None = None,
                      limit: int = 1000) -> list[ApiKeyRecord]:
    """The agent's API keys, oldest first (`tenant_id` None: of any tenant), at most `limit`."""
    query = sa.select(*_KEY_COLUMNS).where(api_keys.c.agent_id == agent_id)
    if tenant_id is not None:
        query = query.where(api_keys.c.tenant_id == tenant_id)
    query = query.order_by(api_keys.c.created_at, api_keys.c.key_id).limit(limit)
    return [ApiKeyRecord(**{**row._mapping, "store_ids": tuple(row.store_ids or ())}) for row in conn.execute(query)]


def record_registration(conn: Connection, *, outcome: str, reason: str, client_address: str | None,
                        user_agent: str | None, request_id: str | None, tenant_id: uuid.UUID | None,
                        agent_id: uuid.UUID | None, key_id: uuid.UUID | None, details: dict) -> None:
    conn.execute(agent_registrations.insert().values(
        outcome=outcome, reason=reason, client_address=client_address, user_agent=user_agent, request_id=request_id,
        tenant_id=tenant_id, agent_id=agent_id, key_id=key_id, details=details))


def registrations(conn: Connection, limit: int = 100) -> list[dict]:
    """The latest registration attempts, newest first (for operators and tests)."""
    rows = conn.execute(sa.select(agent_registrations).order_by(agent_registrations.c.id.desc()).limit(limit))
    return [dict(row._mapping) for row in rows]


# --- Admin aggregates ----------------------------------------------------------------------------------------------


def _tenant_filter(column, tenant_id: uuid.UUID | None):
    return sa.true() if tenant_id is None else column == tenant_id


def overview(conn: Connection, tenant_id: uuid.UUID | None, now: datetime.datetime) -> dict:
    since = now - ACTIVE_WINDOW
    stream_row = conn.execute(
        sa.select(sa.func.count(), sa.func.count(sa.distinct(streams.c.tenant_id)),
                  sa.func.coalesce(sa.func.sum(streams.c.head_sequence), 0),
                  sa.func.count().filter(streams.c.updated_at >= since), sa.func.max(streams.c.updated_at))
        .where(_tenant_filter(streams.c.tenant_id, tenant_id))
    ).one()
    key_row = conn.execute(
        sa.select(sa.func.count(), sa.func.count().filter(api_keys.c.revoked_at.is_(None)),
                  sa.func.count(sa.distinct(api_keys.c.agent_id)))
        .where(_tenant_filter(api_keys.c.tenant_id, tenant_id))
    ).one()
    key_tenants = (
        sa.select(api_keys.c.tenant_id).where(api_keys.c.tenant_id.isnot(None),
                                              _tenant_filter(api_keys.c.tenant_id, tenant_id))
        .union(sa.select(streams.c.tenant_id).where(_tenant_filter(streams.c.tenant_id, tenant_id)))
        .subquery()
    )
    tenants = conn.execute(sa.select(sa.func.count()).select_from(key_tenants)).scalar()
    return {"tenants": tenants, "stores": stream_row[0], "agents": key_row[2], "api_keys": key_row[0],
            "active_api_keys": key_row[1], "total_head_sequence": int(stream_row[2]),
            "active_stores_24h": stream_row[3], "max_projection_lag": 0, "last_activity_at": stream_row[4]}


def tenant_summaries(conn: Connection, tenant_id: uuid.UUID | None, now: datetime.datetime, limit: int,
                     offset: int) -> list[dict]:
    since = now - ACTIVE_WINDOW
    key_stats = (
        sa.select(api_keys.c.tenant_id.label("tenant_id"),
                  sa.func.count(sa.distinct(api_keys.c.agent_id)).label("agent_count"),
                  sa.func.count().label("api_key_count"),
                  sa.func.count().filter(api_keys.c.revoked_at.is_(None)).label("active_api_keys"),
                  sa.func.max(api_keys.c.created_at).label("last_key_at"))
        .where(api_keys.c.tenant_id.isnot(None)).group_by(api_keys.c.tenant_id).subquery()
    )
    stream_stats = (
        sa.select(streams.c.tenant_id.label("tenant_id"), sa.func.count().label("store_count"),
                  sa.func.sum(streams.c.head_sequence).label("total_head_sequence"),
                  sa.func.count().filter(streams.c.updated_at >= since).label("active_stores_24h"),
                  sa.func.max(streams.c.updated_at).label("last_activity_at"))
        .group_by(streams.c.tenant_id).subquery()
    )
    tenant = sa.func.coalesce(key_stats.c.tenant_id, stream_stats.c.tenant_id)
    query = (
        sa.select(tenant.label("tenant_id"),
                  sa.func.coalesce(key_stats.c.agent_count, 0).label("agent_count"),
                  sa.func.coalesce(key_stats.c.api_key_count, 0).label("api_key_count"),
                  sa.func.coalesce(key_stats.c.active_api_keys, 0).label("active_api_keys"),
                  sa.func.coalesce(stream_stats.c.store_count, 0).label("store_count"),
                  sa.func.coalesce(stream_stats.c.total_head_sequence, 0).label("total_head_sequence"),
                  sa.func.coalesce(stream_stats.c.active_stores_24h, 0).label("active_stores_24h"),
                  sa.literal(0).label("max_projection_lag"),
                  key_stats.c.last_key_at, stream_stats.c.last_activity_at)
        .select_from(key_stats.join(stream_stats, key_stats.c.tenant_id == stream_stats.c.tenant_id, full=True))
        .where(_tenant_filter(tenant, tenant_id))
        .order_by(tenant).limit(limit).offset(offset)
    )
    return [{**row._mapping, "total_head_sequence": int(row.total_head_sequence)} for row in conn.execute(query)]


def store_summaries(conn: Connection, tenant_id: uuid.UUID | None, limit: int, offset: int) -> list[dict]:
    """Each stream with the number of distinct agents holding a live key that covers it (tenant-wide or listing
    the store). There is no projector, so nothing lags: `last_projected_sequence` is the head."""
    agents = (
        sa.select(sa.func.count(sa.distinct(api_keys.c.agent_id)))
        .where(api_keys.c.tenant_id == streams.c.tenant_id, api_keys.c.revoked_at.is_(None),
               sa.or_(sa.func.cardinality(api_keys.c.store_ids) == 0, streams.c.store_id == sa.func.any(api_keys.c.store_ids)))
        .scalar_subquery()
    )
    query = (
        sa.select(streams.c.tenant_id, streams.c.store_id, streams.c.head_sequence,
                  streams.c.head_sequence.label("last_projected_sequence"), sa.literal(0).label("projection_lag"),
                  agents.label("agent_count"), sa.null().label("last_agent_sync_at"), streams.c.updated_at)
        .where(_tenant_filter(streams.c.tenant_id, tenant_id))
        .order_by(streams.c.tenant_id, streams.c.store_id).limit(limit).offset(offset)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


_RANK = sa.case((api_keys.c.permissions == "admin", 2), (api_keys.c.permissions == "read_write", 1), else_=0)


def agent_summaries(conn: Connection, tenant_id: uuid.UUID | None, limit: int, offset: int) -> list[dict]:
    query = (
        sa.select(api_keys.c.tenant_id, api_keys.c.agent_id,
                  sa.func.max(_RANK).label("rank"),
                  sa.func.bool_or(sa.func.cardinality(api_keys.c.store_ids) == 0).label("all_stores"),
                  sa.func.count().label("api_key_count"),
                  sa.func.count().filter(api_keys.c.revoked_at.is_(None)).label("active_api_keys"),
                  sa.func.min(api_keys.c.created_at).label("first_key_at"),
                  sa.func.max(api_keys.c.created_at).label("last_key_at"))
        .where(api_keys.c.agent_id.isnot(None), api_keys.c.tenant_id.isnot(None),
               _tenant_filter(api_keys.c.tenant_id, tenant_id))
        .group_by(api_keys.c.tenant_id, api_keys.c.agent_id)
        .order_by(api_keys.c.tenant_id, api_keys.c.agent_id).limit(limit).offset(offset)
    )
    names = ("read", "read_write", "admin")
    return [{"tenant_id": row.tenant_id, "agent_id": row.agent_id, "permissions": names[row.rank],
             "store_scope": "all" if row.all_stores else "scoped", "api_key_count": row.api_key_count,
             "active_api_keys": row.active_api_keys, "first_key_at": row.first_key_at,
             "last_key_at": row.last_key_at, "store_id": None, "last_sync_at": None, "last_pushed_sequence": None,
             "last_pulled_sequence": None} for row in conn.execute(query)]
