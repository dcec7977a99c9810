"""Where a streaming replica stands relative to its primary (PostgreSQL's own WAL positions; no logic of ours)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection


@dataclass(frozen=True)
class ReplayState:
    """A database as a read replica sees itself. `replay_lsn` is None when it is not in recovery (not a standby);
    `seconds_since_replay`: since the last transaction it replayed committed on the primary (None: none yet)."""

    in_recovery: bool
    replay_lsn: int | None
    replay_paused: bool
    seconds_since_replay: float | None


def lsn_value(text: str | None) -> int | None:
    """A `pg_lsn` such as `0/3000148` as a byte position."""
    if text is None:
        return None
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def primary_wal_position(conn: Connection) -> int | None:
    """The primary's current WAL write position (None on a server in recovery, which has none of its own)."""
    return lsn_value(conn.execute(sa.text(
        "SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END")).scalar())


def replay_state(conn: Connection) -> ReplayState:
    row = conn.execute(sa.text(
        "SELECT pg_is_in_recovery() AS in_recovery, pg_last_wal_replay_lsn()::text AS replay_lsn, "
        "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END AS paused, "
        "EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8 AS since")).one()
    return ReplayState(bool(row.in_recovery), lsn_value(row.replay_lsn), bool(row.paused),
                       None if row.since is None else max(0.0, float(row.since)))
