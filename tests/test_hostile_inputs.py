"""Hostile input corpus (API.md §Conventions: "No input may produce a 500 or a stack trace in the body").

Every case is a named test: a request that is wrong in exactly one way. Each must be answered with a 4xx (or, for a
bad event inside a well-formed ingest batch, a 200 that rejects that event) and an error body of exactly
`{"error", "code", "request_id"}` without any traceback text. Where the request reaches a documented operation the
status must be one the OpenAPI document lists for it. The gunicorn part sends what the test client cannot: raw bytes.
"""

from __future__ import annotations

import json
import socket
import time
import re
import uuid
from dataclasses import dataclass
from dataclasses import field

import pytest
from werkzeug.exceptions import HTTPException

from app.api.document import openapi_document
from app.api.document import openapi_path
from tests.controls import BOOTSTRAP_KEY
from tests.controls import Stream
from tests.controls import auth
from tests.support.servers import start_gunicorn

ERROR_KEYS = {"error", "code", "request_id"}
TRACE_MARKERS = ("Traceback", 'File "')
ADMIN = auth(BOOTSTRAP_KEY)
TENANT, STORE, OTHER = (str(uuid.uuid4()) for _ in range(3))
STREAM_QUERY = f"tenant_id={TENANT}&store_id={STORE}"
DOCUMENT = openapi_document()


@dataclass(frozen=True)
class Raw:
    """JSON text inserted verbatim (numbers Python cannot round-trip, e.g. `1e400`)."""

    text: str


def dumps(value) -> bytes:
    """JSON with `Raw` fragments spliced in; lone surrogates go out as `\\ud800` escapes (ensure_ascii)."""
    raws: list[str] = []

    def mark(node):
        if isinstance(node, Raw):
            raws.append(node.text)
            return f"__raw_{len(raws) - 1}__"
        if isinstance(node, dict):
            return {k: mark(v) for k, v in node.items()}
        if isinstance(node, list):
            return [mark(v) for v in node]
        return node

    text = json.dumps(mark(value))
    for index, raw in enumerate(raws):
        text = text.replace(f'"__raw_{index}__"', raw)
    return text.encode()


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    url: str
    body: bytes | None = None
    content_type: str | None = "application/json"
    headers: dict = field(default_factory=lambda: dict(ADMIN))


LONG = "x" * 10_000
SQLISH = "' OR 1=1 --"
NAUGHTY_STRINGS = {"sql": SQLISH, "nul": "\x00", "surrogate": "\ud800", "traversal": "../../etc/passwd",
                   "long": LONG, "unicode": "ü😀\u202e"}
NAUGHTY_SHAPES = {"int_2_64": 2**64, "minus_1": -1, "1e400": Raw("1e400"), "minus_1e400": Raw("-1e400"),
                  "float": 1.5, "true": True, "list": [], "object": {"$ne": None}, "nested_list": [[["x"]]]}
BAD_UUIDS = {**NAUGHTY_STRINGS, **NAUGHTY_SHAPES}
BAD_UINTS = {k: v for k, v in NAUGHTY_SHAPES.items() if k not in ("list", "object")} | {
    "string_digit": "1", "list": [1], "object": {"n": 1}, "sql": SQLISH, "surrogate": "\ud800"}
BAD_TEXTS = {"nul": "\x00", "surrogate": "\ud800", "long": LONG, "int_2_64": 2**64, "true": True, "list": [SQLISH],
             "object": {"a": SQLISH}, "1e400": Raw("1e400"), "empty": ""}
BAD_HASHES = {"non_hex": "0x" + "zz" * 32, "short": "0x00", "long": "0x" + "00" * 33, **NAUGHTY_STRINGS,
              **{k: v for k, v in NAUGHTY_SHAPES.items() if k != "minus_1"}}
BAD_HASH_LISTS = {"string": "0x" + "00" * 32, "ints": [2**64], "nulls": [None], "too_many": ["0x" + "00" * 32] * 65,
                  "object": {"a": 1}, "surrogate": ["\ud800"], "nested": [[["0x"]]]}
