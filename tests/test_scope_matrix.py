"""The scope model (docs/SECURITY.md) as a matrix: every operation of the served OpenAPI document × every kind of
principal, with the expected status in `EXPECTED`. An operation the document serves without a row here (or a row
for an operation it does not serve) fails the test, so a new route must state who may call it.

Principal kinds (columns): no key, a malformed key, a revoked key; read / read_write / admin keys for the whole
tenant; the same limited to the store the requests address; an admin of the same tenant limited to another store;
an admin of the tenant bound to one agent; an admin of another tenant; the bootstrap admin. Every request is valid,
so the status says only what the principal may do. `REJ` is a 200 whose events were all rejected `Forbidden`
(ingest judges scope event by event).
"""

from __future__ import annotations

import os
import uuid

import pytest

from app.client.signer import AgentSigner
from app.services.agent_keys import register_agent_key
from app.services.api_keys import create_api_key
from app.services.api_keys import revoke_api_key
from tests.controls import BOOTSTRAP_KEY
from tests.controls import auth

COLUMNS = ("none", "malformed", "revoked", "read", "read_write", "admin", "store_read", "store_read_write",
           "store_admin", "other_store_admin", "agent_admin", "other_tenant_admin", "bootstrap")
REJ = "200, every event rejected Forbidden"
PUBLIC = (200,) * len(COLUMNS)

