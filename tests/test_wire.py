"""The wire rules of app/api/wire.py, each applied everywhere it applies.

- Alias policy: a field given under both its snake_case and camelCase names is a 400 (whatever the values) on every
  operation that takes aliases, and an ingest event doing so is rejected alone; camelCase alone reads like snake_case.
  The set of aliased operations is read from the declarations, so a new one without a case here fails.
- The hex form of response byte fields is one decision (`RESPONSE_HEX_PREFIX`): changing it changes every response
  byte field and the document's patterns, and no envelope field.
- Every domain error answers with the status `ERROR_STATUSES` gives its nearest listed class.
"""

from __future__ import annotations

import uuid

import pytest

from app.api import wire
from app.api.wire import camel_case
from app.errors import SequencerError
from tests.controls import BOOTSTRAP_KEY
from tests.controls import Stream
from tests.controls import auth

ZERO_HASH = "0x" + "00" * 32
ADMIN = auth(BOOTSTRAP_KEY)


def aliased_operations(app) -> dict[tuple[str, str], tuple[str, tuple[str, ...]]]:
    """`(method, rule) -> ("body" | "query", aliases)` for every operation declaring aliases."""
    found = {}
    for rule in app.url_map.iter_rules():
        operation = app.view_functions[rule.endpoint].operation
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            for where in ("body", "query"):
                schema = getattr(operation, where)
                if schema is not None and schema.ALIASES:
                    found[(method, rule.rule)] = (where, schema.ALIASES)
    return found


def _baselines(stream: Stream) -> dict[tuple[str, str], tuple[str, dict, dict]]:
    """A valid request per aliased operation: `(url, snake_case fields, headers)`."""
    tenant, store = str(stream.tenant_id), str(stream.store_id)
    unsigned = {"event_id": str(uuid.uuid4()), "tenant_id": tenant, "store_id": store, "entity_type": "order",
                "entity_id": "o-1", "event_type": "order.updated", "payload": {}}
    return {
        ("POST", "/api/v1/agents/keys"): ("/api/v1/agents/keys", {
            "tenant_id": tenant, "agent_id": str(stream.agent_id), "key_id": 1,
            "public_key": stream.signer.public_key_hex, "valid_from": None, "valid_to": None}, stream.headers),
        ("POST", "/api/v1/ves/events/ingest"): ("/api/v1/ves/events/ingest", {
            "agent_id": str(stream.agent_id), "events": [stream.event()]}, stream.headers),
        ("POST", "/api/v1/events/ingest"): ("/api/v1/events/ingest", {
            "agent_id": str(stream.agent_id), "events": [unsigned]}, stream.headers),
        ("POST", "/api/v1/ves/commitments"): ("/api/v1/ves/commitments", {
            "tenant_id": tenant, "store_id": str(uuid.uuid4()), "sequence_start": None, "sequence_end": None,
            "max_events": 10}, ADMIN),
        ("POST", "/api/v1/ves/commitments/anchor"): ("/api/v1/ves/commitments/anchor", {
            "tenant_id": tenant, "store_id": str(uuid.uuid4()), "sequence_start": None, "sequence_end": None,
            "max_events": 10}, ADMIN),
        ("POST", "/api/v1/ves/proofs/verify"): ("/api/v1/ves/proofs/verify", {
            "leaf_hash": ZERO_HASH, "merkle_root": ZERO_HASH, "proof_path": [], "leaf_index": 0, "leaf_count": 1},
            stream.headers),
        ("POST", "/api/v1/schemas"): ("/api/v1/schemas", {
            "tenant_id": tenant, "event_type": "order.updated", "schema_json": {"type": "object"}}, stream.headers),
        ("GET", "/api/v1/ves/proofs/<id:sequence_number>"): (f"/api/v1/ves/proofs/1?{stream.query}", {
            "batch_id": str(uuid.uuid4())}, stream.headers),
        **_legacy_baselines(stream, tenant, store),
    }


