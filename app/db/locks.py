"""PostgreSQL advisory-lock keys and helpers.

Each lock purpose has its own domain tag, so a sequencing lock can never collide with a commitment lock for the
same stream. Keys are signed 64-bit integers (what `pg_advisory_*lock(bigint)` takes).
"""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import Connection
from sqlalchemy import text

MIGRATION_LOCK_KEY = 0x5345515F4D494752  # "SEQ_MIGR"
ANCHOR_RUN_LOCK_KEY = 0x5345515F414E4348  # "SEQ_ANCH"


def _key(tag: bytes, tenant_id: uuid.UUID, store_id: uuid.UUID) -> int:
    digest = hashlib.sha256(tag + tenant_id.bytes + store_id.bytes).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def stream_lock_key(tenant_id: uuid.UUID, store_id: uuid.UUID) -> int:
    """Lock key serialising sequence allocation for one stream."""
    return _key(b"SEQ_STREAM_LOCK_V1", tenant_id, store_id)


def commitment_lock_key(tenant_id: uuid.UUID, store_id: uuid.UUID) -> int:
    """Lock key serialising commitment creation for one stream (separate key space from sequencing)."""
    return _key(b"SEQ_COMMIT_LOCK_V1", tenant_id, store_id)


def checkpoint_lock_key(tenant_id: uuid.UUID, store_id: uuid.UUID) -> int:
    """Lock key serialising checkpoint signing for one stream (its own key space: signing never waits for
    sequencing, nor sequencing for signing)."""
    return _key(b"SEQ_CHECKPOINT_LOCK_V1", tenant_id, store_id)


def lock_transaction(conn: Connection, key: int) -> None:
    """Take `pg_advisory_xact_lock(key)`.

    MUST run inside a transaction; the lock is released at commit or rollback. Callers that need several locks
    MUST take them in ascending key order so that two transactions never deadlock.
    """
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def set_lock_timeout(conn: Connection, milliseconds: int) -> None:
    """Bound how long this transaction waits for any lock (PostgreSQL raises SQLSTATE 55P03 after it)."""
    conn.execute(text("SELECT set_config('lock_timeout', :v, true)"), {"v": f"{int(milliseconds)}ms"})


def try_lock_transaction(conn: Connection, key: int) -> bool:
    """Try `pg_try_advisory_xact_lock(key)`; True when taken, held until the transaction ends. MUST run inside a
    transaction. Transaction-level (never session-level) locks are what hold through a transaction-pooling PgBouncer.
    """
    return bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar())
