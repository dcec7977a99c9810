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
