"""The stored logs (app/db/stream_logs.py via app/services/stream_logs.py) against the events themselves.

Streams are filled through the real ingest endpoints (signed and unsigned events mixed); every expectation is
recomputed naively from the event rows (tests/log/conftest.py, tests/ves/tlog_reference.py).
"""

from __future__ import annotations

import random
import threading
import uuid

import pytest
import sqlalchemy as sa

from app.db.locks import stream_lock_key
from app.db.tables import LOG_NODES_MIN_LEVEL
from app.services import stream_logs as service
from app.ves import tlog
from tests.log.conftest import entries_from_events
from tests.log.conftest import naive_root
from tests.log.conftest import stored_nodes
from tests.ves import tlog_reference as ref


def _root(engine, stream, size: int) -> bytes:
    with engine.connect() as conn:
        return service.tree_root(conn, stream.tenant_id, stream.store_id, size)


def _status(engine, stream):
    with engine.connect() as conn:
        return service.log_status(conn, stream.tenant_id, stream.store_id)


def _assert_log_matches_events(engine, stream) -> list[bytes]:
    """The stored log is exactly the tree of the stored events: size, every root, every stored node."""
    entries = entries_from_events(engine, stream.tenant_id, stream.store_id)
    status = _status(engine, stream)
    assert status.tree_size == status.head_sequence == len(entries)
    expected = {(level, index): ref.mth(entries[index << level:(index + 1) << level])
                for level in range(LOG_NODES_MIN_LEVEL, len(entries).bit_length()) for index in range(len(entries) >> level)}
    assert stored_nodes(engine, stream.tenant_id, stream.store_id) == expected
    assert _root(engine, stream, len(entries)) == naive_root(entries)
    return entries


@pytest.mark.parametrize("seed", range(4))
def test_roots_from_storage_equal_the_naive_tree_hash_for_random_batch_splits(engine, make_log_stream, seed):
    rng = random.Random(seed)
    stream = make_log_stream()
    total = 0
    while total < 70:
        batch = rng.randint(1, 23)
        stream.add(batch, unsigned_every=rng.choice([0, 2, 3]))
        total += batch
        entries = entries_from_events(engine, stream.tenant_id, stream.store_id)
        assert _root(engine, stream, total) == naive_root(entries)
    entries = _assert_log_matches_events(engine, stream)
    for size in range(total + 1):
        assert _root(engine, stream, size) == naive_root(entries[:size]), size


def test_unsigned_events_enter_the_log_with_a_zero_signature(engine, log_stream):
    log_stream.add(4, unsigned_every=1)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM events WHERE tenant_id = :t AND agent_signature IS NULL"),
                            {"t": log_stream.tenant_id}).scalar() == 4
    _assert_log_matches_events(engine, log_stream)


def test_every_proof_from_storage_is_the_rfc_proof_and_verifies(engine, log_stream):
    log_stream.add(33)
    entries = _assert_log_matches_events(engine, log_stream)
    roots = [naive_root(entries[:size]) for size in range(len(entries) + 1)]
    with engine.connect() as conn:
        for size in range(1, len(entries) + 1):
            for index in range(size):
                proof = service.prove_inclusion(conn, log_stream.tenant_id, log_stream.store_id, index + 1, size)
                assert (proof.leaf_index, proof.tree_size, proof.entry) == (index, size, entries[index])
                assert proof.leaf_hash == tlog.hash_leaf(entries[index])
                assert proof.proof == ref.path(index, entries[:size])
                assert tlog.verify_inclusion(index, size, proof.leaf_hash, proof.proof, roots[size])
            for first in range(size + 1):
                proof = service.prove_consistency(conn, log_stream.tenant_id, log_stream.store_id, first, size)
                assert proof == ref.proof(first, entries[:size])
                assert tlog.verify_consistency(first, size, proof, roots[first], roots[size])