EXPECTED = {
    # operation                                          none malf revk read rw   admin sR   sW   sA   oS   agA  oT   boot
    ("GET", "/health"):                                  PUBLIC,
    ("GET", "/ready"):                                   PUBLIC,
    ("GET", "/metrics"):                                 PUBLIC,
    ("GET", "/api/openapi.json"):                        PUBLIC,
    ("GET", "/api/v1/ves/sequencer"):                    PUBLIC,
    ("POST", "/api/v1/admin/api-keys"):                  (401, 401, 401, 403, 403, 201, 403, 403, 201, 403, 403, 403, 201),
    ("GET", "/api/v1/admin/api-keys"):                   (401, 401, 401, 403, 403, 200, 403, 403, 200, 200, 200, 403, 200),
    ("DELETE", "/api/v1/admin/api-keys/{key_id}"):       (401, 401, 401, 403, 403, 204, 403, 403, 204, 404, 404, 404, 204),
    ("POST", "/api/v1/agents/keys"):                     (401, 401, 401, 403, 200, 200, 403, 403, 403, 403, 403, 403, 200),
    ("GET", "/api/v1/agents/keys"):                      (401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 403, 200),
    ("DELETE", "/api/v1/agents/keys/{agent_id}/{key_id}"): (401, 401, 401, 403, 200, 200, 403, 403, 403, 403, 403, 403, 200),
    ("POST", "/api/v1/schemas"):                         (401, 401, 401, 403, 200, 200, 403, 403, 403, 403, 403, 403, 200),
    ("GET", "/api/v1/schemas"):                          (401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 403, 200),
    ("GET", "/api/v1/schemas/{event_type}/versions/{version}"):
                                                         (401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 403, 200),
    ("POST", "/api/v1/ves/events/ingest"):               (401, 401, 401, 403, 200, 200, 403, 200, 200, REJ, 200, REJ, 200),
    ("POST", "/api/v1/events/ingest"):                   (401, 401, 401, 403, 200, 200, 403, 200, 200, REJ, 200, REJ, 200),
    ("GET", "/api/v1/ves/events"):                       (401, 401, 401, 200, 200, 200, 200, 200, 200, 403, 200, 403, 200),
    ("GET", "/api/v1/events"):                           (401, 401, 401, 200, 200, 200, 200, 200, 200, 403, 200, 403, 200),
    ("GET", "/api/v1/ves/head"):                         (401, 401, 401, 200, 200, 200, 200, 200, 200, 403, 200, 403, 200),
    ("GET", "/api/v1/head"):                             (401, 401, 401, 200, 200, 200, 200, 200, 200, 403, 200, 403, 200),
    ("GET", "/api/v1/ves/events/{event_id}"):            (401, 401, 401, 200, 200, 200, 200, 200, 200, 403, 200, 403, 200),
    ("GET", "/api/v1/ves/entities/{entity_type}/{entity_id}"):
                                                         (401, 401, 401, 200, 200, 200, 200, 200, 200, 403, 200, 403, 200),
    ("GET", "/api/v1/entities/{entity_type}/{entity_id}"):
                                                         (401, 401, 401, 200, 200, 200, 200, 200, 200, 403, 200, 403, 200),
    ("POST", "/api/v1/ves/commitments"):                 (401, 401, 401, 403, 200, 200, 403, 200, 200, 403, 200, 403, 200),
    ("GET", "/api/v1/ves/commitments"):                  (401, 401, 401, 200, 200, 200, 200, 200, 200, 403, 200, 403, 200),
    ("GET", "/api/v1/ves/commitments/{batch_id}"):       (401, 401, 401, 200, 200, 200, 200, 200, 200, 404, 200, 404, 200),
    ("GET", "/api/v1/ves/proofs/{sequence_number}"):     (401, 401, 401, 200, 200, 200, 200, 200, 200, 403, 200, 403, 200),
    ("GET", "/api/v1/ves/log/checkpoint"):               (401, 401, 401, 200, 200, 200, 200, 200, 200, 403, 200, 403, 200),
    ("GET", "/api/v1/ves/log/inclusion/{sequence_number}"):
                                                         (401, 401, 401, 200, 200, 200, 200, 200, 200, 403, 200, 403, 200),
    ("GET", "/api/v1/ves/log/consistency"):              (401, 401, 401, 200, 200, 200, 200, 200, 200, 403, 200, 403, 200),
    ("POST", "/api/v1/ves/proofs/verify"):               (401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/api/v1/anchor/status"):                    (401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    # Anchoring is not configured here: a caller who may anchor gets 503 ANCHORING_NOT_CONFIGURED.
    ("POST", "/api/v1/ves/commitments/anchor"):          (401, 401, 401, 403, 403, 503, 403, 403, 503, 403, 503, 403, 503),
    ("GET", "/api/v1/ves/anchor/{batch_id}/verify"):     (401, 401, 401, 503, 503, 503, 503, 503, 503, 404, 503, 404, 503),
    # The original sequencer's routes (issue 18).
    # operation                                          none malf revk read rw   admin sR   sW   sA   oS   agA  oT   boot
    ("GET", "/console"):                                 (308,) * len(COLUMNS),
    ("GET", "/console/"):                                PUBLIC,
    ("GET", "/console/{name}.css"):                      PUBLIC,
    ("GET", "/console/{name}.js"):                       PUBLIC,
    # Self-registration is public and off by default (PUBLIC_AGENT_REGISTRATION_ENABLED): 403 for everyone.
    ("POST", "/api/v1/agents/register"):                 (403,) * len(COLUMNS),
    ("GET", "/api/v1/whoami"):                           (401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/health/detailed"):                         (401, 401, 401, 403, 403, 403, 403, 403, 403, 403, 403, 403, 200),
    # Admin reads cover the caller's whole tenant (the other tenant's admin sees its own): tenant-wide admins only.
    ("GET", "/api/v1/admin/agents"):                     (401, 401, 401, 403, 403, 200, 403, 403, 403, 403, 403, 200, 200),
    ("GET", "/api/v1/admin/overview"):                   (401, 401, 401, 403, 403, 200, 403, 403, 403, 403, 403, 200, 200),
    ("GET", "/api/v1/admin/stores"):                     (401, 401, 401, 403, 403, 200, 403, 403, 403, 403, 403, 200, 200),
    ("GET", "/api/v1/admin/tenants"):                    (401, 401, 401, 403, 403, 200, 403, 403, 403, 403, 403, 200, 200),
    ("GET", "/api/v1/agents/{agent_id}"):                (401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 404, 200),
    # An agent's API keys: its own key or an admin key, listed within the caller's scope (a store admin: its stores).
    ("GET", "/api/v1/agents/{agent_id}/api-keys"):       (401, 401, 401, 403, 403, 200, 403, 403, 200, 200, 200, 404, 200),
    ("POST", "/api/v1/agents/{agent_id}/api-keys"):      (401, 401, 401, 403, 403, 200, 403, 403, 403, 403, 200, 404, 200),
    ("DELETE", "/api/v1/agents/{agent_id}/api-keys/{key_hash_prefix}"):
                                                         (401, 401, 401, 403, 403, 200, 403, 403, 403, 403, 200, 404, 200),
    ("GET", "/api/v1/schemas/{schema_id}"):              (401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 404, 200),
    ("DELETE", "/api/v1/schemas/{schema_id}"):           (401, 401, 401, 403, 403, 200, 403, 403, 403, 403, 403, 404, 200),
    ("PUT", "/api/v1/schemas/{schema_id}/status"):       (401, 401, 401, 403, 200, 200, 403, 403, 403, 403, 403, 404, 200),
    ("GET", "/api/v1/schemas/event-type/{event_type}"):  (401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 403, 200),
    ("GET", "/api/v1/schemas/event-type/{event_type}/latest"):
                                                         (401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 403, 200),
    ("POST", "/api/v1/schemas/validate"):                (401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 403, 200),
    ("GET", "/api/v1/streams"):                          (401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 403, 200),
    ("POST", "/api/v1/commitments"):                     (401, 401, 401, 403, 200, 200, 403, 200, 200, 403, 200, 403, 200),
    ("GET", "/api/v1/commitments"):                      (401, 401, 401, 200, 200, 200, 200, 200, 200, 403, 200, 403, 200),
    ("GET", "/api/v1/commitments/{batch_id}"):           (401, 401, 401, 200, 200, 200, 200, 200, 200, 404, 200, 404, 200),
    ("GET", "/api/v1/proofs/{sequence_number}"):         (401, 401, 401, 200, 200, 200, 200, 200, 200, 403, 200, 403, 200),
    ("POST", "/api/v1/proofs/verify"):                   (401, 401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST", "/api/v1/anchor"):                          (401, 401, 401, 403, 403, 503, 403, 403, 503, 404, 503, 404, 503),
    ("POST", "/api/v1/ves/anchor"):                      (401, 401, 401, 403, 403, 503, 403, 403, 503, 404, 503, 404, 503),
    ("GET", "/api/v1/anchor/{batch_id}/verify"):         (401, 401, 401, 503, 503, 503, 503, 503, 503, 404, 503, 404, 503),
    # The external anchor service's routes: the bootstrap (global) admin only.
    ("GET", "/api/v1/commitments/pending"):              (401, 401, 401, 403, 403, 403, 403, 403, 403, 403, 403, 403, 200),
    ("GET", "/v1/commitments/pending"):                  (401, 401, 401, 403, 403, 403, 403, 403, 403, 403, 403, 403, 200),
    ("POST", "/api/v1/commitments/{batch_id}/anchored"): (401, 401, 401, 403, 403, 403, 403, 403, 403, 403, 403, 403, 200),
    ("POST", "/v1/commitments/{batch_id}/anchored"):     (401, 401, 401, 403, 403, 403, 403, 403, 403, 403, 403, 403, 200),
}


class World:
    """One tenant T with stores S (addressed by every request) and S2, agent A (signing key 1), events and a
    commitment in T/S, a schema, and one key of each principal kind."""

    def __init__(self, client, engine):
        self.client, self.engine = client, engine
        self.tenant, self.store, self.other_store, self.agent = (uuid.uuid4() for _ in range(4))
        self.other_tenant = uuid.uuid4()
        self.signer = AgentSigner(os.urandom(32), self.tenant, self.agent, 1)
        register_agent_key(engine, self.tenant, self.agent, 1, self.signer.public_key)
        self.admin = auth(BOOTSTRAP_KEY)

        def key(tenant=self.tenant, permissions="read", stores=None, agent=None):
            return auth(create_api_key(engine, tenant_id=tenant, permissions=permissions, store_ids=stores,
                                       agent_id=agent)[0])

        secret, revoked = create_api_key(engine, tenant_id=self.tenant, permissions="admin")
        revoke_api_key(engine, revoked.key_id)
        self.headers = {
            "none": {}, "malformed": {"Authorization": "ApiKey ssk_not-a-real-key"}, "revoked": auth(secret),
            "read": key(), "read_write": key(permissions="read_write"), "admin": key(permissions="admin"),
            "store_read": key(stores=[self.store]),
            "store_read_write": key(permissions="read_write", stores=[self.store]),
            "store_admin": key(permissions="admin", stores=[self.store]),
            "other_store_admin": key(permissions="admin", stores=[self.other_store]),
            "agent_admin": key(permissions="admin", agent=self.agent),
            "other_tenant_admin": key(tenant=self.other_tenant, permissions="admin"),
            "bootstrap": self.admin,
        }
        self.first_event = self.signed_event()
        self.post("/api/v1/ves/events/ingest", {"agent_id": str(self.agent), "events": [self.first_event]})
        self.post("/api/v1/schemas", {"tenant_id": str(self.tenant), "event_type": "order.updated",
                                      "schema": {"type": "object"}})
        self.schema_id = self.fresh_schema_id()
        self.commitment = self.post("/api/v1/ves/commitments", {"tenant_id": str(self.tenant),
                                                                "store_id": str(self.store)})
        self.proof = self.client.get(f"/api/v1/ves/proofs/{self.commitment['sequence_start']}?{self.query}",
                                     headers=self.admin).json
        self.legacy_proof = self.client.get(f"/api/v1/proofs/{self.commitment['sequence_start']}?{self.query}",
                                            headers=self.admin).json

    @property
    def query(self) -> str:
        return f"tenant_id={self.tenant}&store_id={self.store}"

    def post(self, url: str, body: dict) -> dict:
        response = self.client.post(url, json=body, headers=self.admin)
        assert response.status_code in (200, 201), (url, response.json)
        return response.json

    def signed_event(self) -> dict:
        return self.signer.build_event(self.store, "order", f"o-{uuid.uuid4()}", "order.updated", {"n": 1})

    def unsigned_event(self) -> dict:
        return {"event_id": str(uuid.uuid4()), "tenant_id": str(self.tenant), "store_id": str(self.store),
                "entity_type": "order", "entity_id": "o-unsigned", "event_type": "order.updated", "payload": {"n": 2}}

    def request(self, method: str, path: str) -> tuple[str, dict | None]:
        """A valid request for the operation, with fresh resources where the call consumes one."""
        t, q = self.tenant, self.query
        if path == "/api/v1/admin/api-keys":
            body = {"tenant_id": str(t), "permissions": "read", "store_ids": [str(self.store)]}
            return (f"{path}?tenant_id={t}", None) if method == "GET" else (path, body)
        if path == "/api/v1/admin/api-keys/{key_id}":
            _, target = create_api_key(self.engine, tenant_id=t, permissions="read", store_ids=[self.store])
            return f"/api/v1/admin/api-keys/{target.key_id}", None
        if path == "/api/v1/agents/keys":
            if method == "GET":
                return f"{path}?tenant_id={t}", None
            fresh = AgentSigner(os.urandom(32), t, uuid.uuid4(), 1)
            return path, {"tenant_id": str(t), "agent_id": str(fresh.agent_id), "key_id": 1,
                          "public_key": fresh.public_key_hex}
        if path == "/api/v1/agents/keys/{agent_id}/{key_id}":
            agent = uuid.uuid4()
            register_agent_key(self.engine, t, agent, 1, os.urandom(32))
            return f"/api/v1/agents/keys/{agent}/1?tenant_id={t}", None
        if path == "/api/v1/schemas":
            body = {"tenant_id": str(t), "event_type": f"t.{uuid.uuid4().hex[:8]}", "schema": {"type": "object"}}
            return (f"{path}?tenant_id={t}", None) if method == "GET" else (path, body)
        if path == "/api/v1/schemas/{event_type}/versions/{version}":
            return f"/api/v1/schemas/order.updated/versions/1?tenant_id={t}", None
        if path == "/api/v1/ves/events/ingest":
            return path, {"agent_id": str(self.agent), "events": [self.signed_event()]}
        if path == "/api/v1/events/ingest":
            return path, {"agent_id": str(self.agent), "events": [self.unsigned_event()]}
        if path in ("/api/v1/ves/events", "/api/v1/events", "/api/v1/ves/head", "/api/v1/head",
                    "/api/v1/ves/commitments") and method == "GET":
            return f"{path}?{q}", None
        if path == "/api/v1/ves/events/{event_id}":
            return f"/api/v1/ves/events/{self.first_event['event_id']}?{q}", None
        if path == "/api/v1/ves/entities/{entity_type}/{entity_id}":
            return f"/api/v1/ves/entities/order/{self.first_event['entity_id']}?{q}", None
        if path == "/api/v1/entities/{entity_type}/{entity_id}":
            return f"/api/v1/entities/order/o-unsigned?{q}", None
        if path == "/api/v1/ves/commitments":
            self.post("/api/v1/events/ingest", {"agent_id": str(self.agent), "events": [self.unsigned_event()]})
            return path, {"tenant_id": str(t), "store_id": str(self.store)}
        if path == "/api/v1/ves/commitments/{batch_id}":
            return f"/api/v1/ves/commitments/{self.commitment['batch_id']}", None
        if path == "/api/v1/ves/proofs/{sequence_number}":
            return f"/api/v1/ves/proofs/{self.commitment['sequence_start']}?{q}", None
        if path == "/api/v1/ves/log/checkpoint":
            return f"{path}?{q}", None
        if path == "/api/v1/ves/log/inclusion/{sequence_number}":
            return f"/api/v1/ves/log/inclusion/1?{q}", None
        if path == "/api/v1/ves/log/consistency":
            return f"{path}?{q}&first=0&second=1", None
        if path == "/api/v1/ves/proofs/verify":
            return path, self.proof
        if path == "/api/v1/ves/commitments/anchor":
            return path, {"tenant_id": str(t), "store_id": str(self.store)}
        if path == "/api/v1/ves/anchor/{batch_id}/verify":
            return f"/api/v1/ves/anchor/{self.commitment['batch_id']}/verify", None
        # The original sequencer's routes (issue 18).
        batch = self.commitment["batch_id"]
        if path == "/api/v1/agents/{agent_id}/api-keys/{key_hash_prefix}":
            _, target = create_api_key(self.engine, tenant_id=t, permissions="read", agent_id=self.agent)
            return f"/api/v1/agents/{self.agent}/api-keys/{target.key_hash.hex()[:16]}", None
        if path == "/api/v1/agents/{agent_id}/api-keys":
            return f"/api/v1/agents/{self.agent}/api-keys", ({"read_only": True} if method == "POST" else None)
        if path == "/api/v1/agents/{agent_id}":
            return f"/api/v1/agents/{self.agent}", None
        if path == "/api/v1/agents/register":
            return path, {"name": "matrix"}
        if path == "/api/v1/schemas/{schema_id}":
            if method == "DELETE":
                return f"/api/v1/schemas/{self.fresh_schema_id()}", None
            return f"/api/v1/schemas/{self.schema_id}", None
        if path == "/api/v1/schemas/{schema_id}/status":
            return f"/api/v1/schemas/{self.schema_id}/status", {"status": "active"}
        if path in ("/api/v1/schemas/event-type/{event_type}", "/api/v1/schemas/event-type/{event_type}/latest"):
            return path.replace("{event_type}", "order.updated") + f"?tenant_id={t}", None
        if path == "/api/v1/schemas/validate":
            return path, {"tenant_id": str(t), "event_type": "order.updated", "payload": {"n": 1}}
        if path in ("/api/v1/admin/agents", "/api/v1/admin/stores", "/api/v1/admin/tenants"):
            return f"{path}?limit=10", None
        if path == "/api/v1/streams":
            return f"{path}?tenant_id={t}", None
        if path == "/api/v1/commitments" and method == "GET":
            return f"{path}?{q}", None
        if path == "/api/v1/commitments":
            self.post("/api/v1/events/ingest", {"agent_id": str(self.agent), "events": [self.unsigned_event()]})
            return path, {"tenant_id": str(t), "store_id": str(self.store)}
        if path in ("/api/v1/commitments/{batch_id}", "/api/v1/anchor/{batch_id}/verify"):
            return path.replace("{batch_id}", batch), None
        if path == "/api/v1/proofs/{sequence_number}":
            return f"/api/v1/proofs/{self.commitment['sequence_start']}?{q}", None
        if path == "/api/v1/proofs/verify":
            return path, self.legacy_proof
        if path in ("/api/v1/anchor", "/api/v1/ves/anchor"):
            return path, {"batch_id": batch}
        if path in ("/api/v1/commitments/{batch_id}/anchored", "/v1/commitments/{batch_id}/anchored"):
            return path.replace("{batch_id}", batch), {"chain_id": 84532001, "chain_tx_hash": "0x" + "ab" * 32}
        if path in ("/console/{name}.js", "/console/{name}.css"):
            return path.replace("{name}", "console"), None
        return path, None

    def fresh_schema_id(self):
        from app.services.schemas import register_schema

        return register_schema(self.engine, self.tenant, f"t.{uuid.uuid4().hex[:8]}", {"type": "object"}).id


def served_operations(client) -> set[tuple[str, str]]:
    document = client.get("/api/openapi.json").json
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item
            if method in ("get", "post", "put", "patch", "delete")}


def observed(response) -> int | str:
    body = response.json if response.is_json else None
    if (response.status_code == 200 and isinstance(body, dict) and "rejections" in body and body["rejections"]
            and all(r["code"] == "Forbidden" for r in body["rejections"])):
        return REJ
    return response.status_code


@pytest.fixture
def world(client, engine):
    return World(client, engine)


def test_every_operation_answers_every_principal_as_the_table_says(client, world):
    served = served_operations(client)
    missing, stale = served - set(EXPECTED), set(EXPECTED) - served
    if missing and os.environ.get("SCOPE_MATRIX_OBSERVE"):  # a helper for writing new rows, never a pass
        for method, path in sorted(missing):
            observed_row = []
            for principal in COLUMNS:
                url, body = world.request(method, path)
                observed_row.append(observed(client.open(url, method=method, json=body,
                                                         headers=world.headers[principal])))
            print(f"    ({method!r}, {path!r}): {tuple(observed_row)},")
    assert not missing and not stale, f"operations without a row: {sorted(missing)}; rows without an operation: " \
                                      f"{sorted(stale)}"
    wrong = []
    for (method, path), row in sorted(EXPECTED.items()):
        assert len(row) == len(COLUMNS), (method, path)
        for principal, expected in zip(COLUMNS, row):
            url, body = world.request(method, path)
            response = client.open(url, method=method, json=body, headers=world.headers[principal])
            got = observed(response)
            if got != expected:
                wrong.append(f"{method} {path} as {principal}: expected {expected}, got {got} "
                             f"{(response.json or {}).get('code') if response.is_json else ''}")
            elif isinstance(got, int) and got >= 400:
                assert response.is_json and set(response.json) == {"error", "code", "request_id"}, response.json
    assert not wrong, "\n".join(wrong)


# --- What the rows stand for, spelled out ----------------------------------------------------------------------------


def create(client, headers, **body):
    return client.post("/api/v1/admin/api-keys", json=body, headers=headers)


def test_a_store_scoped_admin_cannot_mint_a_wider_key(client, world):
    store_admin, t = world.headers["store_admin"], str(world.tenant)
    for wider in ({"store_ids": []}, {"store_ids": [str(world.store), str(world.other_store)]},
                  {"store_ids": [str(world.other_store)]}):
        response = create(client, store_admin, tenant_id=t, permissions="admin", **wider)
        assert response.status_code == 403 and response.json["code"] == "SCOPE_WIDENING", (wider, response.json)
    assert create(client, store_admin, tenant_id=None, permissions="admin").status_code == 403
    minted = create(client, store_admin, tenant_id=t, permissions="admin", store_ids=[str(world.store)])
    assert minted.status_code == 201 and minted.json["store_ids"] == [str(world.store)]


def test_an_agent_bound_admin_mints_only_keys_bound_to_its_agent(client, world):
    agent_admin, t = world.headers["agent_admin"], str(world.tenant)
    refused = create(client, agent_admin, tenant_id=t, permissions="read")
    assert refused.status_code == 403 and refused.json["code"] == "SCOPE_WIDENING"
    assert create(client, agent_admin, tenant_id=t, permissions="read", agent_id=str(uuid.uuid4())).status_code == 403
    assert create(client, agent_admin, tenant_id=t, permissions="read", agent_id=str(world.agent)).status_code == 201


def test_a_store_scoped_admin_sees_and_revokes_only_keys_within_its_stores(client, world, engine):
    _, inside = create_api_key(engine, tenant_id=world.tenant, permissions="read", store_ids=[world.store])
    _, tenant_wide = create_api_key(engine, tenant_id=world.tenant, permissions="read")
    _, other_store = create_api_key(engine, tenant_id=world.tenant, permissions="read", store_ids=[world.other_store])
    _, both = create_api_key(engine, tenant_id=world.tenant, permissions="read",
                             store_ids=[world.store, world.other_store])
    listing = client.get(f"/api/v1/admin/api-keys?tenant_id={world.tenant}", headers=world.headers["store_admin"])
    seen = {key["key_id"] for key in listing.json["api_keys"]}
    assert str(inside.key_id) in seen
    assert not seen & {str(tenant_wide.key_id), str(other_store.key_id), str(both.key_id)}
    assert all(key["store_ids"] and set(key["store_ids"]) <= {str(world.store)} for key in listing.json["api_keys"])
    for outside in (tenant_wide, other_store, both):
        response = client.delete(f"/api/v1/admin/api-keys/{outside.key_id}", headers=world.headers["store_admin"])
        assert response.status_code == 404, response.json
    full = client.get(f"/api/v1/admin/api-keys?tenant_id={world.tenant}", headers=world.headers["admin"]).json
    assert {str(tenant_wide.key_id), str(other_store.key_id), str(both.key_id), str(inside.key_id)} <= {
        key["key_id"] for key in full["api_keys"]}


def test_store_scoped_keys_cannot_touch_tenant_wide_resources(client, world):
    for name in ("store_read_write", "store_admin"):
        headers, t = world.headers[name], str(world.tenant)
        schema = client.post("/api/v1/schemas", json={"tenant_id": t, "event_type": "x", "schema": {}},
                             headers=headers)
        assert schema.status_code == 403 and schema.json["code"] == "TENANT_SCOPE_REQUIRED"
        revoke = client.delete(f"/api/v1/agents/keys/{world.agent}/1?tenant_id={t}", headers=headers)
        assert revoke.status_code == 403 and revoke.json["code"] == "TENANT_SCOPE_REQUIRED"
    assert client.get(f"/api/v1/agents/keys?tenant_id={world.tenant}&agent_id={world.agent}",
                      headers=world.headers["read"]).json["keys"][0]["revoked_at"] is None


def test_an_agent_bound_key_manages_only_its_own_agents_signing_keys(client, world):
    headers, t = world.headers["agent_admin"], str(world.tenant)
    own = AgentSigner(os.urandom(32), world.tenant, world.agent, 2)
    registered = client.post("/api/v1/agents/keys", headers=headers, json={
        "tenant_id": t, "agent_id": str(world.agent), "key_id": 2, "public_key": own.public_key_hex})
    assert registered.status_code == 200, registered.json
    assert client.delete(f"/api/v1/agents/keys/{world.agent}/2?tenant_id={t}", headers=headers).status_code == 200
    other = client.post("/api/v1/agents/keys", headers=headers, json={
        "tenant_id": t, "agent_id": str(uuid.uuid4()), "key_id": 1, "public_key": own.public_key_hex})
    assert other.status_code == 403 and other.json["code"] == "AGENT_SCOPE_REQUIRED"


def test_the_key_list_is_read_in_batches_and_filtered_to_the_callers_scope(client, world, engine, monkeypatch):
    """The API-key list holds one batch at a time (LIST_BATCH keys); every key in scope comes back, in order, once."""
    from app.services import api_keys

    monkeypatch.setattr(api_keys, "LIST_BATCH", 3)
    made = [create_api_key(engine, tenant_id=world.tenant, permissions="read", store_ids=[world.store])[1]
            for _ in range(7)]
    listing = client.get(f"/api/v1/admin/api-keys?tenant_id={world.tenant}", headers=world.headers["admin"]).json
    ids = [key["key_id"] for key in listing["api_keys"]]
    assert listing["count"] == len(ids) == len(set(ids))
    assert [i for i in ids if i in {str(m.key_id) for m in made}] == [str(m.key_id) for m in made]
    store_view = client.get(f"/api/v1/admin/api-keys?tenant_id={world.tenant}",
                            headers=world.headers["store_admin"]).json
    assert {str(m.key_id) for m in made} <= {key["key_id"] for key in store_view["api_keys"]}
    assert all(key["store_ids"] == [str(world.store)] for key in store_view["api_keys"])


def test_the_agent_key_list_is_read_in_batches(client, world, engine, monkeypatch):
    from app.services import agent_keys

    monkeypatch.setattr(agent_keys, "LIST_BATCH", 2)
    agents = sorted(uuid.uuid4() for _ in range(5))
    for agent in agents:
        register_agent_key(engine, world.tenant, agent, 1, os.urandom(32))
    listing = client.get(f"/api/v1/agents/keys?tenant_id={world.tenant}", headers=world.headers["read"]).json
    got = [(key["agent_id"], key["key_id"]) for key in listing["keys"]]
    assert listing["count"] == len(got) == len(set(got)) == 6  # world's agent A and these five
    assert {str(a) for a in agents} <= {agent for agent, _ in got}
    assert got == sorted(got, key=lambda k: (uuid.UUID(k[0]), k[1]))
