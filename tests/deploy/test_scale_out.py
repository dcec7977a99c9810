"""Several sequencer instances behind the shipped nginx upstream: two gunicorn instances (two workers each) reach one
database through a real PgBouncer in transaction pooling mode (LISTEN direct), nginx/nginx.conf balances clients
over both over HTTPS.

What must hold: concurrent clients writing the same streams through nginx get gapless numbers; every receipt's event
is stored exactly once, at the receipted number, and is read back through nginx; a long poll on one instance wakes
for an event committed through the other; when one instance is killed mid-load, clients retrying the same events
(idempotent by event_id) lose nothing and duplicate nothing.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import requests
import sqlalchemy as sa

from tests.deploy.test_nginx_proxy import running_nginx
from tests.support.pg import create_database
from tests.support.pg import drop_database
from tests.support.servers import start_gunicorn
from tests.test_worker_model import ADMIN
from tests.test_worker_model import register_signer
from tests.test_worker_model import server_env

pytestmark = pytest.mark.slow

CLIENTS = 6
BATCHES_PER_CLIENT = 12


@pytest.fixture(scope="module")
def stack(pgbouncer, database_server_url, find_tool, nginx_renderer, tls_cert_dir):
    url = create_database(database_server_url, prefix="seqscale")
    env = server_env(DATABASE_LISTEN_URL=url, TRUST_PROXY_HEADERS="1")
    try:
        with start_gunicorn(pgbouncer.url_for(url), env=env, workers=2) as first, \
                start_gunicorn(pgbouncer.url_for(url), env=env, workers=2) as second, \
                running_nginx(find_tool, nginx_renderer, [first.port, second.port], tls_cert_dir) as (_, port, _):
            engine = sa.create_engine(url)
            yield SimpleNamespace(instances=(first, second), base=f"https://127.0.0.1:{port}",
                                  verify=str(tls_cert_dir / "fullchain.pem"), engine=engine)
            engine.dispose()
    finally:
        drop_database(database_server_url, url)


def ingest_until_accepted(stack, session: requests.Session, batch: list[dict], deadline: float,
                          user_agent: str) -> list[dict]:
    """POST the same batch until a 200 (any connection error, 502 or 503 is retried): what a client must do."""
    while True:
        try:
            response = session.post(f"{stack.base}/api/v1/ves/events/ingest", json={"events": batch},
                                    headers={**ADMIN, "User-Agent": user_agent}, verify=stack.verify, timeout=30)
            if response.status_code == 200:
                body = response.json()
                # A retry of a batch the killed instance had already committed is a replay: its receipts come back,
                # but eventsAccepted counts only new events (the original's meaning).
                assert body["eventsRejected"] == 0 and len(body.get("receipts", [])) == len(batch), body
                return body["receipts"]
            assert response.status_code in (502, 503, 504), response.text
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "ingest kept failing"
        time.sleep(0.05)


def run_clients(stack, signer, stores, seed: int, user_agent: str, during=None) -> dict[str, tuple[str, int, bool]]:
    """CLIENTS threads, each sending BATCHES_PER_CLIENT batches of 1-10 events over random stores; `during` runs
    once every client has a third of its batches in. Returns event_id -> (store_id, receipted number, duplicate)."""
    rng = random.Random(seed)
    plans = [[[signer.build_event(rng.choice(stores), "order", f"c{client}-{rng.randint(0, 5)}", "order.touched",
                                  {"client": client, "r": rng.random()}) for _ in range(rng.randint(1, 10))]
              for _ in range(BATCHES_PER_CLIENT)] for client in range(CLIENTS)]
    receipts: dict[str, tuple[str, int, bool]] = {}
    lock = threading.Lock()
    started = threading.Barrier(CLIENTS + 1)
    third = threading.Semaphore(0)
    deadline = time.monotonic() + 120

    def client(batches):
        session = requests.Session()
        started.wait()
        for number, batch in enumerate(batches):
            for event, receipt in zip(batch, ingest_until_accepted(stack, session, batch, deadline, user_agent)):
                with lock:
                    assert event["event_id"] not in receipts
                    receipts[event["event_id"]] = (event["store_id"], receipt["sequenceNumber"],
                                                   bool(receipt.get("duplicate")))
            if number == BATCHES_PER_CLIENT // 3:
                third.release()

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(client, batches) for batches in plans]
        started.wait()
        if during is not None:
            for _ in range(CLIENTS):
                third.acquire()
            during()
        for future in futures:
            future.result()
    assert len(receipts) == sum(len(batch) for batches in plans for batch in batches)
    return receipts


def assert_stored_exactly_once_and_gapless(stack, tenant, stores, receipts) -> None:
    with stack.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT store_id, sequence_number, event_id FROM events WHERE tenant_id = :t"),
                            {"t": tenant}).all()
    assert len(rows) == len(receipts) == len({row.event_id for row in rows})
    assert {str(row.event_id): (str(row.store_id), row.sequence_number) for row in rows} == {
        event_id: (store, number) for event_id, (store, number, _) in receipts.items()}
    for store in stores:
        numbers = sorted(row.sequence_number for row in rows if row.store_id == store)
        assert numbers == list(range(1, len(numbers) + 1)), store


def read_back_through_nginx(stack, tenant, store) -> list[str]:
    ids, position = [], 1
    while True:
        page = requests.get(f"{stack.base}/api/v1/ves/events", params={
            "tenant_id": str(tenant), "store_id": str(store), "from": position, "limit": 50},
            headers=ADMIN, verify=stack.verify, timeout=30).json()
        ids += [event["event_id"] for event in page["events"]]
        if not page["events"]:
            return ids
        position = page["next_from"]


def access_lines(instance, user_agent: str) -> list[dict]:
    """The instance's access-log lines for requests sent with `user_agent`."""
    lines = [json.loads(line) for line in instance.log_text().splitlines() if user_agent in line]
    return [line for line in lines if line.get("target") == "gunicorn::access" and line["user_agent"] == user_agent]


