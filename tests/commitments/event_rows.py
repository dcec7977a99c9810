"""Controls for commitment tests: append real-looking event rows to a stream, as the ingest service would.

Each row carries a real VES v1 event signing hash and an Ed25519 agent signature over it (or NULL for an unsigned
event), and the `streams` head moves with the rows. Replace with the real ingest once it lands.
"""

from __future__ import annotations

import datetime
import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.db.tables import events
from app.db.tables import streams
from app.ves.hashing import ZERO_HASH
from app.ves.hashing import EventSigningFields
from app.ves.hashing import event_signing_hash
from app.ves.hashing import payload_plain_hash
from app.ves.hashing import receipt_hash
from app.ves.signing import Ed25519Signer

AGENT_SEED = bytes(range(100, 132))
AGENT_ID = uuid.UUID("5b1f9c0e-1d6a-4c3e-9a55-2f1f1e0d7a01")
_signer = Ed25519Signer(AGENT_SEED)


def event_row(tenant_id: uuid.UUID, store_id: uuid.UUID, sequence_number: int, signed: bool = True) -> dict:
    """One `events` row for `sequence_number`; `agent_signature` is None when `signed` is False."""
    event_id = uuid.uuid4()
    payload = {"n": sequence_number}
    created_at = "2025-01-02T03:04:05Z"
    plain_hash = payload_plain_hash(payload)
    fields = EventSigningFields(
        ves_version=1, tenant_id=tenant_id, store_id=store_id, event_id=event_id, source_agent_id=AGENT_ID,
        agent_key_id=1, entity_type="order", entity_id=f"order-{sequence_number}", event_type="order.created",
        created_at=created_at, payload_kind=0, payload_plain_hash=plain_hash, payload_cipher_hash=ZERO_HASH,
    )
    signing_hash = event_signing_hash(fields)
    return {
        "tenant_id": tenant_id, "store_id": store_id, "sequence_number": sequence_number, "event_id": event_id,
        "ves_version": 1, "source_agent_id": AGENT_ID, "agent_key_id": 1, "entity_type": "order",
        "entity_id": f"order-{sequence_number}", "event_type": "order.created", "created_at_raw": created_at,
        "created_at": datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        "sequenced_at": datetime.datetime.now(datetime.timezone.utc), "payload_kind": 0, "payload": payload,
        "payload_plain_hash": plain_hash, "payload_cipher_hash": ZERO_HASH, "event_signing_hash": signing_hash,
        "agent_signature": _signer.sign(signing_hash) if signed else None, "entity_version": 1,
        "receipt_hash": receipt_hash(tenant_id, store_id, event_id, sequence_number, signing_hash),
    }


def append_events(engine, tenant_id: uuid.UUID, store_id: uuid.UUID, count: int,
                  unsigned: frozenset[int] = frozenset()) -> list[dict]:
    """Append `count` events after the stream's head (sequence numbers in `unsigned` get no agent signature) and
    move the head; returns the inserted rows in order."""
    with engine.begin() as conn:
        conn.execute(pg_insert(streams).values(tenant_id=tenant_id, store_id=store_id).on_conflict_do_nothing())
        head = conn.execute(
            sa.select(streams.c.head_sequence)
            .where(streams.c.tenant_id == tenant_id, streams.c.store_id == store_id).with_for_update()
        ).scalar_one()
        rows = [event_row(tenant_id, store_id, n, signed=n not in unsigned) for n in range(head + 1, head + count + 1)]
        if rows:
            conn.execute(events.insert(), rows)
        conn.execute(streams.update()
                     .where(streams.c.tenant_id == tenant_id, streams.c.store_id == store_id)
                     .values(head_sequence=head + count))
    return rows
