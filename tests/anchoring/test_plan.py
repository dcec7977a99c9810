"""plan_anchor: the pure decision between sending, recording what an earlier run sent, and refusing a fork."""

from __future__ import annotations

import datetime
import hashlib
import uuid

import pytest

from app.api.wire import status_of
from app.chain import OnChainBatch
from app.chain.checks import chain_mismatches
from app.commitment import Commitment
from app.services.anchoring import AnchorAction
from app.services.anchoring import ForkDetected
from app.services.anchoring import plan_anchor
from app.ves.hashing import stream_id
from app.ves.merkle import state_root

ZERO = bytes(32)


def _h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def commitment(start: int = 1, end: int = 4, prev: bytes = ZERO) -> Commitment:
    tenant, store = uuid.uuid4(), uuid.uuid4()
    root = _h(f"root {start}")
    count = end - start + 1
    return Commitment(
        batch_id=uuid.uuid4(), tenant_id=tenant, store_id=store, ves_version=1, sequence_start=start,
        sequence_end=end, leaf_count=count, padded_leaf_count=4, tree_depth=2, merkle_root=root,
        prev_state_root=prev, new_state_root=state_root(stream_id(tenant, store), prev, root, start, end, count),
        committed_at=datetime.datetime.now(datetime.timezone.utc), chain_id=None, chain_tx_hash=None,
        chain_block_number=None, anchored_at=None)


def on_chain(record: Commitment, **changes) -> OnChainBatch:
    values = dict(batch_id=record.batch_id, stream_id=record.stream_id, sequence_start=record.sequence_start,
                  sequence_end=record.sequence_end, event_count=record.leaf_count, merkle_root=record.merkle_root,
                  prev_state_root=record.prev_state_root, new_state_root=record.new_state_root, block_number=7,
                  submitter="0x" + "11" * 20)
    values.update(changes)
    return OnChainBatch(**values)


def test_genesis_commitment_is_sent_when_the_stream_head_is_empty():
    assert plan_anchor(commitment(), (0, ZERO), None) is AnchorAction.SEND


def test_next_commitment_is_sent_when_the_head_is_its_predecessor():
    prev_root = _h("prev")
    assert plan_anchor(commitment(5, 9, prev_root), (4, prev_root), None) is AnchorAction.SEND


def test_a_batch_already_on_chain_with_our_content_is_recorded_not_resent():
    record = commitment(5, 9, _h("prev"))
    assert plan_anchor(record, (9, record.new_state_root), on_chain(record)) is AnchorAction.RECORD
    assert plan_anchor(record, (20, _h("later head")), on_chain(record)) is AnchorAction.RECORD


@pytest.mark.parametrize(
    ("head", "needle"),
    [
        ((4, _h("another root")), "state root"),
        ((6, _h("prev")), "already covers this stream up to 6"),
        ((2, _h("prev")), "commitments before 5 are missing"),
    ],
    ids=["wrong-prev-root", "foreign-batch-past-our-start", "gap-below-our-start"],
)
def test_any_other_head_is_a_fork(head, needle):
    with pytest.raises(ForkDetected, match=needle) as caught:
        plan_anchor(commitment(5, 9, _h("prev")), head, None)
    assert status_of(caught.value) == 409 and caught.value.code == "ANCHOR_FORK_DETECTED"


@pytest.mark.parametrize("field", ["merkle_root", "prev_state_root", "new_state_root", "stream_id"])
def test_our_batch_id_on_chain_with_other_content_is_a_fork(field):
    record = commitment()
    forged = on_chain(record, **{field: _h("forged")})
    with pytest.raises(ForkDetected, match=field):
        plan_anchor(record, (4, forged.new_state_root), forged)


def test_chain_mismatches_names_each_differing_field_with_both_values():
    record = commitment()
    forged = on_chain(record, sequence_end=5, event_count=5)
    assert chain_mismatches(record, forged) == [("sequence_end", 4, 5), ("leaf_count", 4, 5)]
    assert chain_mismatches(record, on_chain(record)) == []