def test_out_of_range_requests_are_refused(engine, log_stream):
    log_stream.add(5)
    tenant, store = log_stream.tenant_id, log_stream.store_id
    with engine.connect() as conn:
        for sequence_number, size in ((0, 5), (6, 5), (-1, 5), (True, 5)):
            with pytest.raises(service.LogRangeError):
                service.prove_inclusion(conn, tenant, store, sequence_number, size)
        with pytest.raises(service.TreeSizeBeyondLog):
            service.prove_inclusion(conn, tenant, store, 1, 6)
        with pytest.raises(service.LogRangeError):
            service.prove_consistency(conn, tenant, store, 4, 3)
        with pytest.raises(service.TreeSizeBeyondLog):
            service.prove_consistency(conn, tenant, store, 1, 6)
        with pytest.raises(service.TreeSizeBeyondLog):
            service.tree_root(conn, tenant, store, 6)
        assert service.prove_consistency(conn, tenant, store, 0, 5) == []
        assert service.tree_root(conn, uuid.uuid4(), uuid.uuid4(), 0) == tlog.EMPTY_ROOT


class _ReadCounter:
    """Counts the statements sent on one connection and, from pg_stat_xact_user_tables, the rows each table
    yielded to index scans and to sequential scans in the current transaction."""

    TABLES = ("events", "log_nodes")

    def __init__(self, conn):
        self.conn = conn
        self.statements = 0
        sa.event.listen(conn, "before_cursor_execute", self._count)

    def _count(self, *args) -> None:
        self.statements += 1

    def rows(self) -> dict[str, tuple[int, int, int]]:
        """`{table: (seq_scan, seq_tup_read, idx_tup_fetch)}` so far in this transaction."""
        sa.event.remove(self.conn, "before_cursor_execute", self._count)
        try:
            result = self.conn.execute(sa.text(
                "SELECT relname, seq_scan, seq_tup_read, coalesce(idx_tup_fetch, 0) AS fetched "
                "FROM pg_stat_xact_user_tables WHERE relname IN ('events', 'log_nodes')")).all()
        finally:
            sa.event.listen(self.conn, "before_cursor_execute", self._count)
        return {r.relname: (r.seq_scan, r.seq_tup_read, r.fetched) for r in result}


def _measure(engine, action):
    with engine.connect() as conn, conn.begin():
        counter = _ReadCounter(conn)
        before = counter.rows()
        counter.statements = 0
        action(conn)
        statements = counter.statements
        after = counter.rows()
    fetched = {table: after.get(table, (0, 0, 0))[2] - before.get(table, (0, 0, 0))[2] for table in _ReadCounter.TABLES}
    scanned = {table: after.get(table, (0, 0, 0))[1] - before.get(table, (0, 0, 0))[1] for table in _ReadCounter.TABLES}
    return statements, fetched, scanned


