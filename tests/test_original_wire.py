"""The original sequencer's wire format on our routes (issue 11 item 3, docs/spec/COMPAT.md), checked from Python
beside the Node client of tests/compat: reason strings, counts and omissions, the guards, agent keys, schemas,
proof echoes."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import uuid

import pytest

from app.client import AgentSigner
from app.config import ConfigError
from app.config import Settings
from app.config import derived_sequencer_id
from app.ves import jcs
from tests.controls import Stream


@pytest.fixture
def stream(client, engine):
    return Stream(client, engine)


def _post(stream, path, body):
    return stream.client.post(path, json=body, headers=stream.headers)


def test_ves_rejections_carry_the_originals_reason_and_our_code(stream):
    first = stream.event("a", command_id=uuid.uuid4(), ves_version=2)
    stream.ingest([first])
    same_command = stream.event("b", command_id=uuid.UUID(first["command_id"]), ves_version=2)
    other_content = stream.event("c", event_id=uuid.UUID(first["event_id"]))
    conflict = stream.event("a", base_version=7, ves_version=2)
    unknown_key = AgentSigner(os.urandom(32), stream.tenant_id, stream.agent_id, 9).build_event(
        stream.store_id, "order", "d", "t", {})
    bad_type = dict(stream.event("e"), entity_type="")
    result = stream.ingest([same_command, other_content, conflict, unknown_key, bad_type])
    assert [(r["reason"], r["code"]) for r in result["rejections"]] == [
        ("duplicate_command_id", "DuplicateEventConflict"), ("duplicate_event_id", "DuplicateEventConflict"),
        ("version_conflict: expected 7, actual 1", "VersionConflict"),
        ("agent_key_invalid: Agent key not found", "UnknownAgentKey"),
        ("schema_validation: entity_type", "InvalidEvent")]
    assert "receipts" not in result and result["eventsAccepted"] == 0 and result["headSequence"] == 1


def test_agent_key_validity_reasons(stream, client):
    later = AgentSigner(os.urandom(32), stream.tenant_id, stream.agent_id, 2)
    tomorrow = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).isoformat()
    assert client.post("/api/v1/agents/keys", headers=stream.headers, json={
        "tenantId": str(stream.tenant_id), "agentId": str(stream.agent_id), "keyId": 2,
        "publicKey": later.public_key_hex, "validFrom": tomorrow}).status_code == 200
    client.delete(f"/api/v1/agents/keys/{stream.agent_id}/1?tenant_id={stream.tenant_id}", headers=stream.headers)
    result = stream.ingest([later.build_event(stream.store_id, "order", "x", "t", {}), stream.event("y")])
    assert [r["reason"] for r in result["rejections"]] == ["agent_key_invalid: Agent key is not yet valid",
                                                           "agent_key_invalid: Agent key has been revoked"]


def test_replays_are_not_counted_and_empty_lists_are_omitted(stream):
    event = stream.event("a")
    first = stream.ingest([event])
    assert "rejections" not in first and first["eventsAccepted"] == 1
    replay = stream.ingest([event])
    assert (replay["eventsAccepted"], replay["eventsRejected"], replay["sequenceStart"], replay["headSequence"]) == (
        0, 0, None, 1)
    assert replay["receipts"][0]["duplicate"] is True and "rejections" not in replay


def test_head_sequence_is_that_of_the_untouched_stream_never_null(stream):
    elsewhere = uuid.uuid4()
    bad = dict(stream.event("a", store_id=elsewhere), payload={"tampered": True})
    result = stream.ingest([bad])
    assert result["headSequence"] == 0 and "receipts" not in result
    stream.ingest([stream.event("b")])
    bad_here = dict(stream.event("c"), payload={"tampered": True})
    assert stream.ingest([bad_here])["headSequence"] == 1


def test_an_event_of_another_agent_than_agent_id_fails_the_request(stream):
    other = AgentSigner(os.urandom(32), stream.tenant_id, uuid.uuid4(), 1)
    response = _post(stream, "/api/v1/ves/events/ingest", {
        "agentId": str(stream.agent_id), "events": [stream.event("a"), other.build_event(stream.store_id, "o", "1",
                                                                                         "t", {})]})
    assert response.status_code == 400 and response.json["code"] == "SOURCE_AGENT_MISMATCH"
    assert stream.events()["events"] == []  # nothing written


def test_the_originals_length_limits_in_utf8_bytes(stream):
    fits = stream.signer.build_event(stream.store_id, "t" * 128, "é" * 256, "e" * 256, {})
    too_long = stream.signer.build_event(stream.store_id, "é" * 65, "i", "e", {})  # 130 bytes
    result = stream.ingest([fits, too_long])
    assert result["eventsAccepted"] == 1 and result["rejections"][0]["reason"] == "schema_validation: entity_type"


def _unsigned(stream, event, agent_id=None):
    body = {"agent_id": str(agent_id or stream.agent_id), "events": [event]}
    return _post(stream, "/api/v1/events/ingest", body)


def _plain_event(stream, **extra):
    return {"event_id": str(uuid.uuid4()), "tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id),
            "entity_type": "order", "entity_id": "o", "event_type": "t", "payload": {"b": 2, "a": 1}, **extra}


def test_unsigned_ingest_checks_the_legacy_payload_hash_and_source_agent(stream):
    good_hash = hashlib.sha256(jcs({"b": 2, "a": 1})).hexdigest()
    accepted = _unsigned(stream, _plain_event(stream, payload_hash=good_hash)).json
    assert accepted["events_accepted"] == 1 and "rejections" not in accepted
    rejected = _unsigned(stream, _plain_event(stream, payload_hash="0x" + "00" * 32)).json
    assert [(r["reason"], r["code"]) for r in rejected["rejections"]] == [("InvalidPayloadHash", "PayloadHashMismatch")]
    assert "receipts" not in rejected and rejected["head_sequence"] == 1
    malformed = _unsigned(stream, _plain_event(stream, payload_hash="nope")).json
    assert malformed["rejections"][0]["reason"] == "SchemaValidation"
    stranger = _unsigned(stream, _plain_event(stream, source_agent=str(uuid.uuid4())))
    assert stranger.status_code == 400 and stranger.json["code"] == "SOURCE_AGENT_MISMATCH"
    same = _unsigned(stream, _plain_event(stream, source_agent=str(stream.agent_id)))
    assert same.json["events_accepted"] == 1


def test_agent_key_registration_answers_as_the_original(stream):
    signer = AgentSigner(os.urandom(32), stream.tenant_id, stream.agent_id, 5)
    body = {"tenantId": str(stream.tenant_id), "agentId": str(stream.agent_id), "keyId": 5,
            "publicKey": signer.public_key_hex.removeprefix("0x")}
    for created in (True, False):
        response = _post(stream, "/api/v1/agents/keys", body)
        assert response.status_code == 200
        answer = response.json
        assert {k: answer[k] for k in ("success", "tenantId", "agentId", "keyId", "keyAlgorithm")} == {
            "success": True, "tenantId": str(stream.tenant_id), "agentId": str(stream.agent_id), "keyId": 5,
            "keyAlgorithm": 0}
        assert answer["created"] is created and answer["message"]
    pqc = _post(stream, "/api/v1/agents/keys", {**body, "keyId": 6, "keyAlgorithm": 2})
    assert pqc.status_code == 400 and "key_algorithm" in pqc.json["error"]


def test_schema_registration_in_the_originals_form(stream):
    schema = {"type": "object"}
    response = _post(stream, "/api/v1/schemas", {"tenantId": str(stream.tenant_id), "eventType": "a.b",
                                                "schemaJson": schema, "description": "d", "compatibility": "full"})
    assert response.status_code == 200, response.json
    created = response.json
    assert uuid.UUID(created["id"]) and (created["eventType"], created["version"]) == ("a.b", 1)
    assert datetime.datetime.fromisoformat(created["createdAt"]).tzinfo is not None
    listed = stream.client.get(f"/api/v1/schemas?tenant_id={stream.tenant_id}", headers=stream.headers).json
    item = next(s for s in listed["schemas"] if s["id"] == created["id"])
    assert (item["schemaJson"], item["status"], item["compatibility"], item["description"], item["createdBy"]) == (
        schema, "active", "full", "d", None)
    ours = _post(stream, "/api/v1/schemas", {"tenant_id": str(stream.tenant_id), "event_type": "a.b",
                                            "schema": schema}).json
    assert (ours["version"], ours["compatibility"], ours["description"]) == (2, "backward", None)
    for bad in ({"schema": schema, "schemaJson": schema}, {}, {"schema": schema, "compatibility": "sideways"}):
        answer = _post(stream, "/api/v1/schemas", {"tenant_id": str(stream.tenant_id), "event_type": "a.b", **bad})
        assert answer.status_code == 400, bad


def test_proof_verify_echoes_the_hashes_as_sent(stream):
    stream.ingest([stream.event("a"), stream.event("b")])
    assert _post(stream, "/api/v1/ves/commitments", {"tenant_id": str(stream.tenant_id),
                                                     "store_id": str(stream.store_id)}).status_code == 200
    proof = stream.client.get(f"/api/v1/ves/proofs/1?{stream.query}", headers=stream.headers).json
    sent = {"leaf_hash": "0X" + proof["leaf_hash"].upper(), "merkle_root": proof["merkle_root"],
            "proof_path": proof["proof_path"], "leaf_index": 0}
    verdict = _post(stream, "/api/v1/ves/proofs/verify", sent).json
    assert verdict["valid"] is True
    assert (verdict["leaf_hash"], verdict["merkle_root"]) == (sent["leaf_hash"], sent["merkle_root"])
    camel = _post(stream, "/api/v1/ves/proofs/verify", {"leafHash": proof["leaf_hash"], "merkleRoot": "0x" + "00" * 32,
                                                       "proofPath": proof["proof_path"], "leafIndex": 0}).json
    assert camel["valid"] is False and camel["merkle_root"] == "0x" + "00" * 32


def test_sequencer_id_is_a_uuid_from_ves_sequencer_id_or_derived():
    assert Settings.from_env({}).sequencer_id == derived_sequencer_id("stateset-sequencer")
    assert Settings.from_env({"SEQUENCER_ID": "eu-1"}).sequencer_id == str(
        uuid.uuid5(uuid.NAMESPACE_URL, "urn:stateset-sequencer:eu-1"))
    chosen = str(uuid.uuid4())
    assert Settings.from_env({"VES_SEQUENCER_ID": chosen.upper(), "SEQUENCER_ID": "x"}).sequencer_id == chosen
    for bad in ("stateset-sequencer", "1234", chosen + "0", "{" + chosen + "}"):
        with pytest.raises(ConfigError, match="VES_SEQUENCER_ID"):
            Settings.from_env({"VES_SEQUENCER_ID": bad})


def test_receipts_name_the_sequencer_uuid(stream, app):
    receipt = stream.ingest([stream.event()])["receipts"][0]
    assert receipt["sequencerId"] == app.extensions["sequencer"].settings.sequencer_id
    assert uuid.UUID(receipt["sequencerId"]) and json.dumps(receipt)
