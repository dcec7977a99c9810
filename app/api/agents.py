"""The agent key registry (VES): register, list and revoke agents' Ed25519 public keys.

Agent keys are tenant-wide (an agent signs for every store of its tenant): registering and revoking them needs a
`read_write` key for the whole tenant (`require_tenant_wide`); a key bound to one agent may do so only for that
agent's keys. Any key of the tenant may list them (docs/SECURITY.md)."""

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
from app.auth import require
from app.auth import require_tenant_wide
from app.services import agent_keys as service

bp = Blueprint("agents", __name__, url_prefix="/api/v1/agents")


@bp.post("/keys")
@operation(tags="agents", body=wire.RegisterAgentKeyBody, errors=(403, 409),
           responses={200: wire.RegisteredAgentKeyOut})
def register_agent_key():
    """Register an agent's Ed25519 public key: 200 when new (`created` true) or already registered (false), 409
    for another key under the same key id."""
    fields = body()
    fields.pop("key_algorithm")
    require_tenant_wide("read_write", fields["tenant_id"], agent_id=fields["agent_id"])
    return render(service.register_agent_key(runtime.current().engine, **fields))


@bp.get("/keys")
@operation(tags="agents", query=wire.AgentKeysQuery, responses={200: wire.AgentKeyListOut}, errors=(403,))
def list_agent_keys():
    """A tenant's agent keys, optionally of one agent."""
    args = query()
    require("read", args["tenant_id"])
    return render_listing(service.agent_keys_in_batches(runtime.current().engine, args["tenant_id"],
                                                        args["agent_id"]))


@bp.delete("/keys/<agent_id>/<key_id>")
@operation(tags="agents", path=wire.AgentKeyPath, query=wire.TenantQuery, responses={200: wire.AgentKeyOut},
           errors=(403, 404))
def revoke_agent_key(agent_id: str, key_id: str):
    """Revoke an agent key (the row stays; events signed with it are rejected from now on)."""
    key = path(agent_id=agent_id, key_id=key_id)
    tenant_id = query()["tenant_id"]
    require_tenant_wide("read_write", tenant_id, agent_id=key["agent_id"])
    return render(service.revoke_agent_key(runtime.current().engine, tenant_id, key["agent_id"], key["key_id"]))
