"""Worker-model benchmark (issue 10 item 4; not part of the test suite): gunicorn sync vs gthread workers.

Same app, same database, 2 workers each; gthread with the default WEB_THREADS=8 and LONG_POLL_SLOTS_PER_WORKER=3.
For each worker class it measures, on its own fresh gunicorn:

1. batch-1 signed ingest: 1 client, then 8 concurrent clients (threads of this process, keep-alive sessions),
   each on its own stream, for a fixed number of requests: requests/s and latency percentiles;
2. reads under long polls: 8 long polls (`wait=5`) of one tenant are opened, then another tenant sends 20
   `GET /api/v1/ves/head` one after another: latency percentiles and the slowest.

`--rounds N` alternates the two classes N times (the machine is shared: compare medians). Last, the cost of the
per-transaction bounds (`app/db/engine.py`: one `set_config` statement as each transaction begins) is timed
in-process: 3000 one-statement transactions on an engine with the bounds and on one without.

    .venv/bin/python bench/workers.py                 # embedded PostgreSQL, about a minute per round
    .venv/bin/python bench/workers.py --rounds 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from app.client.signer import AgentSigner  # noqa: E402
from bench.ingest import percentile  # noqa: E402
from tests.support.pg import ScratchDatabase  # noqa: E402
from tests.support.servers import start_gunicorn  # noqa: E402

BOOTSTRAP_KEY = "bench-bootstrap-admin-key-0123456789abcdef"
ADMIN = {"Authorization": f"ApiKey {BOOTSTRAP_KEY}"}
# gunicorn silently turns "sync" into gthread when threads > 1, so sync needs --threads 1 as well.
WORKER_ARGS = {"sync": ("--worker-class", "sync", "--threads", "1"), "gthread": ()}


def _summary(latencies: list[float], seconds: float | None = None) -> dict:
    ordered = sorted(x * 1000 for x in latencies)
    out = {"requests": len(ordered), "p50_ms": round(percentile(ordered, 0.5), 1),
           "p99_ms": round(percentile(ordered, 0.99), 1), "max_ms": round(ordered[-1], 1)}
    if seconds is not None:
        out["requests_per_s"] = round(len(ordered) / seconds, 1)
    return out


def _signer(url: str) -> AgentSigner:
    signer = AgentSigner(os.urandom(32), uuid.uuid4(), uuid.uuid4(), 1)
    response = requests.post(f"{url}/api/v1/agents/keys", headers=ADMIN, timeout=30, json={
        "tenant_id": signer.tenant_id, "agent_id": signer.agent_id, "key_id": 1,
        "public_key": signer.public_key_hex})
    response.raise_for_status()
    return signer


def ingest_case(url: str, clients: int, per_client: int) -> dict:
    signer = _signer(url)
    bodies = [[json.dumps({"events": [signer.build_event(store, "order", f"o{i}", "order.created", {"i": i})]})
               for i in range(per_client)] for store in (uuid.uuid4() for _ in range(clients))]
    latencies, lock = [], threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(own_bodies):
        with requests.Session() as session:
            session.post(f"{url}/health")
            barrier.wait()
            for body in own_bodies:
                started = time.perf_counter()
                response = session.post(f"{url}/api/v1/ves/events/ingest", data=body, timeout=60,
                                        headers={**ADMIN, "Content-Type": "application/json"})
                elapsed = time.perf_counter() - started
                if response.status_code != 200 or response.json()["eventsAccepted"] != 1:
                    raise RuntimeError(f"ingest failed: {response.status_code} {response.text[:200]}")
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=client, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return _summary(latencies, time.perf_counter() - started)


def reads_under_long_polls(url: str, polls: int = 8, wait: float = 5.0, reads: int = 20) -> dict:
    poll_tenant, poll_store = uuid.uuid4(), uuid.uuid4()
    other_query = f"tenant_id={uuid.uuid4()}&store_id={uuid.uuid4()}"
    answers = []

    def long_poll():
        response = requests.get(f"{url}/api/v1/ves/events?tenant_id={poll_tenant}&store_id={poll_store}"
                                f"&wait={wait}", headers=ADMIN, timeout=120)
        answers.append("Retry-After" in response.headers)

    pollers = [threading.Thread(target=long_poll) for _ in range(polls)]
    for thread in pollers:
        thread.start()
    time.sleep(0.5)
    latencies = []
    with requests.Session() as session:
        for _ in range(reads):
            started = time.perf_counter()
            session.get(f"{url}/api/v1/ves/head?{other_query}", headers=ADMIN, timeout=120).raise_for_status()
            latencies.append(time.perf_counter() - started)
    for thread in pollers:
        thread.join()
    return {**_summary(latencies), "long_polls": polls, "answered_at_once_with_retry_after": sum(answers)}


def _check_worker_class(server, expected: str) -> None:
    """The workers really are of `expected` class: after some requests a gthread worker has more than one thread,
    a sync worker never does."""
    threads = [len(os.listdir(f"/proc/{pid}/task")) for pid in server.worker_pids()]
    if (expected == "gthread") != any(n > 1 for n in threads):
        raise RuntimeError(f"expected {expected} workers, found thread counts {threads}")


def transaction_bounds_cost(database_url: str, transactions: int = 3000) -> dict:
    """Microseconds per one-statement transaction: plain psycopg2; plain under the deadline wait callback
    (`app.db.bounds`, process-wide once installed); and the app's engine, which also sends the begin-time bounds."""
    import sqlalchemy as sa

    from app.config import Settings
    from app.db.engine import make_engine

    settings = Settings.from_env({"DATABASE_URL": database_url})
    plain = sa.create_engine(settings.database_url, pool_size=1, pool_pre_ping=True)

    def per_transaction(engine) -> float:
        best = None
        for _ in range(2):
            started = time.perf_counter()
            for _ in range(transactions):
                with engine.begin() as conn:
                    conn.execute(sa.text("SELECT 1"))
            elapsed = (time.perf_counter() - started) / transactions * 1e6
            best = elapsed if best is None else min(best, elapsed)
        return round(best, 1)

    try:
        out = {"plain_us": per_transaction(plain)}
        bounded = make_engine(settings, pool_size=1)
        plain.dispose()
        out["plain_with_wait_callback_us"] = per_transaction(plain)
        out["app_engine_us"] = per_transaction(bounded)
        bounded.dispose()
    finally:
        plain.dispose()
    out["added_us_per_transaction"] = round(out["app_engine_us"] - out["plain_us"], 1)
    return out


