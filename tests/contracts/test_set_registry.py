"""SetRegistry on an in-process EVM: the VES.md "Anchoring" chaining rule, access control, event and views."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from app.chain.errors import ChainError
from app.chain.errors import ReceiptTimeout
from app.chain.errors import RegistryNotDeployed
from app.chain.errors import TransactionReverted
from app.chain.registry import RegistryClient
from app.chain.registry import load_artifact
from tests.contracts.controls import ZERO_ROOT
from tests.contracts.controls import Commitment
from tests.contracts.controls import next_commitment
from tests.contracts.controls import ves_state_root
from tests.contracts.controls import ves_stream_id

# shared/vectors/ves_v1_public.json, state_chains "two_steps": the published VES state-root chain.
TWO_STEPS_TENANT = uuid.UUID("f441ee61-a478-43a8-b2a4-417327cccfa4")
TWO_STEPS_STORE = uuid.UUID("c7f65a03-9b5f-4de8-81ab-a52bc80e871f")
TWO_STEPS_STREAM_ID = bytes.fromhex("cbdc6a713a64a2df6eb5dbdebc1e01983c714a78ac44aab6119e0936c6257510")
TWO_STEPS = [
    # (sequence_start, sequence_end, leaf_count, merkle_root, new_state_root)
    (
        1,
        1,
        1,
        "59f5161f22f7127283a1843adbd567bcd9824c8f55cae717cc1cee5a7fb6574f",
        "997d24d56cb427519974f02b07e0e77ca202210e92f479fa00b4e91d07d83b4b",
    ),
    (
        2,
        3,
        2,
        "ee2f638abe20094e177aeace14adfb2186afe484f3f7217d5f63f8439dc011ed",
        "c3151f50965f55b50930bc585ac83ec641fcca67fab12ce1437556213ff4974c",
    ),
]


def commit(client: RegistryClient, commitment: Commitment):
    """Send commitBatch and return the successful receipt."""
    return client.wait_for_receipt(client.send_commit_batch(*commitment.as_args()), timeout=10)


def assert_reverts(client: RegistryClient, commitment: Commitment, reason: str) -> None:
    """The commit is rejected with exactly `reason` and the stream's head does not move."""
    head_before = client.get_head(commitment.stream_id)
    batch_before = client.get_batch(commitment.batch_id)
    with pytest.raises(TransactionReverted) as raised:
        client.send_commit_batch(*commitment.as_args())
    assert raised.value.reason == reason
    assert raised.value.tx_hash is None
    assert client.get_head(commitment.stream_id) == head_before
    assert client.get_batch(commitment.batch_id) == batch_before


def test_anchored_state_roots_reproduce_the_published_chain():
    assert ves_stream_id(TWO_STEPS_TENANT, TWO_STEPS_STORE) == TWO_STEPS_STREAM_ID
    prev = ZERO_ROOT
    for start, end, leaf_count, merkle_root, new_state_root in TWO_STEPS:
        root = ves_state_root(TWO_STEPS_STREAM_ID, prev, bytes.fromhex(merkle_root), start, end, leaf_count)
        assert root.hex() == new_state_root
        prev = root


def test_deployed_code_is_the_artifact(chain):
    assert "0x" + chain.w3.eth.get_code(chain.registry_address).hex() == load_artifact()["deployedBytecode"]


def test_unknown_stream_head_is_zero_and_unknown_batch_is_none(registry, stream_id):
    assert registry.get_head(stream_id) == (0, ZERO_ROOT)
    assert registry.get_batch(uuid.uuid4()) is None


def test_deployer_is_owner_and_submitter(chain, registry):
    assert registry.owner() == chain.owner.address
    assert registry.is_submitter(chain.owner.address)
    assert not registry.is_submitter(chain.outsider.address)


def test_genesis_commit_moves_head_and_stores_batch(chain, registry, stream_id):
    genesis = next_commitment(stream_id, None, event_count=3)

    receipt = commit(registry, genesis)

    assert registry.get_head(stream_id) == (3, genesis.new_state_root)
    assert registry.get_batch(genesis.batch_id) == registry.get_batch(genesis.batch_id.bytes)
    stored = registry.get_batch(genesis.batch_id)
    assert stored.batch_id == genesis.batch_id
    assert stored.stream_id == stream_id
    assert (stored.sequence_start, stored.sequence_end, stored.event_count) == (1, 3, 3)
    assert stored.merkle_root == genesis.merkle_root
    assert stored.prev_state_root == ZERO_ROOT
    assert stored.new_state_root == genesis.new_state_root
    assert stored.block_number == receipt["blockNumber"]
    assert stored.submitter == chain.owner.address


