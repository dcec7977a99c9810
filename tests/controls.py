"""Controls: small generators of valid, unique test values (message-db style). Every test gets fresh streams."""

from __future__ import annotations

import uuid

from app.services.api_keys import create_api_key


def new_ids(n: int = 1) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey {key}"}


def api_key(engine, tenant_id=None, permissions="read_write", store_ids=None, **extra) -> str:
    secret, _ = create_api_key(engine, tenant_id=tenant_id, permissions=permissions, store_ids=store_ids, **extra)
    return secret


BOOTSTRAP_KEY = "test-bootstrap-admin-key-0123456789"


class Stream:
    """A fresh tenant/store with a read_write API key and one registered agent signer (key id 1)."""

    def __init__(self, client, engine, ves_version: int = 1):
        import os

        from app.client.signer import AgentSigner

        self.client = client
        self.engine = engine
        self.tenant_id, self.store_id, self.agent_id = new_ids(3)
        self.key = api_key(engine, self.tenant_id, "read_write")
        self.signer = AgentSigner(os.urandom(32), self.tenant_id, self.agent_id, 1)
        self.ves_version = ves_version
        response = client.post("/api/v1/agents/keys", json={
            "tenantId": str(self.tenant_id), "agentId": str(self.agent_id), "keyId": 1,
            "publicKey": self.signer.public_key_hex}, headers=auth(self.key))
        assert response.status_code == 200, response.json

    @property
    def headers(self) -> dict:
        return auth(self.key)

    @property
    def query(self) -> str:
        return f"tenant_id={self.tenant_id}&store_id={self.store_id}"

    def event(self, entity_id: str = "order-1", payload=None, store_id=None, **kwargs) -> dict:
        kwargs.setdefault("ves_version", self.ves_version)
        return self.signer.build_event(store_id or self.store_id, "order", entity_id, "order.updated",
                                       {"n": 1} if payload is None else payload, **kwargs)

    def ingest(self, events: list[dict], expect: int = 200):
        response = self.client.post("/api/v1/ves/events/ingest",
                                    json={"agentId": str(self.agent_id), "events": events}, headers=self.headers)
        assert response.status_code == expect, response.json
        return response.json

    def events(self, **params):
        extra = "".join(f"&{k}={v}" for k, v in params.items())
        response = self.client.get(f"/api/v1/ves/events?{self.query}{extra}", headers=self.headers)
        assert response.status_code == 200, response.json
        return response.json
