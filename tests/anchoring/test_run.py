"""The anchoring run on an in-process EVM: commits pending events, anchors oldest first, exactly once, and survives
a concurrent run, a crash between send and record, an unreachable RPC, a fork and a reverted transaction."""

from __future__ import annotations

import uuid

import pytest

from app.chain import ChainUnavailable
from app.chain import RegistryClient
from app.chain.checks import check_commitments_on_chain
from app.db import commitments as store
from app.metrics import ANCHORED_TOTAL
from app.services.anchoring import run_lock
from app.services.anchoring import run_once
from app.services.commitments import create_commitment
from tests.commitments import reference
from tests.commitments.event_rows import append_events
from tests.support.servers import free_port


class SimulatedCrash(Exception):
    """Raised from after_send: the process 'dies' after sending, before the receipt is recorded."""


def stream_ids():
    return uuid.uuid4(), uuid.uuid4()


def commitments_of(engine, tenant, store_id):
    with engine.connect() as conn:
        return store.list_commitments(conn, tenant, store_id, limit=1000)


def expected_chain(rows_by_number, tenant, store_id, ranges):
    """(merkle_root, prev_state_root, new_state_root) per range, computed with plain hashlib (tests/commitments)."""
    stream = reference.stream_id(tenant, store_id)
    prev, out = bytes(32), []
    for start, end in ranges:
        leaves = [reference.leaf(tenant, store_id, n, rows_by_number[n]["event_signing_hash"],
                                 rows_by_number[n]["agent_signature"]) for n in range(start, end + 1)]
        root = reference.root(leaves)
        new = reference.state_root(stream, prev, root, start, end, end - start + 1)
        out.append((root, prev, new))
        prev = new
    return out


def test_run_commits_pending_events_and_anchors_every_stream_oldest_first(anchor_engine, chain, registry):
    (tenant_a, store_a), (tenant_b, store_b) = stream_ids(), stream_ids()
    rows_a = {r["sequence_number"]: r for r in append_events(anchor_engine, tenant_a, store_a, 5)}
    rows_b = {r["sequence_number"]: r for r in append_events(anchor_engine, tenant_b, store_b, 3)}
    anchored_before = ANCHORED_TOTAL._value.get()

    report = run_once(anchor_engine, registry, max_events=2)

    assert report.ok and not report.lock_busy
    assert len(report.committed) == 5 and len(report.outcomes) == 5
    assert ANCHORED_TOTAL._value.get() - anchored_before == 5
    for tenant, store_id, rows, ranges in ((tenant_a, store_a, rows_a, [(1, 2), (3, 4), (5, 5)]),
                                           (tenant_b, store_b, rows_b, [(1, 2), (3, 3)])):
        records = commitments_of(anchor_engine, tenant, store_id)
        assert [(r.sequence_start, r.sequence_end) for r in records] == ranges
        assert [(r.merkle_root, r.prev_state_root, r.new_state_root) for r in records] == expected_chain(
            rows, tenant, store_id, ranges)
        block_numbers = []
        for record in records:
            assert record.is_anchored and record.chain_id == registry.chain_id and record.anchored_at is not None
            receipt = chain.w3.eth.get_transaction_receipt(record.chain_tx_hash)
            assert receipt["status"] == 1 and receipt["blockNumber"] == record.chain_block_number
            block_numbers.append(record.chain_block_number)
        assert block_numbers == sorted(block_numbers)
        assert registry.get_head(reference.stream_id(tenant, store_id)) == (ranges[-1][1], records[-1].new_state_root)
        assert check_commitments_on_chain(registry, reference.stream_id(tenant, store_id), records) == []


