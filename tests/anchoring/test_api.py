"""Anchoring API on an in-process EVM: status, anchor-now (admin) and on-chain verification of a commitment."""

from __future__ import annotations

import uuid

import pytest
from eth_account import Account

from app import create_app
from app.api.anchoring import CLIENT_EXTENSION
from app.chain import RegistryClient
from app.services.commitments import create_commitment
from app.api.wire import hex_of
from tests.commitments import reference
from tests.commitments.event_rows import append_events
from tests.controls import api_key
from tests.controls import auth
from tests.support.servers import free_port

ADMIN = auth("test-bootstrap-admin-key-0123456789")
SIGNER_KEY = "0x" + "5a" * 32


@pytest.fixture
def anchor_app(anchor_settings, chain):
    """An app on the test's own database whose registry client is the eth-tester one."""
    application = create_app(anchor_settings.replace(
        l2_rpc_url="http://127.0.0.1:9", set_registry_address=chain.registry_address,
        sequencer_private_key="0x" + chain.owner.key.hex().removeprefix("0x"), l2_chain_id=chain.w3.eth.chain_id))
    application.extensions[CLIENT_EXTENSION] = chain.client()
    yield application
    application.extensions["sequencer"].engine.dispose()


@pytest.fixture
def api(anchor_app):
    return anchor_app.test_client()


@pytest.fixture
def stream():
    return uuid.uuid4(), uuid.uuid4()


def test_status_when_not_configured_names_the_missing_variables(make_app, settings):
    response = make_app().test_client().get("/api/v1/anchor/status", headers=ADMIN)
    assert response.status_code == 200
    body = response.get_json()
    assert body["anchor_enabled"] is False and body["signer_address"] is None
    assert body["chain_id"] == settings.l2_chain_id
    assert "L2_RPC_URL" in body["message"] and "SEQUENCER_PRIVATE_KEY" in body["message"]


def test_status_when_configured_shows_the_signer_address_and_no_secret(make_app, engine):
    application = make_app(l2_rpc_url="http://127.0.0.1:9", set_registry_address="0x" + "ab" * 20,
                           sequencer_private_key=SIGNER_KEY, l2_chain_id=84532001)
    reader = auth(api_key(engine, uuid.uuid4(), "read"))
    client = application.test_client()
    assert client.get("/api/v1/anchor/status").status_code == 401
    response = client.get("/api/v1/anchor/status", headers=reader)
    assert response.status_code == 200
    body = response.get_json()
    assert body["anchor_enabled"] is True and body["chain_id"] == 84532001
    assert body["signer_address"] == Account.from_key(SIGNER_KEY).address
    assert body["registry_address"].lower() == "0x" + "ab" * 20
    assert "5a5a5a" not in response.get_data(as_text=True)


def test_anchor_now_anchors_older_commitments_first_then_reports_already_anchored(api, anchor_engine, chain, stream):
    tenant, store_id = stream
    append_events(anchor_engine, tenant, store_id, 5)
    older = create_commitment(anchor_engine, tenant, store_id, max_events=2)

    response = api.post("/api/v1/ves/commitments/anchor", headers=ADMIN,
                        json={"tenantId": str(tenant), "store_id": str(store_id), "max_events": 2})

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "anchored" and (body["sequence_start"], body["sequence_end"]) == (3, 4)
    assert body["prev_state_root"] == hex_of(older.new_state_root)
    assert body["chain_id"] == chain.w3.eth.chain_id
    registry = chain.client(False)
    assert registry.get_batch(older.batch_id) is not None
    on_chain = registry.get_batch(uuid.UUID(body["batch_id"]))
    assert hex_of(on_chain.merkle_root) == body["merkle_root"] and on_chain.block_number == body["chain_block_number"]
    assert registry.get_head(reference.stream_id(tenant, store_id))[0] == 4

    again = api.post("/api/v1/ves/commitments/anchor", headers=ADMIN,
                     json={"tenant_id": str(tenant), "store_id": str(store_id), "sequence_start": 3,
                           "sequence_end": 4})
    assert again.status_code == 200
    assert again.get_json() == {**body, "status": "already_anchored"}


