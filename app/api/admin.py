"""Admin API: API keys. Requires an admin key; a tenant-scoped admin manages only its own tenant's keys."""

from __future__ import annotations

from flask import Blueprint

from app import runtime
from app.api import wire
from app.api.operations import body
from app.api.operations import operation
from app.api.operations import path
from app.api.operations import query
from app.api.operations import render
from app.auth import authenticate
from app.auth import require
from app.services import api_keys as service

bp = Blueprint("admin", __name__, url_prefix="/api/v1/admin")


@bp.post("/api-keys")
@operation(tags="keys", body=wire.CreateApiKeyBody, responses={201: wire.NewApiKeyOut}, errors=(403,))
def create_api_key():
    """Create an API key (admin); the secret is in this response only."""
    fields = body()
    require("admin", fields["tenant_id"])
    return render(service.create_api_key(runtime.current().engine, **fields), 201)


@bp.get("/api-keys")
@operation(tags="keys", query=wire.ApiKeysQuery, responses={200: wire.ApiKeyListOut}, errors=(403,))
def list_api_keys():
    """List API keys without their secrets (admin), optionally for one tenant."""
    tenant_id = query()["tenant_id"] or authenticate().tenant_id
    require("admin", tenant_id)
    return render(service.list_api_keys(runtime.current().engine, tenant_id))


@bp.delete("/api-keys/<key_id>")
@operation(tags="keys", path=wire.ApiKeyPath, responses={204: None}, errors=(403, 404))
def revoke_api_key(key_id: str):
    """Revoke an API key (admin); it is refused from its next request on."""
    key_uuid = path(key_id=key_id)["key_id"]
    principal = require("admin", authenticate().tenant_id)
    rt = runtime.current()
    service.revoke_api_key_of(rt.engine, key_uuid, principal.tenant_id, principal.key_id,
                              connect_listener=rt.long_polls.listener.new_connection)
    return render(None, 204)
