"""Unsigned ingest, reads, pagination, long poll, schema registry."""

import hashlib
import threading
import time
import uuid

import pytest

from tests.controls import Stream
from tests.controls import api_key
from tests.controls import auth


@pytest.fixture
def stream(client, engine):
    return Stream(client, engine)


def _unsigned(stream, events, **body):
    return stream.client.post("/api/v1/events/ingest", json={"agent_id": str(stream.agent_id), "events": events,
                                                              **body}, headers=stream.headers)


def test_unsigned_events_share_the_log_and_numbering(stream):
    stream.ingest([stream.event("a")])
    response = _unsigned(stream, [
        {"event_id": str(uuid.uuid4()), "tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id),
         "entity_type": "order", "entity_id": "a", "event_type": "order.noted", "payload": {"note": "hi"}},
        {"event_id": "bad", "tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id)},
    ])
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["events_accepted"], body["events_rejected"]) == (1, 1)
    assert (body["assigned_sequence_start"], body["assigned_sequence_end"], body["head_sequence"]) == (2, 2, 2)
    receipt = body["receipts"][0]
    assert receipt["sequence_number"] == 2 and receipt["signature_alg"] == "ed25519"
    assert body["rejections"][0]["code"] == "InvalidEvent"
    served = stream.events()["events"][1]
    assert served["agent_signature"] is None and served["agent_key_id"] == 0
    assert served["source_agent_id"] == str(stream.agent_id)
    simple = stream.client.get(f"/api/v1/events?{stream.query}", headers=stream.headers).json
    assert [e["sequence_number"] for e in simple["events"]] == [1, 2]
    assert simple["events"][1]["payload"] == {"note": "hi"} and len(simple["events"][1]["payload_hash"]) == 64


def test_unsigned_ingest_refused_when_signatures_required(make_app, engine):
    app = make_app(require_agent_signatures=True)
    stream = Stream(app.test_client(), engine)
    response = _unsigned(stream, [{"event_id": str(uuid.uuid4())}])
    assert response.status_code == 403 and response.json["code"] == "SIGNATURES_REQUIRED"


def test_pagination_from_after_limit_next_from(stream):
    stream.ingest([stream.event(str(i)) for i in range(7)])
    page = stream.events(limit=3)
    assert [e["sequence_number"] for e in page["events"]] == [1, 2, 3] and page["next_from"] == 4
    page = stream.events(**{"from": 4, "limit": 3})
    assert [e["sequence_number"] for e in page["events"]] == [4, 5, 6]
    page = stream.events(after=6)
    assert [e["sequence_number"] for e in page["events"]] == [7] and page["next_from"] == 8
    assert stream.events(**{"from": 8})["events"] == []
    assert [e["sequence_number"] for e in stream.events(**{"from": 0})["events"]][:1] == [1]  # the original's default
    head = stream.client.get(f"/api/v1/ves/head?{stream.query}", headers=stream.headers).json
    assert head["head_sequence"] == 7
    assert stream.client.get(f"/api/v1/head?{stream.query}", headers=stream.headers).json["head_sequence"] == 7


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "from=-1", "limit=abc", "from=1&after=2", "wait=-1",
                                   "tenant_id=nope"])
def test_bad_query_parameters_are_400(stream, query):
    url = f"/api/v1/ves/events?{stream.query}&{query}" if "tenant_id" not in query else f"/api/v1/ves/events?{query}"
    response = stream.client.get(url, headers=stream.headers)
    assert response.status_code == 400 and response.json["code"] == "INVALID_REQUEST"


def test_single_event_by_id_and_404(stream):
    event = stream.event()
    stream.ingest([event])
    got = stream.client.get(f"/api/v1/ves/events/{event['event_id']}?{stream.query}", headers=stream.headers)
    assert got.status_code == 200 and got.json["sequence_number"] == 1
    assert got.json["sequencer_receipt"]["event_id"] == event["event_id"]
    missing = stream.client.get(f"/api/v1/ves/events/{uuid.uuid4()}?{stream.query}", headers=stream.headers)
    assert missing.status_code == 404


