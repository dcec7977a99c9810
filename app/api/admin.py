"""Admin API: API keys. Requires an admin key, which creates, sees and revokes only keys within its own scope
(docs/SECURITY.md): a tenant admin its tenant's keys, a store-scoped admin keys of its stores, an agent-bound admin
keys bound to its agent."""

from __future__ import annotations

from flask import Blueprint

from app import runtime
from app.api import wire
from app.api.operations import body
from app.api.operations import operation
from app.api.operations import path
from app.api.operations import query
from app.api.operations import render
from app.api.operations import render_listing
from functools import partial

from app.auth import authenticate
from app.auth import key_in_scope
from app.auth import require
from app.auth import require_key_creation
from app.services import api_keys as service

bp = Blueprint("admin", __name__, url_prefix="/api/v1/admin")


@bp.post("/api-keys")
@operation(tags="keys", body=wire.CreateApiKeyBody, responses={201: wire.NewApiKeyOut}, errors=(403,))
def create_api_key():
    """Create an API key (admin); the secret is in this response only."""
    fields = body()
    require_key_creation(fields["tenant_id"], fields["permissions"], fields["store_ids"], fields["agent_id"])
    return render(service.create_api_key(runtime.current().engine, **fields), 201)


@bp.get("/api-keys")
@operation(tags="keys", query=wire.ApiKeysQuery, responses={200: wire.ApiKeyListOut}, errors=(403,))
def list_api_keys():
    """List API keys without their secrets (admin), optionally for one tenant."""
    tenant_id = query()["tenant_id"] or authenticate().tenant_id
    principal = require("admin", tenant_id)
    return render_listing(service.api_keys_in_batches(runtime.current().engine, tenant_id,
                                                      partial(key_in_scope, principal)))


@bp.delete("/api-keys/<key_id>")
@operation(tags="keys", path=wire.ApiKeyPath, responses={204: None}, errors=(403, 404))
def revoke_api_key(key_id: str):
    """Revoke an API key (admin); it is refused from its next request on."""
    key_uuid = path(key_id=key_id)["key_id"]
    principal = require("admin", authenticate().tenant_id)
    rt = runtime.current()
    service.revoke_api_key_of(rt.engine, key_uuid, partial(key_in_scope, principal), principal.key_id,
                              connect_listener=rt.long_polls.listener.new_connection)
    return render(None, 204)