BAD_BOOL_LISTS = {"string": "true", "ints": [1], "nulls": [None], "too_many": [True] * 65, "object": {"a": 1}}
BAD_UUID_LISTS = {"string": "abc", "ints": [2**64], "nested": [["x"]], "object": {"a": 1}, "surrogate": ["\ud800"],
                  "too_many": [str(uuid.uuid4())] * 1001, "sql": [SQLISH]}
BAD_EVENTS = {"object": {"a": 1}, "string": SQLISH, "int_2_64": 2**64, "empty": [], "null": None,
              "1e400": Raw("1e400"), "deep": Raw("[" * 10_000 + "]" * 10_000)}

BODY_ENDPOINTS = {
    "/api/v1/admin/api-keys": (
        {"tenant_id": TENANT, "permissions": "read"},
        {"tenant_id": BAD_UUIDS, "store_ids": BAD_UUID_LISTS, "agent_id": BAD_UUIDS,
         "permissions": {**BAD_TEXTS, "sql": SQLISH, "admin_suffix": "admin "},
         "rate_limit": {**BAD_UINTS, "zero": 0}, "description": {k: v for k, v in BAD_TEXTS.items() if k != "empty"}}),
    "/api/v1/agents/keys": (
        {"tenantId": TENANT, "agentId": str(uuid.uuid4()), "keyId": 1, "publicKey": "0x" + "11" * 32},
        {"tenantId": BAD_UUIDS, "agentId": BAD_UUIDS, "keyId": {**BAD_UINTS, "u32_overflow": 2**32},
         "publicKey": {**BAD_HASHES, "base64_garbage": "!!!!"},
         "validFrom": {**BAD_TEXTS, "naive": "2025-01-01T00:00:00"},
         "validTo": {**BAD_TEXTS, "year_0": "0000-01-01T00:00:00Z"}}),
    "/api/v1/ves/events/ingest": (
        {"agentId": str(uuid.uuid4()), "events": [{}]},
        {"agentId": BAD_UUIDS, "events": BAD_EVENTS}),
    "/api/v1/events/ingest": (
        {"agent_id": str(uuid.uuid4()), "events": [{}]},
        {"agent_id": BAD_UUIDS, "events": BAD_EVENTS}),
    "/api/v1/schemas": (
        {"tenant_id": TENANT, "event_type": "order.updated", "schema": {"type": "object"}},
        {"tenant_id": BAD_UUIDS, "event_type": BAD_TEXTS,
         "schema": {"bad_type": {"type": 5}, "string": SQLISH, "int": 2**64, "unknown_type": {"type": "nonsense"},
                    "bad_pattern": {"type": "string", "pattern": "("}}}),
    "/api/v1/ves/commitments": (
        {"tenant_id": TENANT, "store_id": STORE},
        {"tenant_id": BAD_UUIDS, "store_id": BAD_UUIDS, "sequence_start": {**BAD_UINTS, "int_2_63": 2**63},
         "sequence_end": BAD_UINTS, "max_events": {**BAD_UINTS, "zero": 0, "huge": 10**9}}),
    "/api/v1/ves/proofs/verify": (
        {"leaf_hash": "0x" + "00" * 32, "merkle_root": "0x" + "00" * 32, "proof_path": [], "leaf_index": 0},
        {"leaf_hash": BAD_HASHES, "merkle_root": BAD_HASHES, "proof_path": BAD_HASH_LISTS,
         "leaf_index": {k: v for k, v in BAD_UINTS.items() if k != "minus_1"} | {"minus_1": -1},
         "leaf_count": {**BAD_UINTS, "zero": 0, "u32_overflow": 2**32}, "directions": BAD_BOOL_LISTS}),
    "/api/v1/ves/commitments/anchor": (
        {"tenant_id": TENANT, "store_id": STORE},
        {"tenant_id": BAD_UUIDS, "store_id": BAD_UUIDS, "sequence_start": BAD_UINTS, "sequence_end": BAD_UINTS,
         "max_events": {**BAD_UINTS, "zero": 0}}),
}

