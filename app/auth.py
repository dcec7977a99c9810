"""Who is calling, per request, and the one authorisation helper every blueprint uses: `require(permission,
tenant_id, store_id)`, `require_tenant_wide` for tenant-wide resources, `require_key_creation` and `key_in_scope` for
API keys. The scope model they enforce is docs/SECURITY.md.

Each worker caches the key records it has looked up (`Runtime.api_keys`, `app.db.key_cache.NotifiedCache`): any
change to api_keys NOTIFYs every worker of every replica at commit (a trigger, alembic 0007), which empties its
cache, and nothing is served from the cache unless the worker's LISTEN connection is live and verified; entries
expire after API_KEY_CACHE_SECONDS regardless. So a revoked key is refused on its next request on every worker
(tests/test_key_cache.py, through gunicorn). The bootstrap admin key from the environment is compared in constant
time. Keys themselves (`Principal`,
hashing) are `app/services/api_keys.py`.
"""

from __future__ import annotations

import hmac
import uuid

from flask import g
from flask import request

from app import runtime
from app.metrics import API_KEY_LOOKUPS
from app.db.api_keys import find_api_key_by_hash
from app.errors import NotPermitted
from app.errors import Unauthenticated
from app.services.api_keys import Principal
from app.services.api_keys import hash_api_key
from app.services.api_keys import principal_from_record


def presented_key() -> str | None:
    """The key from `Authorization: ApiKey <key>`, `Authorization: Bearer <key>`, a bare `Authorization: <key>`
    (no scheme, as the original sequencer's clients send it) or, without an Authorization header, `X-API-Key: <key>`;
    else None."""
    header = request.headers.get("Authorization")
    if header is None:
        value = request.headers.get("X-API-Key", "").strip()
    else:
        scheme, _, value = header.strip().partition(" ")
        if not value:
            value = scheme
        elif scheme.lower() not in ("apikey", "bearer"):
            return None
    value = value.strip()
    return value if 0 < len(value) <= 256 else None


def authenticate() -> Principal:
    """Resolve the caller once per request (cached on `g`).

    :raise Unauthenticated: a missing, unknown or revoked key.
    """
    cached = g.get("principal")
    if cached is not None:
        return cached
    key = presented_key()
    if key is None:
        raise Unauthenticated("An API key is required (Authorization: ApiKey <key>).", code="missing_auth")
    settings = runtime.current().settings
    bootstrap = settings.bootstrap_admin_api_key
    if bootstrap and hmac.compare_digest(key.encode("utf-8", "surrogatepass"), bootstrap.encode()):
        principal = Principal(key_id=None, tenant_id=None, permissions="admin")
    else:
        digest = hash_api_key(key)
        record = _find_api_key(runtime.current(), digest)
        if record is None or not hmac.compare_digest(record.key_hash, digest):
            raise Unauthenticated("The API key is not valid.", code="invalid_api_key")
        if record.revoked_at is not None:
            raise Unauthenticated("The API key has been revoked.", code="invalid_api_key")
        principal = principal_from_record(record)
    g.principal = principal
    return principal


def _find_api_key(rt, digest: bytes):
    """The key's record from the worker's cache, else the database (cached if found)."""
    from_database = []

    def load():
        from_database.append(True)
        with rt.engine.connect() as conn:
            return find_api_key_by_hash(conn, digest)

    record = rt.api_keys.get(digest, load) if rt.api_keys is not None else load()
    API_KEY_LOOKUPS.labels(source="database" if from_database else "cache").inc()
    return record


def require(permission: str, tenant_id: uuid.UUID | None = None, store_id: uuid.UUID | None = None) -> Principal:
    """Authenticate and check that the key has `permission` on `tenant_id`/`store_id`.

    :raise 401: no, unknown or revoked key.
    :raise 403: the key lacks the permission or the scope. The message is the same whether or not the other
        tenant's data exists.
    """
    principal = authenticate()
    if not principal.allows(permission, tenant_id, store_id):
        if not principal.has_permission(permission):
            raise NotPermitted(f"This API key lacks the {permission!r} permission.", code="insufficient_permissions")
        if store_id is not None and principal.allows(permission, tenant_id):
            raise NotPermitted("This API key may not access that store.", code="store_access_denied")
        raise NotPermitted("This API key may not access that tenant or store.")
    return principal


