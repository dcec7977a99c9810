"""A point-in-time restore cannot fork the log (docs/RESTORE.md "After a point-in-time restore: the fence").

Two streams are written through a real gunicorn on an archiving PostgreSQL 15 and anchored on ganache with the cron
entrypoint (`stateset-sequencer-admin anchor`); note T; stream A gets more events and another anchored commitment,
then a last batch; the head watermark and an export bundle of A are taken. Restore to T with `restore-pitr.sh`. Then,
as the runbook says: `fence --watermark` (it also reads the chain) fences A alone; the sequencer refuses writes to A
with 503 STREAM_FENCED and accepts B's; `heal --bundle` re-ingests A's missing events: identical numbers, receipt
hashes and sequencer signatures, the lost commitment back with its batch id and roots, which the next anchoring run
finds on chain (recovered, nothing sent); writes to A resume and `ves-verify verify` (with the chain) passes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.support.ganache import start_ganache
from tests.support.load import StreamWriter
from tests.support.load import register_signer
from tests.support.pitr import ArchivingPrimary
from tests.support.pitr import restored_to
from tests.support.pitr import server_clock
from tests.support.servers import ROOT
from tests.support.servers import base_env
from tests.support.servers import start_gunicorn

ADMIN_KEY = "fence-bootstrap-admin-key-0123456"
ADMIN = {"Authorization": f"ApiKey {ADMIN_KEY}"}
ADMIN_CLI = [str(Path(sys.executable).with_name("stateset-sequencer-admin"))]
VES_VERIFY = [str(Path(sys.executable).with_name("ves-verify"))]


def cli(command: list[str], env: dict, expect: int = 0) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == expect, f"{command[1:3]} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def last_json(text: str):
    start = text.rfind("\n{")
    return json.loads(text[start + 1:] if start >= 0 else text)


def events_of(url: str, tenant, store) -> list[dict]:
    response = requests.get(f"{url}/api/v1/ves/events", headers=ADMIN, timeout=30,
                            params={"tenant_id": str(tenant), "store_id": str(store), "limit": 1000})
    assert response.status_code == 200, response.text
    return [(e["sequence_number"], e["event_id"], e["sequencer_receipt"]["receipt_hash"],
             e["sequencer_receipt"]["sequencer_signature"], e["sequenced_at"]) for e in response.json()["events"]]


def commitments_of(url: str, tenant, store) -> list[tuple]:
    response = requests.get(f"{url}/api/v1/ves/commitments", headers=ADMIN, timeout=30,
                            params={"tenant_id": str(tenant), "store_id": str(store)})
    assert response.status_code == 200, response.text
    return sorted(((c["batch_id"], c["sequence_start"], c["sequence_end"], c["merkle_root"], c["new_state_root"],
                   c["is_anchored"]) for c in response.json()["commitments"]), key=lambda c: c[1])


@pytest.mark.slow
def test_restore_to_t_fences_the_stream_behind_and_a_replay_heals_it_to_identical_receipts_and_roots():
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="seqfence-"))
    with ArchivingPrimary() as primary, start_ganache() as chain:
        key = chain.accounts[0].private_key
        chain_env = {"L2_RPC_URL": chain.url, "L2_CHAIN_ID": str(chain.chain_id), "SEQUENCER_PRIVATE_KEY": key,
                     "DEPLOYER_KEY": key, "BOOTSTRAP_ADMIN_API_KEY": ADMIN_KEY, "LOG_LEVEL": "warning"}
        deployed = cli(ADMIN_CLI + ["deploy-registry", "--rpc-url", chain.url, "--private-key-env", "DEPLOYER_KEY"],
                       base_env(primary.url, **chain_env))
        chain_env["SET_REGISTRY_ADDRESS"] = deployed.stdout.strip().splitlines()[-1]
        primary_env = base_env(primary.url, **chain_env)
        with start_gunicorn(primary.url, env=chain_env, workers=1) as server:
            tenant_id = uuid.uuid4()
            a, b = (StreamWriter(server.url, ADMIN, tenant_id, *register_signer(server.url, ADMIN, tenant_id))
                    for _ in range(2))
            for writer in (a, b):
                writer.deliver(2)
            backup = primary.base_backup()
            for writer in (a, b):
                writer.deliver(2)
            cli(ADMIN_CLI + ["anchor"], primary_env)
            target_time = server_clock(primary.url)
            a.deliver(3)
            cli(ADMIN_CLI + ["anchor"], primary_env)
            a.deliver(1)
            assert a.unexpected == [] and b.unexpected == []
            watermark = work / "watermark.json"
            cli(ADMIN_CLI + ["export-watermark", "--out", str(watermark)], primary_env)
            bundle = work / "stream-a.json"
            cli(VES_VERIFY + ["export", "--url", server.url, "--api-key", ADMIN_KEY, "--tenant", str(tenant_id),
                              "--store", str(a.store_id), "-o", str(bundle)], primary_env)
            published_a = events_of(server.url, tenant_id, a.store_id)
            published_b = events_of(server.url, tenant_id, b.store_id)
            commitments_a = commitments_of(server.url, tenant_id, a.store_id)
        primary.archive_everything()
        assert [len(published_a), len(published_b)] == [40, 20]
        assert [c[1:3] for c in commitments_a] == [(1, 20), (21, 35)] and all(c[5] for c in commitments_a)

        with restored_to(backup, primary.archive_dir, target_time) as restored:
            env = base_env(restored.sqlalchemy_url(), **chain_env)
            fenced = cli(ADMIN_CLI + ["fence", "--watermark", str(watermark), "--operator", "test"], env, expect=3)
            report = last_json(fenced.stdout)
            assert report["fenced"] == 1 and report["diverged"] == 0
            assert [(s["store_id"], s["database_head"], s["published_sequence"], s["sources"])
                    for s in report["streams"]] == [(str(a.store_id), 20, 40, "chain,watermark")]

            with start_gunicorn(restored.sqlalchemy_url(), env=chain_env, workers=1) as server:
                a.base_url = b.base_url = server.url
                refused = requests.post(f"{server.url}/api/v1/ves/events/ingest", headers=ADMIN, timeout=30, json={
                    "agentId": str(a.agent_id), "events": [a.signer.build_event(a.store_id, "order", "x", "t", {})]})
                assert refused.status_code == 503 and refused.json()["code"] == "STREAM_FENCED", refused.text
                assert events_of(server.url, tenant_id, a.store_id) == published_a[:20]
                b.deliver(1)
                assert b.unexpected == [] and events_of(server.url, tenant_id, b.store_id)[:20] == published_b
                cli(ADMIN_CLI + ["anchor"], env)
                assert [c[1:3] for c in commitments_of(server.url, tenant_id, a.store_id)] == [(1, 20)]

                healed = cli(ADMIN_CLI + ["heal", "--bundle", str(bundle), "--operator", "test"], env)
                heal = last_json(healed.stdout)
                assert (heal["head_before"], heal["head_after"], heal["events_replayed"], heal["fence"],
                        heal["commitments_restored"]) == (20, 40, 20, "lifted", 1)
                assert events_of(server.url, tenant_id, a.store_id) == published_a
                cli(ADMIN_CLI + ["anchor"], env)
                after = commitments_of(server.url, tenant_id, a.store_id)
                assert [c for c in after if c[2] <= 35] == commitments_a, "same batch ids, ranges and roots, anchored"
                assert [(c[1], c[2], c[5]) for c in after if c[2] > 35] == [(36, 40, True)]
                a.deliver(1)
                assert a.unexpected == [] and events_of(server.url, tenant_id, a.store_id)[40][0] == 41
                verified = cli(VES_VERIFY + ["verify", "--url", server.url, "--api-key", ADMIN_KEY, "--tenant",
                                             str(tenant_id), "--store", str(a.store_id), "--rpc-url", chain.url,
                                             "--registry-address", chain_env["SET_REGISTRY_ADDRESS"]], env)
                assert "FAIL" not in verified.stdout.upper() or "0 fail" in verified.stdout.lower(), verified.stdout
            print(f"\nrestore to T in {restored.seconds:.1f} s; fence, heal of {heal['events_replayed']} events in "
                  f"{heal['seconds']:.2f} s; whole test {time.monotonic() - started:.0f} s")
    shutil.rmtree(work, ignore_errors=True)
