"""Signed ingest: every acceptance rule of VES.md and every rejection reason of API.md."""

import datetime
import os
import uuid

import pytest
import sqlalchemy as sa

from app.client.signer import AgentSigner
from app.config import DEFAULT_SEQUENCER_ID
from app.ves import hashing
from app.ves.encoding import parse_hex
from app.ves.signing import verify_signature
from tests.controls import BOOTSTRAP_KEY
from tests.controls import Stream
from tests.controls import api_key
from tests.controls import auth


@pytest.fixture
def stream(client, engine):
    return Stream(client, engine)


def _sequencer_key(client) -> bytes:
    info = client.get("/api/v1/ves/sequencer").json
    assert info["signature_alg"] == "ed25519"
    return parse_hex(info["public_key"], 32, "public_key")


@pytest.mark.parametrize("ves_version", [1, 2])
def test_accepted_events_get_gapless_numbers_and_verifiable_receipts(client, engine, ves_version):
    stream = Stream(client, engine, ves_version=ves_version)
    events = [stream.event(f"order-{i}", {"i": i, "price": 1.25, "tags": ["a", "ü"]}, command_id=uuid.uuid4())
              for i in range(5)]
    result = stream.ingest(events)
    assert (result["eventsAccepted"], result["eventsRejected"]) == (5, 0)
    assert (result["sequenceStart"], result["sequenceEnd"], result["headSequence"]) == (1, 5, 5)
    public_key = _sequencer_key(client)
    for number, (event, receipt) in enumerate(zip(events, result["receipts"]), start=1):
        assert receipt["eventId"] == event["event_id"] and receipt["sequenceNumber"] == number
        assert receipt["duplicate"] is False and receipt["signatureAlg"] == "ed25519"
        fields = hashing.EventSigningFields.from_envelope(event)
        expected = hashing.receipt_hash(stream.tenant_id, stream.store_id, event["event_id"], number,
                                        hashing.event_signing_hash(fields))
        assert parse_hex(receipt["receiptHash"], 32, "receipt") == expected
        assert verify_signature(public_key, expected, parse_hex(receipt["sequencerSignature"], 64, "sig"))
    again = stream.ingest([stream.event("order-9")])
    assert again["sequenceStart"] == 6 and again["receipts"][0]["sequenceNumber"] == 6


def test_every_accepted_event_reads_back_with_its_number_and_rehashes(stream):
    events = [stream.event("e", {"nested": {"deep": [1, {"x": None}]}, "f": 0.1, "big": 1e21, "neg": -0.0}),
              stream.event("Ωmega-😀", {"s": "line\nbreak \u2028"})]
    result = stream.ingest(events)
    page = stream.events()
    assert page["count"] == 2 and page["head_sequence"] == 2 and page["next_from"] == 3
    for event, served, receipt in zip(events, page["events"], result["receipts"]):
        assert served["sequence_number"] == receipt["sequenceNumber"]
        assert served["sequencer_receipt"]["receipt_hash"] == receipt["receiptHash"]
        fields = hashing.EventSigningFields.from_envelope(served)
        assert hashing.payload_plain_hash(served["payload"]) == fields.payload_plain_hash
        assert hashing.event_signing_hash(fields) == parse_hex(served["event_signing_hash"], 32, "h")
        assert served["agent_signature"] == event["agent_signature"]
        assert served["created_at"] == event["created_at"]


def test_no_key_configured_means_signature_alg_none(make_app, engine):
    app = make_app(sequencer_signing_key=None)
    client = app.test_client()
    info = client.get("/api/v1/ves/sequencer").json
    assert {k: info[k] for k in ("sequencer_id", "signature_alg", "public_key", "key_version")} == {
        "sequencer_id": DEFAULT_SEQUENCER_ID, "signature_alg": "none", "public_key": "", "key_version": 0}
    assert not any(key["current"] for key in info["keys"])
    assert info["log_public_key"], "the log key is its own: receipts unsigned, checkpoints still signed"
    stream = Stream(client, engine)
    receipt = stream.ingest([stream.event()])["receipts"][0]
    assert receipt["signatureAlg"] == "none" and receipt["sequencerSignature"] == ""


def _mutated(stream, mutate):
    event = stream.event()
    mutate(event)
    return event


