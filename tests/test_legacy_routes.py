"""The original sequencer's routes added by issue 18 (app/api/legacy_*.py): status, shape (the original's field names,
plain hex), authorisation (other tenant 404/403, store-scoped keys, permissions) and bad input (4xx with a `code`).
Real PostgreSQL, Flask's test client. Anchoring by batch is tested on the in-process EVM in
tests/anchoring/test_legacy_anchoring.py."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid

import pytest
import sqlalchemy as sa

from app.db.tables import agent_registrations
from tests.controls import BOOTSTRAP_KEY
from tests.controls import Stream
from tests.controls import api_key
from tests.controls import auth

ADMIN = auth(BOOTSTRAP_KEY)
PLAIN_HASH = re.compile(r"^[0-9a-f]{64}$")


def schema_body(tenant_id, event_type="order.created", schema=None):
    return {"tenant_id": str(tenant_id), "event_type": event_type,
            "schema": schema or {"type": "object", "required": ["qty"],
                                 "properties": {"qty": {"type": "integer", "minimum": 0}}}}


@pytest.fixture
def stream(client, engine):
    return Stream(client, engine)


def register_schema(client, stream, event_type="order.created", schema=None) -> dict:
    response = client.post("/api/v1/schemas", json=schema_body(stream.tenant_id, event_type, schema),
                           headers=stream.headers)
    assert response.status_code in (200, 201), response.json
    listed = client.get(f"/api/v1/schemas/event-type/{event_type}?tenant_id={stream.tenant_id}",
                        headers=stream.headers).json["schemas"]
    return listed[-1]


# --- Schemas -------------------------------------------------------------------------------------------------------


def test_schema_by_id_has_the_original_schema_response_fields(client, stream):
    schema = register_schema(client, stream)
    response = client.get(f"/api/v1/schemas/{schema['id']}", headers=stream.headers)
    assert response.status_code == 200
    body = response.json
    assert set(body) == {"id", "tenantId", "eventType", "version", "schemaJson", "status", "compatibility",
                         "description", "createdAt", "updatedAt", "createdBy"}
    assert body["status"] == "active" and body["compatibility"] == "backward" and body["version"] == 1
    assert body["tenantId"] == str(stream.tenant_id) and body["createdAt"].endswith("+00:00")
    uuid.UUID(body["id"])


def test_schema_routes_hide_other_tenants_and_reject_bad_ids(client, engine, stream):
    schema = register_schema(client, stream)
    other = api_key(engine, uuid.uuid4(), "admin")
    for method, url in (("get", f"/api/v1/schemas/{schema['id']}"), ("delete", f"/api/v1/schemas/{schema['id']}")):
        response = client.open(url, method=method.upper(), headers=auth(other))
        assert response.status_code == 404 and response.json["code"] == "SCHEMA_NOT_FOUND"
    response = client.put(f"/api/v1/schemas/{schema['id']}/status", json={"status": "deprecated"}, headers=auth(other))
    assert response.status_code == 404
    assert client.get("/api/v1/schemas/not-a-uuid", headers=stream.headers).json["code"] == "INVALID_REQUEST"
    assert client.get(f"/api/v1/schemas/{uuid.uuid4()}", headers=stream.headers).status_code == 404


def test_status_change_needs_a_tenant_wide_read_write_key_and_a_known_status(client, engine, stream):
    schema = register_schema(client, stream)
    url = f"/api/v1/schemas/{schema['id']}/status"
    reader = api_key(engine, stream.tenant_id, "read")
    assert client.put(url, json={"status": "deprecated"}, headers=auth(reader)).status_code == 403
    scoped = api_key(engine, stream.tenant_id, "read_write", store_ids=[stream.store_id])
    refused = client.put(url, json={"status": "deprecated"}, headers=auth(scoped))
    assert refused.status_code == 403 and refused.json["code"] == "TENANT_SCOPE_REQUIRED"
    bad = client.put(url, json={"status": "retired"}, headers=stream.headers)
    assert bad.status_code == 400 and bad.json["code"] == "INVALID_REQUEST"
    done = client.put(url, json={"status": "deprecated"}, headers=stream.headers)
    assert done.status_code == 200
    assert done.json == {"success": True, "schema_id": schema["id"], "new_status": "deprecated"}
    assert client.get(f"/api/v1/schemas/{schema['id']}", headers=stream.headers).json["status"] == "deprecated"


def test_latest_is_the_highest_active_version_and_404_without_one(client, stream):
    first = register_schema(client, stream, "order.paid")
    second = register_schema(client, stream, "order.paid", {"type": "object"})
    url = f"/api/v1/schemas/event-type/order.paid/latest?tenant_id={stream.tenant_id}"
    assert client.get(url, headers=stream.headers).json["id"] == second["id"]
    client.put(f"/api/v1/schemas/{second['id']}/status", json={"status": "archived"}, headers=stream.headers)
    assert client.get(url, headers=stream.headers).json["id"] == first["id"]
    missing = client.get(f"/api/v1/schemas/event-type/nothing/latest?tenant_id={stream.tenant_id}",
                         headers=stream.headers)
    assert missing.status_code == 404 and missing.json["code"] == "SCHEMA_NOT_FOUND"


def test_by_event_type_lists_versions_or_answers_one_with_version(client, engine, stream):
    register_schema(client, stream, "order.shipped")
    register_schema(client, stream, "order.shipped", {"type": "object"})
    base = f"/api/v1/schemas/event-type/order.shipped?tenant_id={stream.tenant_id}&event_type=order.shipped"
    listed = client.get(base, headers=stream.headers).json
    assert listed["count"] == 2 and [s["version"] for s in listed["schemas"]] == [1, 2]
    one = client.get(base + "&version=2", headers=stream.headers)
    assert one.status_code == 200 and set(one.json) == {"schema"} and one.json["schema"]["version"] == 2
    assert client.get(base + "&version=9", headers=stream.headers).status_code == 404
    other = api_key(engine, uuid.uuid4(), "read")
    assert client.get(base, headers=auth(other)).status_code == 403


def test_validate_reports_every_error_with_a_pointer_and_is_valid_without_a_schema(client, stream):
    schema = register_schema(client, stream, "order.packed")
    body = {"tenantId": str(stream.tenant_id), "eventType": "order.packed", "payload": {"qty": -1}}
    verdict = client.post("/api/v1/schemas/validate", json=body, headers=stream.headers).json
    assert verdict["valid"] is False and verdict["schemaId"] == schema["id"] and verdict["schemaVersion"] == 1
    assert verdict["errors"][0]["path"] == "/qty" and verdict["errors"][0]["message"]
    ok = client.post("/api/v1/schemas/validate", json={**body, "payload": {"qty": 2}}, headers=stream.headers).json
    assert ok == {"valid": True, "schemaId": schema["id"], "schemaVersion": 1, "errors": []}
    none = client.post("/api/v1/schemas/validate", json={**body, "eventType": "unknown"}, headers=stream.headers)
    assert none.json == {"valid": True, "schemaId": None, "schemaVersion": None, "errors": []}
    missing = client.post("/api/v1/schemas/validate", json={**body, "schemaVersion": 7}, headers=stream.headers)
    assert missing.status_code == 404
    bad = client.post("/api/v1/schemas/validate", json={"tenantId": str(stream.tenant_id)}, headers=stream.headers)
    assert bad.status_code == 400 and bad.json["code"] == "INVALID_REQUEST"


def test_delete_needs_an_admin_key_of_the_tenant(client, engine, stream):
    schema = register_schema(client, stream, "order.deleted")
    url = f"/api/v1/schemas/{schema['id']}"
    refused = client.delete(url, headers=stream.headers)
    assert refused.status_code == 403 and refused.json["code"].upper().startswith("INSUFFICIENT_PERMISSION")
    admin = api_key(engine, stream.tenant_id, "admin")
    done = client.delete(url, headers=auth(admin))
    assert done.status_code == 200 and done.json == {"success": True, "deleted_schema_id": schema["id"]}
    assert client.get(url, headers=stream.headers).status_code == 404


# --- Agents and their API keys -------------------------------------------------------------------------------------


def agent_key(engine, tenant_id, agent_id, permissions="read_write", **extra):
    return api_key(engine, tenant_id, permissions, agent_id=agent_id, **extra)


def test_get_agent_answers_the_agent_response_to_keys_of_its_tenant_only(client, engine):
    tenant, agent = uuid.uuid4(), uuid.uuid4()
    key = agent_key(engine, tenant, agent, rate_limit=50)
    response = client.get(f"/api/v1/agents/{agent}", headers=auth(key))
    assert response.status_code == 200
    assert response.json == {"agentId": str(agent), "tenantId": str(tenant), "active": True,
                             "permissions": "read_write", "storeIds": [], "rateLimit": 50}
    reader = api_key(engine, tenant, "read", store_ids=[uuid.uuid4()])
    assert client.get(f"/api/v1/agents/{agent}", headers=auth(reader)).status_code == 200
    other = api_key(engine, uuid.uuid4(), "admin")
    hidden = client.get(f"/api/v1/agents/{agent}", headers=auth(other))
    assert hidden.status_code == 404 and hidden.json["code"] == "AGENT_NOT_FOUND"
    assert client.get(f"/api/v1/agents/{agent}", headers=ADMIN).status_code == 200
    assert client.get("/api/v1/agents/not-a-uuid", headers=ADMIN).status_code == 400


def test_an_agent_mints_lists_and_revokes_its_own_keys_never_broader(client, engine):
    tenant, agent = uuid.uuid4(), uuid.uuid4()
    key = agent_key(engine, tenant, agent, rate_limit=100)
    url = f"/api/v1/agents/{agent}/api-keys"
    minted = client.post(url, json={"readOnly": True}, headers=auth(key))
    assert minted.status_code == 200
    body = minted.json
    assert set(body) == {"success", "apiKey", "keyHashPrefix", "permissions", "message"}
    assert body["success"] is True and body["permissions"] == "read"
    assert body["keyHashPrefix"] == hashlib.sha256(body["apiKey"].encode()).hexdigest()[:16]
    assert client.get(f"/api/v1/agents/{agent}", headers=auth(body["apiKey"])).status_code == 200
    for escalation in ({"admin": True}, {"rateLimit": 1000}):
        refused = client.post(url, json=escalation, headers=auth(key))
        assert refused.status_code == 403, escalation
    listed = client.get(url, headers=auth(key)).json
    assert listed["count"] == 2 and {k["permissions"] for k in listed["keys"]} == {"read", "read_write"}
    assert all(set(k) == {"keyHashPrefix", "active", "permissions", "rateLimit"} for k in listed["keys"])
    revoked = client.delete(f"{url}/{body['keyHashPrefix']}", headers=auth(key))
    assert revoked.status_code == 200
    assert revoked.json == {"success": True, "message": "API key revoked successfully"}
    assert client.get(f"/api/v1/agents/{agent}", headers=auth(body["apiKey"])).status_code == 401
    assert client.delete(f"{url}/{body['keyHashPrefix']}00", headers=auth(key)).status_code == 404
    assert client.delete(f"{url}/xyz", headers=auth(key)).status_code == 400


def test_agent_keys_of_another_agent_or_tenant_are_refused(client, engine):
    tenant, agent, neighbour = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    agent_key(engine, tenant, agent)
    neighbour_key = agent_key(engine, tenant, neighbour)
    url = f"/api/v1/agents/{agent}/api-keys"
    refused = client.post(url, json={}, headers=auth(neighbour_key))
    assert refused.status_code == 403 and refused.json["code"] == "AGENT_SCOPE_REQUIRED"
    unbound = api_key(engine, tenant, "read_write")
    refused = client.post(url, json={}, headers=auth(unbound))
    assert refused.status_code == 403 and refused.json["code"] == "FORBIDDEN"
    # Ours is stricter than the original here (docs/SECURITY.md): API keys are listed only within the caller's
    # scope, so another agent's key may not list this agent's keys.
    assert client.get(url, headers=auth(neighbour_key)).status_code == 403
    other = api_key(engine, uuid.uuid4(), "admin")
    assert client.post(url, json={}, headers=auth(other)).status_code == 404
    assert client.get(url, headers=auth(other)).status_code == 404
    admin = api_key(engine, tenant, "admin")
    minted = client.post(url, json={"admin": True}, headers=auth(admin))
    assert minted.status_code == 200 and minted.json["permissions"] == "admin"
    assert client.post(url, json={"readOnly": "yes"}, headers=auth(admin)).status_code == 400


# --- Public self-registration --------------------------------------------------------------------------------------


def registrations(engine, n=5):
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            sa.select(agent_registrations).order_by(agent_registrations.c.id.desc()).limit(n))]


def test_registration_is_off_by_default_and_the_refusal_is_audited(client, engine):
    response = client.post("/api/v1/agents/register", json={"name": "probe-off"})
    assert response.status_code == 403 and response.json["code"] == "REGISTRATION_DISABLED"
    latest = registrations(engine, 1)[0]
    assert latest["outcome"] == "refused" and latest["reason"] == "REGISTRATION_DISABLED"
    assert latest["details"]["name"] == "probe-off"


def test_registration_issues_a_working_key_for_a_new_tenant_and_audits_it(make_app, engine, caplog):
    client = make_app(public_agent_registration_enabled=True).test_client()
    caplog.set_level(logging.INFO, logger="stateset_sequencer.audit")
    response = client.post("/api/v1/agents/register", json={"name": "bot", "readOnly": True},
                           headers={"User-Agent": "pytest"})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert set(body) == {"success", "agentId", "tenantId", "apiKey", "permissions", "message"}
    assert body["permissions"] == "read"
    me = client.get(f"/api/v1/agents/{body['agentId']}", headers=auth(body["apiKey"]))
    assert me.status_code == 200 and me.json["tenantId"] == body["tenantId"]
    latest = registrations(engine, 1)[0]
    assert latest["outcome"] == "registered" and str(latest["agent_id"]) == body["agentId"]
    assert latest["user_agent"] == "pytest"
    logged = [r for r in caplog.records if r.getMessage() == "agent self-registered"]
    assert logged and getattr(logged[0], "agent_id") == body["agentId"]
    assert body["apiKey"] not in caplog.text and body["apiKey"] not in str(latest)
    assert body["apiKey"] not in str([vars(r) for r in caplog.records])
    for refused, status, code in (({"name": "x", "tenantId": str(uuid.uuid4())}, 400, "TENANT_ID_NOT_ALLOWED"),
                                  ({"name": "x", "admin": True}, 403, "ADMIN_NOT_ALLOWED"),
                                  ({"name": "   "}, 400, "INVALID_NAME"),
                                  ({"name": "x" * 129}, 400, "INVALID_REQUEST")):
        answer = client.post("/api/v1/agents/register", json=refused)
        assert (answer.status_code, answer.json["code"]) == (status, code)
        assert registrations(engine, 1)[0]["reason"] == code


@pytest.mark.parametrize("default_limit", [0, 100000], ids=["no default limit", "default limit"])
def test_registration_is_rate_limited_per_client_address(make_app, engine, default_limit):
    app = make_app(public_agent_registration_enabled=True, rate_limit_per_minute=default_limit,
                   public_agent_registration_rate_limit_per_minute=2)
    client = app.test_client()
    answers = [client.post("/api/v1/agents/register", json={"name": f"bot{i}"},
                           environ_base={"REMOTE_ADDR": "198.51.100.7"}) for i in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["Retry-After"]
    assert registrations(engine, 1)[0]["reason"] == "RATE_LIMIT_EXCEEDED"
    other = client.post("/api/v1/agents/register", json={"name": "elsewhere"},
                        environ_base={"REMOTE_ADDR": "198.51.100.8"})
    assert other.status_code == 200


# --- Admin reads and /health/detailed ------------------------------------------------------------------------------


def test_health_detailed_needs_a_global_admin_and_has_the_original_shape(client, engine):
    assert client.get("/health/detailed").status_code == 401
    tenant_admin = api_key(engine, uuid.uuid4(), "admin")
    assert client.get("/health/detailed", headers=auth(tenant_admin)).status_code == 403
    response = client.get("/health/detailed", headers=ADMIN)
    assert response.status_code == 200
    body = response.json
    assert body["service"] == "stateset-sequencer" and body["status"] in ("healthy", "degraded")
    assert body["components"]["database"]["name"] == "postgresql"
    assert set(body["components"]["pool"]) >= {"status", "total_connections", "max_connections"}


def test_admin_reads_are_scoped_to_the_admin_keys_tenant(client, engine, stream):
    stream.ingest([stream.event("order-1")])
    agent = uuid.uuid4()
    agent_key(engine, stream.tenant_id, agent)
    tenant_admin = api_key(engine, stream.tenant_id, "admin")
    overview = client.get("/api/v1/admin/overview", headers=auth(tenant_admin))
    assert overview.status_code == 200
    assert overview.json["tenants"] == 1 and overview.json["stores"] == 1 and overview.json["totalHeadSequence"] == 1
    assert "activeStores24h" in overview.json and overview.json["activeStores24h"] == 1
    tenants = client.get("/api/v1/admin/tenants", headers=auth(tenant_admin)).json
    assert [t["tenantId"] for t in tenants] == [str(stream.tenant_id)]
    stores = client.get("/api/v1/admin/stores", headers=auth(tenant_admin)).json
    assert [(s["storeId"], s["headSequence"]) for s in stores] == [(str(stream.store_id), 1)]
    agents = client.get("/api/v1/admin/agents", headers=auth(tenant_admin)).json
    assert [a["agentId"] for a in agents] == [str(agent)] and agents[0]["storeScope"] == "all"
    everything = client.get("/api/v1/admin/tenants?limit=1000", headers=ADMIN).json
    assert str(stream.tenant_id) in {t["tenantId"] for t in everything}
    assert len(client.get("/api/v1/admin/tenants?limit=1", headers=ADMIN).json) == 1
    for path in ("overview", "tenants", "stores", "agents"):
        assert client.get(f"/api/v1/admin/{path}", headers=stream.headers).status_code == 403
    assert client.get("/api/v1/admin/tenants?limit=0", headers=ADMIN).status_code == 400


# --- Legacy commitments and proofs ---------------------------------------------------------------------------------


def test_legacy_commitment_flow_with_the_original_shapes(client, engine, stream):
    stream.ingest([stream.event(f"order-{i}") for i in range(3)])
    created = client.post("/api/v1/commitments", json={"tenant_id": str(stream.tenant_id),
                                                        "store_id": str(stream.store_id), "sequence_start": 1,
                                                        "sequence_end": 3}, headers=stream.headers)
    assert created.status_code == 200
    c = created.json
    assert set(c) == {"batch_id", "tenant_id", "store_id", "prev_state_root", "new_state_root", "events_root",
                      "event_count", "sequence_start", "sequence_end", "committed_at"}
    assert PLAIN_HASH.match(c["events_root"]) and c["event_count"] == 3 and c["committed_at"].endswith("Z")
    listed = client.get(f"/api/v1/commitments?{stream.query}", headers=stream.headers).json
    assert listed["count"] == 1 and listed["commitments"][0]["is_anchored"] is False
    one = client.get(f"/api/v1/commitments/{c['batch_id']}", headers=stream.headers).json
    assert one["sequence_range"] == [1, 3] and one["events_root"] == list(bytes.fromhex(c["events_root"]))
    assert one["chain_tx_hash"] is None
    proof = client.get(f"/api/v1/proofs/2?{stream.query}&batch_id={c['batch_id']}", headers=stream.headers).json
    assert set(proof) == {"sequence_number", "batch_id", "events_root", "leaf_hash", "leaf_index", "proof_path",
                          "directions"}
    assert proof["events_root"] == c["events_root"] and all(PLAIN_HASH.match(h) for h in proof["proof_path"])
    sent_root = "0x" + proof["events_root"].upper()
    verdict = client.post("/api/v1/proofs/verify", json={**proof, "events_root": sent_root},
                          headers=stream.headers).json
    assert verdict == {"valid": True, "leaf_hash": proof["leaf_hash"], "events_root": sent_root, "reason": None}
    tampered = client.post("/api/v1/proofs/verify", json={**proof, "leaf_index": 0}, headers=stream.headers).json
    assert tampered["valid"] is False and tampered["reason"]


def test_legacy_commitments_of_another_tenant_are_hidden_and_bad_input_is_400(client, engine, stream):
    stream.ingest([stream.event("order-1")])
    c = client.post("/api/v1/commitments", json={"tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id)},
                    headers=stream.headers).json
    other = api_key(engine, uuid.uuid4(), "admin")
    assert client.get(f"/api/v1/commitments/{c['batch_id']}", headers=auth(other)).status_code == 404
    assert client.get(f"/api/v1/commitments?{stream.query}", headers=auth(other)).status_code == 403
    assert client.get(f"/api/v1/proofs/1?{stream.query}", headers=auth(other)).status_code == 403
    reader = api_key(engine, stream.tenant_id, "read")
    assert client.post("/api/v1/commitments", json={"tenant_id": str(stream.tenant_id),
                                                     "store_id": str(stream.store_id)},
                       headers=auth(reader)).status_code == 403
    nothing = client.post("/api/v1/commitments", json={"tenant_id": str(stream.tenant_id),
                                                        "store_id": str(stream.store_id)}, headers=stream.headers)
    assert nothing.status_code == 409 and nothing.json["code"] == "NOTHING_TO_COMMIT"
    assert client.post("/api/v1/proofs/verify", json={"leaf_hash": "zz"}, headers=stream.headers).status_code == 400
    assert client.get("/api/v1/commitments/nope", headers=stream.headers).status_code == 400


def test_the_anchor_service_routes_need_a_global_admin_and_record_once(client, engine, stream):
    stream.ingest([stream.event("order-1")])
    c = client.post("/api/v1/commitments", json={"tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id)},
                    headers=stream.headers).json
    tenant_admin = api_key(engine, stream.tenant_id, "admin")
    assert client.get("/v1/commitments/pending", headers=auth(tenant_admin)).status_code == 403
    pending = client.get("/v1/commitments/pending?limit=5000", headers=ADMIN).json
    mine = [p for p in pending["commitments"] if p["batch_id"] == c["batch_id"]]
    assert mine and mine[0]["events_root"] == "0x" + c["events_root"] and mine[0]["chain_tx_hash"] is None
    assert pending["total"] == len(pending["commitments"])
    assert client.get("/api/v1/commitments/pending?limit=5001", headers=ADMIN).status_code == 400
    tx = "ab" * 32
    url = f"/v1/commitments/{c['batch_id']}/anchored"
    assert client.post(url, json={"chain_tx_hash": tx, "chain_id": 1}, headers=auth(tenant_admin)).status_code == 403
    first = client.post(url, json={"chain_tx_hash": "0x" + tx, "chain_id": 84532001, "block_number": 7},
                        headers=ADMIN)
    assert first.status_code == 200
    assert first.json == {"batch_id": c["batch_id"], "status": "anchored", "chain_tx_hash": "0x" + tx,
                          "chain_id": 84532001, "block_number": 7}
    again = client.post("/api/" + url.lstrip("/"), json={"chain_tx_hash": tx, "chain_id": 84532001}, headers=ADMIN)
    assert again.json == {"batch_id": c["batch_id"], "status": "already_anchored"}
    other = client.post(url, json={"chain_tx_hash": "cd" * 32, "chain_id": 84532001}, headers=ADMIN)
    assert other.status_code == 409 and other.json["code"] == "ANCHOR_MISMATCH"
    assert client.post(f"/v1/commitments/{uuid.uuid4()}/anchored", json={"chain_tx_hash": tx, "chain_id": 1},
                       headers=ADMIN).status_code == 404
    assert client.post(url, json={"chain_tx_hash": tx, "chain_id": 2**32}, headers=ADMIN).status_code == 400
    assert client.get(f"/api/v1/commitments/{c['batch_id']}", headers=stream.headers).json["chain_tx_hash"] == \
        list(bytes.fromhex(tx))


def test_a_self_registered_agent_can_register_its_signing_key_and_ingest(make_app):
    from app.client.signer import AgentSigner

    client = make_app(public_agent_registration_enabled=True).test_client()
    body = client.post("/api/v1/agents/register", json={"name": "signer"}).json
    tenant, agent = uuid.UUID(body["tenantId"]), uuid.UUID(body["agentId"])
    signer = AgentSigner(bytes(range(32)), tenant, agent, 1)
    headers = auth(body["apiKey"])
    key = client.post("/api/v1/agents/keys", json={"tenantId": str(tenant), "agentId": str(agent), "keyId": 1,
                                                    "publicKey": signer.public_key_hex}, headers=headers)
    assert key.status_code in (200, 201), key.json
    event = signer.build_event(uuid.uuid4(), "order", "o-1", "order.created", {"n": 1})
    ingested = client.post("/api/v1/ves/events/ingest", json={"agentId": str(agent), "events": [event]},
                           headers=headers)
    assert ingested.status_code == 200 and ingested.json["eventsAccepted"] == 1
    other = client.post("/api/v1/agents/keys", json={"tenantId": str(uuid.uuid4()), "agentId": str(agent),
                                                      "keyId": 1, "publicKey": signer.public_key_hex},
                        headers=headers)
    assert other.status_code == 403


@pytest.mark.parametrize("variable, value", [("ANCHOR_REQUEST_TIMEOUT_SECONDS", "0.1"),
                                             ("ANCHOR_REQUEST_TIMEOUT_SECONDS", "soon"),
                                             ("PUBLIC_AGENT_REGISTRATION_ENABLED", "maybe"),
                                             ("PUBLIC_AGENT_REGISTRATION_RATE_LIMIT_PER_MINUTE", "0"),
                                             ("PUBLIC_AGENT_REGISTRATION_WINDOW_SECONDS", "-1")])
def test_the_new_settings_are_validated_naming_the_variable(variable, value):
    from app.config import ConfigError
    from app.config import Settings

    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: value})


def test_the_new_settings_default_to_off_and_bounded():
    from app.config import Settings

    settings = Settings.from_env({})
    assert settings.public_agent_registration_enabled is False
    assert settings.public_agent_registration_rate_limit_per_minute == 30
    assert settings.anchor_request_timeout_seconds == 8.0
    assert Settings.from_env({"PUBLIC_AGENT_REGISTRATION_ENABLED": "1"}).public_agent_registration_enabled is True
