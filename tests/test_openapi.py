"""The served OpenAPI document: valid OpenAPI 3.1, exactly the app's routes, the real public set, real bodies."""

from __future__ import annotations

import re
import uuid

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_openapi

from app import __version__
from tests.controls import BOOTSTRAP_KEY
from tests.controls import Stream
from tests.controls import api_key
from tests.controls import auth

IGNORED_METHODS = {"HEAD", "OPTIONS"}
_FLASK_PARAMETER = re.compile(r"<(?:[a-z_]+:)?([A-Za-z_][A-Za-z0-9_]*)>")
_PATH_SAMPLES = {"sequence_number": "1", "version": "1", "key_id": "1", "entity_type": "order",
                 "entity_id": "order-1"}


def openapi_path(flask_rule: str) -> str:
    return _FLASK_PARAMETER.sub(r"{\1}", flask_rule)


def served_operations(app) -> dict[tuple[str, str], object]:
    """`(openapi path, lower-case method) -> Rule` for every route the app serves."""
    operations = {}
    for rule in app.url_map.iter_rules():
        for method in rule.methods - IGNORED_METHODS:
            operations[(openapi_path(rule.rule), method.lower())] = rule
    return operations


def documented_operations(document) -> dict[tuple[str, str], dict]:
    return {(path, method): operation for path, item in document["paths"].items()
            for method, operation in item.items()}


def sample_url(path: str) -> str:
    return re.sub(r"{(\w+)}", lambda m: _PATH_SAMPLES.get(m.group(1), str(uuid.uuid4())), path)


@pytest.fixture(scope="module")
def document(app):
    response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.json


