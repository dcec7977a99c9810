"""A tenant's schema cannot pin a worker: regexes run on RE2 (linear time), RE2-incompatible patterns are refused at
registration, and validation of one request stops at SCHEMA_VALIDATION_TIMEOUT_MS.

`^(a+)+$` against 40 `a`s and a `b` takes Python's `re` about 2^40 steps; on RE2 it is microseconds. The
gunicorn test sends it through ingest and times the answer; the in-process tests cover `patternProperties`,
`additionalProperties`/`unevaluatedProperties` next to `patternProperties`, the `regex` format and the deadline.
"""

from __future__ import annotations

import os
import time
import uuid

import jsonschema
import pytest
import requests

from app.client.signer import AgentSigner
from app.services.schema_patterns import FORMAT_CHECKER
from app.services.schema_patterns import LinearValidator
from app.services.schema_patterns import ValidationTimedOut
from app.services.schema_patterns import linear_validation
from app.services.schema_patterns import unsupported_patterns
from tests.controls import BOOTSTRAP_KEY
from tests.controls import Stream
from tests.support.servers import start_gunicorn

EVIL = "^(a+)+$"
EVIL_INPUT = "a" * 40 + "b"
ADMIN = {"Authorization": f"ApiKey {BOOTSTRAP_KEY}"}


def register(stream: Stream, schema: dict, event_type: str = "order.updated"):
    return stream.client.post("/api/v1/schemas", json={"tenant_id": str(stream.tenant_id), "event_type": event_type,
                                                       "schema": schema}, headers=stream.headers)


@pytest.fixture
def stream(make_app, engine):
    return Stream(make_app(schema_validation_mode="enforce").test_client(), engine)


HOSTILE_SCHEMAS = {
    "pattern": {"type": "object", "properties": {"s": {"type": "string", "pattern": EVIL}}},
    "pattern_properties": {"type": "object", "patternProperties": {EVIL: {"type": "integer"}}},
    "additional_properties": {"type": "object", "patternProperties": {EVIL: True}, "additionalProperties": False},
    "unevaluated_properties": {"type": "object", "patternProperties": {EVIL: True}, "unevaluatedProperties": False},
    "property_names": {"type": "object", "propertyNames": {"pattern": EVIL}},
    "nested_in_all_of": {"allOf": [{"properties": {"s": {"items": {"pattern": EVIL}}}}]},
}


@pytest.mark.parametrize("name", sorted(HOSTILE_SCHEMAS))
def test_hostile_patterns_are_evaluated_in_linear_time(stream, name):
    assert register(stream, HOSTILE_SCHEMAS[name]).status_code == 200
    payloads = [{"s": EVIL_INPUT}, {EVIL_INPUT: "x"}, {"s": [EVIL_INPUT]}, {"aaaa": 1}]
    started = time.perf_counter()
    result = stream.ingest([stream.event(f"e{i}", payload) for i, payload in enumerate(payloads)])
    assert time.perf_counter() - started < 10.0  # backtracking: 2^41 steps, hours
    assert result["eventsAccepted"] + len(result.get("rejections", [])) == len(payloads)
    # The matches RE2 computes are the real ones: "aaaa" matches the pattern, the 41-character string does not.
    validator = LinearValidator(HOSTILE_SCHEMAS["pattern"], format_checker=FORMAT_CHECKER)
    with linear_validation(1.0):
        assert not list(validator.iter_errors({"s": "aaaa"}))
        assert list(validator.iter_errors({"s": EVIL_INPUT}))


@pytest.mark.parametrize("schema", [
    {"pattern": "(a)\\1"},
    {"properties": {"x": {"pattern": "^(?=a)"}}},
    {"patternProperties": {"(?<!x)y": {}}},
    {"$defs": {"d": {"anyOf": [{"pattern": "(?!a)"}]}}},
])
def test_patterns_re2_cannot_run_are_refused_at_registration(stream, schema):
    response = register(stream, schema)
    assert response.status_code == 400 and response.json["code"] == "SCHEMA_PATTERN_UNSUPPORTED", response.json


def test_pattern_like_data_outside_schema_positions_is_not_a_pattern():
    assert unsupported_patterns({"const": {"pattern": "(a)\\1"}, "enum": [{"pattern": "(?=x)"}],
                                 "properties": {"pattern": {"type": "string"}}}) == []


def test_the_regex_format_accepts_only_what_re2_can_run():
    validator = LinearValidator({"format": "regex"}, format_checker=FORMAT_CHECKER)
    with linear_validation(1.0):
        assert not list(validator.iter_errors("^[a-z]+$"))
        assert list(validator.iter_errors("(a)\\1"))


def test_validation_stops_at_its_deadline():
    """A deliberately slow schema (uniqueItems over arrays, nested anyOf) on a large payload: the deadline fires."""
    schema = {"type": "array", "items": {"anyOf": [{"type": "string", "pattern": "z$"},
                                                   {"type": "string", "minLength": 1}]}}
    validator = LinearValidator(schema, format_checker=FORMAT_CHECKER)
    started = time.perf_counter()
    with pytest.raises(ValidationTimedOut):
        with linear_validation(0.05):
            list(validator.iter_errors(["x" * 10] * 200_000))
    assert time.perf_counter() - started < 5.0  # unbounded: minutes


def test_unique_items_is_linear_and_keeps_json_schema_equality():
    validator = LinearValidator({"uniqueItems": True}, format_checker=FORMAT_CHECKER)
    with linear_validation(5.0):
        started = time.perf_counter()
        assert not list(validator.iter_errors([{"i": i} for i in range(100_000)]))
        assert time.perf_counter() - started < 15.0  # pairwise: 5e9 comparisons
        assert list(validator.iter_errors([1, 1.0]))
        assert not list(validator.iter_errors([1, True]))
        assert list(validator.iter_errors([{"a": [1]}, {"a": [1.0]}]))


