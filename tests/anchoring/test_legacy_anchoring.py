"""The original's anchoring routes (`POST /api/v1/ves/anchor`, `POST /api/v1/anchor`,
`GET /api/v1/anchor/{batch_id}/verify`) on the in-process EVM, and the bound on every HTTP request's chain work
(ANCHOR_REQUEST_TIMEOUT_SECONDS): a transaction that is not mined in time, or an RPC that never answers, is a 503
within the budget, never a worker held on the chain, and the anchoring job finishes the work afterwards."""

from __future__ import annotations

import socket
import time
import uuid

import pytest

from app import create_app
from app.api.anchoring import CLIENT_EXTENSION
from app.services import anchoring
from app.services.commitments import create_commitment
from tests.commitments.event_rows import append_events
from tests.controls import api_key
from tests.controls import auth

ADMIN = auth("test-bootstrap-admin-key-0123456789")
PLAIN = "0123456789abcdef"


def _app(anchor_settings, chain, **overrides):
    application = create_app(anchor_settings.replace(
        l2_rpc_url="http://127.0.0.1:9", set_registry_address=chain.registry_address,
        sequencer_private_key="0x" + chain.owner.key.hex().removeprefix("0x"), l2_chain_id=chain.w3.eth.chain_id,
        **overrides))
    application.extensions[CLIENT_EXTENSION] = chain.client()
    return application


@pytest.fixture
def anchor_app(anchor_settings, chain):
    application = _app(anchor_settings, chain, anchor_request_timeout_seconds=1.0)
    yield application
    application.extensions["sequencer"].engine.dispose()


@pytest.fixture
def api(anchor_app):
    return anchor_app.test_client()


@pytest.fixture
def committed(anchor_engine):
    tenant, store_id = uuid.uuid4(), uuid.uuid4()
    append_events(anchor_engine, tenant, store_id, 4)
    first = create_commitment(anchor_engine, tenant, store_id, max_events=2)
    second = create_commitment(anchor_engine, tenant, store_id, max_events=2)
    return tenant, store_id, first, second


def is_plain_hash(value: str) -> bool:
    return len(value) == 64 and set(value) <= set(PLAIN)


def test_ves_anchor_anchors_predecessors_first_and_answers_the_original_shapes(api, chain, committed):
    tenant, store_id, first, second = committed
    response = api.post("/api/v1/ves/anchor", json={"batch_id": str(second.batch_id)}, headers=ADMIN)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert set(body) == {"batch_id", "status", "chain_tx_hash", "chain_block_number", "merkle_root",
                         "sequence_start", "sequence_end"}
    assert body["status"] == "anchored" and (body["sequence_start"], body["sequence_end"]) == (3, 4)
    assert is_plain_hash(body["chain_tx_hash"]) and body["merkle_root"] == second.merkle_root.hex()
    registry = chain.client(False)
    assert registry.get_batch(first.batch_id) is not None and registry.get_batch(second.batch_id) is not None
    again = api.post("/api/v1/ves/anchor", json={"batch_id": str(second.batch_id)}, headers=ADMIN).get_json()
    assert again == {"batch_id": str(second.batch_id), "status": "already_anchored",
                     "chain_tx_hash": body["chain_tx_hash"]}
    legacy = api.post("/api/v1/anchor", json={"batch_id": str(first.batch_id)}, headers=ADMIN).get_json()
    assert legacy["status"] == "already_anchored" and is_plain_hash(legacy["chain_tx_hash"])
    verified = api.get(f"/api/v1/anchor/{second.batch_id}/verify", headers=ADMIN)
    assert verified.status_code == 200
    assert verified.get_json() == {"batch_id": str(second.batch_id), "anchored_on_chain": True}


def test_legacy_anchor_answers_events_root_and_verify_says_false_before(api, committed):
    tenant, store_id, first, _ = committed
    before = api.get(f"/api/v1/anchor/{first.batch_id}/verify", headers=ADMIN).get_json()
    assert before == {"batch_id": str(first.batch_id), "anchored_on_chain": False}
    body = api.post("/api/v1/anchor", json={"batchId": str(first.batch_id)}, headers=ADMIN).get_json()
    assert set(body) == {"batch_id", "status", "chain_tx_hash", "events_root", "sequence_start", "sequence_end"}
    assert body["status"] == "anchored" and body["events_root"] == first.merkle_root.hex()