WHOLE_BODIES = {
    "invalid_utf8": (b'{"events": "\xff\xfe\xc3\x28"}', "application/json"),
    "overlong_utf8_nul": (b'{"a": "\xc0\x80"}', "application/json"),
    "cesu_surrogate": (b'{"a": "\xed\xa0\x80"}', "application/json"),
    "not_json": (b"hello world", "application/json"),
    "empty": (b"", "application/json"),
    "truncated": (b'{"events": [', "application/json"),
    "top_level_array": (b"[]", "application/json"),
    "top_level_string": (b'"x"', "application/json"),
    "top_level_null": (b"null", "application/json"),
    "top_level_2_64": (b"18446744073709551616", "application/json"),
    "nan": (b'{"a": NaN}', "application/json"),
    "infinity": (b'{"a": -Infinity}', "application/json"),
    "duplicate_keys": (b'{"tenant_id": "a", "tenant_id": "b"}', "application/json"),
    "deep_arrays": (b"[" * 10_000 + b"]" * 10_000, "application/json"),
    "deep_objects": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "application/json"),
    "deep_events": (b'{"events": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "application/json"),
    "depth_65": (b'{"events": [' + b'{"a":' * 64 + b"1" + b"}" * 64 + b"]}", "application/json"),
    "bom": (b'\xef\xbb\xbf{"a": 1}', "application/json"),
    "utf16": ('{"a": 1}'.encode("utf-16"), "application/json"),
    "text_plain": (b'{"a": 1}', "text/plain"),
    "form": (b"tenant_id=%27+OR+1%3D1+--&events=1", "application/x-www-form-urlencoded"),
    "multipart": (b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--\r\n",
                  "multipart/form-data; boundary=b"),
    "no_content_type": (b'{"a": 1}', None),
    "json_lookalike": (b'{"a": 1}', "application/jsonp"),
    "garbage_content_type": (b'{"a": 1}', "\x7f;;;=="),
}


def _body_cases() -> list[Case]:
    cases = []
    for path, (baseline, fields) in BODY_ENDPOINTS.items():
        name = path.removeprefix("/api/v1/").replace("/", "_")
        for body_name, (raw, content_type) in WHOLE_BODIES.items():
            cases.append(Case(f"{name}-body-{body_name}", "POST", path, raw, content_type))
        for field_name, values in fields.items():
            for value_name, value in values.items():
                body = dumps({**baseline, field_name: value})
                cases.append(Case(f"{name}-{field_name}-{value_name}", "POST", path, body))
        cases.append(Case(f"{name}-no_key", "POST", path, dumps(baseline), headers={}))
    return cases


PATH_SEGMENTS = {
    "traversal": "../../etc/passwd", "encoded_dots": "%2e%2e", "encoded_traversal": "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "long": "1" * 10_000, "unicode": "%C3%BC%F0%9F%98%80", "superscript_two": "%C2%B2", "arabic_digit": "%D9%A1",
    "encoded_nul": "%00", "invalid_utf8": "%FF%FE", "minus_1": "-1", "int_2_64": str(2**64), "nan": "NaN",
    "1e400": "1e400", "sql": "%27%20OR%201%3D1%20--", "space": "%20", "plus_1": "+1",
}
PATH_TEMPLATES = {
    "api_key": ("DELETE", "/api/v1/admin/api-keys/{}", ""),
    "agent_key_agent": ("DELETE", "/api/v1/agents/keys/{}/1", f"?tenant_id={TENANT}"),
    "agent_key_id": ("DELETE", "/api/v1/agents/keys/" + str(uuid.uuid4()) + "/{}", f"?tenant_id={TENANT}"),
    "ves_event": ("GET", "/api/v1/ves/events/{}", "?" + STREAM_QUERY),
    "ves_entity_type": ("GET", "/api/v1/ves/entities/{}/order-1", "?" + STREAM_QUERY),
    "entity_id": ("GET", "/api/v1/entities/order/{}", "?" + STREAM_QUERY),
    "schema_event_type": ("GET", "/api/v1/schemas/{}/versions/1", f"?tenant_id={TENANT}"),
    "schema_version": ("GET", "/api/v1/schemas/order/versions/{}", f"?tenant_id={TENANT}"),
    "commitment": ("GET", "/api/v1/ves/commitments/{}", ""),
    "proof": ("GET", "/api/v1/ves/proofs/{}", "?" + STREAM_QUERY),
    "anchor_verify": ("GET", "/api/v1/ves/anchor/{}/verify", ""),
}
# Values that are a legitimate entity type or id (the lookup then finds an empty history, a 200).
VALID_ENTITY_SEGMENTS = {"unicode", "arabic_digit", "superscript_two", "minus_1", "int_2_64", "nan", "1e400", "sql",
                         "space", "plus_1", "encoded_dots", "traversal", "encoded_traversal", "invalid_utf8"}


