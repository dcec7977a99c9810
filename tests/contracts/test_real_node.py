"""The chain client over HTTP: a real node (ganache) end to end, and an unreachable endpoint."""

from __future__ import annotations

import socket
import time
import uuid

import pytest

from app.chain.errors import ChainUnavailable
from app.chain.errors import TransactionReverted
from app.chain.registry import RegistryClient
from app.chain.registry import connect
from app.chain.registry import deploy_registry
from tests.contracts.controls import next_commitment
from tests.contracts.controls import ves_stream_id
from tests.support.ganache import start_ganache


def _closed_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_deploy_commit_and_read_back_on_ganache():
    with start_ganache(chain_id=84532001) as node:
        deployer = node.accounts[0]
        w3 = connect(node.url, timeout=5)
        address = deploy_registry(w3, deployer.private_key, chain_id=node.chain_id)
        client = RegistryClient.from_url(node.url, address, private_key=deployer.private_key, chain_id=node.chain_id)
        client.ensure_deployed()
        stream_id = ves_stream_id(uuid.uuid4(), uuid.uuid4())
        genesis = next_commitment(stream_id, None, 4)

        tx_hash = client.send_commit_batch(*genesis.as_args())
        receipt = client.wait_for_receipt(tx_hash, timeout=10)

        assert client.get_head(stream_id) == (4, genesis.new_state_root)
        stored = client.get_batch(genesis.batch_id)
        assert (stored.stream_id, stored.sequence_start, stored.sequence_end) == (stream_id, 1, 4)
        assert (stored.merkle_root, stored.new_state_root) == (genesis.merkle_root, genesis.new_state_root)
        assert stored.block_number == receipt["blockNumber"]
        assert stored.submitter == deployer.address
        assert client.find_commit_transaction(genesis.batch_id) == tx_hash

        replay = next_commitment(stream_id, None, 4)
        with pytest.raises(TransactionReverted) as raised:
            client.send_commit_batch(*replay.as_args())
        assert raised.value.reason == "SetRegistry: overlapping range"

        outsider = RegistryClient(w3, address, private_key=node.accounts[1].private_key)
        with pytest.raises(TransactionReverted) as raised:
            outsider.send_commit_batch(*next_commitment(stream_id, genesis, 1).as_args())
        assert raised.value.reason == "SetRegistry: not an authorised submitter"


def test_unreachable_rpc_raises_chain_unavailable_quickly():
    url = f"http://127.0.0.1:{_closed_loopback_port()}"
    client = RegistryClient.from_url(url, "0x" + "11" * 20, private_key="0x" + "22" * 32, timeout=2)
    stream_id = ves_stream_id(uuid.uuid4(), uuid.uuid4())

    started = time.monotonic()
    with pytest.raises(ChainUnavailable, match="unreachable") as raised:
        client.get_head(stream_id)
    assert url in str(raised.value)
    with pytest.raises(ChainUnavailable):
        client.send_commit_batch(*next_commitment(stream_id, None, 1).as_args())
    with pytest.raises(ChainUnavailable):
        deploy_registry(connect(url, timeout=2), "0x" + "22" * 32)
    assert time.monotonic() - started < 3