def test_anchoring_by_batch_needs_an_admin_key_of_the_stream_and_hides_other_tenants(api, anchor_engine, committed):
    tenant, store_id, first, _ = committed
    writer = auth(api_key(anchor_engine, tenant, "read_write"))
    other_admin = auth(api_key(anchor_engine, uuid.uuid4(), "admin"))
    for path in ("/api/v1/ves/anchor", "/api/v1/anchor"):
        assert api.post(path, json={"batch_id": str(first.batch_id)}, headers=writer).status_code == 403
        hidden = api.post(path, json={"batch_id": str(first.batch_id)}, headers=other_admin)
        assert hidden.status_code == 404
        assert api.post(path, json={"batch_id": str(uuid.uuid4())}, headers=ADMIN).status_code == 404
        assert api.post(path, json={"batch_id": "nope"}, headers=ADMIN).status_code == 400
    assert api.get(f"/api/v1/anchor/{first.batch_id}/verify", headers=other_admin).status_code == 404


@pytest.mark.parametrize("route", ["ves_anchor", "anchor_now"])
def test_a_transaction_not_mined_within_the_budget_is_503_and_the_job_records_it(api, anchor_engine, chain, committed,
                                                                                   route):
    tenant, store_id, first, _ = committed
    chain.tester.disable_auto_mine_transactions()
    started = time.monotonic()
    if route == "ves_anchor":
        response = api.post("/api/v1/ves/anchor", json={"batch_id": str(first.batch_id)}, headers=ADMIN)
    else:
        response = api.post("/api/v1/ves/commitments/anchor", headers=ADMIN, json={
            "tenant_id": str(tenant), "store_id": str(store_id), "sequence_start": 1, "sequence_end": 2})
    elapsed = time.monotonic() - started
    assert response.status_code == 503, response.get_json()
    assert response.get_json()["code"] == "ANCHOR_PENDING" and response.headers["Retry-After"] == "30"
    assert f"/api/v1/ves/commitments/{first.batch_id}" in response.get_json()["error"]
    assert elapsed < 3.0
    detail = api.get(f"/api/v1/ves/commitments/{first.batch_id}", headers=ADMIN).get_json()
    assert detail["is_anchored"] is False

    chain.tester.mine_blocks(1)
    chain.tester.enable_auto_mine_transactions()
    report = anchoring.run_once(anchor_engine, chain.client(), max_events=1024)
    assert report.ok
    detail = api.get(f"/api/v1/ves/commitments/{first.batch_id}", headers=ADMIN).get_json()
    assert detail["is_anchored"] is True
    assert chain.client(False).get_batch(first.batch_id) is not None


def test_an_rpc_that_never_answers_is_503_within_the_budget(anchor_settings, chain, anchor_engine, committed):
    """No injected client: the app's own client, whose every RPC is bounded by a quarter of the budget."""
    tenant, store_id, first, _ = committed
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    application = create_app(anchor_settings.replace(
        l2_rpc_url=f"http://127.0.0.1:{silent.getsockname()[1]}", set_registry_address=chain.registry_address,
        sequencer_private_key="0x" + chain.owner.key.hex().removeprefix("0x"), l2_chain_id=chain.w3.eth.chain_id,
        anchor_request_timeout_seconds=2.0))
    try:
        client = application.test_client()
        for method, path, body in (("post", "/api/v1/ves/anchor", {"batch_id": str(first.batch_id)}),
                                   ("post", "/api/v1/ves/commitments/anchor",
                                    {"tenant_id": str(tenant), "store_id": str(store_id)}),
                                   ("get", f"/api/v1/anchor/{first.batch_id}/verify", None)):
            started = time.monotonic()
            response = client.open(path, method=method.upper(), json=body, headers=ADMIN)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, (path, response.get_json())
            assert response.get_json()["code"] == "CHAIN_UNAVAILABLE"
            assert elapsed < 2.0, (path, elapsed)
    finally:
        silent.close()
        application.extensions["sequencer"].engine.dispose()
