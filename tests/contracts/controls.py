"""Controls for registry tests: VES stream ids, chained state roots and valid next commitments."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

ZERO_ROOT = bytes(32)


def ves_stream_id(tenant_id: uuid.UUID, store_id: uuid.UUID) -> bytes:
    """stream_id per VES.md §Streams and sequence numbers."""
    return hashlib.sha256(b"VES_STREAM_V1" + tenant_id.bytes + store_id.bytes).digest()


def ves_state_root(
    stream_id: bytes, prev_state_root: bytes, merkle_root: bytes, sequence_start: int, sequence_end: int, leaf_count: int
) -> bytes:
    """new_state_root per VES.md §Merkle commitments, "State root chain"."""
    return hashlib.sha256(
        b"VES_STATE_ROOT_V1"
        + stream_id
        + prev_state_root
        + merkle_root
        + sequence_start.to_bytes(8, "big")
        + sequence_end.to_bytes(8, "big")
        + leaf_count.to_bytes(4, "big")
    ).digest()


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
