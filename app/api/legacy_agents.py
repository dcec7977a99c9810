"""The original sequencer's agent routes (`src/api/handlers/agents.rs`): an agent, its API keys, and public
self-registration. Any key of the agent's tenant reads; minting and revoking need a read_write key for the whole
tenant that is the agent's own or an admin's (app/services/agents.py). Another tenant's agent is a 404.

`POST /api/v1/agents/register` needs no key. It is off unless PUBLIC_AGENT_REGISTRATION_ENABLED (403
REGISTRATION_DISABLED), limited to PUBLIC_AGENT_REGISTRATION_RATE_LIMIT_PER_MINUTE per client address (app/limits.py),
and every attempt is written to the `agent_registrations` table.
"""

from __future__ import annotations

from functools import partial

from flask import Blueprint
from flask import g
from flask import request

from app import runtime
from app.api import legacy_wire as wire
from app.api.operations import body
from app.api.operations import operation
from app.api.operations import path
from app.api.operations import render
from app.auth import authenticate
from app.auth import public
from app.auth import key_in_scope
from app.auth import require
from app.auth import require_tenant_wide
from app.errors import InvalidRequest
from app.services import agents as service

bp = Blueprint("legacy_agents", __name__, url_prefix="/api/v1/agents")


def client_info() -> service.ClientInfo:
    return service.ClientInfo(request.remote_addr, request.headers.get("User-Agent"), g.get("request_id"))


@bp.post("/register")
@public
@operation(tags="agents", body=wire.AgentRegistrationBody, responses={200: wire.AgentRegistrationOut},
           headers={200: wire.REGISTRATION_HEADERS}, errors=(403,))
def register_agent():
    """Self-register: a new tenant, agent and API key (the secret is in this response only; `Cache-Control:
    no-store`). 403 REGISTRATION_DISABLED unless enabled; 403 ADMIN_NOT_ALLOWED; 400 TENANT_ID_NOT_ALLOWED."""
    rt = runtime.current()
    try:
        fields = body()
    except InvalidRequest as refused:
        service.record_refusal(rt.engine, client_info(), refused.code)
        raise
    registration = service.register_agent(rt.engine, rt.settings.public_agent_registration_enabled, client_info(),
                                          fields)
    return render(registration, 200, headers={"Cache-Control": "no-store"})


@bp.get("/<id:agent_id>")
@operation(tags="agents", path=wire.AgentPath, responses={200: wire.AgentOut}, errors=(404,))
def get_agent(agent_id: str):
    """An agent (`AgentResponse`): tenant, whether it has a live key, and its first live key's scope."""
    principal = authenticate()
    agent = service.get_agent(runtime.current().engine, path(agent_id=agent_id)["agent_id"], principal)
    require("read", agent.tenant_id)
    return render(agent)


@bp.get("/<id:agent_id>/api-keys")
@operation(tags="agents", path=wire.AgentPath, responses={200: wire.AgentApiKeyListOut}, errors=(403, 404))
def list_agent_api_keys(agent_id: str):
    """The agent's API keys (`keyHashPrefix`, never the secret)."""
    agent_uuid, principal = path(agent_id=agent_id)["agent_id"], authenticate()
    require("read", service.agent_tenant(runtime.current().engine, agent_uuid, principal))
    return render(service.list_agent_api_keys(runtime.current().engine, agent_uuid, principal,
                                              partial(key_in_scope, principal)))


@bp.post("/<id:agent_id>/api-keys")
@operation(tags="agents", path=wire.AgentPath, body=wire.CreateAgentApiKeyBody,
           responses={200: wire.AgentApiKeyCreatedOut}, errors=(403, 404))
def create_agent_api_key(agent_id: str):
    """Mint a key for the agent, never broader than the caller's own unless admin (the secret once)."""
    agent_uuid, fields, principal = path(agent_id=agent_id)["agent_id"], body(), authenticate()
    tenant_id = service.agent_tenant(runtime.current().engine, agent_uuid, principal)
    require_tenant_wide("read_write", tenant_id, agent_uuid)
    return render(service.create_agent_api_key(runtime.current().engine, principal, agent_uuid, tenant_id, **fields))


@bp.delete("/<id:agent_id>/api-keys/<key_hash_prefix>")
@operation(tags="agents", path=wire.AgentApiKeyPath, responses={200: wire.SuccessMessageOut},
           errors=(403, 404, 409))
def revoke_agent_api_key(agent_id: str, key_hash_prefix: str):
    """Revoke the agent's key whose SHA-256 starts with `key_hash_prefix`: `{"success": true, "message"}`."""
    key, principal = path(agent_id=agent_id, key_hash_prefix=key_hash_prefix), authenticate()
    require_tenant_wide("read_write", service.agent_tenant(runtime.current().engine, key["agent_id"], principal),
                        key["agent_id"])
    return render(service.revoke_agent_api_key(runtime.current().engine, principal, key["agent_id"],
                                               key["key_hash_prefix"]))