REJECTIONS = [
    ("InvalidEvent", lambda s: _mutated(s, lambda e: e.pop("entity_type"))),
    ("InvalidEvent", lambda s: _mutated(s, lambda e: e.update(entity_type="x" * 129))),
    ("InvalidEvent", lambda s: _mutated(s, lambda e: e.update(entity_id="é" * 257))),
    ("InvalidEvent", lambda s: _mutated(s, lambda e: e.update(event_type="x" * 257))),
    ("InvalidEvent", lambda s: _mutated(s, lambda e: e.update(agent_key_id=2**32))),
    ("InvalidEvent", lambda s: _mutated(s, lambda e: e.update(tenant_id="not-a-uuid"))),
    ("InvalidEvent", lambda s: _mutated(s, lambda e: e.update(created_at="yesterday"))),
    ("InvalidEvent", lambda s: _mutated(s, lambda e: e.update(agent_signature="0x1234"))),
    ("InvalidEvent", lambda s: s.signer.build_event(s.store_id, "order", "a", "t", {"x": 1})
     | {"payload": {"x": 2**60}}),
    ("InvalidEvent", lambda s: s.signer.build_event(s.store_id, "order", "a\x00b", "t", {})),
    ("InvalidEvent", lambda s: "not an object"),
    ("UnsupportedVesVersion", lambda s: _mutated(s, lambda e: e.update(ves_version=3))),
    ("PayloadHashMismatch", lambda s: _mutated(s, lambda e: e.update(payload={"n": 2}))),
    ("PayloadHashMismatch", lambda s: _mutated(s, lambda e: e.update(payload_cipher_hash="0x" + "11" * 32))),
    ("UnknownAgentKey", lambda s: AgentSigner(os.urandom(32), s.tenant_id, s.agent_id, 7).build_event(
        s.store_id, "order", "a", "t", {})),
    ("SignatureVerificationFailed", lambda s: AgentSigner(os.urandom(32), s.tenant_id, s.agent_id, 1).build_event(
        s.store_id, "order", "a", "t", {})),
    ("SignatureVerificationFailed", lambda s: _mutated(s, lambda e: e.update(entity_id="changed-after-signing"))),
    ("Forbidden", lambda s: s.event(store_id=uuid.uuid4()) if False else AgentSigner(
        os.urandom(32), uuid.uuid4(), s.agent_id, 1).build_event(s.store_id, "order", "a", "t", {})),
]


@pytest.mark.parametrize(("reason", "make"), REJECTIONS, ids=[f"{r}-{i}" for i, (r, _) in enumerate(REJECTIONS)])
def test_each_rejection_reason_rejects_only_that_event(stream, reason, make):
    good_before, bad, good_after = stream.event("a"), make(stream), stream.event("b")
    result = stream.ingest([good_before, bad, good_after])
    assert result["eventsAccepted"] == 2 and result["eventsRejected"] == 1
    rejection = result["rejections"][0]
    assert rejection["code"] == reason, rejection
    assert rejection["index"] == 1 and rejection["message"]
    assert [r["sequenceNumber"] for r in result["receipts"]] == [1, 2]


def test_revoked_and_not_yet_valid_keys(client, stream):
    stream.ingest([stream.event()])
    response = client.delete(f"/api/v1/agents/keys/{stream.agent_id}/1?tenant_id={stream.tenant_id}",
                             headers=stream.headers)
    assert response.status_code == 200 and response.json["is_revoked"]
    result = stream.ingest([stream.event()])
    assert result["rejections"][0]["code"] == "AgentKeyRevoked"

    future = AgentSigner(os.urandom(32), stream.tenant_id, stream.agent_id, 2)
    tomorrow = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).isoformat()
    client.post("/api/v1/agents/keys", json={"tenant_id": str(stream.tenant_id), "agent_id": str(stream.agent_id),
                                             "key_id": 2, "public_key": future.public_key_hex,
                                             "valid_from": tomorrow}, headers=stream.headers)
    result = stream.ingest([future.build_event(stream.store_id, "order", "x", "t", {})])
    assert result["rejections"][0]["code"] == "AgentKeyNotValid"


def test_replay_returns_original_receipt_across_and_within_requests(stream):
    first = stream.event("a")
    original = stream.ingest([first])["receipts"][0]
    replay = stream.ingest([first, stream.event("b"), first])
    assert replay["eventsAccepted"] == 1 and replay["eventsRejected"] == 0  # replays are not counted
    receipts = replay["receipts"]
    assert receipts[0] == {**original, "duplicate": True}
    assert receipts[1]["sequenceNumber"] == 2 and receipts[1]["duplicate"] is False
    assert receipts[2] == {**original, "duplicate": True}
    fresh = stream.event("c")
    twice = stream.ingest([fresh, fresh])["receipts"]
    assert twice[0]["sequenceNumber"] == twice[1]["sequenceNumber"] == 3
    assert (twice[0]["duplicate"], twice[1]["duplicate"]) == (False, True)
    assert stream.events()["head_sequence"] == 3


