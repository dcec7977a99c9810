"""A receipt only for a commit the synchronous standby has: while a COMMIT waits for synchronous replication (as
every commit does in Patroni's strict synchronous mode with its standby gone), the request ends within its bound
with 503 and no receipt, the waiting transaction's rows stay invisible (a retry is refused too, it does not read
them as receipted), and once a standby confirms the commit a retry of the same events gets the original numbers.

What could break this: a cancelled COMMIT (pg_cancel_backend, or a server-side timeout covering the commit itself)
succeeds locally with only a WARNING ("the transaction has already committed locally, but might not have been
replicated"), which would hand out a receipt a failover loses. `statement_timeout` does not cover the commit
(PostgreSQL disarms it before committing) and the client-side answer deadline only drops the connection, which the
waiting backend does not notice; this test keeps it that way.

The standby that never comes is `synchronous_standby_names = 'absent_standby'` on a real PostgreSQL 15."""

from __future__ import annotations

import contextlib
import time
import uuid

import psycopg2
import pytest
import requests
import sqlalchemy as sa

from app.db.migrations import upgrade_to_head
from tests.support.load import register_signer
from tests.support.pgnode import PostgresServer
from tests.support.pgnode import remove_tree
from tests.support.pgnode import server_owned_dir
from tests.support.servers import start_gunicorn

pytestmark = pytest.mark.slow

ADMIN_KEY = "syncrep-bootstrap-admin-key-0123"
ADMIN = {"Authorization": f"ApiKey {ADMIN_KEY}"}
STATEMENT_TIMEOUT_MS = 1000
"""Short, so the test is quick and the commit's wait outlasts every server- and client-side bound."""


@pytest.fixture
def server():
    root = server_owned_dir("seqsyncrep-")
    postgres = PostgresServer(root)
    try:
        postgres.initdb()
        postgres.start("shared_buffers=32MB")
        conn = psycopg2.connect(postgres.dsn(), connect_timeout=5)
        conn.autocommit = True
        with contextlib.closing(conn), conn.cursor() as cursor:
            cursor.execute("CREATE DATABASE stateset_sequencer")
        engine = sa.create_engine(postgres.sqlalchemy_url("stateset_sequencer"))
        upgrade_to_head(engine)
        engine.dispose()
        yield postgres
    finally:
        postgres.stop()
        remove_tree(root)


def set_synchronous_standby(postgres: PostgresServer, names: str) -> None:
    conn = psycopg2.connect(postgres.dsn(), connect_timeout=5)
    conn.autocommit = True
    with contextlib.closing(conn), conn.cursor() as cursor:
        cursor.execute("ALTER SYSTEM SET synchronous_standby_names = %s", (names,))
        cursor.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 10
        while True:
            with contextlib.closing(psycopg2.connect(postgres.dsn(), connect_timeout=5)) as fresh:
                with fresh.cursor() as check:
                    check.execute("SHOW synchronous_standby_names")
                    if check.fetchone()[0] == names:
                        return
            assert time.monotonic() < deadline, "the reload did not take"
            time.sleep(0.05)


def sync_rep_waiters(postgres: PostgresServer) -> int:
    with contextlib.closing(psycopg2.connect(postgres.dsn(), connect_timeout=5)) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
        return cursor.fetchone()[0]


def test_a_commit_waiting_for_the_synchronous_standby_never_becomes_a_receipt(server):
    url = server.sqlalchemy_url("stateset_sequencer")
    env = {"BOOTSTRAP_ADMIN_API_KEY": ADMIN_KEY, "LOG_LEVEL": "warning",
           "DB_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS), "STREAM_LOCK_TIMEOUT_MS": "500"}
    with start_gunicorn(url, env=env, workers=1) as app:
        tenant_id, store_id = uuid.uuid4(), uuid.uuid4()
        signer, agent_id = register_signer(app.url, ADMIN, tenant_id)
        ingest = f"{app.url}/api/v1/ves/events/ingest"

        def post(events):
            return requests.post(ingest, headers=ADMIN, timeout=60,
                                 json={"agentId": str(agent_id), "events": events})

        first = [signer.build_event(store_id, "order", "o-1", "order.created", {"n": 1})]
        assert post(first).status_code == 200

        set_synchronous_standby(server, "absent_standby")
        waiting = [signer.build_event(store_id, "order", "o-1", "order.updated", {"n": n}) for n in (2, 3)]
        started = time.monotonic()
        stalled = post(waiting)
        elapsed = time.monotonic() - started
        assert stalled.status_code == 503, f"receipt for an unreplicated commit: {stalled.text[:400]}"
        assert stalled.json()["code"] in ("DATABASE_UNAVAILABLE", "DATABASE_TIMEOUT")
        assert elapsed < STATEMENT_TIMEOUT_MS / 1000 + 5, "the request must still end within its bound"
        assert sync_rep_waiters(server) == 1, "the commit keeps waiting for the standby, uncancelled"
        retried = post(waiting)
        assert retried.status_code == 503, "a retry must not read the waiting commit's rows as receipted"

        set_synchronous_standby(server, "")
        deadline = time.monotonic() + 30
        while True:
            answer = post(waiting)
            if answer.status_code == 200:
                break
            assert answer.status_code == 503, answer.text
            assert time.monotonic() < deadline, "the released commit never became visible"
            time.sleep(0.1)
        receipts = answer.json()["receipts"]
        assert [(r["sequenceNumber"], r["duplicate"]) for r in receipts] == [(2, True), (3, True)]
        assert "Traceback" not in app.log_text()