def test_outside_linear_validation_jsonschema_still_uses_python_re():
    """Other users of jsonschema in the process (OpenAPI tooling) keep standard `re` semantics."""
    assert list(jsonschema.Draft202012Validator({"pattern": "(a)\\1"}).iter_errors("ab"))
    assert not list(jsonschema.Draft202012Validator({"pattern": "(a)\\1"}).iter_errors("aa"))


def test_the_ingest_timeout_rejects_rather_than_holds(make_app, engine):
    app = make_app(schema_validation_mode="enforce", schema_validation_timeout_ms=1)
    stream = Stream(app.test_client(), engine)
    schema = {"type": "object", "properties": {"items": {"type": "array", "items": {"anyOf": [
        {"type": "string", "pattern": "z$"}, {"type": "string", "minLength": 1}]}}}}
    assert register(stream, schema).status_code == 200
    result = stream.ingest([stream.event(f"big{i}", {"items": ["x" * 10] * 50_000}) for i in range(3)])
    assert result["eventsAccepted"] == 0 and len(result["rejections"]) == 3
    assert all(r["code"] == "SchemaValidationFailed" for r in result["rejections"])
    assert "SCHEMA_VALIDATION_TIMEOUT_MS" in result["rejections"][0]["message"]


def test_hostile_pattern_through_gunicorn_answers_fast(database_url):
    env = {"BOOTSTRAP_ADMIN_API_KEY": BOOTSTRAP_KEY, "LOG_LEVEL": "warning", "SCHEMA_VALIDATION_MODE": "enforce"}
    with start_gunicorn(database_url, env=env, workers=1) as server:
        tenant, store = uuid.uuid4(), uuid.uuid4()
        signer = AgentSigner(os.urandom(32), tenant, uuid.uuid4(), 1)
        assert requests.post(f"{server.url}/api/v1/agents/keys", headers=ADMIN, timeout=10, json={
            "tenant_id": str(tenant), "agent_id": str(signer.agent_id), "key_id": 1,
            "public_key": signer.public_key_hex}).status_code == 200
        assert requests.post(f"{server.url}/api/v1/schemas", headers=ADMIN, timeout=10, json={
            "tenant_id": str(tenant), "event_type": "order.created",
            "schema": {"type": "object", "properties": {"s": {"type": "string", "pattern": EVIL}}}}).status_code == 200
        body = {"events": [signer.build_event(store, "order", f"o{i}", "order.created", {"s": EVIL_INPUT})
                           for i in range(20)]}
        started = time.perf_counter()
        response = requests.post(f"{server.url}/api/v1/ves/events/ingest", json=body, headers=ADMIN, timeout=30)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.text
        assert response.json()["eventsAccepted"] == 0 and len(response.json()["rejections"]) == 20
        assert elapsed < 10.0, elapsed  # backtracking: 20 x 2^41 steps


@pytest.mark.parametrize("schema", [
    {"$ref": "#"},
    {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
    {"allOf": [{"$ref": "#"}]},
    {"$ref": "#/$defs/nowhere"},
])
def test_schemas_that_cannot_be_evaluated_are_refused_at_registration(stream, schema):
    response = register(stream, schema)
    assert response.status_code == 400 and response.json["code"] == "INVALID_SCHEMA", response.json


def test_a_recursive_schema_that_consumes_the_instance_is_fine(stream):
    tree = {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}}
    assert register(stream, tree).status_code == 200
    deep = {"children": [{"children": [{"children": []}]}]}
    assert stream.ingest([stream.event("tree", deep)])["eventsAccepted"] == 1


def test_a_stored_schema_that_loops_rejects_events_instead_of_failing(stream, engine):
    """A schema stored before registration checked for loops (written here straight to the table)."""
    from app.db import schemas as store

    with engine.begin() as conn:
        store.insert_schema_version(conn, stream.tenant_id, "order.updated", {"$ref": "#"})
    result = stream.ingest([stream.event("loop", {"a": 1})])
    assert result["eventsAccepted"] == 0
    assert "cannot be evaluated" in result["rejections"][0]["message"]


def test_the_schema_list_is_read_and_written_in_batches_bounded_by_bytes(make_app, engine):
    """Every version of every schema comes back, in order, but the worker reads them PAGE_MAX_BYTES at a time."""
    from app.services.schemas import schemas_in_batches

    app = make_app(page_max_bytes=64 * 1024)
    stream = Stream(app.test_client(), engine)
    big = {"description": "d" * 40_000}
    for event_type in ("b.type", "a.type"):
        for _ in range(3):
            assert register(stream, big, event_type).status_code == 200
    count, batches = schemas_in_batches(engine, stream.tenant_id, None, 64 * 1024)
    sizes = [len(batch) for batch in batches]
    assert count == 6 and sizes == [1] * 6  # 40 KB each: one per 64 KiB batch
    listing = stream.client.get(f"/api/v1/schemas?tenant_id={stream.tenant_id}", headers=stream.headers)
    assert listing.status_code == 200 and listing.is_json
    body = listing.json
    assert body["count"] == 6 and [(s["event_type"], s["version"]) for s in body["schemas"]] == [
        ("a.type", 1), ("a.type", 2), ("a.type", 3), ("b.type", 1), ("b.type", 2), ("b.type", 3)]
    assert all(s["schema"] == big for s in body["schemas"])
    empty = stream.client.get(f"/api/v1/schemas?tenant_id={uuid.uuid4()}", headers=auth_bootstrap())
    assert empty.json == {"schemas": [], "count": 0}


def auth_bootstrap() -> dict:
    return ADMIN
