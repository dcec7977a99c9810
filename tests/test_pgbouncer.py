"""Everything through a real PgBouncer in transaction pooling mode (a server connection belongs to a client for
one transaction only): per-transaction bounds that never leak, migrations, two gunicorn instances ingesting into
shared streams, long polls (with and without a direct DATABASE_LISTEN_URL), commitments and proofs."""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest
import requests
import sqlalchemy as sa

from app.config import Settings
from app.db.engine import make_engine
from app.db.migrations import current_revision
from app.db.migrations import head_revision
from app.db.migrations import upgrade_to_head
from tests.support.pg import create_database
from tests.support.pg import drop_database
from tests.support.servers import start_gunicorn
from tests.test_worker_model import ADMIN
from tests.test_worker_model import create_key
from tests.test_worker_model import register_signer
from tests.test_worker_model import server_env


def _settings_for(url: str, **overrides) -> Settings:
    return Settings.from_env({"DATABASE_URL": url, **{k.upper(): str(v) for k, v in overrides.items()}})


def test_bounds_are_set_per_transaction_and_never_reach_another_client(pgbouncer, database_url):
    via = pgbouncer.url_for(database_url)
    engine = make_engine(_settings_for(via, db_statement_timeout_ms=400, stream_lock_timeout_ms=300), pool_size=2)
    plain = sa.create_engine(via, poolclass=sa.pool.NullPool)
    try:
        for _ in range(3):
            with engine.connect() as conn:
                assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "400ms"
                assert conn.execute(sa.text("SHOW lock_timeout")).scalar() == "300ms"
                started = time.monotonic()
                with pytest.raises(sa.exc.OperationalError) as info:
                    conn.execute(sa.text("SELECT pg_sleep(3)"))
                assert isinstance(info.value.orig, psycopg2.errors.QueryCanceled)
                assert time.monotonic() - started < 2
        for _ in range(10):
            with plain.connect() as conn:
                assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "0"
                assert conn.execute(sa.text("SHOW lock_timeout")).scalar() == "0"
    finally:
        engine.dispose()
        plain.dispose()


def test_concurrent_migrations_through_pgbouncer_migrate_exactly_once(pgbouncer, database_server_url):
    url = create_database(database_server_url, prefix="seqbouncer")
    engines = [make_engine(_settings_for(pgbouncer.url_for(url)), pool_size=1) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            applied = list(pool.map(upgrade_to_head, engines))
        assert applied.count(True) == 1
        assert current_revision(engines[0]) == head_revision()
        assert upgrade_to_head(engines[1]) is False
    finally:
        for engine in engines:
            engine.dispose()
        drop_database(database_server_url, url)


@pytest.fixture(scope="module")
def bounced(pgbouncer, database_server_url):
    """A fresh, unmigrated database; two gunicorn instances reach it through PgBouncer (and migrate it through it
    at start-up), with a direct DATABASE_LISTEN_URL for LISTEN."""
    url = create_database(database_server_url, prefix="seqbounced")
    env = server_env(DATABASE_LISTEN_URL=url)
    try:
        with start_gunicorn(pgbouncer.url_for(url), env=env, workers=2) as first, \
                start_gunicorn(pgbouncer.url_for(url), env=env, workers=2) as second:
            engine = sa.create_engine(url)
            yield first, second, engine
            engine.dispose()
    finally:
        drop_database(database_server_url, url)


pytestmark_slow = pytest.mark.slow


@pytestmark_slow
def test_two_instances_ingest_into_shared_streams_gapless_without_duplicates(bounced):
    first, second, engine = bounced
    assert current_revision(engine) == head_revision()
    tenant = uuid.uuid4()
    signer = register_signer(first.url, tenant)
    stores = [uuid.uuid4(), uuid.uuid4()]
    rng = random.Random(14)
    plans = [[[signer.build_event(rng.choice(stores), "order", f"c{client}-{rng.randint(0, 9)}", "order.touched",
                                  {"c": client, "r": rng.random()}) for _ in range(rng.randint(1, 15))]
              for _ in range(10)] for client in range(6)]
    receipts = {}
    lock = threading.Lock()

    def run(client_batches):
        for number, batch in enumerate(client_batches):
            server = (first, second)[number % 2]
            response = requests.post(f"{server.url}/api/v1/ves/events/ingest", json={"events": batch},
                                     headers=ADMIN, timeout=60)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["eventsAccepted"] == len(batch), body
            with lock:
                for event, receipt in zip(batch, body["receipts"]):
                    receipts[event["event_id"]] = (event["store_id"], receipt["sequenceNumber"])

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(run, plans))
    total = sum(len(b) for batches in plans for b in batches)
    assert len(receipts) == total
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT store_id, sequence_number, event_id FROM events WHERE tenant_id = :t "
                                    "ORDER BY store_id, sequence_number"), {"t": tenant}).all()
    assert len(rows) == total
    for store in stores:
        numbers = [r.sequence_number for r in rows if r.store_id == store]
        assert numbers == list(range(1, len(numbers) + 1))
    assert {str(r.event_id): (str(r.store_id), r.sequence_number) for r in rows} == receipts


