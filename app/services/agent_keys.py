"""Registering and revoking agent signing keys, and the short per-worker cache ingest reads them through."""

from __future__ import annotations

import datetime
import threading
import time
import uuid

from sqlalchemy import Engine

from app.db import agent_keys as store
from app.db.agent_keys import AgentKeyRecord
from app.errors import Conflict
from app.errors import NotFound


def register_agent_key(engine: Engine, tenant_id: uuid.UUID, agent_id: uuid.UUID, key_id: int, public_key: bytes,
                       valid_from: datetime.datetime | None = None,
                       valid_to: datetime.datetime | None = None) -> tuple[AgentKeyRecord, bool]:
    """Register a key. Re-registering the same public key is idempotent (`created` False); another key → 409."""
    with engine.begin() as conn:
        record, created = store.insert_agent_key_if_absent(conn, tenant_id, agent_id, key_id, public_key,
                                                           valid_from, valid_to)
    if not created and record.public_key != public_key:
        raise Conflict(f"Agent key {key_id} of agent {agent_id} is already registered with a different public key.",
                       code="AGENT_KEY_CONFLICT")
    return record, created


def list_agent_keys(engine: Engine, tenant_id: uuid.UUID, agent_id: uuid.UUID | None = None) -> list[AgentKeyRecord]:
    with engine.connect() as conn:
        return store.list_agent_keys(conn, tenant_id, agent_id)


def revoke_agent_key(engine: Engine, tenant_id: uuid.UUID, agent_id: uuid.UUID, key_id: int) -> AgentKeyRecord:
    with engine.begin() as conn:
        record = store.revoke_agent_key(conn, tenant_id, agent_id, key_id)
    if record is None:
        raise NotFound("No such agent key.")
    return record


class AgentKeyCache:
    """Per-worker cache of registry rows, at most `ttl` seconds old. Revocation is re-checked inside the sequencing
    transaction (see services/ingest.py), so the cache can never let a revoked key through."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._entries: dict[tuple[uuid.UUID, uuid.UUID, int], tuple[float, AgentKeyRecord | None]] = {}
        self._lock = threading.Lock()

    def get_many(self, engine: Engine, tenant_id: uuid.UUID,
                 coordinates: set[tuple[uuid.UUID, int]]) -> dict[tuple[uuid.UUID, int], AgentKeyRecord]:
        now = time.monotonic()
        found: dict[tuple[uuid.UUID, int], AgentKeyRecord] = {}
        missing = set()
        with self._lock:
            for agent_id, key_id in coordinates:
                entry = self._entries.get((tenant_id, agent_id, key_id))
                if entry is not None and now - entry[0] < self.ttl and entry[1] is not None:
                    found[(agent_id, key_id)] = entry[1]
                else:
                    missing.add((agent_id, key_id))
        if missing:
            with engine.connect() as conn:
                loaded = store.find_agent_keys(conn, tenant_id, missing)
            with self._lock:
                if len(self._entries) > 10000:
                    self._entries.clear()
                for coordinate, record in loaded.items():
                    self._entries[(tenant_id, *coordinate)] = (now, record)
            found.update(loaded)
        return found