def test_same_event_id_with_other_content_is_a_conflict(stream):
    event_id = str(uuid.uuid4())
    stream.ingest([stream.event("a", {"v": 1}, event_id=event_id)])
    result = stream.ingest([stream.event("a", {"v": 2}, event_id=event_id)])
    assert result["rejections"][0]["code"] == "DuplicateEventConflict"
    within = stream.ingest([stream.event("b", {"v": 1}, event_id=(other := str(uuid.uuid4()))),
                            stream.event("b", {"v": 2}, event_id=other)])
    assert within["eventsAccepted"] == 1 and within["rejections"][0]["code"] == "DuplicateEventConflict"


def test_command_id_is_deduplicated_per_stream(client, engine):
    stream = Stream(client, engine, ves_version=2)
    command = str(uuid.uuid4())
    stream.ingest([stream.event("a", command_id=command)])
    result = stream.ingest([stream.event("a", command_id=command)])
    assert result["rejections"][0]["code"] == "DuplicateEventConflict"
    other_store = stream.event("a", command_id=command, store_id=uuid.uuid4())
    assert stream.ingest([other_store])["eventsAccepted"] == 1


def test_base_version_checks_and_advances_within_a_request(client, engine):
    stream = Stream(client, engine, ves_version=2)
    result = stream.ingest([stream.event("o", base_version=0), stream.event("o", base_version=1),
                            stream.event("o", base_version=1), stream.event("p", base_version=0)])
    assert result["eventsAccepted"] == 3
    assert result["rejections"][0]["code"] == "VersionConflict" and result["rejections"][0]["index"] == 2
    assert "expected: 1, actual: 2" in result["rejections"][0]["message"]
    history = client.get(f"/api/v1/ves/entities/order/o?{stream.query}", headers=stream.headers).json
    assert history["version"] == 2 and history["count"] == 2
    assert [e["entity_version"] for e in history["events"]] == [1, 2]


def test_payload_too_large_rejects_that_event_only(make_app, engine):
    app = make_app(max_event_payload_size=200)
    stream = Stream(app.test_client(), engine)
    result = stream.ingest([stream.event("a", {"blob": "x" * 300}), stream.event("b", {"small": 1})])
    assert result["rejections"][0]["code"] == "PayloadTooLarge"
    assert result["eventsAccepted"] == 1


def test_events_for_several_streams_are_judged_event_by_event(client, engine):
    tenant = uuid.uuid4()
    allowed, other = uuid.uuid4(), uuid.uuid4()
    key = api_key(engine, tenant, "read_write", store_ids=[allowed])
    agent = uuid.uuid4()
    signer = AgentSigner(os.urandom(32), tenant, agent, 1)
    # Agent keys are tenant-wide: a store-scoped key may not register one (docs/SECURITY.md).
    registered = client.post("/api/v1/agents/keys", json={"tenant_id": str(tenant), "agent_id": str(agent),
                                                          "key_id": 1, "public_key": signer.public_key_hex},
                             headers=auth(BOOTSTRAP_KEY))
    assert registered.status_code == 200, registered.json
    events = [signer.build_event(allowed, "o", "1", "t", {}), signer.build_event(other, "o", "1", "t", {}),
              signer.build_event(allowed, "o", "2", "t", {})]
    result = client.post("/api/v1/ves/events/ingest", json={"events": events}, headers=auth(key)).json
    assert result["eventsAccepted"] == 2
    assert result["rejections"] == [{"event_id": events[1]["event_id"], "index": 1, "reason": "forbidden",
                                     "code": "Forbidden", "message": "This API key may not write to that tenant or store."}]
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM events WHERE store_id = :s"), {"s": other}).scalar()
    assert count == 0


def test_one_request_can_write_several_streams(client, engine):
    tenant, agent = uuid.uuid4(), uuid.uuid4()
    key = api_key(engine, tenant, "read_write")
    signer = AgentSigner(os.urandom(32), tenant, agent, 1)
    client.post("/api/v1/agents/keys", json={"tenant_id": str(tenant), "agent_id": str(agent), "key_id": 1,
                                             "public_key": signer.public_key_hex}, headers=auth(key))
    a, b = uuid.uuid4(), uuid.uuid4()
    events = [signer.build_event(s, "o", str(i), "t", {}) for i, s in enumerate([a, b, a, b, b])]
    result = client.post("/api/v1/ves/events/ingest", json={"events": events}, headers=auth(key)).json
    assert [r["sequenceNumber"] for r in result["receipts"]] == [1, 1, 2, 2, 3]
    assert result["streams"] == [
        {"tenant_id": str(tenant), "store_id": str(a), "sequence_start": 1, "sequence_end": 2, "head_sequence": 2},
        {"tenant_id": str(tenant), "store_id": str(b), "sequence_start": 1, "sequence_end": 3, "head_sequence": 3},
    ]


