"""Ingest benchmark (issue 4 item 11, issue 12; not part of the test suite).

Starts its own gunicorn on a fresh database, pre-signs every event before timing, and measures signed ingest
(POST /api/v1/ves/events/ingest) for batch sizes 1, 10, 100 with 1 and 4 client processes, each client on its own
stream and all 4 on one shared stream (contention on the stream's advisory lock), plus batch 1 with 8 and 32
clients. In the same run, on the same database, it times plain INSERTs of identical rows into `bench_events` (LIKE
events INCLUDING ALL), one transaction each: the practical ceiling (1, 10, 100 rows × 4 connections; 1 row × 1 and
× 8 connections). It prints the issue-12 ratios (ingest / ceiling of the same shape, same run) and, with `--plot`,
writes a PNG of events/s and p50/p99 per case.

    .venv/bin/python bench/ingest.py                       # embedded PostgreSQL, WEB_CONCURRENCY 2..5
    .venv/bin/python bench/ingest.py --quick               # smoke run, about 30 s
    .venv/bin/python bench/ingest.py --database-url postgresql://postgres@127.0.0.1:5432/postgres --json out.json

Rates are accepted events per wall-clock second over the timed window (first request sent to last response read,
across all clients); latencies are per HTTP request, in milliseconds. Every response is checked: HTTP 200, every
event accepted, one receipt per event. A run with any failure exits non-zero.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.client.signer import AgentSigner  # noqa: E402
from tests.support.servers import start_gunicorn  # noqa: E402
from tests.support.pg import ScratchDatabase  # noqa: E402

BOOTSTRAP_KEY = "bench-bootstrap-admin-key-0123456789abcdef"
SEQUENCER_KEY_HEX = "42" * 32
INGEST_PATH = "/api/v1/ves/events/ingest"
HEADLINE = (100, 4, False)
CEILINGS = ((1, 1), (1, 4), (1, 8), (10, 4), (100, 4))
"""(rows per transaction, connections) of the plain-INSERT ceilings."""
RATIOS = (
    ("batch 1 x 8 clients: events/s vs 1-row INSERT x 8 conns", (1, 8), (1, 8), "throughput", 0.25, 50.0),
    ("batch 100 x 4 clients: events/s vs 100-row INSERT x 4 conns", (100, 4), (100, 4), "throughput", 0.35, 150.0),
    ("batch 1 x 1 client: p50 / p50 of one 1-row INSERT transaction", (1, 1), (1, 1), "p50", None, None),
)
"""The issue-12 targets: (name, ingest (batch, clients), ceiling (rows, conns), kind, minimum ratio, p99 bound)."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One measured configuration: `requests` is the number of timed requests per client."""

    batch_size: int
    clients: int
    shared_stream: bool
    requests: int

    @property
    def label(self) -> str:
        streams = "1 shared stream" if self.shared_stream else "own stream each"
        return f"batch {self.batch_size:>3} x {self.clients} client{'s' if self.clients > 1 else ' '} ({streams})"


@dataclasses.dataclass
class Result:
    label: str
    batch_size: int
    clients: int
    shared_stream: bool
    workers: int | None
    events: int
    requests: int
    seconds: float
    events_per_s: float
    requests_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    load_average: float | None = None


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (fraction in 0..1]."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarise(label: str, case_batch: int, clients: int, shared: bool, workers: int | None,
              spans: list[tuple[float, float]], latencies_s: list[float], events: int) -> Result:
    """Throughput over the union window of all clients' `(start, end)` spans; latencies in ms."""
    seconds = max(end for _, end in spans) - min(start for start, _ in spans)
    ordered = sorted(latency * 1000.0 for latency in latencies_s)
    return Result(load_average=round(os.getloadavg()[0], 2),
        label=label, batch_size=case_batch, clients=clients, shared_stream=shared, workers=workers, events=events,
        requests=len(latencies_s), seconds=seconds, events_per_s=events / seconds,
        requests_per_s=len(latencies_s) / seconds,
        p50_ms=percentile(ordered, 0.50) if ordered else None, p95_ms=percentile(ordered, 0.95) if ordered else None,
        p99_ms=percentile(ordered, 0.99) if ordered else None, max_ms=ordered[-1] if ordered else None,
    )


# ---------------------------------------------------------------------------------------------------------------
# HTTP clients (one process each, so the client side's GIL does not cap the numbers)