def _path_cases() -> list[Case]:
    cases = []
    for name, (method, template, query) in PATH_TEMPLATES.items():
        for segment_name, segment in PATH_SEGMENTS.items():
            if name in ("ves_entity_type", "entity_id", "schema_event_type") and segment_name in VALID_ENTITY_SEGMENTS:
                continue
            cases.append(Case(f"path-{name}-{segment_name}", method, template.format(segment) + query, None, None))
    return cases


QUERY_ENDPOINTS = {
    "ves_events": ("/api/v1/ves/events", STREAM_QUERY, ("limit", "from", "after", "wait")),
    "events": ("/api/v1/events", STREAM_QUERY, ("limit", "from", "after", "wait")),
    "ves_head": ("/api/v1/ves/head", STREAM_QUERY, ()),
    "head": ("/api/v1/head", STREAM_QUERY, ()),
    "ves_entity": ("/api/v1/ves/entities/order/order-1", STREAM_QUERY, ("limit", "from", "after")),
    "entity": ("/api/v1/entities/order/order-1", STREAM_QUERY, ("limit", "from")),
    "commitments": ("/api/v1/ves/commitments", STREAM_QUERY, ("limit", "after", "anchored")),
    "proof": ("/api/v1/ves/proofs/1", STREAM_QUERY, ("batch_id", "batchId")),
    "agent_keys": ("/api/v1/agents/keys", f"tenant_id={TENANT}", ("agent_id",)),
    "schemas": ("/api/v1/schemas", f"tenant_id={TENANT}", ("event_type",)),
    "api_keys": ("/api/v1/admin/api-keys", f"tenant_id={TENANT}", ()),
}
BAD_QUERY_VALUES = {
    "minus_1": "-1", "nan": "NaN", "inf": "inf", "1e400": "1e400", "int_2_64": str(2**64), "huge": "9" * 40,
    "float": "1.5", "hex": "0x10", "superscript_two": "%C2%B2", "fullwidth_digit": "%EF%BC%91",
    "sql": "%27%20OR%201%3D1%20--",
    "nul": "%00", "invalid_utf8": "%FF", "long": "7" * 10_000, "spaces": "%201%20", "minus_minus": "--1",
}
# `event_type` is a free-text filter: any text is a valid (empty) search except what PostgreSQL cannot hold.
# Numbers `float()` reads (Unicode digits included): a valid wait, and each would hold the request open.
VALID_WAITS = {"float", "spaces", "fullwidth_digit"}


def _query_cases() -> list[Case]:
    cases = []
    for name, (path, base, params) in QUERY_ENDPOINTS.items():
        for value_name, value in BAD_QUERY_VALUES.items():
            for param in ("tenant_id", "store_id") if "store_id" in base else ("tenant_id",):
                query = "&".join(p for p in base.split("&") if not p.startswith(param + "="))
                cases.append(Case(f"query-{name}-{param}-{value_name}", "GET", f"{path}?{query}&{param}={value}",
                                  None, None))
            for param in params:
                if value_name == "minus_1" and param == "after" and "commitments" not in name:
                    continue
                if param == "wait" and value_name in VALID_WAITS:
                    continue
                if param == "event_type" and value_name != "nul":
                    continue
                cases.append(Case(f"query-{name}-{param}-{value_name}", "GET", f"{path}?{base}&{param}={value}",
                                  None, None))
        cases.append(Case(f"query-{name}-repeated_tenant_first_bad", "GET",
                          f"{path}?tenant_id=nope&{base}", None, None))
        cases.append(Case(f"query-{name}-no_key", "GET", f"{path}?{base}", None, None, headers={}))
    cases.append(Case("query-ves_events-limit_over_max", "GET", f"/api/v1/ves/events?{STREAM_QUERY}&limit=1001",
                      None, None))
    cases.append(Case("query-ves_events-from_and_after", "GET", f"/api/v1/ves/events?{STREAM_QUERY}&from=1&after=1",
                      None, None))
    cases.append(Case("query-ves_events-repeated_limit_first_bad", "GET",
                      f"/api/v1/ves/events?{STREAM_QUERY}&limit=-1&limit=5", None, None))
    cases.append(Case("query-ves_events-wait_over_max", "GET", f"/api/v1/ves/events?{STREAM_QUERY}&wait=3601",
                      None, None))
    cases.append(Case("query-ves_events-missing_store", "GET", f"/api/v1/ves/events?tenant_id={TENANT}", None, None))
    cases.append(Case("query-ves_events-other_tenant_reader", "GET", f"/api/v1/ves/events?{STREAM_QUERY}", None, None,
                      headers={"Authorization": "ApiKey not-a-real-key-" + OTHER}))
    return cases


