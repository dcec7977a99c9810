"""End to end on ganache over HTTP: deploy with `stateset-sequencer-admin deploy-registry`, ingest through a real
gunicorn, run the cron entrypoint twice at once, once killed after sending and once more, then check every commitment
is on chain exactly once with roots recomputed independently, and that the contract refuses forged forks."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from app.chain import TransactionReverted
from app.chain.registry import RegistryClient
from tests.anchoring.conftest import clone_database
from tests.commitments import reference
from tests.support.ganache import start_ganache
from tests.support.pg import drop_database
from tests.support.servers import ROOT
from tests.support.servers import base_env
from tests.support.servers import free_port
from tests.support.servers import start_gunicorn

ADMIN_KEY = "e2e-bootstrap-admin-key-0123456789"
HEADERS = {"Authorization": f"ApiKey {ADMIN_KEY}"}
CRASH_SCRIPT = Path(__file__).with_name("crash_after_send.py")
ADMIN_CLI = [str(Path(sys.executable).with_name("stateset-sequencer-admin"))]


@pytest.fixture
def ganache():
    node = start_ganache()
    yield node
    node.stop()


@pytest.fixture
def e2e_database_url(database_server_url, anchoring_template_url):
    url = clone_database(database_server_url, anchoring_template_url)
    yield url
    drop_database(database_server_url, url)


def run(command, env, timeout=90):
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def ingest(server_url, tenant, store_id, count):
    response = requests.post(server_url + "/api/v1/events/ingest", headers=HEADERS, timeout=30, json={
        "agent_id": str(uuid.uuid4()), "events": [
            {"event_id": str(uuid.uuid4()), "tenant_id": str(tenant), "store_id": str(store_id),
             "entity_type": "order", "entity_id": f"order-{i}", "event_type": "order.created", "payload": {"i": i}}
            for i in range(count)]})
    assert response.status_code == 200, response.text
    assert response.json()["events_accepted"] == count


def served(server_url, path, tenant, store_id, extra_query=""):
    response = requests.get(f"{server_url}{path}?tenant_id={tenant}&store_id={store_id}&limit=1000{extra_query}",
                            headers=HEADERS, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def independent_roots(events, tenant, store_id, ranges):
    by_number = {e["sequence_number"]: e for e in events}
    stream, prev, out = reference.stream_id(tenant, store_id), bytes(32), []
    for start, end in ranges:
        leaves = []
        for n in range(start, end + 1):
            signature = by_number[n]["agent_signature"]
            leaves.append(reference.leaf(tenant, store_id, n, bytes.fromhex(by_number[n]["event_signing_hash"].removeprefix("0x")),
                                         bytes.fromhex(signature.removeprefix("0x")) if signature else None))
        root = reference.root(leaves)
        new = reference.state_root(stream, prev, root, start, end, end - start + 1)
        out.append((root.hex(), prev.hex(), new.hex()))
        prev = new
    return out


@pytest.mark.slow
def test_cron_anchoring_end_to_end_on_ganache(ganache, e2e_database_url):
    key = ganache.accounts[0].private_key
    env = base_env(e2e_database_url, L2_RPC_URL=ganache.url, L2_CHAIN_ID=ganache.chain_id, DEPLOYER_KEY=key,
                   SEQUENCER_PRIVATE_KEY=key, BOOTSTRAP_ADMIN_API_KEY=ADMIN_KEY, ANCHOR_MAX_EVENTS=3)

    deployed = run(ADMIN_CLI + ["deploy-registry", "--rpc-url", ganache.url, "--private-key-env", "DEPLOYER_KEY"], env)
    assert deployed.returncode == 0, deployed.stderr
    address = deployed.stdout.strip()
    assert address.startswith("0x") and len(address) == 42
    env["SET_REGISTRY_ADDRESS"] = address
    registry = RegistryClient.from_url(ganache.url, address, private_key=key)
    streams = [(uuid.uuid4(), uuid.uuid4()) for _ in range(2)]

    with start_gunicorn(e2e_database_url, env=env, workers=1) as server:
        ingest(server.url, *streams[0], 7)
        ingest(server.url, *streams[1], 4)

        racers = [subprocess.Popen([sys.executable, "-m", "app.anchoring", "--once"], cwd=ROOT, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = [racer.communicate(timeout=90) for racer in racers]
        assert [racer.returncode for racer in racers] == [0, 0], outputs

        ingest(server.url, *streams[0], 4)
        crashed = run([sys.executable, str(CRASH_SCRIPT), "--once"], env)
        assert crashed.returncode == 86, crashed.stderr
        unanchored = served(server.url, "/api/v1/ves/commitments", *streams[0], "&anchored=false")["commitments"]
        assert [c["sequence_start"] for c in unanchored] == [8, 11]
        assert registry.get_batch(uuid.UUID(unanchored[0]["batch_id"])) is not None

        recovered = run(ADMIN_CLI + ["anchor", "--once"], env)
        assert recovered.returncode == 0, recovered.stderr
        assert "found on chain from an earlier run" in recovered.stdout

        ingest(server.url, *streams[1], 1)
        offline = run(ADMIN_CLI + ["anchor"], {**env, "L2_RPC_URL": f"http://127.0.0.1:{free_port()}"})
        assert offline.returncode == 1
        assert len(offline.stderr.strip().splitlines()) == 1 and "unreachable" in offline.stderr
        assert [c["sequence_end"] for c in served(server.url, "/api/v1/ves/commitments", *streams[1])["commitments"]
                ] == [3, 4]

        expected_ranges = {streams[0]: [(1, 3), (4, 6), (7, 7), (8, 10), (11, 11)], streams[1]: [(1, 3), (4, 4)]}
        logs = registry._contract.events.BatchCommitted.get_logs(from_block=0)
        committed_batch_ids = [uuid.UUID(bytes=bytes(log["args"]["batchId"])) for log in logs]
        assert len(committed_batch_ids) == len(set(committed_batch_ids)) == 7
        for (tenant, store_id), ranges in expected_ranges.items():
            commitments = served(server.url, "/api/v1/ves/commitments", tenant, store_id)["commitments"]
            events = served(server.url, "/api/v1/ves/events", tenant, store_id)["events"]
            assert [(c["sequence_start"], c["sequence_end"]) for c in commitments] == ranges
            assert [(c["merkle_root"], c["prev_state_root"], c["new_state_root"]) for c in commitments] == \
                independent_roots(events, tenant, store_id, ranges)
            for commitment in commitments:
                on_chain = registry.get_batch(uuid.UUID(commitment["batch_id"]))
                assert on_chain is not None and on_chain.merkle_root.hex() == commitment["merkle_root"]
                assert on_chain.new_state_root.hex() == commitment["new_state_root"]
                verdict = requests.get(f"{server.url}/api/v1/ves/anchor/{commitment['batch_id']}/verify",
                                       headers=HEADERS, timeout=30).json()
                assert verdict["anchored_on_chain"] and verdict["root_matches"] and verdict["recorded_as_anchored"]
                assert verdict["chain_tx_hash"] == registry.find_commit_transaction(on_chain.batch_id).hex()

    stream_a = reference.stream_id(*streams[0])
    head_end, head_root = registry.get_head(stream_a)
    forged_root = bytes(31) + b"\x01"
    with pytest.raises(TransactionReverted):
        registry.build_commit_tx(stream_a, 1, 3, 3, forged_root, bytes(32),
                                 reference.state_root(stream_a, bytes(32), forged_root, 1, 3, 3), uuid.uuid4())
    wrong_prev = bytes(31) + b"\x02"
    with pytest.raises(TransactionReverted):
        registry.build_commit_tx(stream_a, head_end + 1, head_end + 1, 1, forged_root, wrong_prev,
                                 reference.state_root(stream_a, wrong_prev, forged_root, head_end + 1, head_end + 1, 1),
                                 uuid.uuid4())
    assert registry.get_head(stream_a) == (head_end, head_root)
