"""Concurrent commitment creation on one stream: the per-stream advisory lock serialises it, so ranges stay
contiguous and disjoint and the state root chain never forks. Two threads, each on its own pooled connection."""

from __future__ import annotations

import threading

from app.db import commitments as store
from app.errors import Conflict
from app.services.commitments import create_commitment

ROUNDS = 25


def _race(engine, stream, **request) -> list:
    """Run two `create_commitment(**request)` calls released together; returns each call's record or error."""
    barrier = threading.Barrier(2)
    outcomes: list = [None, None]

    def worker(slot: int) -> None:
        barrier.wait()
        try:
            outcomes[slot] = create_commitment(engine, stream.tenant_id, stream.store_id, **request)
        except Exception as exc:  # noqa: BLE001 - the test inspects whatever happened
            outcomes[slot] = exc

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def _assert_chain_is_contiguous(engine, stream, head: int) -> None:
    with engine.connect() as conn:
        chain = store.list_commitments(conn, stream.tenant_id, stream.store_id, limit=1000)
    assert chain[0].sequence_start == 1 and chain[-1].sequence_end == head
    for previous, current in zip(chain, chain[1:]):
        assert current.sequence_start == previous.sequence_end + 1
        assert current.prev_state_root == previous.new_state_root


def test_concurrent_next_range_requests_take_disjoint_ranges(engine, stream, append):
    for round_number in range(ROUNDS):
        append(6)
        outcomes = _race(engine, stream, max_events=3)
        ranges = sorted((o.sequence_start, o.sequence_end) for o in outcomes)
        base = round_number * 6
        assert ranges == [(base + 1, base + 3), (base + 4, base + 6)], outcomes
    _assert_chain_is_contiguous(engine, stream, ROUNDS * 6)


def test_concurrent_requests_for_the_same_range_let_exactly_one_succeed(engine, stream, append):
    for round_number in range(ROUNDS):
        append(4)
        start = round_number * 4 + 1
        outcomes = _race(engine, stream, sequence_start=start, sequence_end=start + 3)
        succeeded = [o for o in outcomes if not isinstance(o, Exception)]
        failed = [o for o in outcomes if isinstance(o, Exception)]
        assert len(succeeded) == 1 and len(failed) == 1, outcomes
        assert isinstance(failed[0], Conflict) and failed[0].code == "RANGE_OVERLAPS"
        assert (succeeded[0].sequence_start, succeeded[0].sequence_end) == (start, start + 3)
    _assert_chain_is_contiguous(engine, stream, ROUNDS * 4)
