"""The sequencing transaction's two statements (app/db/sequencing.py): `open_stream` reads after its lock is
granted, `write_stream_batch` writes everything or nothing, and ingest runs in one transaction on one connection."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg2.extensions
import pytest
import sqlalchemy as sa

from app.db import sequencing
from app.db.locks import stream_lock_key
from app.db.stream_logs import LogWriteConflict
from app.services.stream_logs import plan_log_growth


def _row(tenant, store, sequence_number, entity=("order", "o1"), entity_version=1):
    signing = sequence_number.to_bytes(32, "big")
    return {"tenant_id": tenant, "store_id": store, "sequence_number": sequence_number, "event_id": uuid.uuid4(),
            "command_id": None, "ves_version": 1, "source_agent_id": uuid.uuid4(), "agent_key_id": 1,
            "entity_type": entity[0], "entity_id": entity[1], "event_type": "t", "created_at_raw": "2025-01-01T00:00:00Z",
            "created_at": None, "sequenced_at": _now(), "payload_kind": 0,
            "payload": {"n": sequence_number}, "payload_encrypted": None, "payload_plain_hash": bytes(32),
            "payload_cipher_hash": bytes(32), "event_signing_hash": signing, "agent_signature": None,
            "base_version": None, "entity_version": entity_version, "receipt_hash": bytes(32),
            "sequencer_signature": None, "sequencer_key_version": 0}


def _now():
    import datetime

    return datetime.datetime.now(datetime.timezone.utc)


def _append(conn, tenant, store, count=1):
    state = sequencing.open_stream(conn, tenant, store, stream_lock_key(tenant, store), [], [], {("order", "o1")})
    rows = [_row(tenant, store, state.head + i + 1, entity_version=state.versions.get(("order", "o1"), 0) + i + 1)
            for i in range(count)]
    growth = plan_log_growth(tenant, store, state.log_size, state.log_frontier, rows)
    sequencing.write_stream_batch(conn, tenant, store, rows,
                                  {("order", "o1"): rows[-1]["entity_version"]}, rows[-1]["sequence_number"], growth)
    return state, rows


def test_open_stream_reads_what_the_previous_lock_holder_committed(engine):
    tenant, store = uuid.uuid4(), uuid.uuid4()
    seen = {}
    first = engine.connect()
    transaction = first.begin()
    _append(first, tenant, store, 3)  # holds the lock, not committed

    def second():
        with engine.begin() as conn:
            seen["state"] = sequencing.open_stream(conn, tenant, store, stream_lock_key(tenant, store), [], [],
                                                   {("order", "o1")})
            seen["at"] = time.monotonic()

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive(), "the second open_stream must wait for the lock"
    committed_at = time.monotonic()
    transaction.commit()
    first.close()
    thread.join(10)
    state = seen["state"]
    assert seen["at"] >= committed_at
    assert state.head == 3, "a read in the statement that waited for the lock would have seen head 0"
    assert state.versions == {("order", "o1"): 3}
    assert state.log_size == 3 and len(state.log_frontier) == 32 * bin(3).count("1")


def test_open_stream_finds_replays_by_event_id_and_command_id(engine):
    tenant, store = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as conn:
        _, rows = _append(conn, tenant, store, 2)
    with engine.begin() as conn:
        state = sequencing.open_stream(conn, tenant, store, stream_lock_key(tenant, store),
                                       [rows[1]["event_id"], uuid.uuid4()], [uuid.uuid4()], set())
    assert [(e.event_id, e.sequence_number) for e in state.existing] == [(rows[1]["event_id"], 2)]
    assert state.head == 2 and state.versions == {}


def test_write_stream_batch_writes_nothing_when_the_log_moved(engine):
    tenant, store = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as conn:
        _append(conn, tenant, store, 2)
    with pytest.raises(LogWriteConflict):
        with engine.begin() as conn:
            state = sequencing.open_stream(conn, tenant, store, stream_lock_key(tenant, store), [], [], set())
            rows = [_row(tenant, store, 3, entity_version=3)]
            growth = plan_log_growth(tenant, store, state.log_size, state.log_frontier, rows)
            stale = sequencing.LogGrowth(growth.previous_size - 1, growth.tree_size, growth.frontier, growth.nodes)
            sequencing.write_stream_batch(conn, tenant, store, rows, {("order", "o1"): 3}, 3, stale)
    with engine.connect() as conn:
        counts = conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM events WHERE tenant_id = :t AND store_id = :s), "
            "(SELECT head_sequence FROM streams WHERE tenant_id = :t AND store_id = :s), "
            "(SELECT version FROM entity_versions WHERE tenant_id = :t AND store_id = :s), "
            "(SELECT tree_size FROM stream_logs WHERE tenant_id = :t AND store_id = :s)"),
            {"t": tenant, "s": store}).one()
    assert tuple(counts) == (2, 2, 2, 2)


class _CountingCursor(psycopg2.extensions.cursor):
    executed: list | None = None

    def execute(self, query, vars=None):
        if _CountingCursor.executed is not None:
            _CountingCursor.executed.append(query if isinstance(query, str) else query.decode(errors="replace"))
        return super().execute(query, vars)


STATEMENT_BUDGET = 5
"""Statements of a single-event signed ingest once the API key is cached: the pool's ping, the transaction's
bounds, agent keys with schemas, open_stream, the write (docs/PERFORMANCE.md "Where the time goes"). A change that adds
one should say in that document what it costs."""


def test_a_single_event_request_uses_one_connection_one_transaction_and_five_statements(make_app):
    import os

    from app.client.signer import AgentSigner
    from app.services.agent_keys import register_agent_key
    from app.services.api_keys import create_api_key

    app = make_app()
    rt = app.extensions["sequencer"]
    sa.event.listen(rt.engine, "connect", lambda dbapi_connection, record: setattr(
        dbapi_connection, "cursor_factory", _CountingCursor))
    rt.engine.dispose()
    tenant, agent, store = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    signer = AgentSigner(os.urandom(32), tenant, agent, 1)
    register_agent_key(rt.engine, tenant_id=tenant, agent_id=agent, key_id=1, public_key=signer.public_key)
    secret, _ = create_api_key(rt.engine, tenant_id=tenant, permissions="read_write")
    headers = {"Authorization": f"ApiKey {secret}"}
    client = app.test_client()

    def post(entity):
        response = client.post("/api/v1/ves/events/ingest", headers=headers,
                               json={"events": [signer.build_event(store, "order", entity, "t", {"n": 1})]})
        assert response.status_code == 200 and response.json["eventsAccepted"] == 1

    post("o0")
    listener = rt.long_polls.listener
    deadline = time.monotonic() + 10
    while not listener.is_current("ves_api_keys") and time.monotonic() < deadline:
        time.sleep(0.01)
    post("o1")  # the key is cached from here on
    counts = {"checkout": 0, "commit": 0, "rollback": 0}
    hooks = [(name, (lambda name: lambda *args: counts.__setitem__(name, counts[name] + 1))(name)) for name in counts]
    for name, hook in hooks:
        sa.event.listen(rt.engine, name, hook)
    _CountingCursor.executed = executed = []
    try:
        post("o2")
    finally:
        _CountingCursor.executed = None
        for name, hook in hooks:
            sa.event.remove(rt.engine, name, hook)
    assert counts == {"checkout": 1, "commit": 1, "rollback": 0}
    assert len(executed) == STATEMENT_BUDGET, "\n".join(q[:90] for q in executed)