def require_tenant_wide(permission: str, tenant_id: uuid.UUID | None, agent_id: uuid.UUID | None = None) -> Principal:
    """Authenticate and check `permission` over the *whole* tenant: for tenant-wide resources (agent signing keys,
    schemas, admin reads of the whole tenant). A key limited to some stores is refused even within its own tenant,
    and so is a key bound to one agent, except for a resource of that very agent (`agent_id`: its signing keys).

    :raise 401: no, unknown or revoked key.
    :raise 403: the key lacks the permission, belongs to another tenant, is limited to some stores
        (TENANT_SCOPE_REQUIRED), or is bound to another agent (AGENT_SCOPE_REQUIRED).
    """
    principal = require(permission, tenant_id)
    if principal.tenant_id is not None and principal.store_ids:
        raise NotPermitted("This API key is limited to some stores; this needs a key for the whole tenant.",
                           code="TENANT_SCOPE_REQUIRED")
    if principal.agent_id is not None and principal.agent_id != agent_id:
        raise NotPermitted("This API key is bound to one agent; it may manage only that agent's keys.",
                           code="AGENT_SCOPE_REQUIRED")
    return principal


def require_key_creation(tenant_id: uuid.UUID | None, permissions: str, store_ids, agent_id: uuid.UUID | None
                         ) -> Principal:
    """Authenticate an admin key and check that the key it asks for is within its own scope: permission no higher,
    the same tenant, a store set within its own (a store-scoped key cannot mint a tenant-wide one), and the same
    agent binding. The bootstrap (global) admin may create any key.

    :raise 401: no, unknown or revoked key.
    :raise 403: not an admin key of that tenant, or the new key would be wider (SCOPE_WIDENING).
    """
    principal = require("admin", tenant_id)
    if principal.tenant_id is None:
        return principal
    if not principal.has_permission(permissions):
        raise NotPermitted("An API key may not create a key with a higher permission than its own.",
                           code="SCOPE_WIDENING")
    wanted = frozenset(store_ids or ())
    if principal.store_ids and (not wanted or not wanted <= principal.store_ids):
        raise NotPermitted("This API key is limited to some stores; it may create keys only for a subset of them.",
                           code="SCOPE_WIDENING")
    if principal.agent_id is not None and agent_id != principal.agent_id:
        raise NotPermitted("This API key is bound to one agent; the keys it creates must be bound to that agent.",
                           code="SCOPE_WIDENING")
    return principal


def key_in_scope(principal: Principal, record) -> bool:
    """Whether an admin `principal` may see and revoke the API key `record`: the bootstrap admin every key; a tenant
    key only keys of its tenant whose stores are within its own stores (when it is store-scoped) and whose agent
    binding is its own (when it is agent-bound)."""
    if principal.tenant_id is None:
        return True
    if record.tenant_id != principal.tenant_id:
        return False
    if principal.store_ids and not (record.store_ids and frozenset(record.store_ids) <= principal.store_ids):
        return False
    return principal.agent_id is None or record.agent_id == principal.agent_id


def require_permission(permission: str) -> Principal:
    """Authenticate and check the permission level only; scope is then judged per tenant/store (e.g. per event).

    :raise 401: no, unknown or revoked key.
    :raise 403: the key's permission is below `permission`.
    """
    principal = authenticate()
    if not principal.has_permission(permission):
        raise NotPermitted(f"This API key lacks the {permission!r} permission.", code="insufficient_permissions")
    return principal


def public(view):
    """Mark a view as reachable without an API key."""
    view.is_public = True
    return view
