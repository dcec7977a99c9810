"""Payload schema registry: versioned JSON Schemas per `(tenant_id, event_type)`; versions start at 1."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from app.db.tables import event_schemas


@dataclass(frozen=True)
class SchemaRecord:
    tenant_id: uuid.UUID
    event_type: str
    version: int
    schema: dict
    created_at: datetime.datetime
    id: uuid.UUID | None = None
    description: str | None = None
    compatibility: str = "backward"
    status: str = "active"
    updated_at: datetime.datetime | None = None
    created_by: str | None = None


_COLUMNS = [event_schemas.c[n] for n in ("tenant_id", "event_type", "version", "schema", "created_at", "id",
                                         "description", "compatibility", "status", "updated_at", "created_by")]


def insert_schema_version(conn: Connection, tenant_id: uuid.UUID, event_type: str, schema: dict,
                          description: str | None = None, compatibility: str = "backward") -> SchemaRecord:
    """Store `schema` as the next version. Callers MUST hold a lock that serialises writers of this event type."""
    current = conn.execute(
        sa.select(sa.func.max(event_schemas.c.version)).where(
            event_schemas.c.tenant_id == tenant_id, event_schemas.c.event_type == event_type)
    ).scalar()
    row = conn.execute(
        event_schemas.insert()
        .values(tenant_id=tenant_id, event_type=event_type, version=(current or 0) + 1, schema=schema,
                description=description, compatibility=compatibility)
        .returning(*_COLUMNS)
    ).one()
    return SchemaRecord(**row._mapping)


def list_schemas(conn: Connection, tenant_id: uuid.UUID, event_type: str | None = None) -> list[SchemaRecord]:
    query = sa.select(*_COLUMNS).where(event_schemas.c.tenant_id == tenant_id)
    if event_type is not None:
        query = query.where(event_schemas.c.event_type == event_type)
    query = query.order_by(event_schemas.c.event_type, event_schemas.c.version)
    return [SchemaRecord(**row._mapping) for row in conn.execute(query)]


def list_schema_sizes(conn: Connection, tenant_id: uuid.UUID, event_type: str | None = None
                      ) -> list[tuple[str, int, int]]:
    """`(event_type, version, bytes of the schema as JSON text)` of each version, in `list_schemas` order, without
    the bodies (which may be large: every version of every type, each up to the request body limit)."""
    query = sa.select(event_schemas.c.event_type, event_schemas.c.version,
                      sa.func.octet_length(sa.cast(event_schemas.c.schema, sa.Text))
                      ).where(event_schemas.c.tenant_id == tenant_id)
    if event_type is not None:
        query = query.where(event_schemas.c.event_type == event_type)
    query = query.order_by(event_schemas.c.event_type, event_schemas.c.version)
    return [(row[0], int(row[1]), int(row[2] or 0)) for row in conn.execute(query)]


def schemas_by_key(conn: Connection, tenant_id: uuid.UUID, keys: list[tuple[str, int]]) -> list[SchemaRecord]:
    """The versions named by `(event_type, version)` keys, in the order of `keys`."""
    if not keys:
        return []
    rows = conn.execute(sa.select(*_COLUMNS).where(
        event_schemas.c.tenant_id == tenant_id,
        sa.tuple_(event_schemas.c.event_type, event_schemas.c.version).in_(keys)))
    found = {(row.event_type, row.version): SchemaRecord(**row._mapping) for row in rows}
    return [found[key] for key in keys if key in found]


def get_schema(conn: Connection, tenant_id: uuid.UUID, event_type: str, version: int) -> SchemaRecord | None:
    row = conn.execute(
        sa.select(*_COLUMNS).where(event_schemas.c.tenant_id == tenant_id, event_schemas.c.event_type == event_type,
                                   event_schemas.c.version == version)
    ).one_or_none()
    return SchemaRecord(**row._mapping) if row else None


def latest_versions(conn: Connection, pairs: set[tuple[uuid.UUID, str]]) -> dict[tuple[uuid.UUID, str], int]:
    """Latest version number for each `(tenant_id, event_type)` that has a schema."""
    if not pairs:
        return {}
    rows = conn.execute(
        sa.select(event_schemas.c.tenant_id, event_schemas.c.event_type, sa.func.max(event_schemas.c.version))
        .where(sa.tuple_(event_schemas.c.tenant_id, event_schemas.c.event_type).in_(sorted(pairs, key=str)))
        .group_by(event_schemas.c.tenant_id, event_schemas.c.event_type)
    )
    return {(r[0], r[1]): int(r[2]) for r in rows}


def get_schema_by_id(conn: Connection, schema_id: uuid.UUID) -> SchemaRecord | None:
    row = conn.execute(sa.select(*_COLUMNS).where(event_schemas.c.id == schema_id)).one_or_none()
    return SchemaRecord(**row._mapping) if row else None


def latest_schema(conn: Connection, tenant_id: uuid.UUID, event_type: str,
                  active_only: bool = False) -> SchemaRecord | None:
    query = sa.select(*_COLUMNS).where(event_schemas.c.tenant_id == tenant_id,
                                       event_schemas.c.event_type == event_type)
    if active_only:
        query = query.where(event_schemas.c.status == "active")
    row = conn.execute(query.order_by(event_schemas.c.version.desc()).limit(1)).one_or_none()
    return SchemaRecord(**row._mapping) if row else None


def update_schema_status(conn: Connection, schema_id: uuid.UUID, status: str) -> bool:
    result = conn.execute(event_schemas.update().where(event_schemas.c.id == schema_id)
                          .values(status=status, updated_at=sa.func.now()))
    return result.rowcount > 0


def delete_schema(conn: Connection, schema_id: uuid.UUID) -> bool:
    return conn.execute(event_schemas.delete().where(event_schemas.c.id == schema_id)).rowcount > 0
