"""The event log: sequence allocation and reads. Every function takes a Connection inside the caller's transaction.

Writers MUST hold the stream's advisory lock (`locks.lock_transaction(conn, stream_lock_key(...))`) before
`read_stream_head`; the primary key `(tenant_id, store_id, sequence_number)` is the backstop if they ever do not.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from psycopg2.extras import Json
from psycopg2.extras import execute_values
from sqlalchemy import Connection

from app.db.engine import dbapi_cursor
from app.db.tables import entity_versions
from app.db.tables import events
from app.db.tables import streams


@dataclass(frozen=True)
class ExistingEvent:
    """What idempotency checks need of an already-sequenced event."""

    event_id: uuid.UUID
    command_id: uuid.UUID | None
    sequence_number: int
    event_signing_hash: bytes
    agent_signature: bytes | None
    receipt_hash: bytes
    sequencer_signature: bytes | None
    sequenced_at: object
    sequencer_key_version: int = 0


def stream_channel(tenant_id: uuid.UUID, store_id: uuid.UUID) -> str:
    """The LISTEN/NOTIFY channel of one stream (a valid identifier, under PostgreSQL's 63-byte limit)."""
    return "ves_" + hashlib.sha256(tenant_id.bytes + store_id.bytes).hexdigest()[:40]


def read_stream_head(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, create: bool = False) -> int:
    """The stream's head (0 for an empty or unknown stream). With `create`, the `streams` row is made if missing,
    in the same statement (one round trip on the sequencing path)."""
    if create:
        head = conn.execute(_CREATE_AND_READ_HEAD, {"t": tenant_id, "s": store_id}).scalar()
    else:
        head = conn.execute(
            sa.select(streams.c.head_sequence).where(streams.c.tenant_id == tenant_id,
                                                     streams.c.store_id == store_id)
        ).scalar()
    return int(head or 0)


_CREATE_AND_READ_HEAD = sa.text(
    "WITH created AS (INSERT INTO streams (tenant_id, store_id) VALUES (:t, :s) "
    "ON CONFLICT (tenant_id, store_id) DO NOTHING RETURNING head_sequence) "
    "SELECT head_sequence FROM created UNION ALL "
    "SELECT head_sequence FROM streams WHERE tenant_id = :t AND store_id = :s"
).bindparams(sa.bindparam("t", type_=sa.Uuid), sa.bindparam("s", type_=sa.Uuid))


def find_existing_events(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, event_ids: list[uuid.UUID],
                         command_ids: list[uuid.UUID]) -> list[ExistingEvent]:
    """Sequenced events of the stream whose event_id or command_id is among those given."""
    condition = events.c.event_id.in_(event_ids)
    if command_ids:
        condition = sa.or_(condition, events.c.command_id.in_(command_ids))
    rows = conn.execute(
        sa.select(events.c.event_id, events.c.command_id, events.c.sequence_number, events.c.event_signing_hash,
                  events.c.agent_signature, events.c.receipt_hash, events.c.sequencer_signature,
                  events.c.sequenced_at, events.c.sequencer_key_version)
        .where(events.c.tenant_id == tenant_id, events.c.store_id == store_id, condition)
    )
    return [ExistingEvent(**row._mapping) for row in rows]


def read_entity_versions(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID,
                         entities: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Current versions (number of events so far) of the given `(entity_type, entity_id)`s; absent means 0."""
    if not entities:
        return {}
    rows = conn.execute(
        sa.select(entity_versions.c.entity_type, entity_versions.c.entity_id, entity_versions.c.version).where(
            entity_versions.c.tenant_id == tenant_id,
            entity_versions.c.store_id == store_id,
            sa.tuple_(entity_versions.c.entity_type, entity_versions.c.entity_id).in_(sorted(entities)),
        )
    )
    return {(r.entity_type, r.entity_id): int(r.version) for r in rows}


EVENT_COLUMNS = [column.name for column in events.c]
_JSON_COLUMNS = frozenset(column.name for column in events.c if isinstance(column.type, sa.JSON))
_INSERT_EVENTS = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES %s"
_UPSERT_ENTITY_VERSIONS = (
    "INSERT INTO entity_versions (tenant_id, store_id, entity_type, entity_id, version) VALUES %s "
    "ON CONFLICT (tenant_id, store_id, entity_type, entity_id) DO UPDATE SET version = EXCLUDED.version"
)


def sql_value(name: str, value):
    if value is None:
        return None
    if name in _JSON_COLUMNS:
        return Json(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _execute_values(conn: Connection, statement: str, values: list[tuple]) -> None:
    """One multi-row statement through psycopg2's `execute_values`, on the transaction's own DBAPI connection.

    Measured in bench/ (docs/PERFORMANCE.md): SQLAlchemy's executemany sends an upsert as one round trip per row,
    and its per-row bind processing costs about a third of the insert time of a 100-event batch.
    """
    with dbapi_cursor(conn) as cursor:
        execute_values(cursor, statement, values, page_size=1000)


def insert_events(conn: Connection, rows: list[dict]) -> None:
    """Append rows (dicts keyed by `events` column names) with one multi-row INSERT."""
    if rows:
        _execute_values(conn, _INSERT_EVENTS,
                        [tuple(sql_value(name, row.get(name)) for name in EVENT_COLUMNS) for row in rows])


def save_entity_versions(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID,
                         versions: dict[tuple[str, str], int]) -> None:
    """Upsert the entities' new versions with one statement."""
    if versions:
        _execute_values(conn, _UPSERT_ENTITY_VERSIONS, [
            (str(tenant_id), str(store_id), entity_type, entity_id, version)
            for (entity_type, entity_id), version in sorted(versions.items())
        ])


def advance_stream_head(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, head: int) -> None:
    """Move the head and NOTIFY the stream's long-poll listeners (delivered at commit, never before), in one
    statement."""
    conn.execute(_ADVANCE_HEAD_AND_NOTIFY, {"t": tenant_id, "s": store_id, "h": head,
                                            "channel": stream_channel(tenant_id, store_id), "payload": str(head)})


_ADVANCE_HEAD_AND_NOTIFY = sa.text(
    "WITH moved AS (UPDATE streams SET head_sequence = :h, updated_at = now() "
    "WHERE tenant_id = :t AND store_id = :s RETURNING 1) "
    "SELECT pg_notify(:channel, :payload) FROM moved"
).bindparams(sa.bindparam("t", type_=sa.Uuid), sa.bindparam("s", type_=sa.Uuid))


_READ_COLUMNS = [c for c in events.c]


def read_events(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, from_sequence: int, limit: int,
                to_sequence: int | None = None) -> list:
    """Events with `sequence_number >= from_sequence` in ascending order, at most `limit`."""
    query = (
        sa.select(*_READ_COLUMNS)
        .where(events.c.tenant_id == tenant_id, events.c.store_id == store_id,
               events.c.sequence_number >= from_sequence)
        .order_by(events.c.sequence_number)
        .limit(limit)
    )
    if to_sequence is not None:
        query = query.where(events.c.sequence_number <= to_sequence)
    return list(conn.execute(query))


def read_entity_events(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, entity_type: str,
                       entity_id: str, from_sequence: int, limit: int, max_bytes: int | None = None,
                       offset: int = 0) -> list:
    """One entity's events in sequence order from `from_sequence`, skipping `offset` of them (served by
    idx_events_entity); with `max_bytes`, cut as `read_events_within` cuts."""
    query = (
        sa.select(*_READ_COLUMNS)
        .where(events.c.tenant_id == tenant_id, events.c.store_id == store_id, events.c.entity_type == entity_type,
               events.c.entity_id == entity_id, events.c.sequence_number >= from_sequence)
        .order_by(events.c.sequence_number)
        .offset(offset)
        .limit(limit)
    )
    return list(conn.execute(query)) if max_bytes is None else _within(conn, query, max_bytes)


_STORED_BYTES = (sa.func.coalesce(sa.func.octet_length(sa.cast(events.c.payload, sa.Text)), 0)
                 + sa.func.coalesce(sa.func.octet_length(sa.cast(events.c.payload_encrypted, sa.Text)), 0)
                 ).label("stored_bytes")
_STREAM_BATCH = 8


def read_events_within(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, from_sequence: int, limit: int,
                       max_bytes: int) -> list:
    """`read_events`, cut before the payloads of the rows reach `max_bytes` (always at least one row).

    The rows come through a server-side cursor, `_STREAM_BATCH` at a time, so the worker never holds more than the
    page it answers plus one batch, whatever `limit` and the payload sizes are (psycopg2 would otherwise buffer the
    whole result: 1,000 events of 1 MB)."""
    query = (
        sa.select(*_READ_COLUMNS)
        .where(events.c.tenant_id == tenant_id, events.c.store_id == store_id,
               events.c.sequence_number >= from_sequence)
        .order_by(events.c.sequence_number)
        .limit(limit)
    )
    return _within(conn, query, max_bytes)


def _within(conn: Connection, query, max_bytes: int) -> list:
    rows, total = [], 0
    result = conn.execute(query.add_columns(_STORED_BYTES).execution_options(
        stream_results=True, max_row_buffer=_STREAM_BATCH, yield_per=_STREAM_BATCH))
    try:
        for row in result:
            if rows and total + row.stored_bytes > max_bytes:
                break
            rows.append(row)
            total += row.stored_bytes
    finally:
        result.close()
    return rows


def read_entity_version(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, entity_type: str,
                        entity_id: str) -> int:
    return int(conn.execute(
        sa.select(entity_versions.c.version).where(
            entity_versions.c.tenant_id == tenant_id, entity_versions.c.store_id == store_id,
            entity_versions.c.entity_type == entity_type, entity_versions.c.entity_id == entity_id)
    ).scalar() or 0)


def get_event(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, event_id: uuid.UUID):
    return conn.execute(
        sa.select(*_READ_COLUMNS).where(events.c.tenant_id == tenant_id, events.c.store_id == store_id,
                                        events.c.event_id == event_id)
    ).one_or_none()
