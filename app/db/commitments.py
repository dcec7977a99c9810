"""Batch commitments storage (VES.md §Merkle commitments, DESIGN.md §Commitments and proofs).

Functions take a `Connection` and never commit: the caller owns the transaction and takes
`commitment_lock_key` before anything that allocates a range. Hashes are raw bytes. A row is immutable once inserted
except for its anchoring columns, which `mark_anchored` sets once.
"""

from __future__ import annotations

import datetime
import uuid

import sqlalchemy as sa
from sqlalchemy import Connection

from app.commitment import Commitment
from app.db.tables import batch_commitments
from app.db.tables import events
from app.db.tables import stream_fences
from app.db.tables import streams

_COLUMNS = [batch_commitments.c[name] for name in (
    "batch_id", "tenant_id", "store_id", "ves_version", "sequence_start", "sequence_end", "leaf_count",
    "padded_leaf_count", "tree_depth", "merkle_root", "prev_state_root", "new_state_root", "committed_at",
    "chain_id", "chain_tx_hash", "chain_block_number", "anchored_at")]
_BYTES_FIELDS = ("merkle_root", "prev_state_root", "new_state_root", "chain_tx_hash")


def _record(row) -> Commitment:
    values = dict(row._mapping)
    for name in _BYTES_FIELDS:
        if values[name] is not None:
            values[name] = bytes(values[name])
    return Commitment(**values)


def _stream(tenant_id: uuid.UUID, store_id: uuid.UUID):
    return sa.and_(batch_commitments.c.tenant_id == tenant_id, batch_commitments.c.store_id == store_id)


def last_commitment(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID) -> Commitment | None:
    """The stream's commitment with the highest `sequence_start` (its chain head), or None before the first."""
    row = conn.execute(
        sa.select(*_COLUMNS).where(_stream(tenant_id, store_id))
        .order_by(batch_commitments.c.sequence_start.desc()).limit(1)
    ).one_or_none()
    return _record(row) if row else None


def stream_positions(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID) -> tuple[int, int]:
    """`(head_sequence, last_committed_sequence)` of the stream; `(0, 0)` for a stream with no row yet."""
    row = conn.execute(
        sa.select(streams.c.head_sequence, streams.c.last_committed_sequence)
        .where(streams.c.tenant_id == tenant_id, streams.c.store_id == store_id)
    ).one_or_none()
    return (row.head_sequence, row.last_committed_sequence) if row else (0, 0)


def insert_commitment(conn: Connection, *, tenant_id: uuid.UUID, store_id: uuid.UUID, sequence_start: int,
                      sequence_end: int, padded_leaf_count: int, tree_depth: int, merkle_root: bytes,
                      prev_state_root: bytes, new_state_root: bytes, ves_version: int = 1,
                      batch_id: uuid.UUID | None = None) -> Commitment:
    """Insert an unanchored commitment. UNIQUE (tenant, store, sequence_start) is the backstop under the lock."""
    row = conn.execute(
        batch_commitments.insert()
        .values(batch_id=batch_id or uuid.uuid4(), tenant_id=tenant_id, store_id=store_id, ves_version=ves_version,
                sequence_start=sequence_start, sequence_end=sequence_end,
                leaf_count=sequence_end - sequence_start + 1, padded_leaf_count=padded_leaf_count,
                tree_depth=tree_depth, merkle_root=merkle_root, prev_state_root=prev_state_root,
                new_state_root=new_state_root)
        .returning(*_COLUMNS)
    ).one()
    return _record(row)


def advance_last_committed(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, sequence_end: int) -> None:
    """Move `streams.last_committed_sequence` forward to `sequence_end` (never backwards)."""
    conn.execute(
        streams.update()
        .where(streams.c.tenant_id == tenant_id, streams.c.store_id == store_id)
        .values(last_committed_sequence=sa.func.greatest(streams.c.last_committed_sequence, sequence_end),
                updated_at=sa.func.now())
    )


def get_commitment(conn: Connection, batch_id: uuid.UUID) -> Commitment | None:
    row = conn.execute(sa.select(*_COLUMNS).where(batch_commitments.c.batch_id == batch_id)).one_or_none()
    return _record(row) if row else None


