"""Fixtures for anchoring tests: a database of their own per test (cloned from a migrated template, because the
anchoring run sees every stream in its database), and an in-process EVM (eth-tester) with SetRegistry deployed,
reverted to its just-deployed state after each test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy.engine import make_url
from web3 import EthereumTesterProvider
from web3 import Web3

from app.chain.registry import RegistryClient
from app.chain.registry import deploy_registry
from app.config import Settings
from app.db.engine import make_engine
from app.db.migrations import upgrade_to_head
from tests.support.pg import create_database
from tests.support.pg import drop_database


@pytest.fixture(scope="session")
def anchoring_template_url(database_server_url):
    """A migrated database used only as a template for per-test copies."""
    url = create_database(database_server_url, prefix="seqanchortpl")
    engine = sa.create_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    yield url
    drop_database(database_server_url, url)


def clone_database(server_url: str, template_url: str) -> str:
    name = f"seqanchor_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template_url).database}"'))
    admin.dispose()
    return make_url(template_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def anchor_database_url(database_server_url, anchoring_template_url):
    url = clone_database(database_server_url, anchoring_template_url)
    yield url
    drop_database(database_server_url, url)


@pytest.fixture
def anchor_settings(anchor_database_url, settings) -> Settings:
    return settings.replace(database_url=Settings.from_env({"DATABASE_URL": anchor_database_url}).database_url)


@pytest.fixture
def anchor_engine(anchor_settings):
    engine = make_engine(anchor_settings, pool_size=4)
    yield engine
    engine.dispose()


@dataclass(frozen=True)
class TesterChain:
    w3: Web3
    owner: LocalAccount
    outsider: LocalAccount
    registry_address: str

    def client(self, account: LocalAccount | None | bool = None) -> RegistryClient:
        """A client signing as `account` (default: the owner, a submitter), or read-only if account is False."""
        key = None if account is False else (account or self.owner).key
        return RegistryClient(self.w3, self.registry_address, private_key=key)

    @property
    def tester(self):
        return self.w3.provider.ethereum_tester

    def nonce(self, account: LocalAccount | None = None) -> int:
        return self.w3.eth.get_transaction_count((account or self.owner).address)


@pytest.fixture(scope="module")
def _deployed_chain() -> TesterChain:
    w3 = Web3(EthereumTesterProvider())
    owner, outsider = (Account.from_key(key.to_bytes()) for key in w3.provider.ethereum_tester.backend.account_keys[:2])
    return TesterChain(w3=w3, owner=owner, outsider=outsider, registry_address=deploy_registry(w3, owner))


@pytest.fixture
def chain(_deployed_chain: TesterChain) -> TesterChain:
    tester = _deployed_chain.tester
    snapshot = tester.take_snapshot()
    yield _deployed_chain
    tester.enable_auto_mine_transactions()
    tester.revert_to_snapshot(snapshot)


@pytest.fixture
def registry(chain: TesterChain) -> RegistryClient:
    return chain.client()