def _legacy_baselines(stream: Stream, tenant: str, store: str) -> dict[tuple[str, str], tuple[str, dict, dict]]:
    """The original sequencer's routes (app/api/legacy_*.py)."""
    batch = {"batch_id": str(uuid.uuid4())}
    return {
        ("POST", "/api/v1/commitments"): ("/api/v1/commitments", {
            "tenant_id": tenant, "store_id": str(uuid.uuid4()), "sequence_start": None, "sequence_end": None,
            "max_events": 10}, ADMIN),
        ("GET", "/api/v1/proofs/<id:sequence_number>"): (f"/api/v1/proofs/1?{stream.query}", dict(batch),
                                                         stream.headers),
        ("POST", "/api/v1/proofs/verify"): ("/api/v1/proofs/verify", {
            "leaf_hash": ZERO_HASH, "events_root": ZERO_HASH, "proof_path": [], "leaf_index": 0, "leaf_count": 1},
            stream.headers),
        ("POST", "/api/v1/ves/anchor"): ("/api/v1/ves/anchor", dict(batch), ADMIN),
        ("POST", "/api/v1/anchor"): ("/api/v1/anchor", dict(batch), ADMIN),
        ("POST", "/api/v1/agents/register"): ("/api/v1/agents/register", {
            "name": "bot", "store_ids": [], "read_only": False, "rate_limit": 5}, {}),
        ("POST", "/api/v1/agents/<id:agent_id>/api-keys"): (f"/api/v1/agents/{stream.agent_id}/api-keys", {
            "store_ids": [], "read_only": True, "rate_limit": 5}, ADMIN),
        ("POST", "/api/v1/schemas/validate"): ("/api/v1/schemas/validate", {
            "tenant_id": tenant, "event_type": "order.updated", "payload": {}, "schema_version": None},
            stream.headers),
    }


def _send(client, method: str, url: str, fields: dict, headers: dict):
    if method == "GET":
        query = "&".join(f"{name}={value}" for name, value in fields.items())
        return client.get(f"{url}&{query}", headers=headers)
    return client.open(url, method=method, json=fields, headers=headers)


@pytest.fixture
def stream(client, engine):
    return Stream(client, engine)


def test_every_aliased_operation_has_a_case_here(app, stream):
    assert set(aliased_operations(app)) == set(_baselines(stream))


def test_both_spellings_of_any_aliased_field_are_a_400_on_every_operation(app, client, engine):
    for (method, rule), (_, aliases) in aliased_operations(app).items():
        for snake in aliases:
            stream = Stream(client, engine)
            url, fields, headers = _baselines(stream)[(method, rule)]
            value = fields.get(snake, str(uuid.uuid4()))
            both = {**fields, snake: value, camel_case(snake): value}
            response = _send(client, method, url, both, headers)
            assert response.status_code == 400, (rule, snake, response.json)
            assert response.json["code"] == "INVALID_REQUEST"
            assert snake in response.json["error"] and camel_case(snake) in response.json["error"], response.json


def test_camel_case_alone_reads_like_snake_case_on_every_operation(app, client, engine):
    for (method, rule), (_, aliases) in aliased_operations(app).items():
        answers = []
        for spell in (lambda name: name, camel_case):
            stream = Stream(client, engine)
            url, fields, headers = _baselines(stream)[(method, rule)]
            renamed = {spell(name) if name in aliases else name: value for name, value in fields.items()}
            response = _send(client, method, url, renamed, headers)
            assert response.status_code != 400, (rule, renamed, response.json)
            answers.append((response.status_code, response.json.get("code") if response.is_json else None))
        assert answers[0] == answers[1], (rule, answers)