def list_commitments(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, anchored: bool | None = None,
                     limit: int = 100, after: int = 0) -> list[Commitment]:
    """The stream's commitments with `sequence_start > after`, ascending; `anchored` filters when not None."""
    query = (
        sa.select(*_COLUMNS)
        .where(_stream(tenant_id, store_id), batch_commitments.c.sequence_start > after)
        .order_by(batch_commitments.c.sequence_start)
        .limit(limit)
    )
    if anchored is True:
        query = query.where(batch_commitments.c.chain_tx_hash.isnot(None))
    elif anchored is False:
        query = query.where(batch_commitments.c.chain_tx_hash.is_(None))
    return [_record(row) for row in conn.execute(query)]


def covering_commitment(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID,
                        sequence_number: int) -> Commitment | None:
    """The commitment whose range contains `sequence_number`, or None if none covers it yet."""
    row = conn.execute(
        sa.select(*_COLUMNS)
        .where(_stream(tenant_id, store_id), batch_commitments.c.sequence_start <= sequence_number,
               batch_commitments.c.sequence_end >= sequence_number)
        .order_by(batch_commitments.c.sequence_start.desc()).limit(1)
    ).one_or_none()
    return _record(row) if row else None


def read_leaf_inputs(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, start: int,
                     end: int) -> list[tuple[int, bytes, bytes | None]]:
    """`(sequence_number, event_signing_hash, agent_signature)` for `start..end` inclusive, in sequence order.

    `agent_signature` is None for an unsigned event. Rows missing from the range are simply absent: callers MUST
    check the count before building a tree.
    """
    rows = conn.execute(
        sa.select(events.c.sequence_number, events.c.event_signing_hash, events.c.agent_signature)
        .where(events.c.tenant_id == tenant_id, events.c.store_id == store_id,
               events.c.sequence_number.between(start, end))
        .order_by(events.c.sequence_number)
    )
    return [(number, bytes(signing_hash), None if signature is None else bytes(signature))
            for number, signing_hash, signature in rows]


def unanchored_commitments(conn: Connection, limit: int | None = None,
                           skip_fenced: bool = False) -> list[Commitment]:
    """Every unanchored commitment of every stream, oldest first: by stream, then `sequence_start`; with
    `skip_fenced`, none of a stream fenced after a restore (`stream_fences`)."""
    query = (
        sa.select(*_COLUMNS)
        .where(batch_commitments.c.chain_tx_hash.is_(None))
        .order_by(batch_commitments.c.tenant_id, batch_commitments.c.store_id, batch_commitments.c.sequence_start)
    )
    if skip_fenced:
        query = query.where(~sa.exists().where(stream_fences.c.tenant_id == batch_commitments.c.tenant_id,
                                               stream_fences.c.store_id == batch_commitments.c.store_id))
    if limit is not None:
        query = query.limit(limit)
    return [_record(row) for row in conn.execute(query)]


def streams_with_uncommitted_events(conn: Connection) -> list[tuple[uuid.UUID, uuid.UUID, int, int]]:
    """`(tenant_id, store_id, head_sequence, last_committed_sequence)` of streams whose head is past their last
    commitment, ordered by stream."""
    rows = conn.execute(
        sa.select(streams.c.tenant_id, streams.c.store_id, streams.c.head_sequence, streams.c.last_committed_sequence)
        .where(streams.c.head_sequence > streams.c.last_committed_sequence)
        .order_by(streams.c.tenant_id, streams.c.store_id)
    )
    return [tuple(row) for row in rows]


def mark_anchored(conn: Connection, batch_id: uuid.UUID, chain_id: int, chain_tx_hash: bytes,
                  chain_block_number: int, anchored_at: datetime.datetime) -> bool:
    """Record the anchoring transaction. Only an unanchored commitment changes; True when this call set it."""
    result = conn.execute(
        batch_commitments.update()
        .where(batch_commitments.c.batch_id == batch_id, batch_commitments.c.chain_tx_hash.is_(None))
        .values(chain_id=chain_id, chain_tx_hash=chain_tx_hash, chain_block_number=chain_block_number,
                anchored_at=anchored_at)
    )
    return result.rowcount == 1