MALFORMED_AUTHORIZATION = {
    "scheme_only": "ApiKey", "scheme_space": "ApiKey ", "bearer_only": "Bearer", "basic": "Basic dXNlcjpwYXNz",
    "unknown_key": "ApiKey ssk_" + "A" * 43, "long_key": "ApiKey " + "k" * 10_000, "sql": "ApiKey " + SQLISH,
    "latin1": "ApiKey \xe9\xe9\xe9", "digest": 'Digest username="admin"',
    "bootstrap_prefix": "ApiKey " + BOOTSTRAP_KEY[:-1], "bootstrap_suffix": "ApiKey " + BOOTSTRAP_KEY + "0",
    "bootstrap_two_keys": f"ApiKey {BOOTSTRAP_KEY} {BOOTSTRAP_KEY}", "tab_separated": "ApiKey\tnope",
    "comma_list": f"ApiKey nope, ApiKey {BOOTSTRAP_KEY}",
}


def _auth_cases() -> list[Case]:
    return [Case(f"auth-{name}", "GET", f"/api/v1/ves/head?{STREAM_QUERY}", None, None,
                 headers={"Authorization": value}) for name, value in MALFORMED_AUTHORIZATION.items()]


def _method_cases() -> list[Case]:
    return [Case(f"method-{method.lower()}-{name}", method, path, None, None)
            for name, path in (("events", "/api/v1/ves/events"), ("ingest", "/api/v1/ves/events/ingest"),
                               ("health", "/health"), ("openapi", "/api/openapi.json"))
            for method in ("PUT", "PATCH", "TRACE")] + [
        Case("method-get-ingest", "GET", "/api/v1/ves/events/ingest", None, None),
        Case("path-unknown", "GET", "/api/v1/../../etc/passwd", None, None),
        Case("path-unknown-long", "GET", "/api/v1/" + "a" * 10_000, None, None),
    ]


CASES = _body_cases() + _path_cases() + _query_cases() + _auth_cases() + _method_cases()
assert len({case.id for case in CASES}) == len(CASES), "case ids must be unique"


def documented_statuses(app, method: str, url: str) -> set[str] | None:
    """The statuses the OpenAPI document lists for the operation `url` routes to, or None when it routes nowhere."""
    path = url.split("?", 1)[0]
    try:
        rule, _ = app.url_map.bind("localhost").match(path, method=method, return_rule=True)
    except HTTPException:
        return None
    return set(DOCUMENT["paths"][openapi_path(rule.rule)][method.lower()]["responses"])


def assert_clean_error(response) -> None:
    text = response.get_data(as_text=True)
    for marker in TRACE_MARKERS:
        assert marker not in text
    assert response.mimetype == "application/json", text[:300]
    body = response.json
    assert set(body) == ERROR_KEYS, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["code"], str) and re.fullmatch(r"[A-Z0-9_]+|[a-z0-9_]+", body["code"])
    assert body["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_request_gets_a_clean_4xx(app, client, case: Case):
    headers = dict(case.headers)
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    response = client.open(case.url, method=case.method, data=case.body, headers=headers)
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data()[:500])
    assert_clean_error(response)
    documented = documented_statuses(app, case.method, case.url)
    if documented is not None:
        assert str(response.status_code) in documented, (response.status_code, sorted(documented))