def _sample_payload(client: int, n: int) -> dict:
    return {"order_id": f"ord-{client}-{n}", "customer": {"id": f"cus-{n % 97}", "tier": "gold"},
            "amount_cents": 1000 + n, "currency": "EUR",
            "lines": [{"sku": f"SKU-{(n + i) % 500:04d}", "qty": 1 + i, "price_cents": 250 * (i + 1)}
                      for i in range(3)]}


def _signed_bodies(seed: bytes, tenant: str, agent: str, store: str, client: int, batch_size: int,
                   batches: int) -> list[bytes]:
    """Request bodies, signed and JSON-encoded up front: nothing of this is inside the timed window."""
    signer = AgentSigner(seed, tenant, agent, 1)
    bodies = []
    for b in range(batches):
        events = [signer.build_event(store, "order", f"c{client}-e{(b * batch_size + i) % 1000}", "order.updated",
                                     _sample_payload(client, b * batch_size + i))
                  for i in range(batch_size)]
        bodies.append(json.dumps({"events": events}, separators=(",", ":")).encode())
    return bodies


def _post(session: requests.Session, url: str, headers: dict, body: bytes, batch_size: int) -> None:
    response = session.post(url, data=body, headers=headers, timeout=120)
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
    answer = response.json()
    if answer["eventsAccepted"] != batch_size or len(answer["receipts"]) != batch_size:
        raise RuntimeError(f"accepted {answer['eventsAccepted']} of {batch_size}: {answer.get('rejections', [])[:2]}")


def _http_client(base_url: str, api_key: str, seed: bytes, tenant: str, agent: str, store: str, client: int,
                 case: Case, barrier, results) -> None:
    try:
        bodies = _signed_bodies(seed, tenant, agent, store, client, case.batch_size, case.requests + 1)
        url = base_url + INGEST_PATH
        headers = {"Authorization": f"ApiKey {api_key}", "Content-Type": "application/json"}
        latencies = []
        with requests.Session() as session:
            _post(session, url, headers, bodies[0], case.batch_size)
            barrier.wait(timeout=300)
            started = time.perf_counter()
            for body in bodies[1:]:
                sent = time.perf_counter()
                _post(session, url, headers, body, case.batch_size)
                latencies.append(time.perf_counter() - sent)
            results.put(("ok", started, time.perf_counter(), latencies))
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        barrier.abort()
        results.put(("error", repr(exc)))


def _run_processes(target, args_per_client: list[tuple]) -> list[tuple]:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(args_per_client))
    results = ctx.Queue()
    processes = [ctx.Process(target=target, args=(*args, barrier, results)) for args in args_per_client]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=900) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    errors = [outcome[1] for outcome in outcomes if outcome[0] == "error"]
    if errors:
        raise RuntimeError("client failed: " + "; ".join(errors))
    return outcomes


def run_ingest_case(base_url: str, api_key: str, tenant: str, agent: str, seed: bytes, case: Case,
                    workers: int | None) -> Result:
    shared = str(uuid.uuid4())
    args = [(base_url, api_key, seed, tenant, agent, shared if case.shared_stream else str(uuid.uuid4()), client,
             case) for client in range(case.clients)]
    outcomes = _run_processes(_http_client, args)
    latencies = [latency for outcome in outcomes for latency in outcome[3]]
    return summarise(case.label, case.batch_size, case.clients, case.shared_stream, workers,
                     [(o[1], o[2]) for o in outcomes], latencies, len(latencies) * case.batch_size)


# ---------------------------------------------------------------------------------------------------------------
# The ceiling: plain multi-row INSERTs of identical rows, same database, same batch size, 4 connections


def _psycopg2_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _ceiling_client(dsn: str, columns: list[str], template: tuple, batch_size: int, transactions: int, barrier,
                    results) -> None:
    import psycopg2
    from psycopg2.extras import execute_values

    try:
        index = {name: i for i, name in enumerate(columns)}
        store = uuid.uuid4()
        batches = []
        for t in range(transactions + 1):
            batch = []
            for i in range(batch_size):
                row = list(template)
                row[index["store_id"]] = store
                row[index["sequence_number"]] = t * batch_size + i + 1
                row[index["event_id"]] = uuid.uuid4()
                batch.append(tuple(row))
            batches.append(batch)
        statement = f"INSERT INTO bench_events ({', '.join(columns)}) VALUES %s"
        psycopg2.extras.register_uuid()
        connection = psycopg2.connect(dsn)
        latencies = []
        with connection, connection.cursor() as cursor:
            execute_values(cursor, statement, batches[0], page_size=batch_size)
            connection.commit()
            barrier.wait(timeout=300)
            started = time.perf_counter()
            for batch in batches[1:]:
                sent = time.perf_counter()
                execute_values(cursor, statement, batch, page_size=batch_size)
                connection.commit()
                latencies.append(time.perf_counter() - sent)
        connection.close()
        results.put(("ok", started, time.perf_counter(), latencies))
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        barrier.abort()
        results.put(("error", repr(exc)))


