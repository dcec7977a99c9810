"""End to end through the real ingest: events accepted over HTTP (signed and unsigned) are committed, and every
served proof folds, with the independent verifier, from the leaf an auditor computes out of the served event."""

from __future__ import annotations

import uuid

import pytest

from app.api.wire import hex_of
from tests.commitments import reference
from tests.controls import Stream


@pytest.fixture
def ingested(client, engine) -> Stream:
    stream = Stream(client, engine)
    stream.ingest([stream.event(f"order-{i}", {"i": i}) for i in range(4)])
    response = client.post("/api/v1/events/ingest", headers=stream.headers, json={
        "agent_id": str(stream.agent_id), "events": [
            {"event_id": str(uuid.uuid4()), "tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id),
             "entity_type": "order", "entity_id": "order-9", "event_type": "order.noted", "payload": {"n": 9}}]})
    assert response.status_code == 200, response.json
    stream.ingest([stream.event("order-5", {"i": 5})])
    return stream


def _leaf_of_served(stream: Stream, served: dict) -> bytes:
    signature = served["agent_signature"]
    return reference.leaf(stream.tenant_id, stream.store_id, served["sequence_number"],
                          bytes.fromhex(served["event_signing_hash"].removeprefix("0x")),
                          bytes.fromhex(signature.removeprefix("0x")) if signature else None)


def test_ingested_events_commit_and_prove(client, ingested):
    stream = ingested
    commitment = client.post("/api/v1/ves/commitments", headers=stream.headers, json={
        "tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id)})
    assert commitment.status_code == 200, commitment.json
    body = commitment.json
    served_events = stream.events()["events"]
    assert [e["sequence_number"] for e in served_events] == [1, 2, 3, 4, 5, 6]
    assert served_events[4]["agent_signature"] is None
    leaves = [_leaf_of_served(stream, served) for served in served_events]
    assert (body["sequence_start"], body["sequence_end"]) == (1, 6)
    assert body["merkle_root"] == hex_of(reference.root(leaves))

    for served, leaf in zip(served_events, leaves):
        proof = client.get(f"/api/v1/ves/proofs/{served['sequence_number']}?{stream.query}",
                           headers=stream.headers).json
        path = [bytes.fromhex(h.removeprefix("0x")) for h in proof["proof_path"]]
        assert proof["leaf_hash"] == hex_of(leaf)
        assert hex_of(reference.fold(leaf, proof["leaf_index"], path)) == body["merkle_root"]
        verdict = client.post("/api/v1/ves/proofs/verify", headers=stream.headers, json=proof).json
        assert verdict["valid"] is True

    stream.ingest([stream.event("order-7")])
    nxt = client.post("/api/v1/ves/commitments", headers=stream.headers, json={
        "tenantId": str(stream.tenant_id), "storeId": str(stream.store_id)}).json
    assert (nxt["sequence_start"], nxt["sequence_end"]) == (7, 7)
    assert nxt["prev_state_root"] == body["new_state_root"]
