"""Commitment creation against the spec: ranges, Merkle roots and the state root chain recomputed independently
(tests/commitments/reference.py), contiguity errors, and the storage functions the anchoring job builds on."""

from __future__ import annotations

import datetime
import time

import pytest
import sqlalchemy as sa

from app.api.wire import status_of
from app.db import commitments as store
from app.db.tables import streams
from app.errors import Conflict
from app.errors import InvalidRequest
from app.services.commitments import NothingToCommit
from app.services.commitments import commit_pending
from app.services.commitments import create_commitment
from app.services.commitments import plan_range
from tests.commitments import reference

BATCH_SIZES = (1, 2, 3, 7, 16, 17, 100, 1024)


def _last_committed(engine, stream) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(streams.c.last_committed_sequence).where(
            streams.c.tenant_id == stream.tenant_id, streams.c.store_id == stream.store_id)).scalar_one()


def test_chain_of_commitments_matches_the_spec(engine, stream, append):
    prev_state_root = bytes(32)
    stream_id = reference.stream_id(stream.tenant_id, stream.store_id)
    start = 1
    for size in BATCH_SIZES:
        rows = append(size, unsigned=frozenset({start, start + size - 1}) if size > 2 else frozenset())
        record = create_commitment(engine, stream.tenant_id, stream.store_id)

        end = start + size - 1
        expected_root = reference.root([reference.row_leaf(row) for row in rows])
        padded = 1 << (size - 1).bit_length()
        assert (record.sequence_start, record.sequence_end, record.leaf_count) == (start, end, size)
        assert (record.padded_leaf_count, record.tree_depth) == (padded, padded.bit_length() - 1)
        assert record.merkle_root == expected_root
        assert record.prev_state_root == prev_state_root
        assert record.new_state_root == reference.state_root(stream_id, prev_state_root, expected_root, start, end,
                                                             size)
        assert record.ves_version == 1 and not record.is_anchored
        assert _last_committed(engine, stream) == end
        prev_state_root = record.new_state_root
        start = end + 1

    with engine.connect() as conn:
        chain = store.list_commitments(conn, stream.tenant_id, stream.store_id, limit=1000)
    assert [c.leaf_count for c in chain] == list(BATCH_SIZES)


def test_unsigned_events_commit_with_64_zero_bytes(engine, stream, append):
    rows = append(3, unsigned=frozenset({1, 2, 3}))
    record = create_commitment(engine, stream.tenant_id, stream.store_id)
    zero_signed = [reference.leaf(stream.tenant_id, stream.store_id, r["sequence_number"], r["event_signing_hash"],
                                  bytes(64)) for r in rows]
    assert all(row["agent_signature"] is None for row in rows)
    assert record.merkle_root == reference.root(zero_signed)


def test_streams_chain_independently(engine, stream, append, make_stream):
    other = make_stream()
    append(4)
    append(4, target=other)
    mine = create_commitment(engine, stream.tenant_id, stream.store_id)
    theirs = create_commitment(engine, other.tenant_id, other.store_id)
    assert mine.prev_state_root == theirs.prev_state_root == bytes(32)
    assert mine.merkle_root != theirs.merkle_root
    assert (theirs.sequence_start, theirs.sequence_end) == (1, 4)


def test_without_a_range_takes_up_to_max_events(engine, stream, append):
    append(10)
    first = create_commitment(engine, stream.tenant_id, stream.store_id, max_events=4)
    second = create_commitment(engine, stream.tenant_id, stream.store_id, max_events=4)
    third = create_commitment(engine, stream.tenant_id, stream.store_id, max_events=4)
    assert [(c.sequence_start, c.sequence_end) for c in (first, second, third)] == [(1, 4), (5, 8), (9, 10)]
    assert third.prev_state_root == second.new_state_root and second.prev_state_root == first.new_state_root


def test_an_explicit_range_must_start_right_after_the_last_commitment(engine, stream, append):
    append(10)
    record = create_commitment(engine, stream.tenant_id, stream.store_id, sequence_start=1, sequence_end=4)
    assert (record.sequence_start, record.sequence_end) == (1, 4)
    only_end = create_commitment(engine, stream.tenant_id, stream.store_id, sequence_end=6)
    assert (only_end.sequence_start, only_end.sequence_end) == (5, 6)
    only_start = create_commitment(engine, stream.tenant_id, stream.store_id, sequence_start=7, max_events=2)
    assert (only_start.sequence_start, only_start.sequence_end) == (7, 8)


@pytest.mark.parametrize(
    ("sequence_start", "sequence_end", "error", "code", "explanation"),
    [
        (6, None, Conflict, "RANGE_SKIPS", "must start at 5"),
        (6, 8, Conflict, "RANGE_SKIPS", "must start at 5"),
        (3, 6, Conflict, "RANGE_OVERLAPS", "ends at 4"),
        (1, 4, Conflict, "RANGE_OVERLAPS", "ends at 4"),
        (None, 4, Conflict, "RANGE_OVERLAPS", "already committed"),
        (5, 11, InvalidRequest, "RANGE_PAST_HEAD", "past the stream head (10)"),
        (None, 99, InvalidRequest, "RANGE_PAST_HEAD", "past the stream head (10)"),
        (7, 5, InvalidRequest, "INVALID_RANGE", "before sequence_start"),
    ],
    ids=["skip", "skip-range", "overlap", "repeat", "overlap-by-end", "past-head", "end-past-head", "end-before-start"],
)
def test_contiguity_errors_leave_the_chain_unchanged(engine, stream, append, sequence_start, sequence_end, error,
                                                     code, explanation):
    append(10)
    create_commitment(engine, stream.tenant_id, stream.store_id, sequence_end=4)
    with pytest.raises(error) as raised:
        create_commitment(engine, stream.tenant_id, stream.store_id, sequence_start, sequence_end)
    assert raised.value.code == code
    assert explanation in raised.value.message
    assert _last_committed(engine, stream) == 4
    assert (create_commitment(engine, stream.tenant_id, stream.store_id).sequence_start) == 5