def test_read_only_key_cannot_ingest(client, engine, stream):
    reader = api_key(engine, stream.tenant_id, "read")
    response = client.post("/api/v1/ves/events/ingest", json={"events": [stream.event()]}, headers=auth(reader))
    assert response.status_code == 403 and response.json["code"] == "insufficient_permissions"


def test_key_bound_to_an_agent_may_only_send_that_agents_events(client, engine, stream):
    bound = api_key(engine, stream.tenant_id, "read_write", agent_id=uuid.uuid4())
    response = client.post("/api/v1/ves/events/ingest", json={"events": [stream.event()]}, headers=auth(bound))
    assert response.json["rejections"][0]["code"] == "Forbidden"


@pytest.mark.parametrize(("body", "status"), [({}, 400), ({"events": []}, 400), ({"events": {}}, 400),
                                              ({"events": "x"}, 400), ({"agentId": 5, "events": [{}]}, 400)])
def test_malformed_requests_are_400(stream, body, status):
    response = stream.client.post("/api/v1/ves/events/ingest", json=body, headers=stream.headers)
    assert response.status_code == status and response.json["code"] == "INVALID_REQUEST"


def test_too_many_events_is_413(make_app, engine):
    app = make_app(max_events_per_batch=3)
    stream = Stream(app.test_client(), engine)
    response = stream.client.post("/api/v1/ves/events/ingest", json={"events": [stream.event()] * 4},
                                  headers=stream.headers)
    assert response.status_code == 413 and response.json["code"] == "TOO_MANY_EVENTS"


def test_encrypted_payload_is_checked_and_stored_as_the_original_stores_it(stream):
    from app.ves.encoding import b64u_encode
    from tests.support.ves_enc import recipient_keypair
    from tests.support.ves_enc import sealed_event

    recipients = {1: recipient_keypair()[1], 5: recipient_keypair()[1]}
    event, sealed = sealed_event(stream.signer, stream.store_id, "doc", "1", "doc.sealed", {"secret": 1}, recipients)
    with_extra = {**sealed.payload_encrypted, "extra": {"alg": "x"}}
    event["payload_encrypted"] = with_extra
    tampered, _ = sealed_event(stream.signer, stream.store_id, "doc", "2", "doc.sealed", {"secret": 2}, recipients)
    tampered["payload_encrypted"] = {**tampered["payload_encrypted"], "tag_b64u": b64u_encode(os.urandom(16))}
    unsorted, _ = sealed_event(stream.signer, stream.store_id, "doc", "3", "doc.sealed", {"secret": 3}, recipients)
    unsorted["payload_encrypted"] = {**unsorted["payload_encrypted"],
                                     "recipients": unsorted["payload_encrypted"]["recipients"][::-1]}
    result = stream.ingest([event, tampered, unsorted])
    assert result["eventsAccepted"] == 1
    assert [r["code"] for r in result["rejections"]] == ["PayloadHashMismatch", "InvalidEvent"]
    assert "recipient_kid" in result["rejections"][1]["message"]
    served = stream.events()["events"][0]
    assert served["payload_encrypted"] == sealed.payload_encrypted and "payload" not in served
    assert served["payload_cipher_hash"] == event["payload_cipher_hash"]


def test_encrypted_payloads_of_the_draft_rule_are_rejected(stream):
    """VES.md's draft VES-ENC-1 (string kids, JCS recipients): accepted before the compatibility change, never by the
    original; signed correctly under the draft rule, it is now an InvalidEvent."""
    import dataclasses

    from app.ves import Ed25519Signer
    from app.ves import EventSigningFields
    from app.ves import event_signing_hash
    from app.ves import to_hex
    from app.ves.encoding import b64u_encode
    from app.ves.encrypted import draft_payload_cipher_hash

    seed = os.urandom(32)
    key = Ed25519Signer(seed)
    response = stream.client.post("/api/v1/agents/keys", json={
        "tenantId": str(stream.tenant_id), "agentId": str(stream.agent_id), "keyId": 2,
        "publicKey": to_hex(key.public_key)}, headers=stream.headers)
    assert response.status_code == 200
    draft = {"nonce_b64u": b64u_encode(os.urandom(12)), "ciphertext_b64u": b64u_encode(os.urandom(40)),
             "tag_b64u": b64u_encode(os.urandom(16)),
             "recipients": [{"recipient_kid": "k1", "enc_b64u": "AAAA", "ct_b64u": "BBBB"}]}
    event = stream.event(payload={"x": 1})
    event.update(agent_key_id=2, payload_kind=1, payload_plain_hash="0x" + "11" * 32, payload_encrypted=draft)
    del event["payload"]
    fields = EventSigningFields.from_envelope(event)
    fields = dataclasses.replace(fields, payload_cipher_hash=draft_payload_cipher_hash(draft, fields))
    event["payload_cipher_hash"] = to_hex(fields.payload_cipher_hash)
    event["agent_signature"] = to_hex(key.sign(event_signing_hash(fields)))
    result = stream.ingest([event])
    assert result["eventsAccepted"] == 0 and result["rejections"][0]["code"] == "InvalidEvent"
    assert "enc_version" in result["rejections"][0]["message"]