def test_concurrent_clients_through_nginx_share_streams_gaplessly_and_exactly_once(stack):
    tenant, stores = uuid.uuid4(), [uuid.uuid4(), uuid.uuid4()]
    signer = register_signer(stack.instances[0].url, tenant)
    user_agent = f"scale-out-{uuid.uuid4()}"
    receipts = run_clients(stack, signer, stores, seed=4, user_agent=user_agent)
    assert not any(duplicate for _, _, duplicate in receipts.values())
    assert_stored_exactly_once_and_gapless(stack, tenant, stores, receipts)
    served = [len([line for line in access_lines(instance, user_agent) if line["status"] == 200])
              for instance in stack.instances]
    assert sum(served) == CLIENTS * BATCHES_PER_CLIENT
    assert min(served) >= CLIENTS * BATCHES_PER_CLIENT // 4, served  # nginx spread the load over both
    for store in stores:
        in_order = sorted((number, event_id) for event_id, (s, number, _) in receipts.items() if s == str(store))
        assert read_back_through_nginx(stack, tenant, store) == [event_id for _, event_id in in_order]


def test_a_long_poll_through_nginx_wakes_for_a_commit_through_the_other_instance(stack):
    tenant, store = uuid.uuid4(), uuid.uuid4()
    writer, other = stack.instances
    signer = register_signer(writer.url, tenant)
    user_agent = f"long-poll-{uuid.uuid4()}"
    results = []

    def poll():
        response = requests.get(f"{stack.base}/api/v1/ves/events", params={
            "tenant_id": str(tenant), "store_id": str(store), "wait": 10},
            headers={**ADMIN, "User-Agent": user_agent}, verify=stack.verify, timeout=30)
        results.append((time.monotonic(), response.json()))

    # Four polls: round robin (per nginx worker) puts at least one on each instance; the access logs say where.
    pollers = [threading.Thread(target=poll) for _ in range(4)]
    for thread in pollers:
        thread.start()
    time.sleep(1.0)
    event = signer.build_event(store, "order", "x", "order.created", {})
    response = requests.post(f"{writer.url}/api/v1/ves/events/ingest", json={"events": [event]}, headers=ADMIN,
                             timeout=30)
    committed = time.monotonic()
    assert response.json()["eventsAccepted"] == 1
    for thread in pollers:
        thread.join(timeout=20)
    assert len(results) == 4
    for done, body in results:
        assert [e["event_id"] for e in body["events"]] == [event["event_id"]]
        assert done - committed < 1.5
    time.sleep(0.2)
    assert access_lines(other, user_agent), "no long poll waited on the instance that did not commit"


def test_killing_one_instance_mid_load_loses_and_duplicates_nothing(stack):
    """Runs last: it kills the first instance (master and workers, SIGKILL) while clients are writing."""
    tenant, stores = uuid.uuid4(), [uuid.uuid4(), uuid.uuid4()]
    signer = register_signer(stack.instances[1].url, tenant)
    victim = stack.instances[0]

    def kill_first_instance():
        os.killpg(victim.process.pid, signal.SIGKILL)
        victim.process.wait(timeout=10)

    user_agent = f"kill-{uuid.uuid4()}"
    receipts = run_clients(stack, signer, stores, seed=9, user_agent=user_agent, during=kill_first_instance)
    assert victim.process.poll() is not None
    before_kill = len(access_lines(victim, user_agent))
    after_kill = len([line for line in access_lines(stack.instances[1], user_agent) if line["status"] == 200])
    assert before_kill >= 1 and after_kill >= CLIENTS * (BATCHES_PER_CLIENT - BATCHES_PER_CLIENT // 3 - 1)
    assert_stored_exactly_once_and_gapless(stack, tenant, stores, receipts)
    for store in stores:
        in_order = sorted((number, event_id) for event_id, (s, number, _) in receipts.items() if s == str(store))
        assert read_back_through_nginx(stack, tenant, store) == [event_id for _, event_id in in_order]