def test_a_second_run_sends_nothing(anchor_engine, chain, registry):
    tenant, store_id = stream_ids()
    append_events(anchor_engine, tenant, store_id, 3)
    run_once(anchor_engine, registry, max_events=10)
    nonce = chain.nonce()
    before = commitments_of(anchor_engine, tenant, store_id)

    report = run_once(anchor_engine, registry, max_events=10)

    assert report.ok and report.committed == [] and report.outcomes == []
    assert chain.nonce() == nonce
    assert commitments_of(anchor_engine, tenant, store_id) == before


def test_a_run_that_finds_the_lock_taken_does_nothing(anchor_engine, chain, registry):
    tenant, store_id = stream_ids()
    append_events(anchor_engine, tenant, store_id, 4)
    nonce = chain.nonce()

    with run_lock(anchor_engine) as taken:
        assert taken
        report = run_once(anchor_engine, registry, max_events=10)

    assert report.lock_busy and report.committed == [] and report.outcomes == []
    assert commitments_of(anchor_engine, tenant, store_id) == [] and chain.nonce() == nonce
    assert run_once(anchor_engine, registry, max_events=10).ok
    assert [r.is_anchored for r in commitments_of(anchor_engine, tenant, store_id)] == [True]


def test_a_run_killed_after_sending_is_recorded_by_the_next_run_without_resending(anchor_engine, chain, registry):
    tenant, store_id = stream_ids()
    append_events(anchor_engine, tenant, store_id, 6)
    sent = []

    def crash(commitment, tx_hash):
        sent.append((commitment.batch_id, tx_hash))
        raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        run_once(anchor_engine, registry, max_events=3, after_send=crash)
    (first,) = [r for r in commitments_of(anchor_engine, tenant, store_id) if r.sequence_start == 1]
    assert not first.is_anchored and registry.get_batch(first.batch_id) is not None
    nonce = chain.nonce()

    report = run_once(anchor_engine, registry, max_events=3)

    assert report.ok
    assert [(o.commitment.sequence_start, o.status) for o in report.outcomes] == [(1, "recovered"), (4, "anchored")]
    recovered = report.outcomes[0]
    assert (recovered.commitment.batch_id, recovered.chain_tx_hash) == sent[0]
    assert recovered.commitment.chain_block_number == registry.get_batch(first.batch_id).block_number
    assert chain.nonce() == nonce + 1


def test_an_unreachable_rpc_fails_before_anything_is_committed(anchor_engine, chain):
    tenant, store_id = stream_ids()
    append_events(anchor_engine, tenant, store_id, 2)
    offline = RegistryClient.from_url(f"http://127.0.0.1:{free_port()}", chain.registry_address,
                                      private_key=chain.owner.key, chain_id=1, timeout=2)

    with pytest.raises(ChainUnavailable, match="unreachable"):
        run_once(anchor_engine, offline, max_events=10)

    assert commitments_of(anchor_engine, tenant, store_id) == []


def test_a_fork_on_chain_stops_that_stream_only_and_is_never_overwritten(anchor_engine, chain, registry):
    (tenant_a, store_a), (tenant_b, store_b) = stream_ids(), stream_ids()
    append_events(anchor_engine, tenant_a, store_a, 2)
    append_events(anchor_engine, tenant_b, store_b, 2)
    ours = create_commitment(anchor_engine, tenant_a, store_a)
    stream_a = reference.stream_id(tenant_a, store_a)
    forged_root = bytes(31) + b"\x01"
    forged_new = reference.state_root(stream_a, bytes(32), forged_root, 1, 2, 2)
    registry.wait_for_receipt(registry.send_commit_batch(stream_a, 1, 2, 2, forged_root, bytes(32), forged_new,
                                                         uuid.uuid4()))

    report = run_once(anchor_engine, registry, max_events=10)

    assert not report.ok
    assert [(f.tenant_id, f.batch_id, f.code) for f in report.failures] == [
        (tenant_a, ours.batch_id, "ANCHOR_FORK_DETECTED")]
    assert "already covers this stream up to 2" in report.failures[0].message
    assert not commitments_of(anchor_engine, tenant_a, store_a)[0].is_anchored
    assert registry.get_head(stream_a) == (2, forged_new)
    assert [r.is_anchored for r in commitments_of(anchor_engine, tenant_b, store_b)] == [True]