def test_published_ves_chain_anchors_step_by_step(registry):
    prev = ZERO_ROOT
    for start, end, leaf_count, merkle_root, new_state_root in TWO_STEPS:
        step = Commitment(
            stream_id=TWO_STEPS_STREAM_ID,
            sequence_start=start,
            sequence_end=end,
            event_count=leaf_count,
            merkle_root=bytes.fromhex(merkle_root),
            prev_state_root=prev,
            new_state_root=bytes.fromhex(new_state_root),
            batch_id=uuid.uuid4(),
        )
        commit(registry, step)
        assert registry.get_head(TWO_STEPS_STREAM_ID) == (end, step.new_state_root)
        prev = step.new_state_root


def test_chain_of_three_commits(registry, stream_id):
    commitments = []
    previous = None
    for event_count in (3, 1, 5):
        previous = next_commitment(stream_id, previous, event_count)
        commit(registry, previous)
        commitments.append(previous)
        assert registry.get_head(stream_id) == (previous.sequence_end, previous.new_state_root)

    assert registry.get_head(stream_id) == (9, commitments[-1].new_state_root)
    for expected in commitments:
        stored = registry.get_batch(expected.batch_id)
        assert (stored.sequence_start, stored.sequence_end) == (expected.sequence_start, expected.sequence_end)
        assert (stored.prev_state_root, stored.new_state_root) == (expected.prev_state_root, expected.new_state_root)
    assert [c.prev_state_root for c in commitments[1:]] == [c.new_state_root for c in commitments[:-1]]


def test_streams_have_independent_heads(registry, stream_id):
    other_stream = ves_stream_id(uuid.uuid4(), uuid.uuid4())
    commit(registry, next_commitment(stream_id, None, 4))

    assert registry.get_head(other_stream) == (0, ZERO_ROOT)
    other_genesis = next_commitment(other_stream, None, 2)
    commit(registry, other_genesis)
    assert registry.get_head(other_stream) == (2, other_genesis.new_state_root)
    assert registry.get_head(stream_id)[0] == 4


@pytest.mark.parametrize("first_sequence", [2, 7])
def test_genesis_must_start_at_one(registry, stream_id, first_sequence):
    genesis = next_commitment(stream_id, None, 1)
    shifted = dataclasses.replace(genesis, sequence_start=first_sequence, sequence_end=first_sequence)
    assert_reverts(registry, shifted, "SetRegistry: sequence gap")


def test_gap_after_head_is_rejected(registry, stream_id):
    genesis = next_commitment(stream_id, None, 3)
    commit(registry, genesis)
    following = next_commitment(stream_id, genesis, 2)
    skipping_one = dataclasses.replace(following, sequence_start=5, sequence_end=6)
    assert_reverts(registry, skipping_one, "SetRegistry: sequence gap")


@pytest.mark.parametrize("start", [1, 2, 3])
def test_overlap_with_anchored_range_is_rejected(registry, stream_id, start):
    genesis = next_commitment(stream_id, None, 3)
    commit(registry, genesis)
    following = next_commitment(stream_id, genesis, 2)
    overlapping = dataclasses.replace(following, sequence_start=start, sequence_end=start + 1)
    assert_reverts(registry, overlapping, "SetRegistry: overlapping range")


def test_sequence_zero_overlaps_the_empty_head(registry, stream_id):
    genesis = next_commitment(stream_id, None, 1)
    assert_reverts(registry, dataclasses.replace(genesis, sequence_start=0, event_count=2), "SetRegistry: overlapping range")


def test_wrong_prev_state_root_is_rejected(registry, stream_id):
    genesis = next_commitment(stream_id, None, 2)
    commit(registry, genesis)
    following = next_commitment(stream_id, genesis, 2)
    forked = dataclasses.replace(following, prev_state_root=genesis.merkle_root)
    assert_reverts(registry, forked, "SetRegistry: prev state root mismatch")


def test_genesis_with_nonzero_prev_state_root_is_rejected(registry, stream_id):
    genesis = next_commitment(stream_id, None, 2)
    assert_reverts(
        registry, dataclasses.replace(genesis, prev_state_root=b"\x01" * 32), "SetRegistry: prev state root mismatch"
    )


