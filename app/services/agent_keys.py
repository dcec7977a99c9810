"""Registering, listing and revoking agent signing keys. Ingest reads the registry fresh for every request, so a
revocation takes effect on the very next request on every worker."""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Iterator

from sqlalchemy import Engine

from app.db import agent_keys as store
from app.db.agent_keys import AgentKeyRecord
from app.errors import Conflict
from app.errors import NotFound

audit = logging.getLogger("stateset_sequencer.audit")


def register_agent_key(engine: Engine, tenant_id: uuid.UUID, agent_id: uuid.UUID, key_id: int, public_key: bytes,
                       valid_from: datetime.datetime | None = None,
                       valid_to: datetime.datetime | None = None) -> tuple[AgentKeyRecord, bool]:
    """Register a key. Re-registering the same public key is idempotent (`created` False).

    :raise Conflict AGENT_KEY_CONFLICT: the key id is registered with another public key.
    """
    with engine.begin() as conn:
        record, created = store.insert_agent_key_if_absent(conn, tenant_id, agent_id, key_id, public_key,
                                                           valid_from, valid_to)
    if not created and record.public_key != public_key:
        raise Conflict(f"Agent key {key_id} of agent {agent_id} is already registered with a different public key.",
                       code="AGENT_KEY_CONFLICT")
    if created:
        audit.info("agent key registered", extra={"tenant_id": str(tenant_id), "agent_id": str(agent_id),
                                                  "agent_key_id": key_id})
    return record, created


def list_agent_keys(engine: Engine, tenant_id: uuid.UUID, agent_id: uuid.UUID | None = None) -> list[AgentKeyRecord]:
    with engine.connect() as conn:
        return store.list_agent_keys(conn, tenant_id, agent_id)


LIST_BATCH = 500


def agent_keys_in_batches(engine: Engine, tenant_id: uuid.UUID, agent_id: uuid.UUID | None = None
                          ) -> Iterator[list[AgentKeyRecord]]:
    """`list_agent_keys` read `LIST_BATCH` keys at a time, each batch its own short read: a list of any length
    holds one batch in memory (the view streams it, `app.api.operations.render_listing`)."""
    after = None
    while True:
        with engine.connect() as conn:
            rows = store.list_agent_keys_after(conn, tenant_id, agent_id, after, LIST_BATCH)
        yield rows
        if len(rows) < LIST_BATCH:
            return
        after = (rows[-1].agent_id, rows[-1].key_id)


def revoke_agent_key(engine: Engine, tenant_id: uuid.UUID, agent_id: uuid.UUID, key_id: int) -> AgentKeyRecord:
    with engine.begin() as conn:
        record = store.revoke_agent_key(conn, tenant_id, agent_id, key_id)
    if record is None:
        raise NotFound("No such agent key.")
    audit.info("agent key revoked", extra={"tenant_id": str(tenant_id), "agent_id": str(agent_id),
                                           "agent_key_id": key_id})
    return record