def _median_rows(rounds: list[dict]) -> dict:
    import statistics

    merged = {}
    for case in rounds[0]:
        merged[case] = {key: statistics.median(r[case][key] for r in rounds) for key in rounds[0][case]}
    return merged


def run(database_url: str, rounds: int) -> dict:
    per_class = {name: [] for name in WORKER_ARGS}
    for number in range(rounds):
        for worker_class, row in run_round(database_url).items():
            per_class[worker_class].append(row)
            print(f"round {number + 1} {worker_class}", json.dumps(row), flush=True)
    return {name: {"median": _median_rows(rows), "rounds": rows} for name, rows in per_class.items()}


def run_round(database_url: str) -> dict:
    results = {}
    for worker_class, extra_args in WORKER_ARGS.items():
        env = {"BOOTSTRAP_ADMIN_API_KEY": BOOTSTRAP_KEY, "VES_SEQUENCER_SIGNING_KEY": "42" * 32,
               "LOG_LEVEL": "warning", "LONG_POLL_MAX_SECONDS": "30"}
        with start_gunicorn(database_url, env=env, workers=2, extra_args=extra_args) as server:
            ingest_case(server.url, 4, 20)
            _check_worker_class(server, worker_class)
            row = {
                "ingest_batch1_1_client": ingest_case(server.url, 1, 300),
                "ingest_batch1_8_clients": ingest_case(server.url, 8, 60),
                "head_reads_under_8_long_polls": reads_under_long_polls(server.url),
            }
        results[worker_class] = row
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="admin URL of a PostgreSQL server (default: embedded pgserver)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--rounds", type=int, default=1, help="alternate sync and gthread this many times")
    args = parser.parse_args(argv)
    scratch = ScratchDatabase(args.database_url, prefix="benchworkers")
    try:
        from app.db.migrations import upgrade_to_head
        import sqlalchemy as sa

        engine = sa.create_engine(scratch.url)
        upgrade_to_head(engine)
        engine.dispose()
        results = {"load_average_at_start": os.getloadavg(), "results": run(scratch.url, args.rounds),
                   "transaction_bounds": transaction_bounds_cost(scratch.url)}
        for worker_class, result in results["results"].items():
            print(worker_class, "median:", json.dumps(result["median"]))
        print("transaction bounds:", json.dumps(results["transaction_bounds"]))
        results["load_average_at_end"] = os.getloadavg()
    finally:
        scratch.close()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