def test_end_before_start_is_an_empty_range(registry, stream_id):
    genesis = next_commitment(stream_id, None, 1)
    backwards = dataclasses.replace(genesis, sequence_start=1, sequence_end=0, event_count=0)
    assert_reverts(registry, backwards, "SetRegistry: empty range")


@pytest.mark.parametrize("event_count", [0, 2, 4, 2**32 - 1])
def test_event_count_must_equal_range_length(registry, stream_id, event_count):
    genesis = next_commitment(stream_id, None, 3)
    assert_reverts(registry, dataclasses.replace(genesis, event_count=event_count), "SetRegistry: event count mismatch")


def test_range_longer_than_uint32_can_never_match_its_count(registry, stream_id):
    genesis = next_commitment(stream_id, None, 1)
    huge = dataclasses.replace(genesis, sequence_end=2**32, event_count=2**32 - 1)
    assert_reverts(registry, huge, "SetRegistry: event count mismatch")


def test_zero_new_state_root_is_rejected(registry, stream_id):
    genesis = next_commitment(stream_id, None, 1)
    assert_reverts(registry, dataclasses.replace(genesis, new_state_root=ZERO_ROOT), "SetRegistry: zero new state root")


def test_zero_batch_id_is_rejected(registry, stream_id):
    genesis = next_commitment(stream_id, None, 1)
    assert_reverts(registry, dataclasses.replace(genesis, batch_id=uuid.UUID(int=0)), "SetRegistry: zero batch id")


def test_duplicate_batch_id_is_rejected_even_for_a_valid_next_range(registry, stream_id):
    genesis = next_commitment(stream_id, None, 2)
    commit(registry, genesis)
    following = dataclasses.replace(next_commitment(stream_id, genesis, 2), batch_id=genesis.batch_id)
    assert_reverts(registry, following, "SetRegistry: batch id already used")
    assert registry.get_batch(genesis.batch_id).sequence_end == 2


def test_unauthorised_sender_cannot_commit(chain, stream_id):
    outsider = chain.client(chain.outsider)
    assert_reverts(outsider, next_commitment(stream_id, None, 1), "SetRegistry: not an authorised submitter")


def test_owner_adds_a_submitter_who_can_then_commit(chain, registry, stream_id):
    submitter = chain.client(chain.submitter)
    genesis = next_commitment(stream_id, None, 2)
    assert_reverts(submitter, genesis, "SetRegistry: not an authorised submitter")

    registry.wait_for_receipt(registry.set_submitter(chain.submitter.address, True), timeout=10)
    assert registry.is_submitter(chain.submitter.address)
    commit(submitter, genesis)

    assert registry.get_head(stream_id) == (2, genesis.new_state_root)
    assert registry.get_batch(genesis.batch_id).submitter == chain.submitter.address


def test_owner_revokes_a_submitter(chain, registry, stream_id):
    registry.wait_for_receipt(registry.set_submitter(chain.submitter.address, True), timeout=10)
    registry.wait_for_receipt(registry.set_submitter(chain.submitter.address, False), timeout=10)
    submitter = chain.client(chain.submitter)
    assert_reverts(submitter, next_commitment(stream_id, None, 1), "SetRegistry: not an authorised submitter")


def test_only_owner_manages_submitters(chain):
    outsider = chain.client(chain.outsider)
    with pytest.raises(TransactionReverted) as raised:
        outsider.set_submitter(chain.outsider.address, True)
    assert raised.value.reason == "SetRegistry: caller is not the owner"
    assert not outsider.is_submitter(chain.outsider.address)


def test_transfer_ownership_moves_submitter_management(chain, registry):
    registry.wait_for_receipt(registry.transfer_ownership(chain.submitter.address), timeout=10)
    new_owner = chain.client(chain.submitter)

    assert registry.owner() == chain.submitter.address
    with pytest.raises(TransactionReverted) as raised:
        registry.set_submitter(chain.outsider.address, True)
    assert raised.value.reason == "SetRegistry: caller is not the owner"
    new_owner.wait_for_receipt(new_owner.set_submitter(chain.outsider.address, True), timeout=10)
    assert registry.is_submitter(chain.outsider.address)
    assert registry.is_submitter(chain.owner.address)


