"""Receipt-signing key versions (`sequencer_keys`, docs/KEYS.md)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from app.db.tables import sequencer_keys


@dataclass(frozen=True)
class SequencerKeyRecord:
    version: int
    public_key: bytes
    valid_from: datetime.datetime
    retired_at: datetime.datetime | None


_COLUMNS = [sequencer_keys.c[n] for n in ("version", "public_key", "valid_from", "retired_at")]

_REGISTER = sa.text(
    "INSERT INTO sequencer_keys (version, public_key) "
    "SELECT COALESCE(MAX(version), 0) + 1, :pk FROM sequencer_keys "
    "WHERE NOT EXISTS (SELECT 1 FROM sequencer_keys WHERE public_key = :pk) "
    "ON CONFLICT DO NOTHING"
).bindparams(sa.bindparam("pk", type_=sa.LargeBinary))


def _record(row) -> SequencerKeyRecord:
    return SequencerKeyRecord(row.version, bytes(row.public_key), row.valid_from, row.retired_at)


def find_by_public_key(conn: Connection, public_key: bytes) -> SequencerKeyRecord | None:
    row = conn.execute(sa.select(*_COLUMNS).where(sequencer_keys.c.public_key == public_key)).one_or_none()
    return _record(row) if row else None


def register(conn: Connection, public_key: bytes) -> SequencerKeyRecord:
    """The key's record, registering it as the next version when it is new. Concurrent registrations of different
    keys both succeed (the loser of a version number retries with the next)."""
    for _ in range(20):
        conn.execute(_REGISTER, {"pk": public_key})
        record = find_by_public_key(conn, public_key)
        if record is not None:
            return record
    raise RuntimeError("could not register the receipt signing key")  # pragma: no cover - 20 lost races


def list_keys(conn: Connection) -> list[SequencerKeyRecord]:
    return [_record(row) for row in conn.execute(sa.select(*_COLUMNS).order_by(sequencer_keys.c.version))]


def retire(conn: Connection, version: int, cutoff: datetime.datetime) -> SequencerKeyRecord | None:
    """Set the version's cutoff (an earlier existing cutoff is kept: a retirement can only move earlier)."""
    row = conn.execute(
        sequencer_keys.update().where(sequencer_keys.c.version == version)
        .values(retired_at=sa.func.least(sa.func.coalesce(sequencer_keys.c.retired_at, cutoff), cutoff))
        .returning(*_COLUMNS)
    ).one_or_none()
    return _record(row) if row else None
