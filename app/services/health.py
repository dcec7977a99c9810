"""Readiness: the database answers and its schema is at Alembic head; and where the read replica stands."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.db.bounds import deadline_at_most
from app.db.migrations import current_revision
from app.db.migrations import head_revision
from app.db.replication import primary_wal_position
from app.db.replication import replay_state
from app.errors import Unavailable

log = logging.getLogger("stateset_sequencer.api")

REPLICA_CHECK_SECONDS = 1.0
"""Longest the readiness check waits for the read replica (connect and answer), so a vanished replica never makes
the probe itself time out."""

REPLICA_STATES = ("current", "behind", "unavailable", "not_in_recovery")


@dataclass(frozen=True)
class ReplicaStatus:
    """`status` is one of REPLICA_STATES; the rest is None when unknown (unavailable, not a standby)."""

    status: str
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    replay_paused: bool | None = None


def check_ready(engine: Engine, read_engine: Engine | None = None) -> dict:
    """`{"response_time_ms", "pool"}` (the original's readiness fields), plus `"replica": ReplicaStatus` with a read
    replica. The replica never makes the instance unready: reads it cannot answer are answered by the primary.

    :raise Unavailable DATABASE_UNAVAILABLE: the database does not answer.
    :raise Unavailable MIGRATIONS_PENDING: its schema is not at Alembic head."""
    started = time.perf_counter()
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        log.warning("readiness check failed: database unreachable", extra={"error_type": type(exc).__name__})
        raise Unavailable("The database is unreachable.", code="DATABASE_UNAVAILABLE") from None
    head = head_revision()
    if revision != head:
        raise Unavailable(f"The database schema is not at head (current: {revision}, head: {head}).",
                          code="MIGRATIONS_PENDING")
    answer = {"response_time_ms": round((time.perf_counter() - started) * 1000, 3), "pool": pool_status(engine)}
    if read_engine is not None:
        answer["replica"] = replica_status(engine, read_engine)
    return answer


def pool_status(engine: Engine) -> dict | None:
    """The original's `pool` of `/ready`: `{status, utilization, active, idle}` of this worker's connection pool
    (None for a pool without a size)."""
    pool = engine.pool
    try:
        size, active, idle = pool.size(), pool.checkedout(), pool.checkedin()
    except AttributeError:
        return None
    utilization = active / size if size else 0.0
    return {"status": "healthy" if utilization < 0.9 else "degraded", "utilization": round(utilization, 3),
            "active": active, "idle": idle}


def replica_status(primary: Engine, replica: Engine) -> ReplicaStatus:
    """How far the replica's replay is behind the primary's WAL, measured within REPLICA_CHECK_SECONDS."""
    try:
        with primary.connect() as conn:
            written = primary_wal_position(conn)
    except SQLAlchemyError as exc:
        log.warning("readiness check failed: database unreachable", extra={"error_type": type(exc).__name__})
        raise Unavailable("The database is unreachable.", code="DATABASE_UNAVAILABLE") from None
    try:
        with deadline_at_most(REPLICA_CHECK_SECONDS), replica.connect() as conn:
            state = replay_state(conn)
    except SQLAlchemyError as exc:
        log.warning("read replica unavailable", extra={"error_type": type(exc).__name__})
        return ReplicaStatus("unavailable")
    if not state.in_recovery or written is None or state.replay_lsn is None:
        return ReplicaStatus("not_in_recovery")
    lag = max(0, written - state.replay_lsn)
    return ReplicaStatus("current" if lag == 0 else "behind", lag, 0.0 if lag == 0 else state.seconds_since_replay,
                         state.replay_paused)