def test_camel_case_envelope_fields_are_accepted(stream):
    event = stream.event()
    camel = {"eventId" if k == "event_id" else k: v for k, v in event.items()}
    assert stream.ingest([camel])["eventsAccepted"] == 1


def test_batch_log_line_has_counts_and_no_payload(stream, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="stateset_sequencer.ingest")
    stream.ingest([stream.event("a", {"secret_marker": "do-not-log-me"})])
    records = [r for r in caplog.records if r.getMessage() == "Event batch ingested"]
    assert records and records[-1].events_accepted == 1 and records[-1].events_rejected == 0
    assert "do-not-log-me" not in caplog.text and stream.key not in caplog.text


def test_replay_after_key_revocation_or_stricter_schema_still_returns_the_original_receipt(client, stream):
    event = stream.event("a", {"qty": 1})
    original = stream.ingest([event])["receipts"][0]
    client.post("/api/v1/schemas", json={"tenant_id": str(stream.tenant_id), "event_type": "order.updated",
                                         "schema": {"type": "object", "required": ["never-present"]}},
                headers=stream.headers)
    client.delete(f"/api/v1/agents/keys/{stream.agent_id}/1?tenant_id={stream.tenant_id}", headers=stream.headers)
    replay = stream.ingest([event, stream.event("b", {"qty": 2})])
    assert replay["receipts"] == [{**original, "duplicate": True}]
    assert replay["rejections"][0]["index"] == 1 and replay["rejections"][0]["code"] == "AgentKeyRevoked"
    forged = dict(event, agent_signature="0x" + "00" * 64)
    assert stream.ingest([forged])["rejections"][0]["code"] == "AgentKeyRevoked"


def test_a_stream_lock_held_too_long_answers_503_and_writes_nothing(make_app, engine):
    from app.db.locks import stream_lock_key

    stream = Stream(make_app(stream_lock_timeout_ms=300).test_client(), engine)
    with engine.connect() as holder:
        holder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": stream_lock_key(stream.tenant_id,
                                                                                     stream.store_id)})
        response = stream.client.post("/api/v1/ves/events/ingest", json={"events": [stream.event()]},
                                      headers=stream.headers)
        assert response.status_code == 503 and response.json["code"] == "STREAM_BUSY"
        assert response.headers["Retry-After"] == "1"
        holder.execute(sa.text("SELECT pg_advisory_unlock_all()"))
    assert stream.ingest([stream.event()])["receipts"][0]["sequenceNumber"] == 1


@pytest.mark.parametrize("table", ["entity_versions", "stream_logs"])
def test_a_lock_wait_inside_the_hot_statements_answers_503_and_writes_nothing(make_app, engine, table):
    """The entity-version upsert and the log write run on the transaction's raw psycopg2 cursor; an error there
    (here: a row lock held elsewhere past STREAM_LOCK_TIMEOUT_MS) must reach the API as SQLAlchemy's error, so it
    maps to 503 STREAM_BUSY like any other statement's, not to a 500."""
    stream = Stream(make_app(stream_lock_timeout_ms=300).test_client(), engine)
    assert stream.ingest([stream.event("order-1")])["headSequence"] == 1
    with engine.connect() as holder:
        locked = holder.execute(sa.text(f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE tenant_id = :t AND "
                                        "store_id = :s FOR UPDATE) AS held"),
                                {"t": stream.tenant_id, "s": stream.store_id}).scalar()
        assert locked == 1
        response = stream.client.post("/api/v1/ves/events/ingest", json={"events": [stream.event("order-1")]},
                                      headers=stream.headers)
        assert response.status_code == 503 and response.json["code"] == "STREAM_BUSY", response.json
        holder.rollback()
    assert stream.ingest([stream.event("order-1")])["receipts"][0]["sequenceNumber"] == 2
