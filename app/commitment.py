"""One commitment as a value (VES.md §Merkle commitments), the one shape storage, services, the chain client and the
API share: `app/db/commitments.py` returns it, `app/services/` computes and anchors it, `app/chain/checks.py` compares
it with the registry's record, `app/api/wire.py` renders it. No I/O, no Flask, no SQLAlchemy.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from app.ves.hashing import stream_id


@dataclass(frozen=True)
class Commitment:
    """A commitment over `[sequence_start, sequence_end]` of stream `(tenant_id, store_id)`, with its anchoring
    state once anchored.

    `leaf_count == sequence_end - sequence_start + 1`; `tree_depth == log2(padded_leaf_count)`. Hashes are 32 raw
    bytes. Anchored exactly when `chain_tx_hash` is set. `committed_at` is None only for a commitment read back from
    an export that omits it.
    """

    batch_id: uuid.UUID
    tenant_id: uuid.UUID
    store_id: uuid.UUID
    ves_version: int
    sequence_start: int
    sequence_end: int
    leaf_count: int
    padded_leaf_count: int
    tree_depth: int
    merkle_root: bytes
    prev_state_root: bytes
    new_state_root: bytes
    committed_at: datetime.datetime | None = None
    chain_id: int | None = None
    chain_tx_hash: bytes | None = None
    chain_block_number: int | None = None
    anchored_at: datetime.datetime | None = None

    @property
    def stream_id(self) -> bytes:
        """`stream_id(tenant_id, store_id)`, the registry's key for the stream (VES.md §Anchoring)."""
        return stream_id(self.tenant_id, self.store_id)

    @property
    def is_anchored(self) -> bool:
        return self.chain_tx_hash is not None

    def covers(self, sequence_number: int) -> bool:
        return self.sequence_start <= sequence_number <= self.sequence_end