@pytest.mark.parametrize("path", ["/api/v1/ves/events/ingest", "/api/v1/events/ingest"])
def test_an_event_naming_a_field_both_ways_is_rejected_alone(stream, path):
    good, twice = stream.event("a"), stream.event("b")
    if path == "/api/v1/events/ingest":
        good, twice = ({k: e[k] for k in ("event_id", "tenant_id", "store_id", "entity_type", "entity_id",
                                          "event_type", "payload")} for e in (good, twice))
    twice["eventId"] = twice["event_id"]
    response = stream.client.post(path, json={"agent_id": str(stream.agent_id), "events": [good, twice]},
                                  headers=stream.headers)
    assert response.status_code == 200, response.json
    body = response.json
    rejections = body["rejections"]
    assert [(r["index"], r["code"], r["event_id"]) for r in rejections] == [(1, "InvalidEvent", twice["event_id"])]
    assert "event_id" in rejections[0]["message"] and "eventId" in rejections[0]["message"]
    assert len(body["receipts"]) == 1


def test_response_byte_fields_are_plain_hex_and_envelope_fields_keep_0x(make_app, engine):
    """Issue 11 item 2: the original's `hex::encode` form in responses (one decision, `RESPONSE_HEX_PREFIX`)."""
    assert wire.RESPONSE_HEX_PREFIX == ""
    client = make_app().test_client()
    stream = Stream(client, engine)
    stream.ingest([stream.event("a"), stream.event("b")])
    commitment = client.post("/api/v1/ves/commitments", headers=stream.headers,
                             json={"tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id)}).json
    event = stream.events()["events"][0]
    proof = client.get(f"/api/v1/ves/proofs/1?{stream.query}", headers=stream.headers).json
    plain = [commitment["merkle_root"], commitment["new_state_root"], event["event_signing_hash"],
             event["sequencer_receipt"]["receipt_hash"], event["sequencer_receipt"]["sequencer_signature"],
             proof["leaf_hash"], *proof["proof_path"],
             client.get("/api/v1/ves/sequencer").json["public_key"]]
    assert all(not value.startswith("0x") and bytes.fromhex(value) for value in plain), plain
    envelope = [event["payload_plain_hash"], event["payload_cipher_hash"], event["agent_signature"]]
    assert all(value.startswith("0x") for value in envelope)
    verdict = client.post("/api/v1/ves/proofs/verify", headers=stream.headers, json=proof).json
    assert verdict["valid"] is True and not verdict["merkle_root"].startswith("0x")

    schemas = client.get("/api/openapi.json").json["components"]["schemas"]
    assert schemas["Commitment"]["properties"]["merkle_root"]["pattern"] == "^[0-9a-f]{64}$"
    assert schemas["VesEvent"]["properties"]["payload_plain_hash"]["pattern"] == "^0x[0-9a-f]{64}$"


def _all_error_classes() -> list[type[SequencerError]]:
    import app.services.anchoring  # noqa: F401 - defines the anchoring errors

    found, stack = [], [SequencerError]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("error_class", _all_error_classes(), ids=lambda c: c.__name__)
def test_every_domain_error_answers_as_its_nearest_mapped_class(error_class):
    mapped = next((wire.ERROR_STATUSES[k] for k in error_class.__mro__ if k in wire.ERROR_STATUSES), None)
    answer = wire.answer_for(error_class("A sentence.", retry_after=7))
    assert answer.status == (mapped or 400) and answer.code == error_class.code
    assert answer.headers.get("Retry-After") == "7"
    assert ("WWW-Authenticate" in answer.headers) == (answer.status == 401)


def test_a_slotless_long_poll_keeps_its_retry_after_under_the_rate_limiter(make_app, engine):
    """flask-limiter writes its own Retry-After on every response; the page's declared one must survive it."""
    client = make_app(rate_limit_per_minute=100_000, long_poll_slots_per_worker=0).test_client()
    stream = Stream(client, engine)
    response = client.get(f"/api/v1/ves/events?{stream.query}&wait=1", headers=stream.headers)
    assert response.status_code == 200 and response.json["count"] == 0
    assert response.headers["Retry-After"] == "1"
    plain = client.get(f"/api/v1/ves/events?{stream.query}", headers=stream.headers)
    assert plain.status_code == 200 and "Retry-After" not in plain.headers
