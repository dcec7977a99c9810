"""Which streams a caller may see, with what an operator asks first: head, last commitment, how far anchoring lags,
last signed checkpoint (the console's streams view, `GET /api/v1/streams`)."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Engine

from app.db.streams import stream_summaries

MAX_STREAMS_PAGE = 500


@dataclass(frozen=True)
class StreamSummary:
    """One stream. `anchoring_lag` = events sequenced after the last anchored commitment's end (0 when every event
    is anchored, `head_sequence` when none is)."""

    tenant_id: uuid.UUID
    store_id: uuid.UUID
    head_sequence: int
    last_committed_sequence: int
    last_anchored_sequence: int
    updated_at: datetime.datetime
    last_batch_id: uuid.UUID | None
    last_committed_at: datetime.datetime | None
    last_anchor_tx: bytes | None
    last_anchored_at: datetime.datetime | None
    checkpoint_size: int | None
    checkpoint_signed_at: datetime.datetime | None

    @property
    def anchoring_lag(self) -> int:
        return self.head_sequence - self.last_anchored_sequence

    @property
    def uncommitted(self) -> int:
        return self.head_sequence - self.last_committed_sequence


@dataclass(frozen=True)
class StreamList:
    """A page of streams ordered by store id; `next_after` is the store id to continue after, None at the end."""

    tenant_id: uuid.UUID
    streams: list[StreamSummary]
    next_after: uuid.UUID | None

    @property
    def count(self) -> int:
        return len(self.streams)


def list_streams(engine: Engine, tenant_id: uuid.UUID, store_ids: Collection[uuid.UUID], after: uuid.UUID | None,
                 limit: int) -> StreamList:
    """Streams of `tenant_id` (only `store_ids` when the caller is limited to some stores), `limit` at most."""
    limit = max(1, min(limit, MAX_STREAMS_PAGE))
    with engine.connect() as conn:
        rows = stream_summaries(conn, tenant_id, store_ids, after, limit + 1)
    summaries = [StreamSummary(
        tenant_id=row["tenant_id"], store_id=row["store_id"], head_sequence=row["head_sequence"],
        last_committed_sequence=row["last_committed_sequence"],
        last_anchored_sequence=row["last_anchored_sequence"] or 0, updated_at=row["updated_at"],
        last_batch_id=row["last_batch_id"], last_committed_at=row["last_committed_at"],
        last_anchor_tx=None if row["last_anchor_tx"] is None else bytes(row["last_anchor_tx"]),
        last_anchored_at=row["last_anchored_at"], checkpoint_size=row["checkpoint_size"],
        checkpoint_signed_at=row["checkpoint_signed_at"]) for row in rows[:limit]]
    next_after = summaries[-1].store_id if len(rows) > limit else None
    return StreamList(tenant_id=tenant_id, streams=summaries, next_after=next_after)