def test_entity_history_in_both_shapes(stream):
    stream.ingest([stream.event("x/1"), stream.event("y"), stream.event("x/1")])
    for prefix in ("/api/v1/ves/entities", "/api/v1/entities"):
        body = stream.client.get(f"{prefix}/order/x/1?{stream.query}", headers=stream.headers).json
        assert body["entity_id"] == "x/1" and body["version"] == 2 and body["count"] == 2
        assert [e["sequence_number"] for e in body["events"]] == [1, 3]
        assert (body["total"], body["has_more"]) == (2, False)


def test_the_originals_entity_history_pages_by_offset_with_total_and_has_more(stream):
    stream.ingest([stream.event("e"), stream.event("other"), stream.event("e"), stream.event("e")])
    url = f"/api/v1/entities/order/e?{stream.query}"
    page = lambda extra: stream.client.get(url + extra, headers=stream.headers).json  # noqa: E731
    first = page("&limit=2")
    assert [e["envelope"]["sequence_number"] for e in first["events"]] == [1, 3]
    assert (first["count"], first["total"], first["has_more"]) == (2, 3, True)
    rest = page("&from=2&limit=2")
    assert [e["sequence_number"] for e in rest["events"]] == [4] and (rest["total"], rest["has_more"]) == (3, False)
    assert page("&from=3")["events"] == [] and page("&limit=0")["count"] == 3  # limit 0 means 100
    ves = stream.client.get(f"/api/v1/ves/entities/order/e?{stream.query}&limit=2", headers=stream.headers).json
    assert [e["sequence_number"] for e in ves["events"]] == [1, 3] and ves["has_more"] is True
    ves_rest = stream.client.get(f"/api/v1/ves/entities/order/e?{stream.query}&from=4", headers=stream.headers).json
    assert [e["sequence_number"] for e in ves_rest["events"]] == [4] and ves_rest["has_more"] is False


def test_the_originals_sequenced_event_shape_on_the_simple_reads(stream):
    payload = {"b": 1, "a": [True, None, "é"]}
    event = stream.signer.build_event(stream.store_id, "order", "o-9", "order.created", payload)
    stream.ingest([event])
    served = stream.client.get(f"/api/v1/events?{stream.query}", headers=stream.headers).json["events"][0]
    envelope = served["envelope"]
    assert envelope == {
        "envelope_version": 1, "event_id": event["event_id"], "tenant_id": str(stream.tenant_id),
        "store_id": str(stream.store_id), "entity_type": "order", "entity_id": "o-9", "event_type": "order.created",
        "payload": payload, "payload_hash": hashlib.sha256(b'{"a":[true,null,"\xc3\xa9"],"b":1}').hexdigest(),
        "created_at": event["created_at"], "sequence_number": 1, "source_agent": str(stream.agent_id)}
    assert served["sequenced_at"].endswith("Z") and served["event_id"] == event["event_id"]


def test_reads_are_scoped_to_the_key(stream, engine):
    outsider = api_key(engine, uuid.uuid4(), "admin")
    for path in ("/api/v1/ves/events", "/api/v1/events", "/api/v1/ves/head", "/api/v1/ves/entities/order/a"):
        response = stream.client.get(f"{path}?{stream.query}", headers=auth(outsider))
        assert response.status_code == 403, path
        assert "tenant" in response.json["error"] and str(stream.tenant_id) not in response.json["error"]
    empty_stream = f"tenant_id={uuid.uuid4()}&store_id={uuid.uuid4()}"
    assert stream.client.get(f"/api/v1/ves/events?{empty_stream}", headers=auth(outsider)).json["code"] == "FORBIDDEN"


