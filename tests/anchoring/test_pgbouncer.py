"""The anchoring run and its run lock through PgBouncer in transaction pooling mode.

A session-level advisory lock would be taken on whichever server connection PgBouncer lent for that one statement:
a second run lent the same connection would "take" it again (session locks are re-entrant) and the unlock could
land on another connection, leaking the lock. The run lock is transaction-level, held in a transaction that pins
one server connection for the run.
"""

from __future__ import annotations

import uuid

from app.config import Settings
from app.db import commitments as store
from app.db.engine import make_engine
from app.services.anchoring import run_lock
from app.services.anchoring import run_once
from tests.commitments.event_rows import append_events


def test_run_lock_and_anchoring_run_work_through_pgbouncer(pgbouncer, anchor_settings, chain, registry):
    via = Settings.from_env({"DATABASE_URL": pgbouncer.url_for(anchor_settings.database_url)}).database_url
    engine = make_engine(anchor_settings.replace(database_url=via), pool_size=4)
    try:
        tenant, store_id = uuid.uuid4(), uuid.uuid4()
        append_events(engine, tenant, store_id, 4)
        nonce = chain.nonce()

        with run_lock(engine) as taken:
            assert taken
            for _ in range(5):
                with run_lock(engine) as again:
                    assert not again
                assert run_once(engine, registry, max_events=10).lock_busy
        assert chain.nonce() == nonce

        report = run_once(engine, registry, max_events=2)
        assert report.ok and not report.lock_busy and len(report.outcomes) == 2
        with engine.connect() as conn:
            records = store.list_commitments(conn, tenant, store_id, limit=10)
        assert [(r.sequence_start, r.sequence_end, r.is_anchored) for r in records] == [(1, 2, True), (3, 4, True)]
        for _ in range(3):
            with run_lock(engine) as taken:
                assert taken
    finally:
        engine.dispose()