def test_an_unrecognised_request_id_is_replaced_not_echoed(client):
    response = client.get("/api/v1/ves/head", headers={"X-Request-ID": "<script>../../" + "x" * 200})
    assert response.status_code == 401
    assert_clean_error(response)
    assert response.json["request_id"] != "<script>../../" + "x" * 200
    uuid.UUID(response.json["request_id"])


def test_sql_in_free_text_is_stored_verbatim(client):
    description = SQLISH + "; DROP TABLE api_keys; --"
    created = client.post("/api/v1/admin/api-keys", headers=ADMIN,
                          json={"tenant_id": str(uuid.uuid4()), "permissions": "read", "description": description})
    assert created.status_code == 201 and created.json["description"] == description
    listed = client.get(f"/api/v1/admin/api-keys?tenant_id={created.json['tenant_id']}", headers=ADMIN).json
    assert [key["description"] for key in listed["api_keys"]] == [description]


def test_over_limit_bodies_and_batches_are_413(make_app):
    client = make_app(max_body_size_bytes=2048, max_events_per_batch=2).test_client()
    big = client.post("/api/v1/ves/events/ingest", headers=ADMIN, data=b'{"events": "' + b"x" * 4096 + b'"}',
                      content_type="application/json")
    assert big.status_code == 413
    assert_clean_error(big)
    many = client.post("/api/v1/ves/events/ingest", headers=ADMIN, json={"events": [{}, {}, {}]})
    assert many.status_code == 413 and many.json["code"] == "TOO_MANY_EVENTS"
    assert_clean_error(many)


# --- Bad events inside a well-formed batch: a 200 whose outcome rejects exactly that event. ---------------------

ENVELOPE_FIELDS = {
    "ves_version": {**BAD_UINTS, "zero": 0, "three": 3}, "event_id": BAD_UUIDS, "tenant_id": BAD_UUIDS,
    "store_id": BAD_UUIDS, "source_agent_id": BAD_UUIDS, "agent_key_id": {**BAD_UINTS, "u32_overflow": 2**32},
    "entity_type": BAD_TEXTS, "entity_id": BAD_TEXTS, "event_type": BAD_TEXTS,
    "created_at": {**BAD_TEXTS, "month_13": "2025-13-01T00:00:00Z", "naive": "2025-01-01T00:00:00"},
    "payload_kind": {**BAD_UINTS, "two": 2}, "payload_plain_hash": BAD_HASHES, "payload_cipher_hash": BAD_HASHES,
    "agent_signature": {**BAD_HASHES, "zero_signature": "0x" + "00" * 64},
    "payload": {"nul_value": {"s": "\x00"}, "nul_key": {"\x00": 1}, "surrogate": {"s": "\ud800"},
                "1e400": {"n": Raw("1e400")}, "deep_60": Raw('{"a":' * 60 + "1" + "}" * 60),
                "int_2_64": {"n": 2**64}},
    "command_id": BAD_UUIDS, "base_version": {**BAD_UINTS, "int_2_64": 2**64},
    "payload_encrypted": {"string": SQLISH, "empty": {}, "nested": {"nonce_b64u": {"$ne": 1}}},
}
WHOLE_EVENTS = {"int": 1, "string": SQLISH, "null": None, "list": [], "surrogate": "\ud800"}
UNSIGNED_FIELDS = {name: ENVELOPE_FIELDS[name] for name in (
    "event_id", "tenant_id", "store_id", "entity_type", "entity_id", "event_type", "created_at", "command_id",
    "base_version", "payload")}


def _event_cases(fields: dict) -> list[tuple[str, str, object]]:
    cases = [(f"{name}-{value_name}", name, value)
             for name, values in fields.items() for value_name, value in values.items()
             if not (name == "payload" and value_name == "deep_60")]
    return cases + [(f"whole_event-{name}", None, value) for name, value in WHOLE_EVENTS.items()]