def test_batch_committed_event_carries_every_field(chain, registry, stream_id):
    genesis = next_commitment(stream_id, None, 2)
    commit(registry, genesis)
    following = next_commitment(stream_id, genesis, 3)

    receipt = commit(registry, following)

    contract = chain.w3.eth.contract(address=chain.registry_address, abi=load_artifact()["abi"])
    (event,) = contract.events.BatchCommitted().process_receipt(receipt)
    assert dict(event["args"]) == {
        "streamId": stream_id,
        "batchId": following.batch_id.bytes,
        "sequenceStart": 3,
        "sequenceEnd": 5,
        "eventCount": 3,
        "merkleRoot": following.merkle_root,
        "prevStateRoot": genesis.new_state_root,
        "newStateRoot": following.new_state_root,
        "submitter": chain.owner.address,
    }
    assert registry.find_commit_transaction(following.batch_id) == bytes(receipt["transactionHash"])


def test_find_commit_transaction_of_unknown_batch_is_none(registry):
    assert registry.find_commit_transaction(uuid.uuid4()) is None


def test_commit_that_loses_a_race_reverts_on_chain_with_its_reason(chain, registry, stream_id):
    """Two jobs build commits against the same head; the one mined second must fail, with a reason."""
    registry.wait_for_receipt(registry.set_submitter(chain.submitter.address, True), timeout=10)
    second_job = chain.client(chain.submitter)
    genesis = next_commitment(stream_id, None, 2)
    rival = next_commitment(stream_id, None, 3)
    first_tx = registry.build_commit_tx(*genesis.as_args())
    second_tx = second_job.build_commit_tx(*rival.as_args())

    chain.tester.disable_auto_mine_transactions()
    first_hash = registry.send_transaction(first_tx)
    second_hash = second_job.send_transaction(second_tx)
    chain.tester.mine_block()

    assert registry.wait_for_receipt(first_hash, timeout=10)["status"] == 1
    with pytest.raises(TransactionReverted) as raised:
        second_job.wait_for_receipt(second_hash, timeout=10)
    assert raised.value.reason == "SetRegistry: overlapping range"
    assert raised.value.tx_hash == second_hash
    assert registry.get_head(stream_id) == (2, genesis.new_state_root)
    assert registry.get_batch(rival.batch_id) is None


def test_built_commit_tx_targets_the_registry_on_this_chain(chain, registry, stream_id):
    commitment = next_commitment(stream_id, None, 1)
    tx = registry.build_commit_tx(*commitment.as_args())

    assert tx["nonce"] == chain.w3.eth.get_transaction_count(chain.owner.address)
    assert tx["chainId"] == chain.w3.eth.chain_id
    assert tx["to"] == chain.registry_address
    assert tx["from"] == chain.owner.address
    assert tx["gas"] > chain.w3.eth.estimate_gas({k: tx[k] for k in ("from", "to", "data")})


def test_read_only_client_refuses_to_send(chain, stream_id):
    reader = chain.client(False)
    assert reader.sender is None
    with pytest.raises(ChainError, match="read-only"):
        reader.send_commit_batch(*next_commitment(stream_id, None, 1).as_args())


def test_malformed_arguments_are_rejected_before_any_call(registry, stream_id):
    genesis = next_commitment(stream_id, None, 1)
    with pytest.raises(ValueError, match="stream_id must be 32 raw bytes"):
        registry.get_head(stream_id[:31])
    with pytest.raises(ValueError, match="new_state_root must be 32 raw bytes"):
        registry.build_commit_tx(*dataclasses.replace(genesis, new_state_root=b"\x01" * 33).as_args())
    with pytest.raises(ValueError, match="batch_id must be 16 raw bytes"):
        registry.get_batch(b"\x01" * 15)


def test_address_without_code_is_reported_as_not_deployed(chain, stream_id):
    nowhere = RegistryClient(chain.w3, chain.outsider.address)
    with pytest.raises(RegistryNotDeployed):
        nowhere.get_head(stream_id)
    with pytest.raises(RegistryNotDeployed):
        nowhere.ensure_deployed()


def test_ensure_deployed_checks_the_chain_id(chain):
    chain.client().ensure_deployed()
    wrong_chain = RegistryClient(chain.w3, chain.registry_address, chain_id=84532001)
    with pytest.raises(ChainError, match="another chain"):
        wrong_chain.ensure_deployed()


def test_unmined_transaction_times_out_with_its_hash(chain, registry, stream_id):
    chain.tester.disable_auto_mine_transactions()
    tx_hash = registry.send_commit_batch(*next_commitment(stream_id, None, 1).as_args())

    with pytest.raises(ReceiptTimeout) as raised:
        registry.wait_for_receipt(tx_hash, timeout=0.3)
    assert raised.value.tx_hash == tx_hash
    chain.tester.mine_block()
    assert registry.wait_for_receipt(tx_hash, timeout=5)["status"] == 1
