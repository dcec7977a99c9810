"""A database that vanishes without a reset: every answer is bounded, nothing is half-written, all recovers.

Between gunicorn and PostgreSQL sits a forwarder that, in the middle of an ingest's transaction (right after the
INSERT of its events reaches the server), stops passing bytes and closes nothing. While it is silent: /health
answers fast, /ready and ingests answer 503 within the documented bound, a waiting long poll ends at its `wait`,
and the cut-off transaction is rolled back by the server (its lock freed) although no byte reaches the client.
Then the forwarder resumes: readiness returns, the same batches are accepted gaplessly, long polls wake again.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app.db.locks import stream_lock_key
from app.db.migrations import upgrade_to_head
from tests.support.blackhole import BlackholeForwarder
from tests.support.pg import create_database
from tests.support.pg import drop_database
from tests.support.servers import start_gunicorn
from tests.test_worker_model import ADMIN
from tests.test_worker_model import register_signer
from tests.test_worker_model import server_env

pytestmark = pytest.mark.slow
REQUEST_BOUND = 10.0
HEALTH_BOUND = 1.0


def upstream_of(database_url: str):
    url = make_url(database_url)
    socket_dir = url.query.get("host")
    if socket_dir:
        return f"{socket_dir}/.s.PGSQL.{url.port or 5432}"
    return url.host or "127.0.0.1", int(url.port or 5432)


@pytest.fixture
def forwarded(database_server_url):
    url = create_database(database_server_url, prefix="seqblackhole")
    engine = sa.create_engine(url)
    upgrade_to_head(engine)
    with BlackholeForwarder(upstream_of(url)) as forwarder:
        through = make_url(url).set(host="127.0.0.1", port=forwarder.port, query={})
        try:
            yield forwarder, through.render_as_string(hide_password=False), engine
        finally:
            forwarder.resume()
            engine.dispose()
            drop_database(database_server_url, url)


def timed(call):
    started = time.monotonic()
    try:
        result = call()
    except requests.RequestException as exc:
        result = exc
    return time.monotonic() - started, result


def ingest(server, events):
    return requests.post(f"{server.url}/api/v1/ves/events/ingest", json={"events": events}, headers=ADMIN,
                         timeout=30)


def poll(server, tenant, store, start, wait):
    return requests.get(f"{server.url}/api/v1/ves/events?tenant_id={tenant}&store_id={store}&from={start}"
                        f"&wait={wait}", headers=ADMIN, timeout=30)


def test_a_blackholed_database_bounds_every_answer_and_loses_nothing(forwarded):
    forwarder, through_url, direct = forwarded
    with start_gunicorn(through_url, env=server_env(DB_MIGRATE_ON_STARTUP="0"), workers=2) as server:
        tenant, store = uuid.uuid4(), uuid.uuid4()
        signer = register_signer(server.url, tenant)
        batches = [[signer.build_event(store, "order", f"b{b}-{i}", "order.created", {"b": b, "i": i})
                    for i in range(5)] for b in range(3)]
        receipts = {r["eventId"]: r["sequenceNumber"] for r in ingest(server, batches[0]).json()["receipts"]}
        assert sorted(receipts.values()) == [1, 2, 3, 4, 5]

        pool = ThreadPoolExecutor(8)
        waiting_poll = pool.submit(timed, lambda: poll(server, tenant, store, 6, 8))
        time.sleep(0.5)

        health, stop_health = [], threading.Event()

        def probe_health():
            while not stop_health.is_set():
                elapsed, response = timed(lambda: requests.get(f"{server.url}/health", timeout=5))
                health.append((elapsed, getattr(response, "status_code", None)))
                time.sleep(0.1)

        prober = threading.Thread(target=probe_health)
        prober.start()
        forwarder.blackhole_after(b"INSERT INTO events")
        cut_off = pool.submit(timed, lambda: ingest(server, batches[1]))
        assert forwarder.triggered.wait(10), "the ingest never reached the INSERT"
        blackholed_at = time.monotonic()
        during = {
            "ready": pool.submit(timed, lambda: requests.get(f"{server.url}/ready", timeout=30)),
            "ingest": pool.submit(timed, lambda: ingest(server, batches[2])),
            "new poll": pool.submit(timed, lambda: poll(server, tenant, store, 6, 3)),
            "head": pool.submit(timed, lambda: requests.get(
                f"{server.url}/api/v1/ves/head?tenant_id={tenant}&store_id={store}", headers=ADMIN, timeout=30)),
        }

        cut_elapsed, cut_response = cut_off.result(timeout=30)
        print(f"\ncut-off ingest: {cut_response.status_code} after {cut_elapsed:.2f} s")
        assert cut_response.status_code == 503 and cut_elapsed < REQUEST_BOUND
        assert cut_response.json()["code"] == "DATABASE_UNAVAILABLE"
        for name, future in during.items():
            elapsed, response = future.result(timeout=30)
            print(f"{name} while blackholed: {response.status_code} after {elapsed:.2f} s")
            assert elapsed < REQUEST_BOUND, name
            assert response.status_code in ((200, 503) if name == "new poll" else (503,)), (name, response.text)
        assert during["ready"].result()[1].json()["code"] == "DATABASE_UNAVAILABLE"

        half_done_gone = _wait_for(lambda: _half_done_transaction_is_gone(direct, tenant, store), timeout=10)
        print(f"half-done transaction rolled back by the server {time.monotonic() - blackholed_at:.2f} s after "
              f"the blackhole began")
        assert half_done_gone and forwarder.triggered.is_set()
        with direct.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM events WHERE tenant_id = :t"),
                                {"t": tenant}).scalar() == 5

        poll_elapsed, poll_response = waiting_poll.result(timeout=30)
        print(f"long poll waiting when the blackhole began (wait=8): {poll_response.status_code} after "
              f"{poll_elapsed:.2f} s")
        assert poll_response.status_code == 200 and poll_response.json()["count"] == 0
        assert 7.5 < poll_elapsed < 8 + HEALTH_BOUND

        while time.monotonic() - blackholed_at < 10:
            time.sleep(0.2)
        forwarder.resume()
        resumed_at = time.monotonic()
        assert _wait_for(lambda: requests.get(f"{server.url}/ready", timeout=30).status_code == 200, timeout=15)
        print(f"ready again {time.monotonic() - resumed_at:.2f} s after the network came back")
        stop_health.set()
        prober.join()
        slowest = max(elapsed for elapsed, _ in health)
        print(f"/health: {len(health)} probes, slowest {slowest * 1000:.0f} ms")
        assert all(status == 200 for _, status in health) and slowest < HEALTH_BOUND

        for batch in batches[1:]:
            body = ingest(server, batch).json()
            assert body["eventsAccepted"] == 5, body
            receipts.update({r["eventId"]: r["sequenceNumber"] for r in body["receipts"]})
        with direct.connect() as conn:
            rows = conn.execute(sa.text("SELECT event_id, sequence_number FROM events WHERE tenant_id = :t "
                                        "ORDER BY sequence_number"), {"t": tenant}).all()
        assert [r.sequence_number for r in rows] == list(range(1, 16))
        assert {str(r.event_id): r.sequence_number for r in rows} == receipts

        assert _eventually_wakes_promptly(server, signer, tenant, store, pool)
        pool.shutdown()
        assert "Traceback" not in server.log_text()


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _half_done_transaction_is_gone(direct, tenant, store) -> bool:
    """No transaction of the sequencer is open on the server any more, and the stream's lock is free."""
    with direct.connect() as conn:
        open_transactions = conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name = 'stateset-sequencer' AND xact_start IS NOT NULL")).scalar()
        free = conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"),
                            {"k": stream_lock_key(tenant, store)}).scalar()
        conn.rollback()
    return open_transactions == 0 and free


def _eventually_wakes_promptly(server, signer, tenant, store, pool) -> bool:
    """After recovery the listener reconnects: within a few attempts a long poll wakes < 1 s after a commit."""
    for attempt in range(4):
        head = requests.get(f"{server.url}/api/v1/ves/head?tenant_id={tenant}&store_id={store}", headers=ADMIN,
                            timeout=10).json()["head_sequence"]
        waiting = pool.submit(lambda: (poll(server, tenant, store, head + 1, 5), time.monotonic()))
        time.sleep(1.0)
        event = signer.build_event(store, "order", f"after-{attempt}", "order.created", {})
        assert ingest(server, [event]).json()["eventsAccepted"] == 1
        committed = time.monotonic()
        response, done = waiting.result(timeout=30)
        if response.json()["count"] == 1 and done - committed < 1.0:
            print(f"long poll after recovery woke {(done - committed) * 1000:.0f} ms after the commit")
            return True
    return False
