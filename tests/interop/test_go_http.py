"""Interop over HTTP: Go's golang.org/x/mod/sumdb/{note,tlog} (tests/interop/tlogverify, kind "http") fetches a
running sequencer's checkpoint, inclusion proofs and a consistency proof itself, with net/http, and verifies them
against the verifier key derived from the published log key; its roots are the ones recomputed from the events."""

from __future__ import annotations

import os
import uuid

import pytest
import requests
import sqlalchemy as sa

from app.client import AgentSigner
from app.client import SequencerClient
from tests.log.conftest import entries_from_events
from tests.log.conftest import naive_root
from tests.support.golang import run_tlogverify
from tests.support.servers import start_gunicorn

pytestmark = pytest.mark.slow

ADMIN_KEY = "go-http-admin-key-0123456789abcdef"


@pytest.fixture(scope="module")
def server(database_url):
    env = {"BOOTSTRAP_ADMIN_API_KEY": ADMIN_KEY, "LOG_MAX_DELAY_SECONDS": "0", "LOG_ORIGIN": "go.test/ves",
           "LOG_LEVEL": "warning"}
    with start_gunicorn(database_url, env=env, workers=2) as running:
        yield running


def _ingest(client, signer, store, n, tag):
    events = [signer.build_event(store, "order", f"{tag}-{i}", "OrderPlaced", {"i": i}) for i in range(n)]
    assert client.ingest(events, signer.agent_id).events_accepted == n


def test_go_fetches_and_verifies_served_checkpoints_and_proofs(server, engine, tlogverify):
    client = SequencerClient(server.url, ADMIN_KEY)
    signer = AgentSigner(os.urandom(32), uuid.uuid4(), uuid.uuid4(), 1)
    store = str(uuid.uuid4())
    client.register_signer(signer)
    vkey = client.log_verifier_key(signer.tenant_id, store)
    _ingest(client, signer, store, 9, "a")
    earlier = requests.get(f"{server.url}/api/v1/ves/log/checkpoint", params={
        "tenant_id": str(signer.tenant_id), "store_id": store}, headers={"Authorization": f"ApiKey {ADMIN_KEY}"},
        timeout=10).text
    _ingest(client, signer, store, 14, "b")
    case = {"id": "served", "kind": "http", "url": server.url, "api_key": ADMIN_KEY,
            "tenant_id": str(signer.tenant_id), "store_id": store, "vkey": vkey,
            "sequence_numbers": list(range(1, 24)), "earlier_note": earlier}
    wrong_key = {**case, "id": "wrong key", "vkey": client.log_verifier_key(signer.tenant_id, store, bytes(32))}
    (result, refused) = run_tlogverify(tlogverify, [case, wrong_key])
    assert result["ok"], result
    entries = entries_from_events(engine, signer.tenant_id, uuid.UUID(store))
    assert (result["tree_size"], result["root"], result["checked"]) == (23, naive_root(entries).hex(), 24)
    assert result["origin"].startswith("go.test/ves/")
    assert not refused["ok"] and "X-Log-Vkey" in refused["error"]

    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        conn.execute(sa.text("UPDATE log_nodes SET hash = decode(repeat('ee', 32), 'hex') WHERE tenant_id = :t "
                             "AND store_id = :s AND level = 3 AND node_index = 0"),
                     {"t": signer.tenant_id, "s": uuid.UUID(store)})
    (tampered,) = run_tlogverify(tlogverify, [{**case, "id": "tampered", "sequence_numbers": [12],
                                               "earlier_note": ""}])
    assert not tampered["ok"] and "sequence number 12" in tampered["error"], tampered