SIGNED_EVENT_CASES = _event_cases(ENVELOPE_FIELDS)
UNSIGNED_EVENT_CASES = _event_cases(UNSIGNED_FIELDS)


@pytest.fixture(scope="module")
def stream(app, engine):
    return Stream(app.test_client(), engine)


def _assert_event_rejected(stream, path: str, batch: dict, accepted_key: str, rejected_key: str) -> dict:
    response = stream.client.post(path, data=dumps(batch), headers=stream.headers, content_type="application/json")
    text = response.get_data(as_text=True)
    assert not any(marker in text for marker in TRACE_MARKERS)
    assert response.status_code == 200, text[:500]
    body = response.json
    assert (body[accepted_key], body[rejected_key]) == (0, 1), body
    assert body["rejections"][0]["index"] == 0 and body["rejections"][0]["code"]
    return body


@pytest.mark.parametrize("name,field_name,value", SIGNED_EVENT_CASES, ids=[c[0] for c in SIGNED_EVENT_CASES])
def test_hostile_signed_event_is_rejected_alone(stream, name, field_name, value):
    event = stream.event("hostile") if field_name is not None else value
    if field_name is not None:
        event[field_name] = value
    _assert_event_rejected(stream, "/api/v1/ves/events/ingest", {"agentId": str(stream.agent_id), "events": [event]},
                           "eventsAccepted", "eventsRejected")


@pytest.mark.parametrize("name,field_name,value", UNSIGNED_EVENT_CASES, ids=[c[0] for c in UNSIGNED_EVENT_CASES])
def test_hostile_unsigned_event_is_rejected_alone(stream, name, field_name, value):
    event = {"event_id": str(uuid.uuid4()), "tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id),
             "entity_type": "order", "entity_id": "hostile", "event_type": "order.updated", "payload": {"n": 1}}
    if field_name is None:
        event = value
    else:
        event[field_name] = value
    _assert_event_rejected(stream, "/api/v1/events/ingest", {"agent_id": str(stream.agent_id), "events": [event]},
                           "events_accepted", "events_rejected")


@pytest.mark.parametrize("payload", [{"s": SQLISH}, {"n": 2**53 - 1}, {"s": "ü😀\u202e", "e": "\u2028"},
                                     {"a": [[[[[[[[[[1]]]]]]]]]]}],
                         ids=["sql", "max_safe_int", "unicode", "nested_10"])
def test_odd_but_valid_signed_payloads_round_trip_exactly(stream, payload):
    event = stream.event("odd", payload)
    result = stream.ingest([event])
    assert result["eventsAccepted"] == 1
    served = stream.client.get(f"/api/v1/ves/events/{event['event_id']}?{stream.query}", headers=stream.headers)
    assert served.status_code == 200 and served.json["payload"] == payload


# --- The same through a real gunicorn: raw bytes the test client cannot send. ------------------------------------

