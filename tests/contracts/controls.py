"""Controls for registry tests: valid next commitments with state roots chained by app.ves (VES.md)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from app.ves.hashing import stream_id as ves_stream_id
from app.ves.merkle import state_root as ves_state_root

ZERO_ROOT = bytes(32)

__all__ = ["ZERO_ROOT", "Commitment", "next_commitment", "ves_state_root", "ves_stream_id"]


@dataclass(frozen=True)
class Commitment:
    """The arguments of SetRegistry.commitBatch, in order (see `as_args`)."""

    stream_id: bytes
    sequence_start: int
    sequence_end: int
    event_count: int
    merkle_root: bytes
    prev_state_root: bytes
    new_state_root: bytes
    batch_id: uuid.UUID

    def as_args(self) -> tuple:
        return (
            self.stream_id,
            self.sequence_start,
            self.sequence_end,
            self.event_count,
            self.merkle_root,
            self.prev_state_root,
            self.new_state_root,
            self.batch_id,
        )


def next_commitment(stream_id: bytes, prev: Commitment | None, event_count: int) -> Commitment:
    """A valid commitment of `event_count` events following `prev` (genesis if None).

    The merkle root is a stand-in hash (the contract never inspects it); the state root is chained
    exactly as VES.md specifies.
    """
    start = prev.sequence_end + 1 if prev else 1
    end = start + event_count - 1
    prev_state_root = prev.new_state_root if prev else ZERO_ROOT
    merkle_root = hashlib.sha256(b"test merkle root" + stream_id + start.to_bytes(8, "big")).digest()
    return Commitment(
        stream_id=stream_id,
        sequence_start=start,
        sequence_end=end,
        event_count=event_count,
        merkle_root=merkle_root,
        prev_state_root=prev_state_root,
        new_state_root=ves_state_root(stream_id, prev_state_root, merkle_root, start, end, event_count),
        batch_id=uuid.uuid4(),
    )
