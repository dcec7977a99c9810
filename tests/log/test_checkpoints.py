"""Signed checkpoints (LOG.md §Checkpoints): persisted, never smaller, never inconsistent, under concurrency and a
killed worker; the merge-delay policy; refusal to sign over tampered storage or an unfinished log."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.db import stream_logs as store
from app.services import stream_logs as service
from app.ves import checkpoint as cp
from app.ves import tlog
from app.ves.note import NoteVerifier
from tests.commitments.event_rows import append_events
from tests.log.conftest import entries_from_events
from tests.log.conftest import naive_root
from tests.support.servers import ROOT

KILL_SCRIPT = Path(__file__).with_name("kill_while_signing.py")


def _verifier(log_key, stream) -> NoteVerifier:
    return NoteVerifier.parse(log_key.verifier_key(stream.tenant_id, stream.store_id))


def _checkpoints(engine, stream) -> list[store.CheckpointRow]:
    with engine.connect() as conn:
        return store.list_checkpoints(conn, stream.tenant_id, stream.store_id)


def _assert_signed_history_is_one_growing_log(engine, log_key, stream) -> None:
    """Every stored checkpoint verifies with the stream's key, has the root of the events at its size, sizes
    strictly grow, and each is provably consistent with the previous one from storage."""
    entries = entries_from_events(engine, stream.tenant_id, stream.store_id)
    rows = _checkpoints(engine, stream)
    verifier = _verifier(log_key, stream)
    sizes = [row.tree_size for row in rows]
    assert sizes == sorted(set(sizes))
    previous = None
    for row in rows:
        opened = cp.open_checkpoint(row.note.encode(), verifier)
        assert (opened.checkpoint.tree_size, opened.checkpoint.root_hash) == (row.tree_size, row.root_hash)
        assert row.root_hash == naive_root(entries[:row.tree_size])
        if previous is not None:
            with engine.connect() as conn:
                proof = service.prove_consistency(conn, stream.tenant_id, stream.store_id, previous.tree_size,
                                                  row.tree_size)
            assert tlog.verify_consistency(previous.tree_size, row.tree_size, proof, previous.root_hash,
                                           row.root_hash)
        previous = row


def test_an_empty_stream_has_the_signed_size_zero_checkpoint_and_stores_nothing(engine, log_key):
    tenant, store_id = uuid.uuid4(), uuid.uuid4()
    signed = service.current_checkpoint(engine, tenant, store_id, log_key, max_delay_seconds=5)
    verifier = NoteVerifier.parse(log_key.verifier_key(tenant, store_id))
    opened = cp.open_checkpoint(signed.note, verifier)
    assert (opened.checkpoint.tree_size, opened.checkpoint.root_hash) == (0, tlog.EMPTY_ROOT)
    assert signed.persisted is False
    assert service.sign_checkpoint(engine, tenant, store_id, log_key).note == signed.note
    with engine.connect() as conn:
        assert store.list_checkpoints(conn, tenant, store_id) == []


def test_sign_persists_and_signing_again_without_growth_reuses_it(engine, log_key, log_stream):
    log_stream.add(9)
    first = service.sign_checkpoint(engine, log_stream.tenant_id, log_stream.store_id, log_key)
    again = service.sign_checkpoint(engine, log_stream.tenant_id, log_stream.store_id, log_key)
    assert first == again and first.persisted and first.checkpoint.tree_size == 9
    assert first.checkpoint.origin == log_key.origin(log_stream.tenant_id, log_stream.store_id)
    assert first.note.decode().startswith(f"{first.checkpoint.origin}\n9\n")
    log_stream.add(4)
    grown = service.sign_checkpoint(engine, log_stream.tenant_id, log_stream.store_id, log_key)
    assert grown.checkpoint.tree_size == 13 and grown.signed_at >= first.signed_at
    assert [row.tree_size for row in _checkpoints(engine, log_stream)] == [9, 13]
    _assert_signed_history_is_one_growing_log(engine, log_key, log_stream)


@pytest.mark.parametrize("latest_size, age, tree_size, max_delay, due", [
    (None, None, 0, 5, False),
    (None, None, 1, 5, True),
    (10, 0.0, 10, 0, False),
    (10, 99.0, 10, 5, False),
    (10, 4.9, 11, 5, False),
    (10, 5.0, 11, 5, True),
    (10, 0.0, 11, 0, True),
    (12, 99.0, 11, 5, False),
])
def test_checkpoint_due(latest_size, age, tree_size, max_delay, due):
    now = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)
    signed_at = None if age is None else now - datetime.timedelta(seconds=age)
    assert service.checkpoint_due(latest_size, signed_at, tree_size, now, max_delay) is due


def test_current_checkpoint_serves_the_latest_until_the_merge_delay_and_then_signs(engine, log_key, log_stream):
    tenant, store_id = log_stream.tenant_id, log_stream.store_id
    log_stream.add(3)
    first = service.current_checkpoint(engine, tenant, store_id, log_key, max_delay_seconds=3600)
    assert first.checkpoint.tree_size == 3
    log_stream.add(2)
    assert service.current_checkpoint(engine, tenant, store_id, log_key, max_delay_seconds=3600) == first
    fresh = service.current_checkpoint(engine, tenant, store_id, log_key, max_delay_seconds=0)
    assert fresh.checkpoint.tree_size == 5
    with engine.connect() as conn:
        assert service.latest_checkpoint(conn, tenant, store_id, log_key) == fresh


def test_concurrent_signers_and_writers_never_sign_a_smaller_or_inconsistent_checkpoint(app, engine, log_key,
                                                                                     log_stream):
    tenant, store_id = log_stream.tenant_id, log_stream.store_id
    log_stream.add(2)
    stop = threading.Event()
    errors: list[BaseException] = []
    observed: dict[int, list[int]] = {}

    def writer() -> None:
        client = app.test_client()
        try:
            for round_number in range(12):
                events = [log_stream.event(f"c{round_number}-{i}-{uuid.uuid4().hex[:6]}") for i in range(3)]
                response = client.post("/api/v1/ves/events/ingest", headers=log_stream.headers,
                                       json={"agent_id": str(log_stream.agent_id), "events": events})
                assert response.status_code == 200, response.json
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def signer(slot: int) -> None:
        sizes = observed.setdefault(slot, [])
        try:
            while not stop.is_set():
                signed = service.current_checkpoint(engine, tenant, store_id, log_key, max_delay_seconds=0)
                sizes.append(signed.checkpoint.tree_size)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    writers = [threading.Thread(target=writer) for _ in range(2)]
    signers = [threading.Thread(target=signer, args=(slot,)) for slot in range(3)]
    for thread in writers + signers:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    stop.set()
    for thread in signers:
        thread.join(timeout=60)
    assert errors == []
    for sizes in observed.values():
        assert sizes and sizes == sorted(sizes)
    final = service.sign_checkpoint(engine, tenant, store_id, log_key)
    assert final.checkpoint.tree_size == 2 + 2 * 12 * 3
    assert len(_checkpoints(engine, log_stream)) >= 3
    _assert_signed_history_is_one_growing_log(engine, log_key, log_stream)


def test_a_worker_killed_while_signing_leaves_nothing_and_blocks_nothing(engine, database_url, log_key, log_stream):
    tenant, store_id = log_stream.tenant_id, log_stream.store_id
    log_stream.add(4)
    service.sign_checkpoint(engine, tenant, store_id, log_key)
    log_stream.add(3)
    worker = subprocess.Popen([sys.executable, str(KILL_SCRIPT), database_url, str(tenant), str(store_id)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        line = worker.stdout.readline()
        assert line.split() == ["INSERTED", "7"], (line, worker.stderr.read() if worker.poll() is not None else "")
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        worker.stdout.close()
        worker.stderr.close()
    assert [row.tree_size for row in _checkpoints(engine, log_stream)] == [4]
    log_stream.add(1)
    resumed = service.sign_checkpoint(engine, tenant, store_id, log_key)
    assert resumed.checkpoint.tree_size == 8
    _assert_signed_history_is_one_growing_log(engine, log_key, log_stream)


def _tamper(engine, statement: str, table: str, params: dict) -> None:
    """Change stored log data as an attacker with database access would: lift the trigger inside this
    transaction only."""
    with engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        conn.execute(sa.text(statement), params)
        conn.execute(sa.text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))


@pytest.mark.parametrize("target", ["subtree", "frontier"])
def test_signing_refuses_a_log_that_is_no_longer_consistent_with_what_was_signed(engine, log_key, log_stream,
                                                                                target):
    tenant, store_id = log_stream.tenant_id, log_stream.store_id
    log_stream.add(10)
    service.sign_checkpoint(engine, tenant, store_id, log_key)
    log_stream.add(10)
    params = {"t": tenant, "s": store_id, "h": bytes(32)}
    if target == "subtree":
        _tamper(engine, "UPDATE log_nodes SET hash = :h WHERE tenant_id = :t AND store_id = :s AND level = 3 "
                        "AND node_index = 0", "log_nodes", params)
    else:
        _tamper(engine, "UPDATE stream_logs SET frontier = overlay(frontier placing :h from 1) "
                        "WHERE tenant_id = :t AND store_id = :s", "stream_logs", params)
    with pytest.raises(service.LogIntegrityError):
        service.sign_checkpoint(engine, tenant, store_id, log_key)
    assert [row.tree_size for row in _checkpoints(engine, log_stream)] == [10]


@pytest.mark.parametrize("target", ["subtree", "frontier", "event"])
def test_the_first_checkpoint_is_refused_over_a_log_that_disagrees_with_itself(engine, log_key, log_stream, target):
    tenant, store_id = log_stream.tenant_id, log_stream.store_id
    log_stream.add(13)
    params = {"t": tenant, "s": store_id, "h": bytes(32)}
    if target == "subtree":
        _tamper(engine, "UPDATE log_nodes SET hash = :h WHERE tenant_id = :t AND store_id = :s AND level = 3 "
                        "AND node_index = 0", "log_nodes", params)
    elif target == "frontier":
        _tamper(engine, "UPDATE stream_logs SET frontier = overlay(frontier placing :h from 33) "
                        "WHERE tenant_id = :t AND store_id = :s", "stream_logs", params)
    else:
        _tamper(engine, "UPDATE events SET event_signing_hash = :h WHERE tenant_id = :t AND store_id = :s "
                        "AND sequence_number = 13", "events", params)
    with pytest.raises(service.LogIntegrityError, match="disagrees with itself"):
        service.sign_checkpoint(engine, tenant, store_id, log_key)
    assert _checkpoints(engine, log_stream) == []


def test_the_database_refuses_a_smaller_or_repeated_checkpoint_and_changes(engine, log_key, log_stream):
    tenant, store_id = log_stream.tenant_id, log_stream.store_id
    log_stream.add(6)
    signed = service.sign_checkpoint(engine, tenant, store_id, log_key)
    now = signed.signed_at
    for size in (6, 5):
        with pytest.raises(sa.exc.DBAPIError, match="never signed for a size at or below"):
            with engine.begin() as conn:
                store.insert_checkpoint(conn, tenant, store_id, size, bytes(32), "forged", now)
    for statement in ("UPDATE log_checkpoints SET note = 'x' WHERE tenant_id = :t",
                      "DELETE FROM log_checkpoints WHERE tenant_id = :t"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(sa.text(statement), {"t": tenant})
    assert [row.tree_size for row in _checkpoints(engine, log_stream)] == [6]


def test_no_checkpoint_until_the_backfill_completes_the_log(engine, log_key):
    tenant, store_id = uuid.uuid4(), uuid.uuid4()
    append_events(engine, tenant, store_id, 25, unsigned=frozenset({3, 7}))
    with pytest.raises(service.LogNotReady) as raised:
        service.current_checkpoint(engine, tenant, store_id, log_key, max_delay_seconds=5)
    assert raised.value.retry_after and raised.value.code == "LOG_NOT_READY"
    with pytest.raises(service.LogNotReady):
        service.sign_checkpoint(engine, tenant, store_id, log_key)
    progress = service.backfill_chunk(engine, tenant, store_id, chunk_events=10)
    assert (progress.tree_size, progress.complete) == (10, False)
    with pytest.raises(service.LogNotReady):
        service.sign_checkpoint(engine, tenant, store_id, log_key)
    while not service.backfill_chunk(engine, tenant, store_id, chunk_events=10).complete:
        pass
    signed = service.current_checkpoint(engine, tenant, store_id, log_key, max_delay_seconds=5)
    assert signed.checkpoint.tree_size == 25
    assert signed.checkpoint.root_hash == naive_root(entries_from_events(engine, tenant, store_id))
