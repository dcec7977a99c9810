"""`python -m app.anchoring --loop`: keeps anchoring new commitments every interval, stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.anchoring.test_end_to_end import ADMIN_CLI
from tests.anchoring.test_end_to_end import ADMIN_KEY
from tests.anchoring.test_end_to_end import e2e_database_url  # noqa: F401 - fixture
from tests.anchoring.test_end_to_end import ganache  # noqa: F401 - fixture
from tests.anchoring.test_end_to_end import run
from tests.controls import auth
from tests.support.servers import ROOT
from tests.support.servers import base_env


def _unsigned(client, tenant, store, count):
    response = client.post("/api/v1/events/ingest", headers=auth(ADMIN_KEY), json={"agent_id": str(uuid.uuid4()),
        "events": [{"event_id": str(uuid.uuid4()), "tenant_id": str(tenant), "store_id": str(store),
                    "entity_type": "order", "entity_id": str(i), "event_type": "t", "payload": {"i": i}}
                   for i in range(count)]})
    assert response.json["events_accepted"] == count


def _anchored_ends(client, tenant, store):
    body = client.get(f"/api/v1/ves/commitments?tenant_id={tenant}&store_id={store}&anchored=true",
                      headers=auth(ADMIN_KEY)).json
    return [c["sequence_end"] for c in body["commitments"]]


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_loop_mode_anchors_each_interval_and_stops_on_sigterm(ganache, e2e_database_url, make_app):  # noqa: F811
    key = ganache.accounts[0].private_key
    env = base_env(e2e_database_url, L2_RPC_URL=ganache.url, L2_CHAIN_ID=ganache.chain_id, DEPLOYER_KEY=key,
                   SEQUENCER_PRIVATE_KEY=key, BOOTSTRAP_ADMIN_API_KEY=ADMIN_KEY)
    deployed = run(ADMIN_CLI + ["deploy-registry", "--rpc-url", ganache.url, "--private-key-env", "DEPLOYER_KEY"], env)
    assert deployed.returncode == 0, deployed.stderr
    env["SET_REGISTRY_ADDRESS"] = deployed.stdout.strip()
    client = make_app(database_url=e2e_database_url, bootstrap_admin_api_key=ADMIN_KEY).test_client()
    tenant, store = uuid.uuid4(), uuid.uuid4()
    _unsigned(client, tenant, store, 3)

    loop = subprocess.Popen([sys.executable, "-m", "app.anchoring", "--loop", "--interval", "0.5"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(lambda: _anchored_ends(client, tenant, store) == [3]), loop.stderr
        _unsigned(client, tenant, store, 2)
        assert _wait_for(lambda: _anchored_ends(client, tenant, store) == [3, 5])
        assert loop.poll() is None
        loop.send_signal(signal.SIGTERM)
        out, err = loop.communicate(timeout=20)
    finally:
        if loop.poll() is None:
            loop.kill()
    assert loop.returncode == 0, err
    assert "Traceback" not in err
