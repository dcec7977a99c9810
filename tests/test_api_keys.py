import uuid

import pytest

from tests.controls import BOOTSTRAP_KEY
from tests.controls import api_key
from tests.controls import auth

BOOTSTRAP = "test-bootstrap-admin-key-0123456789"


def test_admin_creates_a_key_shown_once_and_stored_hashed(client, engine):
    tenant = uuid.uuid4()
    response = client.post("/api/v1/admin/api-keys", json={"tenant_id": str(tenant), "permissions": "read"},
                           headers=auth(BOOTSTRAP))
    assert response.status_code == 201, response.json
    secret = response.json["api_key"]
    assert secret.startswith("ssk_") and len(secret) >= 4 + 43
    assert response.json["key_prefix"] == secret[:12]
    listing = client.get(f"/api/v1/admin/api-keys?tenant_id={tenant}", headers=auth(BOOTSTRAP)).json
    assert listing["count"] == 1
    assert "api_key" not in listing["api_keys"][0]
    import sqlalchemy as sa

    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT key_hash::text FROM api_keys WHERE tenant_id = :t"), {"t": tenant}).scalar()
    assert secret not in stored and secret.encode().hex() not in stored


@pytest.mark.parametrize("scheme", ["ApiKey", "Bearer", "apikey", "bearer"])
def test_both_auth_schemes_work(client, engine, scheme):
    tenant = uuid.uuid4()
    secret = api_key(engine, tenant, "admin")
    response = client.get(f"/api/v1/admin/api-keys?tenant_id={tenant}", headers={"Authorization": f"{scheme} {secret}"})
    assert response.status_code == 200


@pytest.mark.parametrize(("headers", "code"), [
    ({}, "missing_auth"), ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing_auth"),
    ({"Authorization": "Token abc"}, "missing_auth"), ({"X-API-Key": ""}, "missing_auth"),
    ({"Authorization": "ApiKey"}, "invalid_api_key"), ({"Authorization": "ApiKey ssk_unknown"}, "invalid_api_key"),
    ({"Authorization": "ssk_unknown"}, "invalid_api_key"), ({"X-API-Key": "ssk_unknown"}, "invalid_api_key"),
])
def test_missing_or_unknown_key_is_401_with_the_original_codes(client, headers, code):
    response = client.get("/api/v1/admin/api-keys", headers=headers)
    assert response.status_code == 401
    assert response.json["code"] == code
    assert response.headers["WWW-Authenticate"].startswith("ApiKey")


def test_a_key_is_accepted_bare_in_authorization_or_in_x_api_key(client):
    """The original's clients send `Authorization: <key>` or `X-API-Key: <key>` (X-API-Key only counts without an
    Authorization header)."""
    for headers in ({"Authorization": BOOTSTRAP_KEY}, {"X-API-Key": BOOTSTRAP_KEY},
                    {"X-API-Key": f"  {BOOTSTRAP_KEY} "}):
        assert client.get("/api/v1/admin/api-keys", headers=headers).status_code == 200, headers
    both = {"Authorization": "ApiKey ssk_unknown", "X-API-Key": BOOTSTRAP_KEY}
    assert client.get("/api/v1/admin/api-keys", headers=both).json["code"] == "invalid_api_key"


def test_revoked_key_is_refused_on_its_next_request(client, engine):
    tenant = uuid.uuid4()
    admin = api_key(engine, tenant, "admin")
    victim = client.post("/api/v1/admin/api-keys", json={"tenant_id": str(tenant), "permissions": "admin"},
                         headers=auth(admin)).json
    assert client.get("/api/v1/admin/api-keys", headers=auth(victim["api_key"])).status_code == 200
    assert client.delete(f"/api/v1/admin/api-keys/{victim['key_id']}", headers=auth(admin)).status_code == 204
    refused = client.get("/api/v1/admin/api-keys", headers=auth(victim["api_key"]))
    assert refused.status_code == 401 and refused.json["code"] == "invalid_api_key"


def test_tenant_admin_cannot_touch_other_tenants(client, engine):
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    admin = api_key(engine, mine, "admin")
    other_key = api_key(engine, theirs, "read")
    created = client.post("/api/v1/admin/api-keys", json={"tenant_id": str(theirs), "permissions": "read"},
                          headers=auth(admin))
    assert created.status_code == 403
    listing = client.get(f"/api/v1/admin/api-keys?tenant_id={theirs}", headers=auth(admin))
    assert listing.status_code == 403
    own_listing = client.get("/api/v1/admin/api-keys", headers=auth(admin)).json
    assert {k["tenant_id"] for k in own_listing["api_keys"]} == {str(mine)}
    other_id = [k for k in client.get(f"/api/v1/admin/api-keys?tenant_id={theirs}", headers=auth(BOOTSTRAP)).json[
        "api_keys"]][0]["key_id"]
    assert client.delete(f"/api/v1/admin/api-keys/{other_id}", headers=auth(admin)).status_code == 404
    assert client.delete(f"/api/v1/admin/api-keys/{uuid.uuid4()}", headers=auth(admin)).status_code == 404
    assert other_key


def test_non_admin_keys_cannot_manage_keys(client, engine):
    tenant = uuid.uuid4()
    for permissions in ("read", "read_write"):
        secret = api_key(engine, tenant, permissions)
        response = client.post("/api/v1/admin/api-keys", json={"tenant_id": str(tenant), "permissions": "read"},
                               headers=auth(secret))
        assert response.status_code == 403
        assert response.json["code"] == "insufficient_permissions"


@pytest.mark.parametrize(
    "body",
    [{}, {"permissions": "superuser", "tenant_id": str(uuid.uuid4())}, {"permissions": "read"},
     {"permissions": "read", "tenant_id": "not-a-uuid"}, {"permissions": "read", "tenant_id": str(uuid.uuid4()),
                                                         "rate_limit": -5},
     {"permissions": "read", "tenant_id": str(uuid.uuid4()), "store_ids": "abc"}],
)
def test_invalid_create_requests_are_400(client, body):
    response = client.post("/api/v1/admin/api-keys", json=body, headers=auth(BOOTSTRAP))
    assert response.status_code == 400, response.json
    assert response.json["code"] == "INVALID_REQUEST"