def response_validator(document, path: str, method: str, status: int) -> jsonschema.Draft202012Validator:
    """A validator for the documented JSON body of `status`, resolving `#/components/...` against the document."""
    escaped = path.replace("~", "~0").replace("/", "~1")
    response = document["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        pointer = response["$ref"] + "/content/application~1json/schema"
    else:
        pointer = f"#/paths/{escaped}/{method}/responses/{status}/content/application~1json/schema"
    return jsonschema.Draft202012Validator({**document, "$ref": pointer})


def assert_documented(document, path: str, method: str, response) -> None:
    responses = document["paths"][path][method]["responses"]
    assert str(response.status_code) in responses, (path, method, response.status_code, response.get_data()[:300])
    if response.status_code != 204 and response.mimetype == "application/json":
        response_validator(document, path, method, response.status_code).validate(response.json)


def test_the_document_is_valid_openapi_3_1_and_carries_the_app_version(document):
    validate_openapi(document)
    assert document["openapi"].startswith("3.1") and document["info"]["version"] == __version__


def test_every_served_route_is_documented_and_every_documented_route_is_served(app, document):
    served = set(served_operations(app))
    documented = set(documented_operations(document))
    assert served - documented == set(), "routes missing from the document"
    assert documented - served == set(), "documented routes the app does not serve"


def test_documented_path_parameters_are_the_rules_parameters(app, document):
    for (path, method), rule in served_operations(app).items():
        operation = document["paths"][path][method]
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert declared == set(rule.arguments), (path, method)


def test_error_responses_name_the_error_body_and_security_schemes_model_both_header_forms(document):
    error = document["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error", "code", "request_id"} and error["additionalProperties"] is False
    for status in (400, 401, 403, 404, 409, 413, 415, 429, 503):
        assert document["components"]["responses"][f"Error{status}"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"}
    schemes = document["components"]["securitySchemes"]
    assert {(s["type"], s.get("in"), s.get("name"), s.get("scheme")) for s in schemes.values()} == {
        ("apiKey", "header", "Authorization", None), ("http", None, None, "bearer")}
    assert document["security"] == [{name: []} for name in schemes]


def test_every_authenticated_operation_documents_401_and_every_body_documents_400_413_415(document):
    for (path, method), operation in documented_operations(document).items():
        if operation.get("security") != []:
            assert "401" in operation["responses"], (path, method)
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= set(operation["responses"]), (path, method)


def test_the_public_operations_are_exactly_those_that_answer_without_a_key(client, document):
    documented_public = {key for key, op in documented_operations(document).items() if op.get("security") == []}
    answering = set()
    for path, method in documented_operations(document):
        response = client.open(sample_url(path), method=method.upper())
        assert response.status_code < 500, (path, method, response.json)
        if response.status_code != 401:
            answering.add((path, method))
    assert answering == documented_public
    # The console's static files hold no data (the page asks for a key and calls the API with it).
    console = {("/console", "get"), ("/console/", "get"), ("/console/{name}.js", "get"), ("/console/{name}.css", "get")}
    assert documented_public == {("/health", "get"), ("/ready", "get"), ("/api/openapi.json", "get"),
                                 ("/api/v1/ves/sequencer", "get"), ("/metrics", "get"),
                                 ("/api/v1/agents/register", "post")} | console


def test_metrics_needs_an_admin_key_when_configured_as_documented(make_app, engine, document):
    client = make_app(metrics_require_auth=True).test_client()
    assert_documented(document, "/metrics", "get", missing := client.get("/metrics"))
    assert missing.status_code == 401
    reader = api_key(engine, uuid.uuid4(), "read")
    assert_documented(document, "/metrics", "get", refused := client.get("/metrics", headers=auth(reader)))
    assert refused.status_code == 403
    assert client.get("/metrics", headers=auth(BOOTSTRAP_KEY)).status_code == 200


def test_real_responses_of_every_operation_match_the_documented_schemas(client, engine, document):
    """Walk every operation once with valid input; each status and body must be the documented one."""
    stream = Stream(client, engine)
    admin = auth(BOOTSTRAP_KEY)
    headers = stream.headers
    seen = set()

    def call(method: str, path: str, url: str, expect: int, **kwargs):
        response = client.open(url, method=method.upper(), **kwargs)
        assert response.status_code == expect, (method, url, response.get_data()[:400])
        assert_documented(document, path, method, response)
        seen.add((path, method))
        return response.json

    q = stream.query
    for path in ("/health", "/ready", "/api/v1/ves/sequencer", "/api/openapi.json"):
        call("get", path, path, 200)
    call("get", "/console", "/console", 308)
    call("get", "/console/", "/console/", 200)
    call("get", "/console/{name}.js", "/console/console.js", 200)
    call("get", "/console/{name}.css", "/console/console.css", 200)
    call("get", "/api/v1/whoami", "/api/v1/whoami", 200, headers=headers)
    call("get", "/metrics", "/metrics", 200)

    created = call("post", "/api/v1/admin/api-keys", "/api/v1/admin/api-keys", 201, headers=admin,
                   json={"tenant_id": str(stream.tenant_id), "permissions": "read", "description": "docs"})
    call("get", "/api/v1/admin/api-keys", f"/api/v1/admin/api-keys?tenant_id={stream.tenant_id}", 200, headers=admin)
    call("delete", "/api/v1/admin/api-keys/{key_id}", f"/api/v1/admin/api-keys/{created['key_id']}", 204,
         headers=admin)

    call("get", "/api/v1/agents/keys", f"/api/v1/agents/keys?tenant_id={stream.tenant_id}", 200, headers=headers)
    call("post", "/api/v1/agents/keys", "/api/v1/agents/keys", 200, headers=headers, json={
        "tenantId": str(stream.tenant_id), "agentId": str(stream.agent_id), "keyId": 1,
        "publicKey": stream.signer.public_key_hex})

    call("post", "/api/v1/schemas", "/api/v1/schemas", 200, headers=headers,
         json={"tenant_id": str(stream.tenant_id), "event_type": "order.updated", "schema": {"type": "object"}})
    call("get", "/api/v1/schemas", f"/api/v1/schemas?tenant_id={stream.tenant_id}", 200, headers=headers)
    call("get", "/api/v1/schemas/{event_type}/versions/{version}",
         f"/api/v1/schemas/order.updated/versions/1?tenant_id={stream.tenant_id}", 200, headers=headers)

    signed = [stream.event("order-1"), stream.event("order-1", command_id=uuid.uuid4(), base_version=1)]
    call("post", "/api/v1/ves/events/ingest", "/api/v1/ves/events/ingest", 200, headers=headers,
         json={"agentId": str(stream.agent_id), "events": signed})
    unsigned = {"event_id": str(uuid.uuid4()), "tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id),
                "entity_type": "order", "entity_id": "order-2", "event_type": "order.updated", "payload": {"n": 2}}
    call("post", "/api/v1/events/ingest", "/api/v1/events/ingest", 200, headers=headers,
         json={"agent_id": str(stream.agent_id), "events": [unsigned, {"event_id": "not-a-uuid"}]})

    for path in ("/api/v1/ves/events", "/api/v1/events", "/api/v1/ves/head", "/api/v1/head"):
        call("get", path, f"{path}?{q}", 200, headers=headers)
    call("get", "/api/v1/ves/entities/{entity_type}/{entity_id}", f"/api/v1/ves/entities/order/order-1?{q}", 200,
         headers=headers)
    call("get", "/api/v1/entities/{entity_type}/{entity_id}", f"/api/v1/entities/order/order-2?{q}", 200,
         headers=headers)
    call("get", "/api/v1/ves/events/{event_id}", f"/api/v1/ves/events/{signed[0]['event_id']}?{q}", 200,
         headers=headers)

    commitment = call("post", "/api/v1/ves/commitments", "/api/v1/ves/commitments", 200, headers=headers,
                      json={"tenantId": str(stream.tenant_id), "storeId": str(stream.store_id)})
    call("get", "/api/v1/ves/commitments", f"/api/v1/ves/commitments?{q}", 200, headers=headers)
    call("get", "/api/v1/streams", f"/api/v1/streams?tenant_id={stream.tenant_id}", 200, headers=headers)
    call("get", "/api/v1/ves/commitments/{batch_id}", f"/api/v1/ves/commitments/{commitment['batch_id']}", 200,
         headers=headers)
    proof = call("get", "/api/v1/ves/proofs/{sequence_number}", f"/api/v1/ves/proofs/2?{q}", 200, headers=headers)
    verdict = call("post", "/api/v1/ves/proofs/verify", "/api/v1/ves/proofs/verify", 200, headers=headers, json=proof)
    assert verdict["valid"] is True

    checkpoint = client.get(f"/api/v1/ves/log/checkpoint?{q}", headers=headers)
    assert checkpoint.mimetype == "text/plain" and checkpoint.headers["X-Log-Vkey"]
    call("get", "/api/v1/ves/log/checkpoint", f"/api/v1/ves/log/checkpoint?{q}", 200, headers=headers)
    call("get", "/api/v1/ves/log/inclusion/{sequence_number}", f"/api/v1/ves/log/inclusion/2?{q}", 200,
         headers=headers)
    call("get", "/api/v1/ves/log/consistency", f"/api/v1/ves/log/consistency?{q}&first=1&second=3", 200,
         headers=headers)

    call("get", "/api/v1/anchor/status", "/api/v1/anchor/status", 200, headers=headers)
    call("post", "/api/v1/ves/commitments/anchor", "/api/v1/ves/commitments/anchor", 503, headers=admin,
         json={"tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id)})
    call("get", "/api/v1/ves/anchor/{batch_id}/verify", f"/api/v1/ves/anchor/{commitment['batch_id']}/verify", 503,
         headers=headers)

    _walk_legacy_routes(call, client, engine, stream, commitment)

    call("delete", "/api/v1/agents/keys/{agent_id}/{key_id}",
         f"/api/v1/agents/keys/{stream.agent_id}/1?tenant_id={stream.tenant_id}", 200, headers=headers)
    assert seen == set(documented_operations(document)), "operations the walk did not exercise"


def test_the_document_needs_no_key_and_is_not_rate_limited(make_app):
    client = make_app(rate_limit_per_minute=1).test_client()
    statuses = {client.get("/api/openapi.json").status_code for _ in range(3)}
    assert statuses == {200}


def _walk_legacy_routes(call, client, engine, stream, commitment) -> None:
    """The original sequencer's routes (issue 18), each once with valid input."""
    admin, headers, q, tenant = auth(BOOTSTRAP_KEY), stream.headers, stream.query, stream.tenant_id
    stream.ingest([stream.event("order-9")])
    legacy = call("post", "/api/v1/commitments", "/api/v1/commitments", 200, headers=headers,
                  json={"tenant_id": str(tenant), "store_id": str(stream.store_id)})
    call("get", "/api/v1/commitments", f"/api/v1/commitments?{q}", 200, headers=headers)
    call("get", "/api/v1/commitments/{batch_id}", f"/api/v1/commitments/{legacy['batch_id']}", 200, headers=headers)
    proof = call("get", "/api/v1/proofs/{sequence_number}", f"/api/v1/proofs/1?{q}", 200, headers=headers)
    call("post", "/api/v1/proofs/verify", "/api/v1/proofs/verify", 200, headers=headers, json=proof)
    for path in ("/api/v1/ves/anchor", "/api/v1/anchor"):
        call("post", path, path, 503, headers=admin, json={"batch_id": commitment["batch_id"]})
    call("get", "/api/v1/anchor/{batch_id}/verify", f"/api/v1/anchor/{commitment['batch_id']}/verify", 503,
         headers=headers)
    for prefix in ("/v1", "/api/v1"):
        call("get", f"{prefix}/commitments/pending", f"{prefix}/commitments/pending", 200, headers=admin)
    tx = {"chain_tx_hash": "ab" * 32, "chain_id": 1}
    call("post", "/v1/commitments/{batch_id}/anchored", f"/v1/commitments/{legacy['batch_id']}/anchored", 200,
         headers=admin, json=tx)
    call("post", "/api/v1/commitments/{batch_id}/anchored", f"/api/v1/commitments/{legacy['batch_id']}/anchored",
         200, headers=admin, json=tx)

    agent = uuid.uuid4()
    agent_key = api_key(engine, tenant, "read_write", agent_id=agent)
    call("post", "/api/v1/agents/register", "/api/v1/agents/register", 403, json={"name": "walk"})
    call("get", "/api/v1/agents/{agent_id}", f"/api/v1/agents/{agent}", 200, headers=auth(agent_key))
    minted = call("post", "/api/v1/agents/{agent_id}/api-keys", f"/api/v1/agents/{agent}/api-keys", 200,
                  headers=auth(agent_key), json={"readOnly": True})
    call("get", "/api/v1/agents/{agent_id}/api-keys", f"/api/v1/agents/{agent}/api-keys", 200,
         headers=auth(agent_key))  # the agent's own key or an admin (docs/SECURITY.md)
    call("delete", "/api/v1/agents/{agent_id}/api-keys/{key_hash_prefix}",
         f"/api/v1/agents/{agent}/api-keys/{minted['keyHashPrefix']}", 200, headers=auth(agent_key))

    schema_id = client.get(f"/api/v1/schemas?tenant_id={tenant}", headers=headers).json["schemas"][0]
    schema_id = schema_id.get("id") or client.get(
        f"/api/v1/schemas/event-type/order.updated?tenant_id={tenant}", headers=headers).json["schemas"][0]["id"]
    call("get", "/api/v1/schemas/{schema_id}", f"/api/v1/schemas/{schema_id}", 200, headers=headers)
    call("put", "/api/v1/schemas/{schema_id}/status", f"/api/v1/schemas/{schema_id}/status", 200, headers=headers,
         json={"status": "active"})
    call("get", "/api/v1/schemas/event-type/{event_type}",
         f"/api/v1/schemas/event-type/order.updated?tenant_id={tenant}&version=1", 200, headers=headers)
    call("get", "/api/v1/schemas/event-type/{event_type}/latest",
         f"/api/v1/schemas/event-type/order.updated/latest?tenant_id={tenant}", 200, headers=headers)
    call("post", "/api/v1/schemas/validate", "/api/v1/schemas/validate", 200, headers=headers,
         json={"tenantId": str(tenant), "eventType": "order.updated", "payload": {"n": 1}})
    call("delete", "/api/v1/schemas/{schema_id}", f"/api/v1/schemas/{schema_id}", 200, headers=admin)

    call("get", "/health/detailed", "/health/detailed", 200, headers=admin)
    for path in ("overview", "tenants", "stores", "agents"):
        call("get", f"/api/v1/admin/{path}", f"/api/v1/admin/{path}", 200, headers=admin)