def test_roots_and_proofs_read_logarithmically_many_rows(engine, log_stream):
    """Counted, not timed: statements per call and rows PostgreSQL fetched from events and log_nodes, at a small and
    a 64 times larger tree. A recomputation would read n rows; these read at most 2 * log2(n) nodes plus the event
    rows of the few subtrees below LOG_NODES_MIN_LEVEL (at most 2 * 2**LOG_NODES_MIN_LEVEL)."""
    for _ in range(41):
        log_stream.add(100, unsigned_every=1)
    tenant, store = log_stream.tenant_id, log_stream.store_id
    with engine.begin() as conn:
        # A deployment's log_nodes holds many streams; with only this test run's few thousand rows the planner
        # would rightly scan the whole (tiny) table. Other streams' nodes give it a realistic size.
        conn.execute(sa.text("INSERT INTO log_nodes SELECT gen_random_uuid(), gen_random_uuid(), 3, g, "
                             "sha256(int8send(g)) FROM generate_series(1, 50000) AS g"))
        conn.execute(sa.text("ANALYZE events"))
        conn.execute(sa.text("ANALYZE log_nodes"))
    entries = entries_from_events(engine, tenant, store)
    for size in (64, 4100):
        bound = 2 * (size - 1).bit_length() + 2 ** (LOG_NODES_MIN_LEVEL + 1)
        root = naive_root(entries[:size])
        calls = {
            "root": lambda conn: service.tree_root(conn, tenant, store, size - 1),
            "inclusion of the first": lambda conn: service.prove_inclusion(conn, tenant, store, 1, size),
            "inclusion in the middle": lambda conn: service.prove_inclusion(conn, tenant, store, size // 2 + 3, size),
            "inclusion of the last": lambda conn: service.prove_inclusion(conn, tenant, store, size, size),
            "consistency": lambda conn: service.prove_consistency(conn, tenant, store, size // 3 + 1, size),
        }
        for name, call in calls.items():
            statements, fetched, scanned = _measure(engine, call)
            assert statements <= 2, (name, size, statements)
            assert scanned == {"events": 0, "log_nodes": 0}, (name, size, scanned)
            assert sum(fetched.values()) <= bound, (name, size, fetched)
        with engine.connect() as conn:
            proof = service.prove_inclusion(conn, tenant, store, size // 2 + 3, size)
        assert tlog.verify_inclusion(proof.leaf_index, size, proof.leaf_hash, proof.proof, root)


def test_concurrent_writers_to_one_stream_leave_a_consistent_log(app, engine, log_stream):
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def writer(worker: int) -> None:
        client = app.test_client()
        try:
            barrier.wait()
            for round_number in range(8):
                count = 1 + (worker + round_number) % 5
                events = [log_stream.event(f"w{worker}-{round_number}-{i}") for i in range(count)]
                response = client.post("/api/v1/ves/events/ingest", headers=log_stream.headers,
                                       json={"agent_id": str(log_stream.agent_id), "events": events})
                assert response.status_code == 200, response.json
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    entries = _assert_log_matches_events(engine, log_stream)
    assert len(entries) == sum(1 + (worker + r) % 5 for worker in range(4) for r in range(8))


def test_a_rolled_back_ingest_leaves_no_log_rows(make_app, engine, make_log_stream):
    """A request for two streams fails on the second stream's lock after the first stream's events and log rows
    were written in the same transaction: nothing of either remains."""
    app = make_app(stream_lock_timeout_ms=200)
    client = app.test_client()
    base = make_log_stream()
    base.add(5)
    stores = sorted([base.store_id, uuid.uuid4()], key=lambda store: stream_lock_key(base.tenant_id, store))
    first_store, blocked_store = stores
    before = {store: (stored_nodes(engine, base.tenant_id, store), _status_of(engine, base.tenant_id, store))
              for store in stores}
    holder = engine.connect()
    try:
        holder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": stream_lock_key(base.tenant_id, blocked_store)})
        events = [base.event(f"x{i}", store_id=first_store) for i in range(7)] + \
                 [base.event(f"y{i}", store_id=blocked_store) for i in range(3)]
        response = client.post("/api/v1/ves/events/ingest", headers=base.headers,
                               json={"agent_id": str(base.agent_id), "events": events})
        assert response.status_code == 503 and response.json["code"] == "STREAM_BUSY"
    finally:
        holder.execute(sa.text("SELECT pg_advisory_unlock_all()"))
        holder.close()
    for store in stores:
        assert (stored_nodes(engine, base.tenant_id, store), _status_of(engine, base.tenant_id, store)) == before[store]
    base.add(4)
    _assert_log_matches_events(engine, base)


def _status_of(engine, tenant_id, store_id):
    with engine.connect() as conn:
        return service.log_status(conn, tenant_id, store_id)


def test_stored_log_rows_are_append_only(engine, log_stream):
    log_stream.add(6)
    params = {"t": log_stream.tenant_id, "s": log_stream.store_id}
    for statement in ("UPDATE log_nodes SET hash = hash WHERE tenant_id = :t AND store_id = :s",
                      "DELETE FROM log_nodes WHERE tenant_id = :t AND store_id = :s",
                      "UPDATE stream_logs SET tree_size = 4, frontier = substr(frontier, 1, 32) "
                      "WHERE tenant_id = :t AND store_id = :s",
                      "DELETE FROM stream_logs WHERE tenant_id = :t AND store_id = :s"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only|never decreases"):
            with engine.begin() as conn:
                conn.execute(sa.text(statement), params)
    with pytest.raises(sa.exc.IntegrityError, match="frontier_matches_size"):
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE stream_logs SET tree_size = 7 WHERE tenant_id = :t AND store_id = :s"),
                         params)
    _assert_log_matches_events(engine, log_stream)
