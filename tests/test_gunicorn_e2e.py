"""Behaviour that depends on real processes: gunicorn workers, concurrency, killed workers, shared rate limits,
revocation seen by every worker, metrics summed over workers."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from app.client.signer import AgentSigner
from tests.controls import BOOTSTRAP_KEY
from tests.support.servers import start_gunicorn

pytestmark = pytest.mark.slow
ADMIN = {"Authorization": f"ApiKey {BOOTSTRAP_KEY}"}
SIGNING_KEY = "11" * 32


def _server_env(**extra):
    return {"BOOTSTRAP_ADMIN_API_KEY": BOOTSTRAP_KEY, "VES_SEQUENCER_SIGNING_KEY": SIGNING_KEY, "LOG_LEVEL": "warning",
            **extra}


def _register(url, tenant, agent, key_id=1):
    signer = AgentSigner(os.urandom(32), tenant, agent, key_id)
    response = requests.post(f"{url}/api/v1/agents/keys", json={
        "tenant_id": str(tenant), "agent_id": str(agent), "key_id": key_id, "public_key": signer.public_key_hex},
        headers=ADMIN, timeout=10)
    assert response.status_code == 200, response.text
    return signer


def _create_key(url, tenant, permissions="read_write", **extra):
    response = requests.post(f"{url}/api/v1/admin/api-keys", json={"tenant_id": str(tenant),
                                                                   "permissions": permissions, **extra},
                             headers=ADMIN, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def _all_rows(engine, tenant, store):
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT sequence_number, event_id, receipt_hash FROM events WHERE tenant_id = :t AND store_id = :s"
            " ORDER BY sequence_number"), {"t": tenant, "s": store}).all()


@pytest.fixture(scope="module")
def server(database_url):
    with start_gunicorn(database_url, env=_server_env(), workers=4) as running:
        yield running


def test_concurrent_writers_get_gapless_numbers_on_shared_and_separate_streams(server, engine):
    tenant, agent = uuid.uuid4(), uuid.uuid4()
    shared = uuid.uuid4()
    own = [uuid.uuid4() for _ in range(4)]
    signer = _register(server.url, tenant, agent)
    rng = random.Random(7)
    plans = []
    for worker in range(8):
        batches = []
        for _ in range(12):
            size = rng.randint(1, 40)
            store = shared if rng.random() < 0.6 else own[worker % 4]
            batches.append([signer.build_event(store, "order", f"w{worker}-{rng.randint(0, 5)}", "order.touched",
                                               {"w": worker, "r": rng.random()}) for _ in range(size)])
        plans.append(batches)
    receipts = {}
    lock = threading.Lock()

    def run(batches):
        with requests.Session() as session:
            for batch in batches:
                response = session.post(f"{server.url}/api/v1/ves/events/ingest", json={"events": batch},
                                        headers=ADMIN, timeout=60)
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["eventsRejected"] == 0, body["rejections"][:2]
                with lock:
                    for event, receipt in zip(batch, body["receipts"]):
                        receipts[event["event_id"]] = (event["store_id"], receipt["sequenceNumber"],
                                                       receipt["receiptHash"])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(run, plans))
    total = sum(len(b) for batches in plans for b in batches)
    assert len(receipts) == total
    for store in [shared, *own]:
        rows = _all_rows(engine, tenant, store)
        assert [r.sequence_number for r in rows] == list(range(1, len(rows) + 1))
        for row in rows:
            stored_store, number, receipt_hash = receipts[str(row.event_id)]
            assert (stored_store, number, receipt_hash) == (str(store), row.sequence_number,
                                                            row.receipt_hash.hex())
    assert sum(len(_all_rows(engine, tenant, s)) for s in [shared, *own]) == total


def test_two_concurrent_writers_with_the_same_base_version_exactly_one_wins(server):
    tenant, agent, store = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    signer = _register(server.url, tenant, agent)
    for round_number in range(10):
        entity = f"contested-{round_number}"
        events = [signer.build_event(store, "account", entity, "debit", {"by": i}, ves_version=2, base_version=0)
                  for i in range(2)]
        barrier = threading.Barrier(2)

        def send(event):
            barrier.wait()
            return requests.post(f"{server.url}/api/v1/ves/events/ingest", json={"events": [event]}, headers=ADMIN,
                                 timeout=30).json()

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(send, events))
        assert sorted(r["eventsAccepted"] for r in results) == [0, 1]
        loser = next(r for r in results if r["eventsAccepted"] == 0)
        assert loser["rejections"][0]["code"] == "VersionConflict"


def test_revoked_key_is_refused_at_once_by_every_worker(server):
    tenant = uuid.uuid4()
    created = _create_key(server.url, tenant, "read")
    headers = {"Authorization": f"ApiKey {created['api_key']}"}
    query = f"tenant_id={tenant}&store_id={uuid.uuid4()}"
    with requests.Session() as first, requests.Session() as second:
        sessions = [first, second] + [requests.Session() for _ in range(6)]
        assert all(s.get(f"{server.url}/api/v1/ves/head?{query}", headers=headers, timeout=10).status_code == 200
                   for s in sessions)
        assert requests.delete(f"{server.url}/api/v1/admin/api-keys/{created['key_id']}", headers=ADMIN,
                               timeout=10).status_code == 204
        statuses = [s.get(f"{server.url}/api/v1/ves/head?{query}", headers=headers, timeout=10).status_code
                    for s in sessions for _ in range(3)]
        assert statuses == [401] * len(statuses)
        for s in sessions[2:]:
            s.close()
    assert len(server.worker_pids()) == 4


def test_metrics_add_up_over_all_workers(server):
    def scrape(name):
        text = requests.get(f"{server.url}/metrics", timeout=10).text
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")
                   or line.startswith(name + "{"))

    before = scrape("sequencer_events_ingested_total")
    tenant, agent, store = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    signer = _register(server.url, tenant, agent)
    sent = 0
    with ThreadPoolExecutor(4) as pool:
        batches = [[signer.build_event(store, "o", str(i), "t", {}) for _ in range(5)] for i in range(24)]
        for response in pool.map(lambda b: requests.post(f"{server.url}/api/v1/ves/events/ingest",
                                                         json={"events": b}, headers=ADMIN, timeout=30), batches):
            assert response.status_code == 200
            sent += response.json()["eventsAccepted"]
    assert sent == 120
    assert scrape("sequencer_events_ingested_total") - before == 120
    assert scrape("sequencer_ingest_latency_ms_count") >= 24
    head_line = [line for line in requests.get(f"{server.url}/metrics", timeout=10).text.splitlines()
                 if line.startswith("sequencer_sequence_head{") and str(store) in line]
    assert head_line and float(head_line[0].split()[-1]) == 120


def test_killed_worker_loses_nothing_and_invents_nothing(database_url, engine):
    tenant, agent, store = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with start_gunicorn(database_url, env=_server_env(), workers=3) as srv:
        signer = _register(srv.url, tenant, agent)
        batches = [[signer.build_event(store, "o", f"{i}-{j}", "t", {"i": i}) for j in range(20)] for i in range(60)]
        acknowledged = {}
        failed = []
        stop = threading.Event()

        def killer():
            for _ in range(3):
                time.sleep(0.4)
                pids = srv.worker_pids()
                if pids:
                    os.kill(random.choice(pids), signal.SIGKILL)
            stop.set()

        def send(batch):
            try:
                response = requests.post(f"{srv.url}/api/v1/ves/events/ingest", json={"events": batch},
                                         headers=ADMIN, timeout=30)
            except requests.RequestException:
                failed.append(batch)
                return
            if response.status_code != 200:
                failed.append(batch)
                return
            for event, receipt in zip(batch, response.json()["receipts"]):
                acknowledged[event["event_id"]] = receipt["sequenceNumber"]

        thread = threading.Thread(target=killer)
        thread.start()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(send, batches))
        thread.join()
        for batch in failed:
            time.sleep(0.2)
            send(batch)
        rows = _all_rows(engine, tenant, store)
    assert [r.sequence_number for r in rows] == list(range(1, 1201))
    by_id = {str(r.event_id): r.sequence_number for r in rows}
    assert len(by_id) == 1200
    assert all(by_id[event_id] == number for event_id, number in acknowledged.items())


def test_rate_limit_holds_across_workers_with_redis(database_url):
    import redis

    redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2).ping()
    env = _server_env(RATE_LIMIT_PER_MINUTE="20", RATE_LIMIT_STORAGE_URI="redis://127.0.0.1:6379",
                      RATE_LIMIT_WINDOW_SECONDS="60")
    with start_gunicorn(database_url, env=env, workers=4) as srv:
        created = _create_key(srv.url, uuid.uuid4(), "read")
        headers = {"Authorization": f"ApiKey {created['api_key']}"}
        query = f"tenant_id={created['tenant_id']}&store_id={uuid.uuid4()}"
        responses = []
        for _ in range(30):
            with requests.Session() as session:
                responses.append(session.get(f"{srv.url}/api/v1/ves/head?{query}", headers=headers, timeout=10))
        statuses = [r.status_code for r in responses]
        assert statuses.count(200) == 20 and statuses.count(429) == 10
        limited = next(r for r in responses if r.status_code == 429)
        assert limited.json()["code"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
        assert limited.headers["RateLimit-Limit"] == "20" and limited.headers["RateLimit-Remaining"] == "0"
        assert 0 <= int(limited.headers["RateLimit-Reset"]) <= 60
        ok = responses[0]
        assert ok.headers["RateLimit-Remaining"] == "19" and "Retry-After" not in ok.headers
        assert all(requests.get(f"{srv.url}{p}", timeout=5).status_code == 200 for p in ("/health", "/ready")
                   for _ in range(25))

        own = _create_key(srv.url, uuid.uuid4(), "read", rate_limit=5)
        own_headers = {"Authorization": f"ApiKey {own['api_key']}"}
        own_query = f"tenant_id={own['tenant_id']}&store_id={uuid.uuid4()}"
        own_statuses = [requests.get(f"{srv.url}/api/v1/ves/head?{own_query}", headers=own_headers,
                                     timeout=10).status_code for _ in range(8)]
        assert own_statuses.count(200) == 5


def _send_from_process(url: str, batches: list[list[dict]]) -> list[tuple[str, int]]:
    """Runs in a separate client process: send batches, return (event_id, sequence_number) per receipt."""
    numbers = []
    with requests.Session() as session:
        for batch in batches:
            response = session.post(f"{url}/api/v1/ves/events/ingest", json={"events": batch}, headers=ADMIN,
                                    timeout=60)
            response.raise_for_status()
            numbers.extend((r["eventId"], r["sequenceNumber"]) for r in response.json()["receipts"])
    return numbers


def test_client_processes_and_threads_on_one_stream_get_exactly_one_to_n(server, engine):
    import multiprocessing

    tenant, agent, store = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    signer = _register(server.url, tenant, agent)
    plans = [[[signer.build_event(store, "o", f"{p}-{b}", "t", {"p": p, "b": b, "i": i}) for i in range(25)]
              for b in range(8)] for p in range(6)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as processes, ThreadPoolExecutor(3) as threads:
        process_results = processes.starmap_async(_send_from_process, [(server.url, plan) for plan in plans[:3]])
        thread_results = list(threads.map(lambda plan: _send_from_process(server.url, plan), plans[3:]))
        results = process_results.get(timeout=120) + thread_results
    receipts = dict(pair for result in results for pair in result)
    rows = _all_rows(engine, tenant, store)
    assert len(receipts) == 6 * 8 * 25 == len(rows)
    assert [r.sequence_number for r in rows] == list(range(1, len(rows) + 1))
    assert all(receipts[str(r.event_id)] == r.sequence_number for r in rows)
