"""`GET /api/v1/streams`: the streams a key may see, with head, commitments, anchoring lag and checkpoint."""

from __future__ import annotations

import uuid

from tests.controls import Stream
from tests.controls import api_key
from tests.controls import auth


def _list(client, key, tenant, **params):
    response = client.get("/api/v1/streams", query_string={"tenant_id": str(tenant), **params}, headers=auth(key))
    assert response.status_code == 200, response.get_data()
    return response.json


def test_heads_commitments_and_lag(client, engine):
    stream = Stream(client, engine)
    stream.ingest([stream.event("a") for _ in range(3)])
    commitment = client.post("/api/v1/ves/commitments", headers=stream.headers,
                             json={"tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id)}).json
    stream.ingest([stream.event("b")])
    page = _list(client, stream.key, stream.tenant_id)
    (summary,) = page["streams"]
    assert summary["store_id"] == str(stream.store_id)
    assert summary["head_sequence"] == 4
    assert summary["last_committed_sequence"] == 3
    assert summary["uncommitted"] == 1
    assert summary["last_batch_id"] == commitment["batch_id"]
    assert summary["anchoring_lag"] == 4 and summary["last_anchored_sequence"] == 0
    assert summary["last_anchor_tx"] is None


def test_a_store_scoped_key_sees_only_its_stores_and_no_other_tenant(client, engine):
    stream = Stream(client, engine)
    other_store = uuid.uuid4()
    stream.ingest([stream.event("a")])
    stream.ingest([stream.event("a", store_id=other_store)])
    scoped = api_key(engine, stream.tenant_id, "read", store_ids=[stream.store_id])
    assert [s["store_id"] for s in _list(client, scoped, stream.tenant_id)["streams"]] == [str(stream.store_id)]
    assert len(_list(client, stream.key, stream.tenant_id)["streams"]) == 2
    stranger = api_key(engine, uuid.uuid4(), "admin")
    response = client.get("/api/v1/streams", query_string={"tenant_id": str(stream.tenant_id)}, headers=auth(stranger))
    assert response.status_code == 403


def test_pages_continue_after_the_last_store(client, engine):
    stream = Stream(client, engine)
    stores = sorted(uuid.uuid4() for _ in range(5))
    for store in stores:
        stream.ingest([stream.event("a", store_id=store)])
    seen, after = [], None
    while True:
        page = _list(client, stream.key, stream.tenant_id, limit=2, **({"after": after} if after else {}))
        seen += [s["store_id"] for s in page["streams"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == [str(store) for store in stores]


def test_bad_parameters_are_400(client, engine):
    stream = Stream(client, engine)
    for params in ({"tenant_id": "nope"}, {"tenant_id": str(stream.tenant_id), "limit": "0"},
                   {"tenant_id": str(stream.tenant_id), "after": "x"}, {}):
        response = client.get("/api/v1/streams", query_string=params, headers=stream.headers)
        assert response.status_code == 400 and response.json["code"] == "INVALID_REQUEST"