def test_anchor_now_needs_an_admin_key_for_the_tenant(api, anchor_engine, stream):
    tenant, store_id = stream
    payload = {"tenant_id": str(tenant), "store_id": str(store_id)}
    writer = auth(api_key(anchor_engine, tenant, "read_write"))
    other_admin = auth(api_key(anchor_engine, uuid.uuid4(), "admin"))
    assert api.post("/api/v1/ves/commitments/anchor", headers=writer, json=payload).status_code == 403
    assert api.post("/api/v1/ves/commitments/anchor", headers=other_admin, json=payload).status_code == 403
    bad = api.post("/api/v1/ves/commitments/anchor", headers=ADMIN, json={"tenant_id": "nope"})
    assert bad.status_code == 400 and bad.get_json()["code"] == "INVALID_REQUEST"


def test_anchor_now_with_nothing_to_commit_is_409(api, stream):
    tenant, store_id = stream
    response = api.post("/api/v1/ves/commitments/anchor", headers=ADMIN,
                        json={"tenant_id": str(tenant), "store_id": str(store_id)})
    assert response.status_code == 409 and response.get_json()["code"] == "NOTHING_TO_COMMIT"


def test_anchor_now_without_configuration_is_503_and_commits_nothing(make_app, engine, stream):
    tenant, store_id = stream
    append_events(engine, tenant, store_id, 2)
    response = make_app().test_client().post("/api/v1/ves/commitments/anchor", headers=ADMIN,
                                             json={"tenant_id": str(tenant), "store_id": str(store_id)})
    assert response.status_code == 503 and response.get_json()["code"] == "ANCHORING_NOT_CONFIGURED"
    listed = make_app().test_client().get(f"/api/v1/ves/commitments?tenant_id={tenant}&store_id={store_id}",
                                          headers=ADMIN)
    assert listed.get_json()["count"] == 0


def test_anchor_now_with_an_unreachable_chain_is_503_and_commits_nothing(anchor_app, api, anchor_engine, chain,
                                                                         stream):
    tenant, store_id = stream
    append_events(anchor_engine, tenant, store_id, 2)
    anchor_app.extensions[CLIENT_EXTENSION] = RegistryClient.from_url(
        f"http://127.0.0.1:{free_port()}", chain.registry_address, private_key=chain.owner.key, timeout=2)
    response = api.post("/api/v1/ves/commitments/anchor", headers=ADMIN,
                        json={"tenant_id": str(tenant), "store_id": str(store_id)})
    assert response.status_code == 503
    assert response.get_json()["code"] == "CHAIN_UNAVAILABLE" and response.headers["Retry-After"] == "30"
    listed = api.get(f"/api/v1/ves/commitments?tenant_id={tenant}&store_id={store_id}", headers=ADMIN)
    assert listed.get_json()["count"] == 0


def test_verify_compares_the_registry_record_with_the_commitment(api, anchor_engine, chain, stream):
    tenant, store_id = stream
    append_events(anchor_engine, tenant, store_id, 3)
    first = create_commitment(anchor_engine, tenant, store_id, max_events=2)
    reader = auth(api_key(anchor_engine, tenant, "read"))

    before = api.get(f"/api/v1/ves/anchor/{first.batch_id}/verify", headers=reader).get_json()
    assert before["anchored_on_chain"] is False and before["root_matches"] is False
    assert before["chain_tx_hash"] is None

    api.post("/api/v1/ves/commitments/anchor", headers=ADMIN, json={"tenant_id": str(tenant),
                                                                    "store_id": str(store_id)})
    after = api.get(f"/api/v1/ves/anchor/{first.batch_id}/verify", headers=reader).get_json()
    assert after["anchored_on_chain"] and after["root_matches"] and after["new_state_root_matches"]
    assert after["prev_state_root_matches"] and after["range_matches"] and after["recorded_as_anchored"]
    receipt = chain.w3.eth.get_transaction_receipt(after["chain_tx_hash"])
    assert receipt["blockNumber"] == after["chain_block_number"]


def test_verify_hides_other_tenants_commitments_and_rejects_bad_ids(api, anchor_engine, stream):
    tenant, store_id = stream
    append_events(anchor_engine, tenant, store_id, 1)
    record = create_commitment(anchor_engine, tenant, store_id)
    stranger = auth(api_key(anchor_engine, uuid.uuid4(), "read"))
    hidden = api.get(f"/api/v1/ves/anchor/{record.batch_id}/verify", headers=stranger)
    missing = api.get(f"/api/v1/ves/anchor/{uuid.uuid4()}/verify", headers=stranger)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.get_json()["error"] == missing.get_json()["error"]
    assert api.get("/api/v1/ves/anchor/not-a-uuid/verify", headers=stranger).status_code == 400