def test_the_first_commitment_starts_at_one(engine, stream, append):
    append(3)
    with pytest.raises(Conflict) as raised:
        create_commitment(engine, stream.tenant_id, stream.store_id, sequence_start=2)
    assert raised.value.code == "RANGE_SKIPS" and "must start at 1" in raised.value.message


def test_nothing_to_commit(engine, stream, append):
    with pytest.raises(NothingToCommit) as raised:
        create_commitment(engine, stream.tenant_id, stream.store_id)
    assert status_of(raised.value) == 409 and raised.value.code == "NOTHING_TO_COMMIT"
    assert commit_pending(engine, stream.tenant_id, stream.store_id) is None

    append(2)
    assert commit_pending(engine, stream.tenant_id, stream.store_id).sequence_end == 2
    assert commit_pending(engine, stream.tenant_id, stream.store_id) is None
    with pytest.raises(NothingToCommit):
        create_commitment(engine, stream.tenant_id, stream.store_id, sequence_start=3)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((0, 5), (1, 5)),
        ((0, 5000), (1, 1024)),
        ((1024, 5000), (1025, 2048)),
        ((3, 5, None, None, 1), (4, 4)),
        ((3, 9, 4, 9, 1), (4, 9)),
    ],
)
def test_plan_range(args, expected):
    assert plan_range(*args) == expected


@pytest.mark.parametrize("max_events", [0, -1, True, 1.5, (1 << 20) + 1])
def test_plan_range_rejects_bad_max_events(max_events):
    with pytest.raises(InvalidRequest):
        plan_range(0, 10, max_events=max_events)


def test_ten_thousand_events_in_1024_event_batches(engine, stream, append):
    append(10_000)
    timings = []
    while True:
        began = time.perf_counter()
        record = commit_pending(engine, stream.tenant_id, stream.store_id, max_events=1024)
        if record is None:
            break
        timings.append(time.perf_counter() - began)
        assert record.leaf_count == min(1024, 10_000 - record.sequence_start + 1)
    print(f"10,000 events in {len(timings)} commitments: max {max(timings):.3f} s, total {sum(timings):.3f} s")
    assert len(timings) == 10 and record is None
    assert max(timings) < 2.0
    assert _last_committed(engine, stream) == 10_000


def test_covering_commitment_and_listing(engine, stream, append):
    append(9)
    first = create_commitment(engine, stream.tenant_id, stream.store_id, max_events=4)
    second = create_commitment(engine, stream.tenant_id, stream.store_id, max_events=4)
    with engine.connect() as conn:
        assert store.covering_commitment(conn, stream.tenant_id, stream.store_id, 4).batch_id == first.batch_id
        assert store.covering_commitment(conn, stream.tenant_id, stream.store_id, 5).batch_id == second.batch_id
        assert store.covering_commitment(conn, stream.tenant_id, stream.store_id, 9) is None
        assert store.get_commitment(conn, second.batch_id) == second
        assert store.last_commitment(conn, stream.tenant_id, stream.store_id) == second
        assert store.list_commitments(conn, stream.tenant_id, stream.store_id, limit=1) == [first]
        assert store.list_commitments(conn, stream.tenant_id, stream.store_id, after=first.sequence_end) == [second]
        inputs = store.read_leaf_inputs(conn, stream.tenant_id, stream.store_id, 3, 5)
    assert [number for number, _, _ in inputs] == [3, 4, 5]
    assert all(len(signing_hash) == 32 and len(signature) == 64 for _, signing_hash, signature in inputs)


def test_anchoring_interface(engine, stream, append, make_stream):
    other = make_stream()
    append(6)
    append(2, target=other)
    first = create_commitment(engine, stream.tenant_id, stream.store_id, max_events=3)
    second = create_commitment(engine, stream.tenant_id, stream.store_id, max_events=2)
    theirs = create_commitment(engine, other.tenant_id, other.store_id)
    ours = {first.batch_id, second.batch_id, theirs.batch_id}
    anchored_at = datetime.datetime(2025, 5, 1, tzinfo=datetime.timezone.utc)

    with engine.begin() as conn:
        pending = [c for c in store.unanchored_commitments(conn) if c.batch_id in ours]
        keys = [(c.tenant_id, c.store_id, c.sequence_start) for c in pending]
        assert keys == sorted(keys) and len(pending) == 3
        assert pending.index(first) < pending.index(second)
        uncommitted = {(t, s): (head, last) for t, s, head, last in store.streams_with_uncommitted_events(conn)}
        assert uncommitted[(stream.tenant_id, stream.store_id)] == (6, 5)
        assert (other.tenant_id, other.store_id) not in uncommitted

        assert store.mark_anchored(conn, first.batch_id, 31337, b"\x11" * 32, 7, anchored_at) is True
        assert store.mark_anchored(conn, first.batch_id, 1, b"\x22" * 32, 8, anchored_at) is False
        anchored = store.get_commitment(conn, first.batch_id)
        assert anchored.is_anchored and anchored.chain_tx_hash == b"\x11" * 32
        assert (anchored.chain_id, anchored.chain_block_number, anchored.anchored_at) == (31337, 7, anchored_at)
        assert first.batch_id not in {c.batch_id for c in store.unanchored_commitments(conn)}
        assert store.list_commitments(conn, stream.tenant_id, stream.store_id, anchored=True) == [anchored]
        assert store.list_commitments(conn, stream.tenant_id, stream.store_id, anchored=False) == [second]
