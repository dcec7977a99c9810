"""`ves-verify verify --rpc-url`: commitments are checked against the SetRegistry contract (VES.md §Anchoring).

In process: `OnChainCheck` (what the CLI builds from --rpc-url) over a read-only client of an eth-tester EVM, with
the correct bundle of tests/verify/conftest.py anchored as it is, partly, or with a forged root. As a process: the
CLI's usage and I/O errors, the import boundary (no web3 unless --rpc-url is used), and (slow) the installed
commands against commitments anchored by a real gunicorn on ganache.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from eth_account import Account
from web3 import EthereumTesterProvider
from web3 import Web3

from app.chain.registry import RegistryClient
from app.chain.registry import connect
from app.chain.registry import deploy_registry
from app.client import AgentSigner
from app.client import SequencerClient
from app.verify import verify_bundle
from app.verify.cli import OnChainCheck
from app.verify.cli import main
from app.ves import parse_hex
from app.ves import stream_id
from tests.support.ganache import start_ganache
from tests.support.servers import ROOT
from tests.support.servers import free_port
from tests.support.servers import start_gunicorn
from tests.verify.conftest import STORE
from tests.verify.conftest import TENANT

STREAM = stream_id(TENANT, STORE)


@pytest.fixture(scope="module")
def evm():
    w3 = Web3(EthereumTesterProvider())
    owner = Account.from_key(w3.provider.ethereum_tester.backend.account_keys[0].to_bytes())
    return w3, owner


@pytest.fixture
def registry(evm) -> RegistryClient:
    """A freshly deployed registry per test (the bundle's batch ids are fixed), signing as its owner."""
    w3, owner = evm
    return RegistryClient(w3, deploy_registry(w3, owner), private_key=owner.key)


def read_only(registry: RegistryClient) -> RegistryClient:
    return RegistryClient(registry.w3, registry.address)


def anchor(registry: RegistryClient, commitment: dict, **override: str) -> None:
    """Commit `commitment` on chain, with any hex field replaced by `override`, and mark it anchored in the bundle."""
    fields = {**commitment, **override}
    tx = registry.send_commit_batch(
        STREAM, fields["sequence_start"], fields["sequence_end"], fields["leaf_count"],
        parse_hex(fields["merkle_root"], 32, "merkle_root"), parse_hex(fields["prev_state_root"], 32, "prev"),
        parse_hex(fields["new_state_root"], 32, "new"), uuid.UUID(fields["batch_id"]))
    registry.wait_for_receipt(tx)
    commitment.update(is_anchored=True, chain_id=registry.chain_id)


def checks(report) -> list[tuple[str | None, str]]:
    return [(d.batch_id, d.check) for d in report.discrepancies]


def test_every_anchored_commitment_matches_the_chain(bundle, registry):
    for commitment in bundle["commitments"]:
        anchor(registry, commitment)
    on_chain = OnChainCheck(read_only(registry))

    report = verify_bundle(bundle, chain_checker=on_chain)

    assert report.ok, report.summary()
    assert (on_chain.checked, on_chain.not_anchored) == (2, 0)
    assert on_chain.summary() == (f"checked 2 commitments on chain {registry.chain_id} (registry {registry.address}); "
                                  "0 not anchored yet")


def test_a_commitment_not_anchored_yet_is_counted_not_failed(bundle, registry):
    first, second = bundle["commitments"]
    anchor(registry, first)
    second.update(is_anchored=False, chain_id=None)
    on_chain = OnChainCheck(read_only(registry))

    assert verify_bundle(bundle, chain_checker=on_chain).ok
    assert (on_chain.checked, on_chain.not_anchored) == (1, 1)


def test_a_commitment_recorded_as_anchored_but_absent_from_the_registry(bundle, registry):
    first, second = bundle["commitments"]
    anchor(registry, first)
    second.update(is_anchored=True, chain_id=registry.chain_id)
    on_chain = OnChainCheck(read_only(registry))

    report = verify_bundle(bundle, chain_checker=on_chain)

    assert checks(report) == [(second["batch_id"], "chain_anchor")]
    assert (report.first.expected, report.first.found) == ("anchored", "absent")
    assert (on_chain.checked, on_chain.not_anchored) == (2, 0)


def test_a_root_that_differs_from_the_chains_is_a_discrepancy(bundle, registry):
    """The bundle is self-consistent; only the registry disagrees, so only the chain check can catch it."""
    first = bundle["commitments"][0]
    forged = "0x" + "ee" * 32
    anchor(registry, first, merkle_root=forged)

    report = verify_bundle(bundle, chain_checker=OnChainCheck(read_only(registry)))

    assert checks(report) == [(first["batch_id"], "chain_anchor")]
    assert (report.first.expected, report.first.found) == (first["merkle_root"], forged)
    assert "merkle_root" in report.first.message


def test_an_anchored_commitment_recorded_for_another_chain(bundle, registry):
    first, second = bundle["commitments"]
    anchor(registry, first)
    anchor(registry, second)
    second["chain_id"] = registry.chain_id + 1

    report = verify_bundle(bundle, chain_checker=OnChainCheck(read_only(registry)))

    assert checks(report) == [(second["batch_id"], "chain_anchor")]
    assert (report.first.expected, report.first.found) == (registry.chain_id, registry.chain_id + 1)


def test_rpc_options_need_each_other_and_a_reachable_endpoint(tmp_path, capsys):
    path = tmp_path / "bundle.json"
    path.write_text("{}")
    assert main(["verify", "--bundle", str(path), "--rpc-url", "http://127.0.0.1:1"]) == 2
    assert "--rpc-url and --registry-address go together" in capsys.readouterr().err
    assert main(["verify", "--bundle", str(path), "--registry-address", "0x" + "11" * 20]) == 2
    capsys.readouterr()

    unreachable = f"http://127.0.0.1:{free_port()}"
    assert main(["verify", "--bundle", str(path), "--rpc-url", unreachable, "--registry-address",
                 "0x" + "11" * 20, "--timeout", "2"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("ves-verify: error:") and unreachable in error


def test_the_verifier_imports_web3_only_for_rpc_checks():
    probe = ("import sys, app.verify, app.verify.cli; "
             "assert not {'web3', 'eth_account', 'app.chain'} & set(sys.modules), sorted(sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


ADMIN_KEY = "onchain-verify-admin-key-0123456789abcdef"


def run_cli(program: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name(program)), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=90)


@pytest.mark.slow
def test_the_real_cli_checks_roots_anchored_on_ganache(database_url, engine):
    """Anchor through a real gunicorn (POST /api/v1/ves/commitments/anchor) on ganache, then run the installed
    `ves-verify` and `stateset-sequencer-admin verify` with --rpc-url: clean, then with one anchored root changed
    in the database (now differing from the chain's), then against the wrong chain id."""
    with start_ganache() as node:
        key = node.accounts[0].private_key
        address = deploy_registry(connect(node.url), key)
        env = {"BOOTSTRAP_ADMIN_API_KEY": ADMIN_KEY, "L2_RPC_URL": node.url, "L2_CHAIN_ID": str(node.chain_id),
               "SET_REGISTRY_ADDRESS": address, "SEQUENCER_PRIVATE_KEY": key}
        with start_gunicorn(database_url, env=env, workers=1) as server:
            client = SequencerClient(server.url, ADMIN_KEY)
            signer = AgentSigner(uuid.uuid4().bytes * 2, uuid.uuid4(), uuid.uuid4(), 1)
            store = str(uuid.uuid4())
            client.register_signer(signer)
            events = [signer.build_event(store, "order", f"o-{i}", "OrderPlaced", {"total": i}) for i in range(6)]
            assert client.ingest(events, signer.agent_id).events_accepted == 6
            anchored = []
            for start, end in ((1, 3), (4, 5)):
                response = requests.post(server.url + "/api/v1/ves/commitments/anchor", timeout=60,
                                         headers={"Authorization": f"ApiKey {ADMIN_KEY}"},
                                         json={"tenant_id": str(signer.tenant_id), "store_id": store,
                                               "sequence_start": start, "sequence_end": end})
                assert response.status_code == 200, response.text
                anchored.append(response.json())
            client.create_commitment(signer.tenant_id, store, sequence_start=6, sequence_end=6)

            source = ["--url", server.url, "--api-key", ADMIN_KEY, "--tenant", str(signer.tenant_id),
                      "--store", store]
            chain = ["--rpc-url", node.url, "--registry-address", address, "--chain-id", str(node.chain_id)]
            clean = run_cli("ves-verify", "verify", *source, *chain)
            assert (clean.returncode, clean.stdout.splitlines()) == (0, [
                "verified 6 events in 3 commitments",
                f"checked 2 commitments on chain {node.chain_id} (registry {address}); 1 not anchored yet"]), \
                clean.stderr

            changed = anchored[1]
            real_root = parse_hex(changed["merkle_root"], 32, "merkle_root")
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE batch_commitments SET merkle_root = :r WHERE batch_id = :b"),
                             {"r": bytes([real_root[0] ^ 1]) + real_root[1:], "b": uuid.UUID(changed["batch_id"])})
            tampered = run_cli("stateset-sequencer-admin", "verify", *source, *chain, "--json")
            assert tampered.returncode == 1, tampered.stderr
            report = json.loads(tampered.stdout)
            on_chain = [d for d in report["discrepancies"] if d["check"] == "chain_anchor"]
            # The report writes hashes as 0x hex (its own form); the served commitment is plain hex (issue 11).
            assert [(d["batch_id"], parse_hex(d["found"], 32, "found")) for d in on_chain] == [
                (changed["batch_id"], real_root)]
            assert report["chain"]["commitments_checked_on_chain"] == 2

            wrong_chain = run_cli("ves-verify", "verify", *source, "--rpc-url", node.url, "--registry-address",
                                  address, "--chain-id", str(node.chain_id + 1))
            assert wrong_chain.returncode == 2
            assert "another chain" in wrong_chain.stderr
