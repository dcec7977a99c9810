"""API keys and the one authorisation helper every blueprint uses: `require(permission, tenant_id, store_id)`.

Keys are `ssk_` + 256 random bits (base64url), shown once and stored as SHA-256 (a key has enough entropy that a
salted slow hash buys nothing). Every request looks its key up in the database, so a revoked key is refused on its
very next request on every worker. The bootstrap admin key from the environment is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from dataclasses import field

from flask import g
from flask import request

from app import runtime
from app.db.api_keys import ApiKeyRecord
from app.db.api_keys import find_api_key_by_hash
from app.errors import Forbidden
from app.errors import Unauthorized

PERMISSIONS = ("read", "read_write", "admin")
_RANK = {name: rank for rank, name in enumerate(PERMISSIONS)}
KEY_PREFIX = "ssk_"
_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'ApiKey realm="stateset-sequencer"'}


@dataclass(frozen=True)
class Principal:
    """Who is calling. `tenant_id None` means a global admin (every tenant)."""

    key_id: uuid.UUID | None
    tenant_id: uuid.UUID | None
    store_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    permissions: str = "read"
    agent_id: uuid.UUID | None = None
    rate_limit: int | None = None

    def allows(self, permission: str, tenant_id: uuid.UUID | None = None, store_id: uuid.UUID | None = None) -> bool:
        if _RANK[self.permissions] < _RANK[permission]:
            return False
        if self.tenant_id is None:
            return True
        if tenant_id is None or tenant_id != self.tenant_id:
            return False
        return store_id is None or not self.store_ids or store_id in self.store_ids

    @property
    def rate_limit_key(self) -> str:
        return f"key:{self.key_id or 'bootstrap'}"


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def key_display_prefix(key: str) -> str:
    """The non-secret leading part shown in listings (`ssk_` + 8 characters)."""
    return key[: len(KEY_PREFIX) + 8]


def principal_from_record(record: ApiKeyRecord) -> Principal:
    return Principal(
        key_id=record.key_id,
        tenant_id=record.tenant_id,
        store_ids=frozenset(record.store_ids),
        permissions=record.permissions,
        agent_id=record.agent_id,
        rate_limit=record.rate_limit,
    )


def presented_key() -> str | None:
    """The key from `Authorization: ApiKey <key>` or `Authorization: Bearer <key>`, else None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() not in ("apikey", "bearer"):
        return None
    value = value.strip()
    return value if 0 < len(value) <= 256 else None


def authenticate() -> Principal:
    """Resolve the caller once per request (cached on `g`). Raises `Unauthorized` for a missing/unknown/revoked key."""
    cached = g.get("principal")
    if cached is not None:
        return cached
    key = presented_key()
    if key is None:
        raise Unauthorized("An API key is required (Authorization: ApiKey <key>).", headers=_UNAUTHORIZED_HEADERS)
    settings = runtime.current().settings
    bootstrap = settings.bootstrap_admin_api_key
    if bootstrap and hmac.compare_digest(key.encode("utf-8", "surrogatepass"), bootstrap.encode()):
        principal = Principal(key_id=None, tenant_id=None, permissions="admin")
    else:
        digest = hash_api_key(key)
        with runtime.current().engine.connect() as conn:
            record = find_api_key_by_hash(conn, digest)
        if record is None or not hmac.compare_digest(record.key_hash, digest):
            raise Unauthorized("The API key is not valid.", headers=_UNAUTHORIZED_HEADERS)
        if record.revoked_at is not None:
            raise Unauthorized("The API key has been revoked.", code="API_KEY_REVOKED", headers=_UNAUTHORIZED_HEADERS)
        principal = principal_from_record(record)
    g.principal = principal
    return principal


def require(permission: str, tenant_id: uuid.UUID | None = None, store_id: uuid.UUID | None = None) -> Principal:
    """Authenticate and check that the key has `permission` on `tenant_id`/`store_id`.

    :raise 401: no, unknown or revoked key.
    :raise 403: the key lacks the permission or the scope. The message is the same whether or not the other
        tenant's data exists.
    """
    principal = authenticate()
    if not principal.allows(permission, tenant_id, store_id):
        if _RANK[principal.permissions] < _RANK[permission]:
            raise Forbidden(f"This API key lacks the {permission!r} permission.", code="INSUFFICIENT_PERMISSION")
        raise Forbidden("This API key may not access that tenant or store.")
    return principal


def require_permission(permission: str) -> Principal:
    """Authenticate and check the permission level only; scope is then judged per tenant/store (e.g. per event).

    :raise 401: no, unknown or revoked key.
    :raise 403: the key's permission is below `permission`.
    """
    principal = authenticate()
    if _RANK[principal.permissions] < _RANK[permission]:
        raise Forbidden(f"This API key lacks the {permission!r} permission.", code="INSUFFICIENT_PERMISSION")
    return principal


def public(view):
    """Mark a view as reachable without an API key."""
    view.is_public = True
    return view
