"""Upgrading with data (issue 13 item 7): a database of the previous schema (Alembic 0001) that already holds
events is migrated, then its logs are built by `stateset-sequencer-admin build-logs` while ingest continues, with
the backfill killed midway and resumed. Nothing is built inside the migration."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from alembic import command

from app.client.signer import AgentSigner
from app.db.locks import stream_lock_key
from app.db.migrations import alembic_config
from app.db.migrations import upgrade_to_head
from app.db.tables import LOG_NODES_MIN_LEVEL
from app.services import stream_logs as service
from tests.commitments.event_rows import append_events
from tests.controls import Stream
from tests.controls import api_key
from tests.log.conftest import entries_from_events
from tests.log.conftest import naive_root
from tests.log.conftest import stored_nodes
from tests.support.pg import create_database
from tests.support.pg import drop_database
from tests.support.servers import ROOT
from tests.ves import tlog_reference as ref

OLD_STREAM_SIZES = (1200, 301, 1)
FIRST_TENANT = uuid.UUID("00000000-0000-4000-8000-000000000001")


@pytest.fixture
def previous_schema_database(database_server_url):
    """A database at revision 0001 holding events in three streams (some unsigned), as the previous release left
    it, then migrated to head. Yields `(url, [(tenant_id, store_id), ...])`; the largest stream's tenant sorts
    first, so the backfill (which walks streams in key order) starts with it."""
    url = create_database(database_server_url, prefix="seqlogs")
    engine = sa.create_engine(url)
    try:
        command.upgrade(alembic_config(url), "0001")
        with engine.connect() as conn:
            assert not sa.inspect(conn).has_table("stream_logs")
        streams = []
        for position, size in enumerate(OLD_STREAM_SIZES):
            tenant, store = (FIRST_TENANT if position == 0 else uuid.uuid4()), uuid.uuid4()
            for start in range(0, size, 400):
                count = min(400, size - start)
                append_events(engine, tenant, store, count, unsigned=frozenset(range(start + 1, start + count, 5)))
            streams.append((tenant, store))
        assert upgrade_to_head(engine) is True
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM stream_logs")).scalar() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM log_nodes")).scalar() == 0
        yield url, streams
    finally:
        engine.dispose()
        drop_database(database_server_url, url)


def _writer_for(client, engine, tenant_id: uuid.UUID, store_id: uuid.UUID) -> Stream:
    """A tests.controls.Stream writing to an existing stream (new agent and key under its tenant)."""
    writer = Stream.__new__(Stream)
    writer.client, writer.engine, writer.ves_version = client, engine, 1
    writer.tenant_id, writer.store_id, writer.agent_id = tenant_id, store_id, uuid.uuid4()
    writer.key = api_key(engine, tenant_id, "read_write")
    writer.signer = AgentSigner(os.urandom(32), tenant_id, writer.agent_id, 1)
    response = client.post("/api/v1/agents/keys", headers=writer.headers, json={
        "tenantId": str(tenant_id), "agentId": str(writer.agent_id), "keyId": 1,
        "publicKey": writer.signer.public_key_hex})
    assert response.status_code == 200, response.json
    return writer


def _cli(url: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=url, DB_MIGRATE_ON_STARTUP="0", LOG_LEVEL="warning", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "app.cli", "build-logs", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _assert_log_is_the_events(engine, tenant, store, expect_complete: bool = True) -> int:
    """The stored part of the log (complete or not) is exactly the tree of the first `tree_size` events. The
    status is read before the events, so events ingested meanwhile only lengthen the list."""
    with engine.connect() as conn:
        status = service.log_status(conn, tenant, store)
    entries = entries_from_events(engine, tenant, store)
    assert len(entries) >= status.head_sequence >= status.tree_size
    if expect_complete:
        assert status.complete and len(entries) == status.head_sequence
    size = status.tree_size
    expected = {(level, index): ref.mth(entries[index << level:(index + 1) << level])
                for level in range(LOG_NODES_MIN_LEVEL, max(size, 1).bit_length()) for index in range(size >> level)}
    assert stored_nodes(engine, tenant, store) == expected
    if size:
        with engine.connect() as conn:
            assert service.tree_root(conn, tenant, store, size) == naive_root(entries[:size])
    return size


def _wait_until_a_backfill_waits_for_a_lock(engine, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")).scalar()
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("the backfill never reached the held stream lock")


def test_backfill_killed_midway_and_resumed_while_ingest_continues(previous_schema_database, make_app, log_key):
    """Run 1 is bounded (300 events of the big stream); run 2 is SIGKILLed inside its next chunk's transaction
    (while it waits for the stream lock the test holds); run 3 finishes. Two writers ingest into an old and a
    new stream throughout, except while the test holds the lock."""
    url, old_streams = previous_schema_database
    app = make_app(database_url=url)
    engine = app.extensions["sequencer"].engine
    client = app.test_client()
    big_tenant, big_store = old_streams[0]
    old_writer = _writer_for(client, engine, big_tenant, big_store)
    new_writer = Stream(client, engine)

    stop = threading.Event()
    open_gate = threading.Event()
    open_gate.set()
    in_request = threading.Lock()
    errors: list[BaseException] = []
    rounds = {"old": 0, "new": 0}

    def ingest() -> None:
        writer_client = app.test_client()
        try:
            while not stop.is_set():
                open_gate.wait()
                with in_request:
                    for name, writer in (("old", old_writer), ("new", new_writer)):
                        events = [writer.event(f"{name}-{rounds[name]}-{i}") for i in range(5)]
                        response = writer_client.post("/api/v1/ves/events/ingest", headers=writer.headers,
                                                      json={"agent_id": str(writer.agent_id), "events": events})
                        assert response.status_code == 200 and response.json["eventsAccepted"] == 5, response.json
                        rounds[name] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=ingest)
    thread.start()
    try:
        bounded = _cli(url, "--chunk", "100", "--max-events", "300")
        out, err = bounded.communicate(timeout=120)
        assert bounded.returncode == 0, err
        assert "300 events logged" in out, out
        assert _assert_log_is_the_events(engine, big_tenant, big_store, expect_complete=False) == 300

        open_gate.clear()
        with in_request:
            holder = engine.connect()
            try:
                holder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": stream_lock_key(big_tenant, big_store)})
                killed = _cli(url, "--chunk", "100")
                try:
                    _wait_until_a_backfill_waits_for_a_lock(engine)
                finally:
                    os.kill(killed.pid, signal.SIGKILL)
                    killed.communicate(timeout=30)
                assert killed.returncode == -signal.SIGKILL
            finally:
                holder.execute(sa.text("SELECT pg_advisory_unlock_all()"))
                holder.close()
        open_gate.set()
        assert _assert_log_is_the_events(engine, big_tenant, big_store, expect_complete=False) == 300
        with pytest.raises(service.LogNotReady):
            service.current_checkpoint(engine, big_tenant, big_store, log_key, max_delay_seconds=0)
        big_query = f"tenant_id={big_tenant}&store_id={big_store}"
        for url_path in (f"/api/v1/ves/log/checkpoint?{big_query}", f"/api/v1/ves/log/inclusion/1?{big_query}",
                         f"/api/v1/ves/log/consistency?{big_query}&first=0&second=1"):
            pending = client.get(url_path, headers=old_writer.headers)
            assert (pending.status_code, pending.json["code"]) == (503, "LOG_NOT_READY"), url_path

        resumed = _cli(url, "--chunk", "100")
        out, err = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, err
        assert "remaining: 0 streams, 0 events" in out, out
    finally:
        open_gate.set()
        stop.set()
        thread.join(timeout=120)
    assert errors == []
    assert rounds["old"] > 0 and rounds["new"] > 0
    old_writer.ingest([old_writer.event("after-backfill")])
    served = client.get(f"/api/v1/ves/log/checkpoint?tenant_id={big_tenant}&store_id={big_store}",
                        headers=old_writer.headers)
    assert served.status_code == 200, served.get_data()
    assert served.get_data(as_text=True).split("\n")[1] == str(OLD_STREAM_SIZES[0] + 5 * rounds["old"] + 1)
    for tenant, store in old_streams + [(new_writer.tenant_id, new_writer.store_id)]:
        _assert_log_is_the_events(engine, tenant, store)
        signed = service.current_checkpoint(engine, tenant, store, log_key, max_delay_seconds=0)
        assert signed.checkpoint.root_hash == naive_root(entries_from_events(engine, tenant, store))
    with engine.connect() as conn:
        big = service.log_status(conn, big_tenant, big_store)
    assert big.head_sequence == OLD_STREAM_SIZES[0] + 5 * rounds["old"] + 1


def test_backfill_is_bounded_and_idempotent(previous_schema_database):
    url, old_streams = previous_schema_database
    engine = sa.create_engine(url)
    try:
        summary = service.backfill_logs(engine, chunk_events=50, max_events=120)
        assert summary.events_logged == 120 and summary.events_remaining == sum(OLD_STREAM_SIZES) - 120
        assert summary.streams_remaining >= 1 and summary.streams_completed + summary.streams_remaining == 3
        first_completed = summary.streams_completed
        for tenant, store in old_streams:
            _assert_log_is_the_events(engine, tenant, store, expect_complete=False)
        summary = service.backfill_logs(engine, chunk_events=500)
        assert (summary.streams_remaining, summary.events_remaining) == (0, 0)
        assert summary.events_logged == sum(OLD_STREAM_SIZES) - 120
        assert first_completed + summary.streams_completed == 3
        assert service.backfill_logs(engine).events_logged == 0
        for tenant, store in old_streams:
            _assert_log_is_the_events(engine, tenant, store)
    finally:
        engine.dispose()


def test_build_logs_cli_refuses_a_bad_chunk():
    run = _cli("postgresql://nobody@127.0.0.1:1/never-contacted", "--chunk", "0")
    out, err = run.communicate(timeout=60)
    assert run.returncode == 2 and "--chunk" in err
