"""Fixtures for SetRegistry tests: an in-process EVM (eth-tester + py-evm) with the registry deployed.

One chain per module; each test runs on a snapshot that is reverted afterwards, so tests are
independent and deploying happens once. Commitments are built with real VES state roots.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import EthereumTesterProvider
from web3 import Web3

from app.chain.registry import RegistryClient
from app.chain.registry import deploy_registry
from tests.contracts.controls import ves_stream_id


@pytest.fixture
def stream_id() -> bytes:
    """A fresh stream per test."""
    return ves_stream_id(uuid.uuid4(), uuid.uuid4())


@dataclass(frozen=True)
class TesterChain:
    w3: Web3
    owner: LocalAccount
    submitter: LocalAccount
    outsider: LocalAccount
    registry_address: str

    def client(self, account: LocalAccount | None | bool = None) -> RegistryClient:
        """A client signing as `account` (default: the owner), or read-only if account is False."""
        key = None if account is False else (account or self.owner).key
        return RegistryClient(self.w3, self.registry_address, private_key=key)

    @property
    def tester(self):
        return self.w3.provider.ethereum_tester


@pytest.fixture(scope="module")
def _deployed_chain() -> TesterChain:
    w3 = Web3(EthereumTesterProvider())
    owner, submitter, outsider = (
        Account.from_key(key.to_bytes()) for key in w3.provider.ethereum_tester.backend.account_keys[:3]
    )
    address = deploy_registry(w3, owner)
    return TesterChain(w3=w3, owner=owner, submitter=submitter, outsider=outsider, registry_address=address)


@pytest.fixture
def chain(_deployed_chain: TesterChain) -> TesterChain:
    """The module's chain, reverted to its just-deployed state after the test."""
    tester = _deployed_chain.tester
    snapshot = tester.take_snapshot()
    yield _deployed_chain
    tester.enable_auto_mine_transactions()
    tester.revert_to_snapshot(snapshot)


@pytest.fixture
def registry(chain: TesterChain) -> RegistryClient:
    """Client signing as the owner (who is also a submitter)."""
    return chain.client()