def run_ceiling(database_url: str, batch_size: int, connections: int, transactions: int) -> Result:
    """One INSERT … VALUES of `batch_size` rows and a COMMIT per transaction; rows copied from a stored event."""
    import psycopg2.extras

    psycopg2.extras.register_uuid()
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS bench_events (LIKE events INCLUDING ALL)"))
        row = conn.execute(sa.text("SELECT * FROM events ORDER BY sequenced_at DESC LIMIT 1")).one()
    engine.dispose()
    columns = list(row._mapping.keys())
    template = tuple(psycopg2.extras.Json(value) if isinstance(value, (dict, list)) else value for value in row)
    args = [(_psycopg2_dsn(database_url), columns, template, batch_size, transactions)
            for _ in range(connections)]
    outcomes = _run_processes(_ceiling_client, args)
    latencies = [latency for outcome in outcomes for latency in outcome[3]]
    label = f"plain INSERT, {batch_size:>3} rows/txn x {connections} conns"
    return summarise(label, batch_size, connections, False, None, [(o[1], o[2]) for o in outcomes], latencies,
                     len(latencies) * batch_size)


# ---------------------------------------------------------------------------------------------------------------
# Orchestration


def _cases(quick: bool) -> list[Case]:
    """Requests per client are sized so every case takes a few seconds at the expected rates."""
    per_client = {1: 60, 10: 30, 100: 8} if quick else {1: 500, 10: 200, 100: 60}
    cases = []
    for batch_size in (1, 10, 100):
        cases.append(Case(batch_size, 1, False, per_client[batch_size] * 2))
        cases.append(Case(batch_size, 4, False, per_client[batch_size]))
        cases.append(Case(batch_size, 4, True, per_client[batch_size]))
        if batch_size == 1:
            cases.append(Case(1, 8, False, per_client[1]))
            cases.append(Case(1, 32, False, max(20, per_client[1] // 4)))
    return cases


def ratios(results: list[Result], ceilings: list[Result]) -> list[dict]:
    """The issue-12 ratios of one run: ingest against the plain-INSERT ceiling of the same shape."""
    out = []
    for name, (batch, clients), (rows, conns), kind, minimum, p99_bound in RATIOS:
        ingest = next((r for r in results if (r.batch_size, r.clients, r.shared_stream) == (batch, clients, False)),
                      None)
        ceiling = next((c for c in ceilings if (c.batch_size, c.clients) == (rows, conns)), None)
        if ingest is None or ceiling is None:
            continue
        if kind == "throughput":
            ratio = ingest.events_per_s / ceiling.events_per_s
            met = ratio >= minimum and ingest.p99_ms < p99_bound
            target = f">= {100 * minimum:.0f} % with p99 < {p99_bound:.0f} ms"
        else:
            ratio = ingest.p50_ms / ceiling.p50_ms
            met = None
            target = "half of the ratio before (same machine)"
        out.append({"name": name, "ratio": round(ratio, 4), "ingest_events_per_s": round(ingest.events_per_s, 1),
                    "ceiling_events_per_s": round(ceiling.events_per_s, 1), "ingest_p50_ms": ingest.p50_ms,
                    "ingest_p99_ms": ingest.p99_ms, "ceiling_p50_ms": ceiling.p50_ms, "target": target, "met": met})
    return out


def plot(results: list[Result], ceilings: list[Result], path: str, title: str) -> None:
    """A PNG: events/s per case (ingest and ceilings), and p50/p99 request latency per case (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results + ceilings
    labels = [r.label.replace("plain INSERT, ", "INSERT ").strip() for r in rows]
    colours = ["tab:blue" if r.workers is not None else "tab:grey" for r in rows]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(12, 9), sharex=True)
    top.bar(range(len(rows)), [r.events_per_s for r in rows], color=colours)
    top.set_ylabel("events (rows) / s")
    top.set_yscale("log")
    top.set_title(title)
    top.grid(axis="y", alpha=0.3)
    positions = range(len(rows))
    bottom.bar([x - 0.2 for x in positions], [r.p50_ms for r in rows], width=0.4, label="p50", color="tab:green")
    bottom.bar([x + 0.2 for x in positions], [r.p99_ms for r in rows], width=0.4, label="p99", color="tab:red")
    bottom.set_ylabel("request (transaction) latency, ms")
    bottom.set_yscale("log")
    bottom.legend()
    bottom.grid(axis="y", alpha=0.3)
    bottom.set_xticks(list(positions))
    bottom.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _setup_tenant(base_url: str) -> tuple[str, str, str, bytes]:
    """A tenant, one agent key (key id 1) and a read_write API key for the tenant."""
    admin = {"Authorization": f"ApiKey {BOOTSTRAP_KEY}"}
    tenant, agent, seed = str(uuid.uuid4()), str(uuid.uuid4()), os.urandom(32)
    signer = AgentSigner(seed, tenant, agent, 1)
    registered = requests.post(f"{base_url}/api/v1/agents/keys", headers=admin, timeout=30, json={
        "tenant_id": tenant, "agent_id": agent, "key_id": 1, "public_key": signer.public_key_hex})
    if registered.status_code != 200:
        raise RuntimeError(f"agent key registration failed: {registered.status_code} {registered.text}")
    created = requests.post(f"{base_url}/api/v1/admin/api-keys", headers=admin, timeout=30,
                            json={"tenant_id": tenant, "permissions": "read_write"})
    if created.status_code != 201:
        raise RuntimeError(f"API key creation failed: {created.status_code} {created.text}")
    return tenant, agent, created.json()["api_key"], seed


def _server_env(log_level: str) -> dict[str, str]:
    return {"BOOTSTRAP_ADMIN_API_KEY": BOOTSTRAP_KEY, "VES_SEQUENCER_SIGNING_KEY": SEQUENCER_KEY_HEX,
            "RATE_LIMIT_PER_MINUTE": "0", "LOG_LEVEL": log_level}


def _run_on_server(database_url: str, workers: int, cases: list[Case], log_level: str) -> list[Result]:
    results = []
    with start_gunicorn(database_url, env=_server_env(log_level), workers=workers) as server:
        tenant, agent, api_key, seed = _setup_tenant(server.url)
        for case in cases:
            result = run_ingest_case(server.url, api_key, tenant, agent, seed, case, workers)
            print_row(result)
            results.append(result)
    return results


def machine_description(database_url: str) -> dict:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        pg_version = conn.execute(sa.text("SHOW server_version")).scalar()
        pg_settings = {name: conn.execute(sa.text(f"SHOW {name}")).scalar()
                       for name in ("synchronous_commit", "fsync", "shared_buffers", "wal_level")}
    engine.dispose()
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "cpu_model": model, "ram_gib": round(mem_kb / 2**20, 1),
            "postgresql": pg_version, "postgresql_settings": pg_settings, "python": platform.python_version(),
            "kernel": platform.release(), "load_average_at_start": os.getloadavg(),
            "git_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                         text=True).stdout.strip()}


HEADER = (f"{'case':<46} {'workers':>7} {'events':>7} {'events/s':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8}")


def print_row(result: Result) -> None:
    def ms(value):
        return f"{value:8.1f}" if value is not None else f"{'-':>8}"

    workers = str(result.workers) if result.workers is not None else "-"
    print(f"{result.label:<46} {workers:>7} {result.events:>7} {result.events_per_s:>9.0f} "
          f"{result.requests_per_s:>8.1f} {ms(result.p50_ms)} {ms(result.p95_ms)} {ms(result.p99_ms)} "
          f"{ms(result.max_ms)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="admin URL of a PostgreSQL server; a fresh database is created on "
                        "it and dropped afterwards (default: a private embedded pgserver)")
    parser.add_argument("--workers", default=None,
                        help="comma-separated WEB_CONCURRENCY values to sweep with the headline case "
                        "(batch 100 x 4 clients); the full matrix runs on the best (default 2,3,4,5; quick: 2)")
    parser.add_argument("--quick", action="store_true", help="few requests per case: a smoke run")
    parser.add_argument("--headline-only", action="store_true",
                        help="only the headline case (batch 100 x 4 clients) for each --workers value, no ceiling")
    parser.add_argument("--json", metavar="PATH", help="also write every number (and the machine) to PATH")
    parser.add_argument("--log-level", default="warning", help="gunicorn/app LOG_LEVEL (default warning)")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG of events/s and p50/p99 per case to PATH")
    parser.add_argument("--issue12-only", action="store_true",
                        help="only the cases and ceilings of issue 12's ratios (batch 1 x 1/8/32, batch 100 x 4; "
                        "INSERT 1 row x 1/8, 100 rows x 4): an A/B of one change, ~1.5 min")
    parser.add_argument("--replot", metavar="JSON", help="only draw --plot from the results JSON of an earlier run")
    options = parser.parse_args(argv)
    if options.replot:
        data = json.loads(Path(options.replot).read_text())
        plot([Result(**r) for r in data["ingest"]], [Result(**r) for r in data["insert_ceiling"]], options.plot,
             f"signed ingest vs plain INSERT, {data['machine'].get('git_commit') or Path(options.replot).stem}, "
             f"WEB_CONCURRENCY={data.get('best_workers')}, load {data['machine']['load_average_at_start'][0]:.1f}")
        return 0
    sweep = [int(w) for w in (options.workers or ("2" if options.quick else "2,3,4,5")).split(",")]
    cases = _cases(options.quick)
    ceiling_shapes = CEILINGS
    if options.issue12_only:
        cases = [c for c in cases if not c.shared_stream and (c.batch_size, c.clients) in
                 ((1, 1), (1, 8), (1, 32), (100, 4))]
        ceiling_shapes = ((1, 1), (1, 8), (100, 4))
    headline = next(c for c in cases if (c.batch_size, c.clients, c.shared_stream) == HEADLINE)

    scratch = ScratchDatabase(options.database_url, "seqbench")
    database_url = scratch.url
    try:
        machine = machine_description(database_url)
        print(f"machine: {machine}", flush=True)
        print(HEADER)
        sweep_results = []
        if options.headline_only:
            for workers in sweep:
                sweep_results += _run_on_server(database_url, workers, [headline], options.log_level)
            if options.json:
                Path(options.json).write_text(json.dumps({
                    "machine": machine, "quick": options.quick,
                    "worker_sweep": [dataclasses.asdict(r) for r in sweep_results]}, indent=2) + "\n")
            return 0
        if len(sweep) > 1:
            for workers in sweep:
                sweep_results += _run_on_server(database_url, workers, [headline], options.log_level)
            best = max(sweep_results, key=lambda r: r.events_per_s).workers
            print(f"best WEB_CONCURRENCY for the headline case: {best}", flush=True)
        else:
            best = sweep[0]
        results = _run_on_server(database_url, best, cases, options.log_level)
        ceiling_transactions = {1: 150, 10: 60, 100: 15} if options.quick else {1: 1500, 10: 600, 100: 150}
        ceilings = []
        for batch_size, connections in ceiling_shapes:
            transactions = ceiling_transactions[batch_size] * (2 if connections == 1 else 1)
            ceilings.append(run_ceiling(database_url, batch_size, connections, transactions))
            print_row(ceilings[-1])
        print()
        ingest_100 = next(r for r in results if (r.batch_size, r.clients, r.shared_stream) == HEADLINE)
        ceiling_100 = next(c for c in ceilings if (c.batch_size, c.clients) == (100, 4))
        print(f"headline: {ingest_100.events_per_s:.0f} signed events/s at batch 100 x 4 clients "
              f"(WEB_CONCURRENCY={best}), p99 {ingest_100.p99_ms:.1f} ms; target >= 3000 events/s, p99 < 100 ms")
        machine["load_average_at_end"] = os.getloadavg()
        print(f"load average at start {machine['load_average_at_start']}, at end {machine['load_average_at_end']} "
              "(anything else running on the 2 cores skews every number)")
        print(f"ceiling:  {ceiling_100.events_per_s:.0f} rows/s plain INSERT at 100 rows x 4 conns; ingest reaches "
              f"{100 * ingest_100.events_per_s / ceiling_100.events_per_s:.0f} % of it")
        measured = ratios(results, ceilings)
        for ratio in measured:
            verdict = {True: "met", False: "NOT met", None: "compare with before"}[ratio["met"]]
            print(f"issue 12: {ratio['name']}: {ratio['ratio']:.3f} (p99 {ratio['ingest_p99_ms']:.1f} ms; target "
                  f"{ratio['target']}): {verdict}")
        if options.json:
            Path(options.json).write_text(json.dumps({
                "machine": machine, "quick": options.quick, "best_workers": best,
                "worker_sweep": [dataclasses.asdict(r) for r in sweep_results],
                "ingest": [dataclasses.asdict(r) for r in results],
                "insert_ceiling": [dataclasses.asdict(r) for r in ceilings],
                "issue_12_ratios": measured}, indent=2) + "\n")
        if options.plot:
            plot(results, ceilings, options.plot, f"signed ingest vs plain INSERT, {machine['git_commit']}, "
                 f"WEB_CONCURRENCY={best}, load {machine['load_average_at_start'][0]:.1f}")
            print(f"plot: {options.plot}")
    finally:
        scratch.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
