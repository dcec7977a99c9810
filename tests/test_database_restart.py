"""The database goes away and comes back: liveness stays up, readiness follows the database, nothing wedges."""

import time

import pytest
import requests
import sqlalchemy as sa

from app.db.migrations import upgrade_to_head
from tests.support.pg import EmbeddedPostgres
from tests.support.pg import create_database
from tests.support.servers import start_gunicorn


@pytest.fixture
def restartable_database():
    server = EmbeddedPostgres().start()
    url = create_database(server.server_url())
    engine = sa.create_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    yield server, url
    server.destroy()


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_ready_goes_503_while_database_is_down_and_recovers(restartable_database):
    server, url = restartable_database
    with start_gunicorn(url, workers=2) as app_server:
        assert requests.get(app_server.url + "/ready", timeout=5).status_code == 200

        server.stop_server()
        responses = [requests.get(app_server.url + "/ready", timeout=10) for _ in range(4)]
        assert [r.status_code for r in responses] == [503] * 4
        assert all(r.json()["code"] == "DATABASE_UNAVAILABLE" for r in responses)
        assert requests.get(app_server.url + "/health", timeout=5).status_code == 200

        server.restart_server()
        assert _wait_for(lambda: requests.get(app_server.url + "/ready", timeout=10).status_code == 200)
        assert all(requests.get(app_server.url + "/ready", timeout=10).status_code == 200 for _ in range(4))
        assert "Traceback" not in app_server.log_text()


def test_ingest_across_a_database_restart_loses_nothing_and_answers_503_meanwhile(restartable_database):
    import os
    import uuid

    from app.client.signer import AgentSigner

    server, url = restartable_database
    admin = {"Authorization": "ApiKey restart-bootstrap-admin-key-0123"}
    env = {"BOOTSTRAP_ADMIN_API_KEY": "restart-bootstrap-admin-key-0123", "VES_SEQUENCER_SIGNING_KEY": "44" * 32}
    tenant, agent, store = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    signer = AgentSigner(os.urandom(32), tenant, agent, 1)
    batches = [[signer.build_event(store, "o", f"{b}-{i}", "t", {"b": b}) for i in range(10)] for b in range(6)]
    with start_gunicorn(url, env=env, workers=2) as app_server:
        ingest = app_server.url + "/api/v1/ves/events/ingest"
        assert requests.post(app_server.url + "/api/v1/agents/keys", headers=admin, timeout=10, json={
            "tenant_id": str(tenant), "agent_id": str(agent), "key_id": 1,
            "public_key": signer.public_key_hex}).status_code == 200
        first = requests.post(ingest, json={"events": batches[0]}, headers=admin, timeout=10).json()
        receipts = {r["eventId"]: r["sequenceNumber"] for r in first["receipts"]}

        server.stop_server()
        during = [requests.post(ingest, json={"events": batch}, headers=admin, timeout=15) for batch in batches[1:3]]
        assert [r.status_code for r in during] == [503, 503]
        assert all(r.json()["code"] in ("DATABASE_UNAVAILABLE", "DATABASE_BUSY") for r in during)

        server.restart_server()
        assert _wait_for(lambda: requests.get(app_server.url + "/ready", timeout=10).status_code == 200)
        for batch in batches[1:]:
            body = requests.post(ingest, json={"events": batch}, headers=admin, timeout=15).json()
            assert body["eventsAccepted"] == 10, body
            receipts.update({r["eventId"]: r["sequenceNumber"] for r in body["receipts"]})
        assert "Traceback" not in app_server.log_text()

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT event_id, sequence_number FROM events WHERE tenant_id = :t "
                                    "ORDER BY sequence_number"), {"t": tenant}).all()
    engine.dispose()
    assert [r.sequence_number for r in rows] == list(range(1, 61))
    assert {str(r.event_id): r.sequence_number for r in rows} == receipts


