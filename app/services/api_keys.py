"""API keys: the caller they stand for (`Principal`), their secrets, and creating, listing and revoking them (used by
the admin API and the admin CLI).

Keys are `ssk_` + 256 random bits (base64url), shown once and stored as SHA-256 (a key has enough entropy that a
salted slow hash buys nothing).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy import Engine

from app.db import api_keys as store
from app.db.api_keys import ApiKeyRecord
from app.db.key_cache import ChangeAcknowledgements
from app.db.key_cache import engine_connector
from app.db.notify import LISTENER_APPLICATION_NAME
from app.errors import InvalidRequest
from app.errors import NotFound
from app.errors import NotPermitted

audit = logging.getLogger("stateset_sequencer.audit")

PERMISSIONS = ("read", "read_write", "admin")
_RANK = {name: rank for rank, name in enumerate(PERMISSIONS)}
KEY_PREFIX = "ssk_"


@dataclass(frozen=True)
class Principal:
    """Who is calling. `tenant_id None` means a global admin (every tenant)."""

    key_id: uuid.UUID | None
    tenant_id: uuid.UUID | None
    store_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    permissions: str = "read"
    agent_id: uuid.UUID | None = None
    rate_limit: int | None = None

    def has_permission(self, permission: str) -> bool:
        """Whether the key's permission is `permission` or a higher one (read < read_write < admin)."""
        return _RANK[self.permissions] >= _RANK[permission]

    def allows(self, permission: str, tenant_id: uuid.UUID | None = None, store_id: uuid.UUID | None = None) -> bool:
        if not self.has_permission(permission):
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


def create_api_key(engine: Engine, *, tenant_id: uuid.UUID | None, permissions: str,
                   store_ids: list[uuid.UUID] | None = None, agent_id: uuid.UUID | None = None,
                   rate_limit: int | None = None, description: str | None = None) -> tuple[str, ApiKeyRecord]:
    """Create a key and return `(secret, record)`. The secret exists only in the return value."""
    if permissions not in PERMISSIONS:
        raise InvalidRequest(f"permissions must be one of {', '.join(PERMISSIONS)}.", code="INVALID_REQUEST")
    if tenant_id is None and permissions != "admin":
        raise InvalidRequest("Only admin keys may omit tenant_id.", code="INVALID_REQUEST")
    secret = generate_api_key()
    with engine.begin() as conn:
        record = store.insert_api_key(
            conn, key_hash=hash_api_key(secret), key_prefix=key_display_prefix(secret), tenant_id=tenant_id,
            store_ids=sorted(set(store_ids or []), key=str), permissions=permissions, agent_id=agent_id,
            rate_limit=rate_limit, description=description,
        )
    audit.info("API key created", extra={"key_id": str(record.key_id), "key_prefix": record.key_prefix,
                                         "tenant_id": str(tenant_id) if tenant_id else None,
                                         "permissions": permissions})
    return secret, record


def list_api_keys(engine: Engine, tenant_id: uuid.UUID | None) -> list[ApiKeyRecord]:
    with engine.connect() as conn:
        return store.list_api_keys(conn, tenant_id)


LIST_BATCH = 500


def api_keys_in_batches(engine: Engine, tenant_id: uuid.UUID | None, visible) -> Iterator[list[ApiKeyRecord]]:
    """`list_api_keys` read `LIST_BATCH` keys at a time (each batch its own short read), keeping those `visible`
    (the caller's scope): a list of any length holds one batch in memory."""
    after = None
    while True:
        with engine.connect() as conn:
            rows = store.list_api_keys_after(conn, tenant_id, after, LIST_BATCH)
        yield [record for record in rows if visible(record)]
        if len(rows) < LIST_BATCH:
            return
        after = (rows[-1].created_at, rows[-1].key_id)


def get_api_key(engine: Engine, key_id: uuid.UUID) -> ApiKeyRecord | None:
    with engine.connect() as conn:
        return store.get_api_key(conn, key_id)


REVOCATION_ACK_WAIT_SECONDS = 2.0
"""Longest wait, after a revocation commits, for every worker's listener to acknowledge it (its cache emptied)."""


def revoke_api_key(engine: Engine, key_id: uuid.UUID, connect_listener=None) -> bool:
    """Revoke `key_id` (first revocation time wins), and return only once every listener connection open on the
    database — every worker of every replica — has emptied its key cache (at most REVOCATION_ACK_WAIT_SECONDS;
    a warning names how many did not answer), so the key is refused by every worker from the next request on.
    The acknowledgements are awaited on a connection from `connect_listener` (the listen URL's:
    `StreamListener.new_connection`), else on a new connection to `engine`'s database."""
    acknowledgements = None
    try:
        acknowledgements = ChangeAcknowledgements(connect_listener or engine_connector(engine))
    except Exception as exc:  # noqa: BLE001 - revoking must not depend on LISTEN working
        audit.warning("API key revocation: cannot listen for acknowledgements",
                      extra={"error_type": type(exc).__name__})
    try:
        with engine.begin() as conn:
            found = store.revoke_api_key(conn, key_id)
            witnesses = store.change_witnesses(conn, LISTENER_APPLICATION_NAME) if found and acknowledgements else None
        if found:
            audit.info("API key revoked", extra={"key_id": str(key_id)})
        if witnesses is not None:
            txid, pids = witnesses
            missing = acknowledgements.wait(txid, pids, REVOCATION_ACK_WAIT_SECONDS)
            if missing:
                audit.warning("API key revocation: not every worker acknowledged in time (they drop the key as soon "
                              "as they read the NOTIFY, at the latest after API_KEY_CACHE_SECONDS)",
                              extra={"key_id": str(key_id), "listeners": len(pids), "unacknowledged": len(missing)})
    finally:
        if acknowledgements is not None:
            acknowledgements.close()
    return found


def revoke_api_key_of(engine: Engine, key_id: uuid.UUID, visible, admin_key_id: uuid.UUID | None,
                      connect_listener=None) -> None:
    """Revoke `key_id` on behalf of an admin key: `visible(record)` says whether the key is within the admin's scope
    (`app.auth.key_in_scope`); `connect_listener` as for `revoke_api_key`.

    :raise NotFound: no such key, or one outside the admin's scope (the same answer, so existence is not revealed).
    :raise NotPermitted SELF_REVOCATION: the admin key would revoke itself.
    """
    record = get_api_key(engine, key_id)
    if record is None or not visible(record):
        raise NotFound("No such API key.")
    if admin_key_id == record.key_id:
        raise NotPermitted("An API key cannot revoke itself.", code="SELF_REVOCATION")
    revoke_api_key(engine, key_id, connect_listener)
