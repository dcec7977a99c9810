"""Reads of the log, including the long poll that waits for the next event of a stream (LISTEN/NOTIFY)."""

from __future__ import annotations

import select
import time
import uuid

from sqlalchemy import Engine

from app.db import events as event_store
from app.db.events import stream_channel


def read_page(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID, from_sequence: int, limit: int,
              wait_seconds: float = 0.0) -> tuple[list, int]:
    """Events from `from_sequence` (ascending, at most `limit`) and the stream head.

    With `wait_seconds > 0` and nothing at or after `from_sequence`, hold the request open until the stream's
    head passes `from_sequence - 1` or the wait runs out, then read again. The wait never exceeds `wait_seconds`.
    """
    rows, head = _read(engine, tenant_id, store_id, from_sequence, limit)
    if rows or wait_seconds <= 0:
        return rows, head
    if wait_for_head(engine, tenant_id, store_id, from_sequence, wait_seconds):
        rows, head = _read(engine, tenant_id, store_id, from_sequence, limit)
    return rows, head


def _read(engine: Engine, tenant_id, store_id, from_sequence, limit):
    with engine.connect() as conn:
        rows = event_store.read_events(conn, tenant_id, store_id, from_sequence, limit)
        head = event_store.read_stream_head(conn, tenant_id, store_id)
    return rows, head


def wait_for_head(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID, wanted: int, timeout: float) -> bool:
    """Block until the stream's head is at least `wanted` (True) or `timeout` seconds pass (False).

    LISTEN first, then check the head, then wait for NOTIFYs: an event committed between the check and the wait
    still wakes us. The pooled connection is UNLISTENed before it goes back to the pool.
    """
    deadline = time.monotonic() + timeout
    pooled = engine.raw_connection()
    raw = pooled.driver_connection
    previous_autocommit = raw.autocommit
    try:
        raw.autocommit = True
        with raw.cursor() as cursor:
            cursor.execute(f"LISTEN {stream_channel(tenant_id, store_id)}")
            if _head(cursor, tenant_id, store_id) >= wanted:
                return True
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                ready, _, _ = select.select([raw], [], [], remaining)
                if ready:
                    raw.poll()
                    if raw.notifies:
                        raw.notifies.clear()
                        if _head(cursor, tenant_id, store_id) >= wanted:
                            return True
    finally:
        try:
            with raw.cursor() as cursor:
                cursor.execute("UNLISTEN *")
            raw.notifies.clear()
            raw.autocommit = previous_autocommit
        finally:
            pooled.close()


def _head(cursor, tenant_id, store_id) -> int:
    cursor.execute("SELECT head_sequence FROM streams WHERE tenant_id = %s AND store_id = %s",
                   (str(tenant_id), str(store_id)))
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def read_head(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID) -> int:
    with engine.connect() as conn:
        return event_store.read_stream_head(conn, tenant_id, store_id)


def read_entity(engine: Engine, tenant_id, store_id, entity_type: str, entity_id: str, from_sequence: int,
                limit: int) -> tuple[list, int]:
    with engine.connect() as conn:
        rows = event_store.read_entity_events(conn, tenant_id, store_id, entity_type, entity_id, from_sequence, limit)
        version = event_store.read_entity_version(conn, tenant_id, store_id, entity_type, entity_id)
    return rows, version


def read_event(engine: Engine, tenant_id, store_id, event_id: uuid.UUID):
    with engine.connect() as conn:
        return event_store.get_event(conn, tenant_id, store_id, event_id)