@pytestmark_slow
def test_a_long_poll_on_one_instance_wakes_when_the_other_commits(bounced):
    first, second, _ = bounced
    tenant, store = uuid.uuid4(), uuid.uuid4()
    signer = register_signer(first.url, tenant)
    reader = create_key(first.url, tenant, "read")
    result = {}

    def poll():
        response = requests.get(f"{first.url}/api/v1/ves/events?tenant_id={tenant}&store_id={store}&wait=10",
                                headers=reader, timeout=30)
        result["done"], result["response"] = time.monotonic(), response

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(1.0)
    event = signer.build_event(store, "order", "x", "order.created", {})
    assert requests.post(f"{second.url}/api/v1/ves/events/ingest", json={"events": [event]}, headers=ADMIN,
                         timeout=30).json()["eventsAccepted"] == 1
    committed = time.monotonic()
    thread.join(timeout=20)
    assert result["response"].json()["events"][0]["event_id"] == event["event_id"]
    assert result["done"] - committed < 1.0


@pytestmark_slow
def test_commitments_and_proofs_through_pgbouncer(bounced):
    first, second, _ = bounced
    tenant, store = uuid.uuid4(), uuid.uuid4()
    signer = register_signer(first.url, tenant)
    events = [signer.build_event(store, "order", f"o{i}", "order.created", {"i": i}) for i in range(5)]
    assert requests.post(f"{second.url}/api/v1/ves/events/ingest", json={"events": events}, headers=ADMIN,
                         timeout=30).json()["eventsAccepted"] == 5
    created = requests.post(f"{first.url}/api/v1/ves/commitments", headers=ADMIN, timeout=30,
                            json={"tenant_id": str(tenant), "store_id": str(store)})
    assert created.status_code == 200, created.text
    assert (created.json()["sequence_start"], created.json()["sequence_end"]) == (1, 5)
    proof = requests.get(f"{second.url}/api/v1/ves/proofs/3?tenant_id={tenant}&store_id={store}", headers=ADMIN,
                         timeout=30)
    assert proof.status_code == 200, proof.text
    body = proof.json()
    verdict = requests.post(f"{first.url}/api/v1/ves/proofs/verify", headers=ADMIN, timeout=30, json={
        key: body[key] for key in ("leaf_hash", "merkle_root", "proof_path", "leaf_index", "leaf_count",
                                   "directions")})
    assert verdict.status_code == 200 and verdict.json()["valid"] is True, verdict.text


@pytestmark_slow
def test_without_a_direct_listen_url_long_polls_still_wake_by_re_reading(pgbouncer, database_url):
    with start_gunicorn(pgbouncer.url_for(database_url), env=server_env(LOG_LEVEL="info"), workers=1) as server:
        tenant, store = uuid.uuid4(), uuid.uuid4()
        signer = register_signer(server.url, tenant)
        result = {}

        def poll():
            response = requests.get(f"{server.url}/api/v1/ves/events?tenant_id={tenant}&store_id={store}&wait=10",
                                    headers=ADMIN, timeout=30)
            result["done"], result["response"] = time.monotonic(), response

        thread = threading.Thread(target=poll)
        thread.start()
        time.sleep(3.0)
        event = signer.build_event(store, "order", "x", "order.created", {})
        assert requests.post(f"{server.url}/api/v1/ves/events/ingest", json={"events": [event]}, headers=ADMIN,
                             timeout=30).json()["eventsAccepted"] == 1
        committed = time.monotonic()
        thread.join(timeout=20)
        assert result["response"].json()["count"] == 1
        assert result["done"] - committed < 2.5
        assert "NOTIFY does not arrive on DATABASE_LISTEN_URL" in server.log_text()
