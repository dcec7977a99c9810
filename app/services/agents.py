"""Agents as the original sequencer's API shows them (`GET /api/v1/agents/{agent_id}`, the agent's API keys, public
self-registration): an agent is the holder of the API keys that carry its `agent_id`.

Authorisation: any key of the agent's tenant reads it; minting or revoking its keys needs a key for the whole tenant
that is the agent's own key or an admin key, and a non-admin never mints a key broader than its own (permission,
stores, rate limit) — the original's rules (`src/api/handlers/agents.rs`). Another tenant's agent is a 404.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from app.db import agents as store
from app.db.api_keys import ApiKeyRecord
from app.errors import Conflict
from app.errors import InvalidRequest
from app.errors import NotFound
from app.errors import NotPermitted
from app.services import api_keys
from app.services.api_keys import Principal

audit = logging.getLogger("stateset_sequencer.audit")

KEY_HASH_PREFIX_LENGTH = 16
KEY_CREATED_MESSAGE = "API key created. Store it securely - it cannot be retrieved later."
KEY_REVOKED_MESSAGE = "API key revoked successfully"
REGISTERED_MESSAGE = "Agent registered successfully. Store your API key securely - it cannot be retrieved later."


@dataclass(frozen=True)
class Agent:
    agent_id: uuid.UUID
    tenant_id: uuid.UUID
    active: bool
    permissions: str
    store_ids: tuple[uuid.UUID, ...]
    rate_limit: int | None


@dataclass(frozen=True)
class AgentApiKey:
    key_hash_prefix: str
    active: bool
    permissions: str
    rate_limit: int | None


@dataclass(frozen=True)
class IssuedAgentKey:
    api_key: str
    key_hash_prefix: str
    permissions: str
    success: bool = True
    message: str = KEY_CREATED_MESSAGE


@dataclass(frozen=True)
class Done:
    message: str
    success: bool = True


@dataclass(frozen=True)
class Registration:
    agent_id: uuid.UUID
    tenant_id: uuid.UUID
    api_key: str
    permissions: str
    success: bool = True
    message: str = REGISTERED_MESSAGE


@dataclass(frozen=True)
class ClientInfo:
    """Who attempted a registration, for the audit (never a secret)."""

    address: str | None
    user_agent: str | None
    request_id: str | None


def _hash_prefix(record: ApiKeyRecord) -> str:
    return record.key_hash.hex()[:KEY_HASH_PREFIX_LENGTH]


def _keys_of(engine: Engine, agent_id: uuid.UUID, principal: Principal) -> list[ApiKeyRecord]:
    """The agent's keys in the caller's tenant (any tenant for a global admin). :raise NotFound: none."""
    with engine.connect() as conn:
        keys = store.api_keys_of_agent(conn, agent_id, principal.tenant_id)
    if not keys:
        raise NotFound("Agent not found.", code="AGENT_NOT_FOUND")
    return keys


def agent_tenant(engine: Engine, agent_id: uuid.UUID, principal: Principal) -> uuid.UUID:
    """The tenant of an agent the caller's tenant holds. :raise NotFound: unknown, or another tenant's."""
    return _keys_of(engine, agent_id, principal)[0].tenant_id


def get_agent(engine: Engine, agent_id: uuid.UUID, principal: Principal) -> Agent:
    """The agent as its first live key (else its first key) describes it."""
    keys = _keys_of(engine, agent_id, principal)
    live = [k for k in keys if k.revoked_at is None]
    key = (live or keys)[0]
    return Agent(agent_id, key.tenant_id, bool(live), key.permissions, key.store_ids, key.rate_limit)


def list_agent_api_keys(engine: Engine, agent_id: uuid.UUID, principal: Principal,
                        visible: Callable[[ApiKeyRecord], bool] | None = None) -> list[AgentApiKey]:
    """The agent's keys, for the agent's own key or an admin key, and of those only the ones `visible` (the
    caller's scope, `app.auth.key_in_scope`): API keys are listed only within the caller's scope."""
    _require_own_or_admin(principal, agent_id)
    return [AgentApiKey(_hash_prefix(k), k.revoked_at is None, k.permissions, k.rate_limit)
            for k in _keys_of(engine, agent_id, principal) if visible is None or visible(k)]


def _require_own_or_admin(principal: Principal, agent_id: uuid.UUID) -> None:
    if principal.permissions != "admin" and principal.agent_id != agent_id:
        raise NotPermitted("Only the agent's own key or an admin key may manage its API keys.",
                           code="FORBIDDEN")


def _new_key_scope(principal: Principal, store_ids: list[uuid.UUID] | None, read_only: bool | None,
                   admin: bool | None, rate_limit: int | None) -> tuple[str, list[uuid.UUID], int | None]:
    """Permission, stores and rate limit of the new key; never broader than a non-admin caller's own key."""
    if principal.permissions == "admin":
        permission = "admin" if admin else ("read" if read_only else "read_write")
        return permission, list(store_ids or []), rate_limit
    if admin:
        raise NotPermitted("Only admins can mint admin keys.", code="FORBIDDEN")
    wants_read_only = read_only if read_only is not None else not principal.has_permission("read_write")
    if not wants_read_only and not principal.has_permission("read_write"):
        raise NotPermitted("Cannot mint a key with broader write permissions.", code="FORBIDDEN")
    stores = list(principal.store_ids) if store_ids is None else list(store_ids)
    if principal.store_ids and (not stores or not set(stores) <= principal.store_ids):
        raise NotPermitted("Cannot mint a key for stores outside the authenticating key's scope.",
                           code="FORBIDDEN")
    if principal.rate_limit is not None and rate_limit is not None and rate_limit > principal.rate_limit:
        raise NotPermitted("Cannot mint a key with a higher rate limit than the authenticating key.",
                           code="FORBIDDEN")
    return ("read" if wants_read_only else "read_write"), stores, rate_limit or principal.rate_limit


def create_agent_api_key(engine: Engine, principal: Principal, agent_id: uuid.UUID, tenant_id: uuid.UUID,
                         store_ids: list[uuid.UUID] | None = None, read_only: bool | None = None,
                         admin: bool | None = None, rate_limit: int | None = None) -> IssuedAgentKey:
    """Mint a key for `agent_id` of `tenant_id` (the caller passed `require_tenant_wide` on that tenant)."""
    _require_own_or_admin(principal, agent_id)
    permission, stores, limit = _new_key_scope(principal, store_ids, read_only, admin, rate_limit)
    secret, record = api_keys.create_api_key(engine, tenant_id=tenant_id, permissions=permission, store_ids=stores,
                                             agent_id=agent_id, rate_limit=limit,
                                             description="agent API key (POST /api/v1/agents/{agent_id}/api-keys)")
    return IssuedAgentKey(secret, _hash_prefix(record), permission)


def revoke_agent_api_key(engine: Engine, principal: Principal, agent_id: uuid.UUID, key_prefix: str) -> Done:
    """Revoke the agent's key whose SHA-256 starts with `key_prefix` (hex).

    :raise NotFound API_KEY_NOT_FOUND: no such key of this agent. :raise Conflict AMBIGUOUS_KEY_PREFIX: several.
    """
    _require_own_or_admin(principal, agent_id)
    prefix = key_prefix.lower()
    matching = [k for k in _keys_of(engine, agent_id, principal) if k.key_hash.hex().startswith(prefix)]
    if not matching:
        raise NotFound("API key not found.", code="API_KEY_NOT_FOUND")
    if len(matching) > 1:
        raise Conflict("Several of the agent's keys start with that prefix; give more digits.",
                       code="AMBIGUOUS_KEY_PREFIX")
    api_keys.revoke_api_key(engine, matching[0].key_id)
    return Done(KEY_REVOKED_MESSAGE)


# --- Public self-registration --------------------------------------------------------------------------------------


class RegistrationDisabled(NotPermitted):
    code = "REGISTRATION_DISABLED"


def _details(fields: dict) -> dict:
    """What the audit keeps of a registration request: no secret is ever in one."""
    return {"name": (fields.get("name") or "")[:128], "description": (fields.get("description") or None),
            "requested_tenant_id": str(fields["tenant_id"]) if fields.get("tenant_id") else None,
            "store_ids": [str(s) for s in fields.get("store_ids") or []],
            "read_only": bool(fields.get("read_only")), "admin": bool(fields.get("admin")),
            "rate_limit": fields.get("rate_limit")}


def record_refusal(engine: Engine, client: ClientInfo, reason: str, fields: dict | None = None) -> None:
    with engine.begin() as conn:
        store.record_registration(conn, outcome="refused", reason=reason[:200], client_address=client.address,
                                  user_agent=(client.user_agent or None) and client.user_agent[:256],
                                  request_id=client.request_id, tenant_id=None, agent_id=None, key_id=None,
                                  details=_details(fields or {}))
    audit.warning("agent self-registration refused", extra={"reason": reason[:200],
                                                             "client_address": client.address})


def register_agent(engine: Engine, enabled: bool, client: ClientInfo, fields: dict) -> Registration:
    """Create a new tenant, an agent and its API key (read_write, or read with `read_only`).

    Every attempt is written to `agent_registrations`. :raise RegistrationDisabled: unless enabled.
    :raise InvalidRequest INVALID_NAME / TENANT_ID_NOT_ALLOWED. :raise NotPermitted ADMIN_NOT_ALLOWED.
    """
    refusal = None
    if not enabled:
        refusal = RegistrationDisabled("Public registration is disabled (PUBLIC_AGENT_REGISTRATION_ENABLED).")
    elif not fields["name"].strip():
        refusal = InvalidRequest("name is required.", code="INVALID_NAME")
    elif fields.get("tenant_id") is not None:
        refusal = InvalidRequest("tenantId is not allowed for self-service registration.",
                                 code="TENANT_ID_NOT_ALLOWED")
    elif fields.get("admin"):
        refusal = NotPermitted("Admin registration is not permitted.", code="ADMIN_NOT_ALLOWED")
    if refusal is not None:
        record_refusal(engine, client, refusal.code, fields)
        raise refusal
    tenant_id, agent_id = uuid.uuid4(), uuid.uuid4()
    permission = "read" if fields.get("read_only") else "read_write"
    secret, record = api_keys.create_api_key(
        engine, tenant_id=tenant_id, permissions=permission, store_ids=list(fields.get("store_ids") or []),
        agent_id=agent_id, rate_limit=fields.get("rate_limit"),
        description=f"self-registered agent: {fields['name'].strip()[:200]}")
    with engine.begin() as conn:
        store.record_registration(conn, outcome="registered", reason="REGISTERED", client_address=client.address,
                                  user_agent=(client.user_agent or None) and client.user_agent[:256],
                                  request_id=client.request_id, tenant_id=tenant_id, agent_id=agent_id,
                                  key_id=record.key_id, details=_details(fields))
    audit.info("agent self-registered", extra={"tenant_id": str(tenant_id), "agent_id": str(agent_id),
                                               "key_prefix": record.key_prefix, "client_address": client.address})
    return Registration(agent_id, tenant_id, secret, permission)