def _exchange(port: int, raw: bytes, read_timeout: float = 10.0) -> tuple[bytes, float]:
    """Send `raw` on a fresh connection, half-close if possible, and read until the server closes or stops."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                break
    return b"".join(chunks), time.monotonic() - started


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


def _status(data: bytes) -> int:
    assert data.startswith(b"HTTP/1."), data[:200]
    return int(data.split(b" ", 2)[1])


def _json_error_body(data: bytes) -> dict:
    body = json.loads(data.partition(b"\r\n\r\n")[2])
    assert set(body) == ERROR_KEYS, body
    return body


LIMIT = 4096
KEY_HEADER = f"Authorization: ApiKey {BOOTSTRAP_KEY}\r\n".encode()
INGEST_HEAD = (b"POST /api/v1/ves/events/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               + KEY_HEADER)
CLOSE = b"Connection: close\r\n"
_CHUNK = b"x" * 1024


def _chunked(chunks: int) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(_CHUNK), _CHUNK) for _ in range(chunks)) + b"0\r\n\r\n"


def _is_4xx(data: bytes) -> bool:
    """For requests gunicorn refuses itself, before the app: a 4xx in the app's JSON error shape (gunicorn's HTML
    page is replaced, app.serving.json_gunicorn_errors), never a traceback."""
    if not 400 <= _status(data) < 500 or any(marker.encode() in data for marker in TRACE_MARKERS):
        return False
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        return b"application/json" in head.lower() and set(json.loads(body)) == ERROR_KEYS
    except ValueError:
        return False


def _is_clean_json_4xx(expected: int | None = None):
    def check(data: bytes) -> bool:
        status = _status(data)
        try:
            body = json.loads(data.partition(b"\r\n\r\n")[2])
        except ValueError:
            return False
        return (status == expected if expected else 400 <= status < 500) and set(body) == ERROR_KEYS
    return check


RAW_CASES = {
    "invalid_utf8_request_line": (b"GET /api/v1/ves/events/\xff\xfe?tenant_id=\xc3\x28 HTTP/1.1\r\nHost: x\r\n"
                                  + KEY_HEADER + CLOSE + b"\r\n", _is_4xx),
    "content_length_1e9_without_body": (INGEST_HEAD + b"Content-Length: 1000000000\r\n\r\n" + b'{"events": [',
                                        _is_clean_json_4xx(413)),
    "chunked_over_limit": (INGEST_HEAD + b"Transfer-Encoding: chunked\r\n" + CLOSE + b"\r\n" + _chunked(8),
                           _is_clean_json_4xx(413)),
    "chunked_json_over_limit": (INGEST_HEAD + b"Transfer-Encoding: chunked\r\n" + CLOSE + b"\r\n"
                                + b"%x\r\n%s\r\n0\r\n\r\n" % (LIMIT + 100, b'{"events": []}' + b" " * (LIMIT + 86)),
                                _is_clean_json_4xx(413)),
    "header_flood": (b"GET /health HTTP/1.1\r\nHost: x\r\n"
                     + b"".join(b"X-Flood-%d: %s\r\n" % (i, b"y" * 100) for i in range(200)) + CLOSE + b"\r\n",
                     _is_4xx),
    "huge_header": (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"z" * 20_000 + b"\r\n" + CLOSE + b"\r\n",
                    _is_4xx),
    "huge_request_line": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n" + CLOSE + b"\r\n", _is_4xx),
    "negative_content_length": (INGEST_HEAD + b"Content-Length: -1\r\n" + CLOSE + b"\r\n{}", _is_4xx),
    "invalid_utf8_body": (INGEST_HEAD + b"Content-Length: 12\r\n" + CLOSE + b"\r\n" + b'{"events":\xff}',
                          _is_clean_json_4xx(400)),
    "garbage": (b"GARBAGE\r\n\r\n", lambda data: not data or _is_4xx(data)),
    "chunked_invalid_chunk_size": (INGEST_HEAD + b"Transfer-Encoding: chunked\r\n" + CLOSE + b"\r\n"
                                   + b"ZZ\r\n{}\r\n0\r\n\r\n", _is_clean_json_4xx(400)),
    "chunk_missing_terminator": (INGEST_HEAD + b"Transfer-Encoding: chunked\r\n" + CLOSE + b"\r\n"
                                 + b"2\r\n{}XX0\r\n\r\n", _is_clean_json_4xx(400)),
}


@pytest.mark.slow
def test_raw_hostile_requests_through_gunicorn(database_url):
    """Each raw request gets its 4xx (413 for oversized bodies, promptly, without the body being sent), the server
    keeps answering, and its log holds no traceback."""
    env = {"MAX_BODY_SIZE_BYTES": str(LIMIT), "BOOTSTRAP_ADMIN_API_KEY": BOOTSTRAP_KEY}
    wrong = {}
    with start_gunicorn(database_url, env=env, workers=2) as server:
        for name, (raw, check) in RAW_CASES.items():
            data, elapsed = _exchange(server.port, raw)
            if not check(data) or elapsed > 5:
                wrong[name] = (round(elapsed, 2), data[:300])
        data, _ = _exchange(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n" + CLOSE + b"\r\n")
        log = server.log_text()
    assert not wrong, "\n".join(f"{name}: {elapsed}s {data!r}" for name, (elapsed, data) in wrong.items())
    assert _status(data) == 200, "the server must still answer after the corpus"
    assert "Traceback" not in log, log[-4000:]
