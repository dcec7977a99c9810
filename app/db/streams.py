"""Stream summaries for listings (the console's streams view): heads, last commitment, last anchored range and last
checkpoint, one indexed lookup each per stream. Functions take a `Connection` and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy import Connection

from app.db.tables import batch_commitments
from app.db.tables import log_checkpoints
from app.db.tables import streams


def _latest(condition, *columns):
    """The newest commitment of the outer stream row matching `condition`, as a LATERAL subquery."""
    bc = batch_commitments.alias()
    return (sa.select(*[bc.c[name] for name in columns])
            .where(bc.c.tenant_id == streams.c.tenant_id, bc.c.store_id == streams.c.store_id, condition(bc))
            .order_by(bc.c.sequence_start.desc()).limit(1).lateral())


def stream_summaries(conn: Connection, tenant_id: uuid.UUID, store_ids: Collection[uuid.UUID],
                     after: uuid.UUID | None, limit: int) -> list[dict]:
    """Up to `limit` streams of `tenant_id` ordered by store id, after `after` (exclusive), restricted to `store_ids`
    when it is not empty. Each row: tenant_id, store_id, head_sequence, last_committed_sequence, updated_at,
    last_batch_id, last_committed_at, last_sequence_end, last_anchored_sequence, last_anchor_tx, last_anchored_at,
    checkpoint_size, checkpoint_signed_at (None where there is none)."""
    committed = _latest(lambda bc: sa.true(), "batch_id", "committed_at", "sequence_end")
    anchored = _latest(lambda bc: bc.c.chain_tx_hash.is_not(None), "sequence_end", "chain_tx_hash", "anchored_at")
    checkpoint = (sa.select(log_checkpoints.c.tree_size, log_checkpoints.c.signed_at)
                  .where(log_checkpoints.c.tenant_id == streams.c.tenant_id,
                         log_checkpoints.c.store_id == streams.c.store_id)
                  .order_by(log_checkpoints.c.tree_size.desc()).limit(1).lateral())
    query = (sa.select(streams.c.tenant_id, streams.c.store_id, streams.c.head_sequence,
                       streams.c.last_committed_sequence, streams.c.updated_at,
                       committed.c.batch_id.label("last_batch_id"),
                       committed.c.committed_at.label("last_committed_at"),
                       committed.c.sequence_end.label("last_sequence_end"),
                       anchored.c.sequence_end.label("last_anchored_sequence"),
                       anchored.c.chain_tx_hash.label("last_anchor_tx"),
                       anchored.c.anchored_at.label("last_anchored_at"),
                       checkpoint.c.tree_size.label("checkpoint_size"),
                       checkpoint.c.signed_at.label("checkpoint_signed_at"))
             .select_from(streams.outerjoin(committed, sa.true()).outerjoin(anchored, sa.true())
                          .outerjoin(checkpoint, sa.true()))
             .where(streams.c.tenant_id == tenant_id)
             .order_by(streams.c.store_id).limit(limit))
    if store_ids:
        query = query.where(streams.c.store_id.in_(list(store_ids)))
    if after is not None:
        query = query.where(streams.c.store_id > after)
    return [dict(row._mapping) for row in conn.execute(query)]
