"""The fence and the chain: streams whose anchored head (SetRegistry.getHead, on an in-process EVM) is beyond the
database head are fenced; a commitment ending where the chain's does with another state root is STREAM_DIVERGED;
the anchoring run neither commits nor anchors fenced streams and anchors the others; "anchor now" refuses them."""

from __future__ import annotations

import uuid

import pytest

from app.db import commitments as commitment_store
from app.services import commitments as commitment_service
from app.services import fence
from app.services.anchoring import anchor_batch
from app.services.anchoring import anchor_now
from app.services.anchoring import pending_commitments
from app.services.anchoring import run_once
from app.ves.hashing import stream_id
from tests.controls import BOOTSTRAP_KEY
from tests.controls import auth


def _ingest(client, tenant, store, count):
    response = client.post("/api/v1/events/ingest", headers=auth(BOOTSTRAP_KEY), json={
        "agent_id": str(uuid.uuid4()), "events": [
            {"event_id": str(uuid.uuid4()), "tenant_id": str(tenant), "store_id": str(store), "entity_type": "o",
             "entity_id": str(i), "event_type": "t", "payload": {"i": i}} for i in range(count)]})
    assert response.status_code == 200 and response.json["events_accepted"] == count, response.json
    return response


def _anchor_foreign_range(registry, tenant, store, end, root=b"\x07" * 32):
    """What an anchoring run before the restore left on chain: a batch 1..end the restored database lacks."""
    tx = registry.send_commit_batch(stream_id(tenant, store), 1, end, end, b"\x05" * 32, b"\x00" * 32, root,
                                    uuid.uuid4())
    registry.wait_for_receipt(tx)


@pytest.fixture
def client(make_app, anchor_settings):
    return make_app(database_url=anchor_settings.database_url, bootstrap_admin_api_key=BOOTSTRAP_KEY).test_client()


def test_streams_behind_the_chain_are_fenced_and_the_anchoring_run_skips_them(client, anchor_engine, registry):
    behind, fine, diverged = [(uuid.uuid4(), uuid.uuid4()) for _ in range(3)]
    _ingest(client, *behind, 4)
    _ingest(client, *fine, 3)
    _ingest(client, *diverged, 2)
    commitment_service.create_commitment(anchor_engine, *diverged, 1, 2)
    _anchor_foreign_range(registry, *behind, 6)
    _anchor_foreign_range(registry, *diverged, 2)

    positions = fence.chain_positions(registry, fence.known_streams(anchor_engine))
    assert sorted((p.stream, p.sequence) for p in positions) == sorted([(behind, 6), (diverged, 2)])
    report = fence.fence_streams(anchor_engine, positions, actor="test")
    verdicts = {(v.tenant_id, v.store_id): v for v in report.verdicts}
    assert (verdicts[behind].status, verdicts[behind].database_head, verdicts[behind].sources) == ("fenced", 4,
                                                                                                     "chain")
    assert verdicts[diverged].status == "diverged" and "state root" in verdicts[diverged].detail

    refused = client.post("/api/v1/events/ingest", headers=auth(BOOTSTRAP_KEY), json={"events": [{
        "event_id": str(uuid.uuid4()), "tenant_id": str(behind[0]), "store_id": str(behind[1]),
        "entity_type": "o", "entity_id": "x", "event_type": "t", "payload": {}}]})
    assert refused.status_code == 503 and refused.json["code"] == "STREAM_FENCED"

    run = run_once(anchor_engine, registry, 1024)
    assert set(run.skipped_fenced) == {behind, diverged}
    assert [(o.commitment.tenant_id, o.commitment.store_id) for o in run.outcomes] == [fine]
    assert run.failures == []
    with anchor_engine.connect() as conn:
        assert commitment_store.last_commitment(conn, *behind) is None
        assert not commitment_store.last_commitment(conn, *diverged).is_anchored
    assert registry.get_head(stream_id(*behind))[0] == 6
    with pytest.raises(fence.StreamFenced):
        anchor_now(anchor_engine, registry, *behind)
    with pytest.raises(fence.StreamDiverged):
        anchor_now(anchor_engine, registry, *diverged)
    with anchor_engine.connect() as conn:
        held_back = commitment_store.last_commitment(conn, *diverged)
    assert held_back.batch_id not in {c.batch_id for c in pending_commitments(anchor_engine, 100)}, \
        "the external anchor service's feed leaves fenced streams out"
    with pytest.raises(fence.StreamDiverged):
        anchor_batch(anchor_engine, registry, held_back)

    fence.declare_loss(anchor_engine, *behind, "test: the lost range is accepted", "test")
    after_loss = run_once(anchor_engine, registry, 1024)
    assert set(after_loss.skipped_fenced) == {diverged}
    assert [(f.tenant_id, f.store_id, f.code) for f in after_loss.failures] == [(*behind, "ANCHOR_FORK_DETECTED")], \
        "after a declared loss the registry still refuses to anchor the reused numbers (docs/RESTORE.md)"