def test_a_rejected_transaction_is_reported_and_leaves_the_commitment_unanchored(anchor_engine, chain):
    tenant, store_id = stream_ids()
    append_events(anchor_engine, tenant, store_id, 2)
    not_a_submitter = chain.client(chain.outsider)

    report = run_once(anchor_engine, not_a_submitter, max_events=10)

    assert [f.code for f in report.failures] == ["ANCHOR_REJECTED"]
    assert "reverted" in report.failures[0].message.lower()
    (record,) = commitments_of(anchor_engine, tenant, store_id)
    assert not record.is_anchored and chain.client(False).get_batch(record.batch_id) is None


def test_a_transaction_mined_as_reverted_is_reported_and_not_recorded(anchor_engine, chain, registry):
    """A foreign commit for the same range is pending when we send: it is mined first, ours with status 0."""
    tenant, store_id = stream_ids()
    append_events(anchor_engine, tenant, store_id, 2)
    ours = create_commitment(anchor_engine, tenant, store_id)
    stream = reference.stream_id(tenant, store_id)
    foreign_root = bytes(31) + b"\x07"
    foreign = chain.client(chain.outsider)
    registry.wait_for_receipt(registry.set_submitter(chain.outsider.address, True))
    chain.tester.disable_auto_mine_transactions()
    foreign.send_transaction(foreign.build_commit_tx(
        stream, 1, 2, 2, foreign_root, bytes(32), reference.state_root(stream, bytes(32), foreign_root, 1, 2, 2),
        uuid.uuid4()))
    sent = []

    def mine(commitment, tx_hash):
        sent.append(tx_hash)
        chain.tester.mine_blocks(1)

    report = run_once(anchor_engine, registry, max_events=10, after_send=mine)

    assert [(f.batch_id, f.code) for f in report.failures] == [(ours.batch_id, "ANCHOR_REJECTED")]
    assert chain.w3.eth.get_transaction_receipt(sent[0])["status"] == 0
    assert "SetRegistry: overlapping range" in report.failures[0].message
    (record,) = commitments_of(anchor_engine, tenant, store_id)
    assert not record.is_anchored and registry.get_batch(record.batch_id) is None
    assert registry.get_head(stream)[1] != record.new_state_root


def test_bundle_chain_checker_flags_a_root_the_registry_does_not_hold(anchor_engine, chain, registry):
    from app.chain.checks import bundle_chain_checker

    tenant, store_id = stream_ids()
    append_events(anchor_engine, tenant, store_id, 3)
    unanchored = create_commitment(anchor_engine, tenant, store_id, max_events=1)
    run_once(anchor_engine, registry, max_events=10)
    records = commitments_of(anchor_engine, tenant, store_id)
    stream = reference.stream_id(tenant, store_id)
    wire = [{"batch_id": str(r.batch_id), "sequence_start": r.sequence_start, "sequence_end": r.sequence_end,
             "leaf_count": r.leaf_count, "merkle_root": "0x" + r.merkle_root.hex(),
             "prev_state_root": "0x" + r.prev_state_root.hex(), "new_state_root": "0x" + r.new_state_root.hex()}
            for r in records]
    check = bundle_chain_checker(chain.client(False))

    assert [check(c, stream) for c in wire] == [None, None]
    tampered = check({**wire[0], "merkle_root": "0x" + "ee" * 32}, stream)
    assert (tampered.check, tampered.batch_id, tampered.found) == ("chain_anchor", str(unanchored.batch_id),
                                                                   "0x" + records[0].merkle_root.hex())
    absent = check({**wire[1], "batch_id": str(uuid.uuid4())}, stream)
    assert absent.found == "absent"