def test_a_long_poll_waiting_across_a_database_restart_still_wakes(restartable_database):
    import os
    import threading
    import uuid

    from app.client.signer import AgentSigner

    server, url = restartable_database
    admin = {"Authorization": "ApiKey restart-bootstrap-admin-key-0123"}
    env = {"BOOTSTRAP_ADMIN_API_KEY": "restart-bootstrap-admin-key-0123", "LONG_POLL_MAX_SECONDS": "30"}
    tenant, agent, store = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    signer = AgentSigner(os.urandom(32), tenant, agent, 1)
    with start_gunicorn(url, env=env, workers=1) as app_server:
        assert requests.post(app_server.url + "/api/v1/agents/keys", headers=admin, timeout=10, json={
            "tenant_id": str(tenant), "agent_id": str(agent), "key_id": 1,
            "public_key": signer.public_key_hex}).status_code == 200
        result = {}

        def long_poll():
            result["response"] = requests.get(f"{app_server.url}/api/v1/ves/events?tenant_id={tenant}"
                                              f"&store_id={store}&wait=25", headers=admin, timeout=60)
            result["done"] = time.monotonic()

        waiter = threading.Thread(target=long_poll)
        waiter.start()
        time.sleep(1.0)
        server.stop_server()
        time.sleep(1.0)
        server.restart_server()
        assert _wait_for(lambda: requests.get(app_server.url + "/ready", timeout=10).status_code == 200)
        assert waiter.is_alive()
        event = signer.build_event(store, "o", "after-restart", "t", {})
        assert requests.post(app_server.url + "/api/v1/ves/events/ingest", json={"events": [event]},
                             headers=admin, timeout=15).json()["eventsAccepted"] == 1
        committed = time.monotonic()
        waiter.join(timeout=40)
        assert result["response"].status_code == 200
        assert [e["event_id"] for e in result["response"].json()["events"]] == [event["event_id"]]
        print(f"\nlong poll woke {result['done'] - committed:.3f} s after the commit")
        assert result["done"] - committed < 3.0


def test_a_connection_lost_before_its_transaction_begins_is_a_disconnect_the_pool_drops(settings, database_url):
    """The server side of a pooled connection dies after the checkout check and before the transaction's first
    statement (a primary killed at that moment). The per-transaction bounds statement is then what meets the dead
    socket: it must fail as SQLAlchemy's disconnect error (the API answers 503 DATABASE_UNAVAILABLE, not 500), and
    the pool must not hand that connection out again."""
    from sqlalchemy.exc import OperationalError

    from app.db.engine import make_engine

    engine = make_engine(settings, pool_size=1)
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            doomed = conn.connection.dbapi_connection.get_backend_pid()
            with admin.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": doomed})
                assert _wait_for(lambda: not other.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": doomed}).scalar(), timeout=10)
            with pytest.raises(OperationalError) as raised:
                conn.execute(sa.text("SELECT 1"))
            assert raised.value.connection_invalidated
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() != doomed
    finally:
        engine.dispose()
        admin.dispose()


def test_a_connection_lost_under_the_raw_cursor_is_a_disconnect_too(settings, database_url):
    """`app.db.engine.dbapi_cursor` (the hot statements' raw psycopg2 cursor) raises SQLAlchemy's disconnect error
    and invalidates the connection when the server side is gone, as a statement through SQLAlchemy would."""
    from sqlalchemy.exc import OperationalError

    from app.db.engine import dbapi_cursor
    from app.db.engine import make_engine

    engine = make_engine(settings, pool_size=1)
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with pytest.raises(OperationalError) as raised:
            with engine.begin() as conn:
                doomed = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
                with admin.connect() as other:
                    other.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": doomed})
                    assert _wait_for(lambda: not other.execute(sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": doomed}).scalar(), timeout=10)
                with dbapi_cursor(conn) as cursor:
                    cursor.execute("SELECT 1")
        assert raised.value.connection_invalidated
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() != doomed
    finally:
        engine.dispose()
        admin.dispose()