def test_long_poll_returns_as_soon_as_an_event_is_sequenced(make_app, engine):
    app = make_app(long_poll_max_seconds=10.0)
    stream = Stream(app.test_client(), engine)
    waiter_client = app.test_client()
    result = {}

    def wait():
        started = time.monotonic()
        result["body"] = waiter_client.get(f"/api/v1/ves/events?{stream.query}&wait=10", headers=stream.headers).json
        result["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.5)
    stream.ingest([stream.event()])
    thread.join(timeout=15)
    assert result["body"]["count"] == 1 and result["body"]["events"][0]["sequence_number"] == 1
    assert 0.4 < result["elapsed"] < 5


def test_long_poll_never_waits_longer_than_the_maximum(make_app, engine):
    app = make_app(long_poll_max_seconds=1.0)
    stream = Stream(app.test_client(), engine)
    started = time.monotonic()
    body = stream.client.get(f"/api/v1/ves/events?{stream.query}&wait=30", headers=stream.headers).json
    elapsed = time.monotonic() - started
    assert body["count"] == 0 and 0.9 < elapsed < 3


def test_schema_registry_versions_and_validation_modes(make_app, engine):
    enforce = make_app(schema_validation_mode="enforce")
    stream = Stream(enforce.test_client(), engine)
    schema = {"type": "object", "required": ["qty"],
              "properties": {"qty": {"type": "integer", "minimum": 0}, "items": {"type": "array"}}}
    first = stream.client.post("/api/v1/schemas", json={"tenant_id": str(stream.tenant_id),
                                                        "event_type": "order.updated", "schema": schema},
                               headers=stream.headers)
    assert first.status_code == 200 and first.json["version"] == 1
    second = stream.client.post("/api/v1/schemas", json={"tenant_id": str(stream.tenant_id),
                                                         "event_type": "order.updated", "schema": schema},
                                headers=stream.headers)
    assert second.json["version"] == 2
    listing = stream.client.get(f"/api/v1/schemas?tenant_id={stream.tenant_id}&event_type=order.updated",
                                headers=stream.headers).json
    assert [s["version"] for s in listing["schemas"]] == [1, 2]
    one = stream.client.get(f"/api/v1/schemas/order.updated/versions/2?tenant_id={stream.tenant_id}",
                            headers=stream.headers)
    assert one.status_code == 200 and one.json["schema"] == schema

    result = stream.ingest([stream.event("a", {"qty": 3}), stream.event("b", {"qty": -1}), stream.event("c", {})])
    assert result["eventsAccepted"] == 1
    reasons = [(r["code"], r["message"]) for r in result["rejections"]]
    assert reasons[0][0] == "SchemaValidationFailed" and "payload.qty" in reasons[0][1]
    assert reasons[1][0] == "SchemaValidationFailed" and "'qty' is a required property" in reasons[1][1]

    warn = Stream(make_app(schema_validation_mode="warn").test_client(), engine)
    warn.client.post("/api/v1/schemas", json={"tenant_id": str(warn.tenant_id), "event_type": "order.updated",
                                              "schema": schema}, headers=warn.headers)
    assert warn.ingest([warn.event("a", {"qty": -1})])["eventsAccepted"] == 1

    required = Stream(make_app(schema_validation_mode="required").test_client(), engine)
    assert required.ingest([required.event("a", {"qty": 1})])["rejections"][0]["code"] == "SchemaMissing"

    disabled = Stream(make_app(schema_validation_mode="disabled").test_client(), engine)
    disabled.client.post("/api/v1/schemas", json={"tenant_id": str(disabled.tenant_id),
                                                  "event_type": "order.updated", "schema": schema},
                         headers=disabled.headers)
    assert disabled.ingest([disabled.event("a", {"qty": -1})])["eventsAccepted"] == 1


def test_invalid_json_schema_is_400(stream):
    response = stream.client.post("/api/v1/schemas", json={"tenant_id": str(stream.tenant_id), "event_type": "t",
                                                           "schema": {"type": "no-such-type"}}, headers=stream.headers)
    assert response.status_code == 400 and response.json["code"] == "INVALID_SCHEMA"


def test_agent_key_registration_is_idempotent_and_conflicts_on_a_different_key(stream):
    body = {"tenantId": str(stream.tenant_id), "agentId": str(stream.agent_id), "keyId": 1,
            "publicKey": stream.signer.public_key_hex}
    again = stream.client.post("/api/v1/agents/keys", json=body, headers=stream.headers)
    assert again.status_code == 200
    other = stream.client.post("/api/v1/agents/keys", json={**body, "publicKey": "0x" + "11" * 32},
                               headers=stream.headers)
    assert other.status_code == 409 and other.json["code"] == "AGENT_KEY_CONFLICT"
    listing = stream.client.get(f"/api/v1/agents/keys?tenant_id={stream.tenant_id}&agent_id={stream.agent_id}",
                                headers=stream.headers).json
    assert listing["count"] == 1 and listing["keys"][0]["public_key"] == stream.signer.public_key_hex.removeprefix("0x")
    bad = stream.client.post("/api/v1/agents/keys", json={**body, "keyId": 3, "publicKey": "0x1234"},
                             headers=stream.headers)
    assert bad.status_code == 400
