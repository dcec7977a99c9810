"""Fixtures for the per-stream transparency logs: the log key, fresh streams with mixed signed and unsigned events
ingested through the real ingest path, and an independent recomputation of a stream's log from its event rows."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from app.services.stream_logs import LogKey
from app.ves.merkle import leaf_hash as ves_leaf_hash
from tests.controls import Stream
from tests.ves import tlog_reference as ref

LOG_SEED = bytes(range(64, 96))
LOG_ORIGIN = "sequencer.test/ves"


@pytest.fixture(scope="session")
def log_key() -> LogKey:
    return LogKey(LOG_ORIGIN, LOG_SEED)


class LogStream(Stream):
    """A fresh stream (tests.controls.Stream) whose events alternate between the signed and the unsigned endpoint."""

    def add(self, count: int, unsigned_every: int = 3) -> None:
        """Ingest `count` events in one request per kind: every `unsigned_every`-th is sent unsigned."""
        signed, unsigned = [], []
        for i in range(count):
            entity = f"e-{uuid.uuid4().hex[:8]}"
            if unsigned_every and i % unsigned_every == unsigned_every - 1:
                unsigned.append({"event_id": str(uuid.uuid4()), "tenant_id": str(self.tenant_id),
                                 "store_id": str(self.store_id), "entity_type": "order", "entity_id": entity,
                                 "event_type": "order.noted", "payload": {"i": i}})
            else:
                signed.append(self.event(entity, {"i": i}))
        if signed:
            self.ingest(signed)
        if unsigned:
            response = self.client.post("/api/v1/events/ingest", headers=self.headers,
                                        json={"agent_id": str(self.agent_id), "events": unsigned})
            assert response.status_code == 200 and response.json["events_accepted"] == len(unsigned), response.json


@pytest.fixture
def log_stream(client, engine) -> LogStream:
    return LogStream(client, engine)


@pytest.fixture
def make_log_stream(client, engine):
    return lambda: LogStream(client, engine)


def entries_from_events(engine, tenant_id: uuid.UUID, store_id: uuid.UUID) -> list[bytes]:
    """The stream's log entries recomputed from the stored events: VES leaf hashes in sequence order (64 zero
    bytes stand in for a missing agent signature, VES.md)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT sequence_number, event_signing_hash, agent_signature FROM events "
            "WHERE tenant_id = :t AND store_id = :s ORDER BY sequence_number"), {"t": tenant_id, "s": store_id}).all()
    assert [r.sequence_number for r in rows] == list(range(1, len(rows) + 1))
    return [ves_leaf_hash(tenant_id, store_id, r.sequence_number, bytes(r.event_signing_hash),
                          bytes(r.agent_signature) if r.agent_signature is not None else bytes(64)) for r in rows]


def naive_root(entries: list[bytes]) -> bytes:
    return ref.mth(entries)


def stored_nodes(engine, tenant_id: uuid.UUID, store_id: uuid.UUID) -> dict[tuple[int, int], bytes]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT level, node_index, hash FROM log_nodes WHERE tenant_id = :t AND "
                                    "store_id = :s"), {"t": tenant_id, "s": store_id}).all()
    return {(r.level, r.node_index): bytes(r.hash) for r in rows}
