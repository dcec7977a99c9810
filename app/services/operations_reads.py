"""Operator reads of the original sequencer: `/health/detailed` and the `/api/v1/admin/*` overview, tenants, stores
and agents (bounded pages). A tenant admin sees its own tenant only; a global admin (`tenant_id` None) every one."""

from __future__ import annotations

import datetime
import time
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app import __version__
from app.db import agents as store
from app.errors import Unavailable

DEGRADED_AFTER_MS = 100
UNHEALTHY_AFTER_MS = 500
"""The original's thresholds on the database round trip."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def overview(engine: Engine, tenant_id: uuid.UUID | None) -> dict:
    with engine.connect() as conn:
        return store.overview(conn, tenant_id, _now())


def tenants(engine: Engine, tenant_id: uuid.UUID | None, limit: int, offset: int) -> list[dict]:
    with engine.connect() as conn:
        return store.tenant_summaries(conn, tenant_id, _now(), limit, offset)


def stores(engine: Engine, tenant_id: uuid.UUID | None, limit: int, offset: int) -> list[dict]:
    with engine.connect() as conn:
        return store.store_summaries(conn, tenant_id, limit, offset)


def agents(engine: Engine, tenant_id: uuid.UUID | None, limit: int, offset: int) -> list[dict]:
    with engine.connect() as conn:
        return store.agent_summaries(conn, tenant_id, limit, offset)


@dataclass(frozen=True)
class Component:
    name: str
    status: str
    message: str | None = None
    response_time_ms: int | None = None


@dataclass(frozen=True)
class Pool:
    status: str
    total_connections: int
    active_connections: int
    idle_connections: int
    max_connections: int
    utilization_percent: float


@dataclass(frozen=True)
class Components:
    database: Component
    pool: Pool
    anchor_service: Component | None


@dataclass(frozen=True)
class DetailedHealth:
    status: str
    version: str
    timestamp: datetime.datetime
    components: Components


def detailed_health(engine: Engine, anchoring_configured: bool) -> DetailedHealth:
    """The database round trip (healthy < 100 ms, degraded < 500 ms), this worker's pool, and whether anchoring is
    configured (never contacts the chain).

    :raise Unavailable UNHEALTHY: the database does not answer or answers in 500 ms or more.
    """
    started = time.monotonic()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except SQLAlchemyError:
        raise Unavailable("Unhealthy: the database is unreachable.", code="UNHEALTHY", retry_after=5) from None
    elapsed_ms = int((time.monotonic() - started) * 1000)
    if elapsed_ms >= UNHEALTHY_AFTER_MS:
        raise Unavailable(f"Unhealthy: the database answered in {elapsed_ms} ms.", code="UNHEALTHY", retry_after=5)
    db_status = "healthy" if elapsed_ms < DEGRADED_AFTER_MS else "degraded"
    pool = engine.pool
    size = pool.size() if hasattr(pool, "size") else 0
    out = pool.checkedout() if hasattr(pool, "checkedout") else 0
    idle = pool.checkedin() if hasattr(pool, "checkedin") else 0
    utilisation = round(100.0 * out / size, 1) if size else 0.0
    pool_status = "healthy" if utilisation < 80.0 else "degraded"
    anchor = (Component("anchor_service", "healthy", "Anchoring is configured (the chain is not contacted here).")
              if anchoring_configured else None)
    overall = "healthy" if db_status == pool_status == "healthy" else "degraded"
    return DetailedHealth(overall, __version__, _now(), Components(
        Component("postgresql", db_status, None, elapsed_ms),
        Pool(pool_status, out + idle, out, idle, size, min(100.0, utilisation)), anchor))
