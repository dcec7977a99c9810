"""Transparency-log benchmark (issue 13 item 2; not part of the test suite).

1. Builds a 1,000,000-event stream in a scratch database: events generated server-side (INSERT … SELECT from
   generate_series, synthetic signing hashes, every third event unsigned), then its log built by the backfill
   (`backfill_logs`), which is also timed: the cost of upgrading a deployment with data.
2. Times, at that size, through the service functions the HTTP edge calls (one fresh pooled connection per call):
   serving the latest checkpoint, signing a new one after 10 more events (consistency check included), an
   inclusion proof, a consistency proof and a root at a random size. Target: < 20 ms each.
3. Ingest throughput with and without the log write, A/B in one run on one database: gunicorn as shipped vs
   gunicorn with `plan_log_growth` replaced by a no-op (bench/gunicorn_without_log.py), loaded in alternating
   bursts of signed 100-event batches from 4 client processes on their own streams: events/s, and CPU per event
   of the server plus PostgreSQL (steadier under background load); and the CPU per request (worker + its
   PostgreSQL backend) in one process, alternating. Target: within 10 %.

    .venv/bin/python bench/tlog.py                      # embedded PostgreSQL, ~4 min
    .venv/bin/python bench/tlog.py --events 100000 --ab-rounds 1   # smoke run
    .venv/bin/python bench/tlog.py --database-url postgresql://postgres@127.0.0.1:5432/postgres --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sqlalchemy as sa  # noqa: E402

import ingest as ingest_bench  # noqa: E402
from app.db.engine import make_engine  # noqa: E402
from app.db.locks import lock_transaction  # noqa: E402
from app.db.locks import stream_lock_key  # noqa: E402
from app.db.migrations import upgrade_to_head  # noqa: E402
from app.config import Settings  # noqa: E402
from app.services import stream_logs as service  # noqa: E402
from app.ves import tlog  # noqa: E402
from app.ves.checkpoint import open_checkpoint  # noqa: E402
from app.ves.note import NoteVerifier  # noqa: E402
from tests.support.pg import ScratchDatabase  # noqa: E402
from tests.support.servers import start_gunicorn  # noqa: E402

LOG_KEY = service.LogKey("bench.example/ves", bytes(range(7, 39)))
GENERATE_EVENTS = sa.text("""
INSERT INTO events (tenant_id, store_id, sequence_number, event_id, ves_version, source_agent_id, agent_key_id,
                    entity_type, entity_id, event_type, created_at_raw, created_at, sequenced_at, payload_kind,
                    payload, payload_plain_hash, payload_cipher_hash, event_signing_hash, agent_signature,
                    entity_version, receipt_hash)
SELECT CAST(:t AS uuid), CAST(:s AS uuid), g, gen_random_uuid(), 1, CAST(:a AS uuid), 1, 'order', 'order-' || g,
       'order.created', '2025-01-01T00:00:00Z', now(), now(), 0, jsonb_build_object('n', g),
       sha256(int8send(g)), sha256(''::bytea), sha256(int8send(g) || '\\x01'::bytea),
       CASE WHEN g % 3 = 0 THEN NULL ELSE sha512(int8send(g)) END, 1, sha256(int8send(g) || '\\x02'::bytea)
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
RETURNING sequence_number, event_signing_hash, agent_signature
""")
MOVE_HEAD = sa.text("INSERT INTO streams (tenant_id, store_id, head_sequence) VALUES (:t, :s, :h) "
                    "ON CONFLICT (tenant_id, store_id) DO UPDATE SET head_sequence = EXCLUDED.head_sequence")


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)

    def at(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(fraction * len(ordered) + 0.999999) - 1))], 2)

    return {"n": len(ordered), "p50_ms": at(0.5), "p95_ms": at(0.95), "p99_ms": at(0.99),
            "max_ms": round(ordered[-1], 2)}


def build_stream(engine, events: int) -> tuple[uuid.UUID, uuid.UUID, dict]:
    tenant, store, agent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    started = time.perf_counter()
    step = 100_000
    for first in range(1, events + 1, step):
        last = min(first + step - 1, events)
        with engine.begin() as conn:
            conn.execute(GENERATE_EVENTS, {"t": tenant, "s": store, "a": agent, "first": first, "last": last})
            conn.execute(MOVE_HEAD, {"t": tenant, "s": store, "h": last})
        print(f"  events inserted: {last:,}", flush=True)
    inserted = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE events"))
    started = time.perf_counter()
    summary = service.backfill_logs(engine, chunk_events=20_000)
    backfill = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE log_nodes"))
    assert summary.events_remaining == 0 and summary.events_logged == events, summary
    print(f"  log built by the backfill: {events:,} events in {backfill:.1f} s", flush=True)
    return tenant, store, {"insert_seconds": round(inserted, 1), "backfill_seconds": round(backfill, 1),
                           "backfill_events_per_s": round(events / backfill)}


def append_events(engine, tenant, store, count: int) -> None:
    """Ingest-shaped: under the stream lock, insert `count` events and extend the log in one transaction."""
    with engine.begin() as conn:
        lock_transaction(conn, stream_lock_key(tenant, store))
        head = conn.execute(sa.text("SELECT head_sequence FROM streams WHERE tenant_id = :t AND store_id = :s"),
                            {"t": tenant, "s": store}).scalar_one()
        rows = conn.execute(GENERATE_EVENTS, {"t": tenant, "s": store, "a": uuid.uuid4(), "first": head + 1,
                                              "last": head + count}).all()
        rows = [{"sequence_number": r.sequence_number, "event_signing_hash": bytes(r.event_signing_hash),
                 "agent_signature": None if r.agent_signature is None else bytes(r.agent_signature)} for r in rows]
        assert service.extend_stream_log(conn, tenant, store, sorted(rows, key=lambda r: r["sequence_number"]))
        conn.execute(MOVE_HEAD, {"t": tenant, "s": store, "h": head + count})


def time_reads(engine, tenant, store, samples: int) -> dict:
    rng = random.Random(13)
    verifier = NoteVerifier.parse(LOG_KEY.verifier_key(tenant, store))
    results: dict[str, list[float]] = {name: [] for name in (
        "checkpoint, serve latest", "checkpoint, sign new (after 10 events)", "inclusion proof",
        "consistency proof", "root at a random size")}
    first = service.sign_checkpoint(engine, tenant, store, LOG_KEY)
    for _ in range(min(samples, 40)):
        append_events(engine, tenant, store, 10)
        started = time.perf_counter()
        signed = service.sign_checkpoint(engine, tenant, store, LOG_KEY)
        results["checkpoint, sign new (after 10 events)"].append((time.perf_counter() - started) * 1000)
    latest = open_checkpoint(signed.note, verifier).checkpoint
    size, root = latest.tree_size, latest.root_hash
    assert size > first.checkpoint.tree_size
    for _ in range(samples):
        started = time.perf_counter()
        served = service.current_checkpoint(engine, tenant, store, LOG_KEY, max_delay_seconds=3600)
        results["checkpoint, serve latest"].append((time.perf_counter() - started) * 1000)
        assert served.checkpoint.tree_size == size

        sequence_number = rng.randint(1, size)
        started = time.perf_counter()
        with engine.connect() as conn:
            proof = service.prove_inclusion(conn, tenant, store, sequence_number, size)
        results["inclusion proof"].append((time.perf_counter() - started) * 1000)
        assert tlog.verify_inclusion(proof.leaf_index, size, proof.leaf_hash, proof.proof, root)

        older = rng.randint(1, size - 1)
        started = time.perf_counter()
        with engine.connect() as conn:
            consistency = service.prove_consistency(conn, tenant, store, older, size)
            older_root = service.tree_root(conn, tenant, store, older)
        results["consistency proof"].append((time.perf_counter() - started) * 1000)
        assert tlog.verify_consistency(older, size, consistency, older_root, root)

        started = time.perf_counter()
        with engine.connect() as conn:
            service.tree_root(conn, tenant, store, rng.randint(1, size))
        results["root at a random size"].append((time.perf_counter() - started) * 1000)
    return {name: percentiles(values) for name, values in results.items()} | {"tree_size": size}


def _process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                pass
    return found


def _server_cpu(server_pid: int, postmaster: int) -> float:
    """CPU seconds so far of one gunicorn (master and workers) plus every PostgreSQL process of the bench's own
    server (both variants share it, so its share is what each burst adds)."""
    pids = [server_pid, *_children(server_pid), postmaster, *_children(postmaster)]
    return sum(_process_cpu_seconds(pid) for pid in pids)


def _server(stack, database_url: str, without_log: bool, workers: int):
    launcher = [sys.executable, str(ROOT / "bench" / "gunicorn_without_log.py")] if without_log else None
    server = stack.enter_context(start_gunicorn(database_url, env=ingest_bench._server_env("warning"),
                                                workers=workers, launcher=launcher))
    tenant, agent, api_key, seed = ingest_bench._setup_tenant(server.url)
    ingest_bench.run_ingest_case(server.url, api_key, tenant, agent, seed, ingest_bench.Case(100, 4, False, 3),
                                 workers)
    return server, (server.url, api_key, tenant, agent, seed)


def ingest_ab(database_url: str, rounds: int, workers: int, requests_per_client: int) -> dict:
    """Both variants run side by side on one database and are loaded in alternating bursts (order flipped every
    round): signed 100-event batches from 4 client processes, a fresh stream per client. For each burst: the
    events/s (drifts with background load) and the CPU per event of that gunicorn plus the bench's PostgreSQL
    (what a saturated machine runs out of, and far steadier)."""
    import contextlib

    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        backend = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    postmaster = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])

    def wal_position() -> int:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")).scalar()
    case = ingest_bench.Case(100, 4, False, requests_per_client)
    runs = []
    with contextlib.ExitStack() as stack:
        stack.callback(engine.dispose)
        servers = {False: _server(stack, database_url, False, workers), True: _server(stack, database_url, True,
                                                                                       workers)}
        for round_number in range(rounds):
            pair = {}
            for without_log in ((False, True) if round_number % 2 == 0 else (True, False)):
                server, (url, api_key, tenant, agent, seed) = servers[without_log]
                cpu, wal = _server_cpu(server.process.pid, postmaster), wal_position()
                result = ingest_bench.run_ingest_case(url, api_key, tenant, agent, seed, case, workers)
                cpu_per_event = (_server_cpu(server.process.pid, postmaster) - cpu) / result.events * 1e6
                wal_per_event = (wal_position() - wal) / result.events
                pair[without_log] = (result.events_per_s, cpu_per_event)
                runs.append({"round": round_number + 1, "variant": "without log" if without_log else "with log",
                             "events_per_s": round(result.events_per_s), "cpu_us_per_event": round(cpu_per_event),
                             "wal_bytes_per_event": round(wal_per_event),
                             "p50_ms": round(result.p50_ms, 1), "p99_ms": round(result.p99_ms, 1)})
            print(f"  ingest A/B round {round_number + 1:>2}: with log {pair[False][0]:>6,.0f} events/s "
                  f"{pair[False][1]:>4,.0f} us CPU/event; without {pair[True][0]:>6,.0f} events/s "
                  f"{pair[True][1]:>4,.0f} us CPU/event", flush=True)

    def values(variant: str, key: str) -> list[float]:
        return [r[key] for r in runs if r["variant"] == variant]

    rate_ratios = sorted(a / b for a, b in zip(values("with log", "events_per_s"), values("without log",
                                                                                          "events_per_s")))
    cpu_ratios = sorted(b / a for a, b in zip(values("with log", "cpu_us_per_event"),
                                              values("without log", "cpu_us_per_event")))
    return {"runs": runs,
            "with_log_events_per_s_mean": round(sum(values("with log", "events_per_s")) / rounds),
            "without_log_events_per_s_mean": round(sum(values("without log", "events_per_s")) / rounds),
            "rate_ratio_median_pair": round(rate_ratios[len(rate_ratios) // 2], 3),
            "with_log_cpu_us_per_event_mean": round(sum(values("with log", "cpu_us_per_event")) / rounds),
            "without_log_cpu_us_per_event_mean": round(sum(values("without log", "cpu_us_per_event")) / rounds),
            "throughput_at_saturation_ratio_median_pair": round(cpu_ratios[len(cpu_ratios) // 2], 3),
            "with_log_wal_bytes_per_event_mean": round(sum(values("with log", "wal_bytes_per_event")) / rounds),
            "without_log_wal_bytes_per_event_mean": round(sum(values("without log", "wal_bytes_per_event")) / rounds)}


def _backend_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def inprocess_ab(database_url: str, rounds: int, requests_per_round: int) -> dict:
    """CPU per signed 100-event request, with and without the log write, alternating: the worker's own CPU plus
    its PostgreSQL backend's (one pooled connection, read from /proc), measured in one process. CPU time is what a
    saturated machine runs out of, and it drifts far less with background load than throughput does."""
    import ingest as ingest_module
    from app import create_app
    from app.client.signer import AgentSigner
    from app.services import ingest as ingest_service
    from app.services.agent_keys import register_agent_key
    from app.services.api_keys import create_api_key

    settings = Settings(database_url=database_url, max_db_connections=1, rate_limit_per_minute=0,
                        log_level="WARNING", sequencer_signing_key=bytes.fromhex("42" * 32))
    app = create_app(settings)
    engine = app.extensions["sequencer"].engine
    tenant, agent, seed = uuid.uuid4(), uuid.uuid4(), os.urandom(32)
    signer = AgentSigner(seed, tenant, agent, 1)
    register_agent_key(engine, tenant_id=tenant, agent_id=agent, key_id=1, public_key=signer.public_key)
    secret, _ = create_api_key(engine, tenant_id=tenant, permissions="read_write")
    headers = {"Authorization": f"ApiKey {secret}", "Content-Type": "application/json"}
    with engine.connect() as conn:
        backend = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    client = app.test_client()
    original = ingest_service.plan_log_growth
    samples: dict[str, list[float]] = {"with log": [], "without log": []}
    counter = 0

    def bodies(count: int) -> list[bytes]:
        nonlocal counter
        store = uuid.uuid4()
        out = []
        for _ in range(count):
            events = [signer.build_event(store, "order", f"e{i}", "order.updated",
                                         ingest_module._sample_payload(0, counter + i)) for i in range(100)]
            counter += 100
            out.append(json.dumps({"events": events}, separators=(",", ":")).encode())
        return out

    for round_number in range(rounds + 1):
        for variant in (("with log", "without log") if round_number % 2 == 0 else ("without log", "with log")):
            batch = bodies(requests_per_round)
            ingest_service.plan_log_growth = original if variant == "with log" else (lambda *a, **k: None)
            cpu, pg = time.process_time(), _backend_cpu_seconds(backend)
            for body in batch:
                response = client.post("/api/v1/ves/events/ingest", data=body, headers=headers)
                assert response.status_code == 200 and response.json["eventsAccepted"] == 100
            used = (time.process_time() - cpu + _backend_cpu_seconds(backend) - pg) / len(batch) * 1000
            if round_number:
                samples[variant].append(used)
    ingest_service.plan_log_growth = original
    engine.dispose()
    means = {variant: sum(values) / len(values) for variant, values in samples.items()}
    return {"cpu_ms_per_request": {variant: round(mean, 2) for variant, mean in means.items()},
            "samples": {variant: [round(v, 2) for v in values] for variant, values in samples.items()},
            "throughput_ratio_at_saturation": round(means["without log"] / means["with log"], 3)}


def time_log_write(engine, batches: int) -> dict:
    """The log write alone, as ingest runs it: `extend_stream_log` for a 100-event batch, inside the transaction
    that inserted the events (insert untimed)."""
    tenant, store = uuid.uuid4(), uuid.uuid4()
    samples = []
    head = 0
    for _ in range(batches):
        with engine.begin() as conn:
            lock_transaction(conn, stream_lock_key(tenant, store))
            rows = conn.execute(GENERATE_EVENTS, {"t": tenant, "s": store, "a": uuid.uuid4(), "first": head + 1,
                                                  "last": head + 100}).all()
            rows = sorted(({"sequence_number": r.sequence_number, "event_signing_hash": bytes(r.event_signing_hash),
                            "agent_signature": None if r.agent_signature is None else bytes(r.agent_signature)}
                           for r in rows), key=lambda r: r["sequence_number"])
            started = time.perf_counter()
            assert service.extend_stream_log(conn, tenant, store, rows)
            samples.append((time.perf_counter() - started) * 1000)
            head += 100
            conn.execute(MOVE_HEAD, {"t": tenant, "s": store, "h": head})
    return percentiles(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="admin URL of a PostgreSQL server (default: embedded pgserver)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--ab-rounds", type=int, default=10, help="A/B pairs (0 skips the ingest comparison)")
    parser.add_argument("--ab-requests", type=int, default=15, help="100-event requests per client per burst")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cpu-rounds", type=int, default=10, help="in-process CPU A/B pairs (0 skips it)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    scratch = ScratchDatabase(args.database_url, prefix="benchtlog")
    try:
        settings = Settings(database_url=scratch.url, max_db_connections=2, db_statement_timeout_ms=600_000)
        engine = make_engine(settings, pool_size=2)
        upgrade_to_head(engine)
        with engine.connect() as conn:
            pg_version = conn.execute(sa.text("SHOW server_version")).scalar()
        print(f"building a {args.events:,}-event stream (PostgreSQL {pg_version})", flush=True)
        tenant, store, build = build_stream(engine, args.events)
        reads = time_reads(engine, tenant, store, args.samples)
        reads["log write in the ingest transaction, 100-event batch"] = time_log_write(engine, 100)
        for name, value in reads.items():
            if isinstance(value, dict):
                print(f"  {name:<40} p50 {value['p50_ms']:>6} ms  p95 {value['p95_ms']:>6} ms  "
                      f"p99 {value['p99_ms']:>6} ms  max {value['max_ms']:>6} ms  (n={value['n']})", flush=True)
        with engine.connect() as conn:
            sizes = conn.execute(sa.text(
                "SELECT pg_total_relation_size('events') AS events, pg_total_relation_size('log_nodes') AS nodes, "
                "(SELECT count(*) FROM log_nodes) AS node_rows")).one()
        engine.dispose()
        storage = {"events_bytes": sizes.events, "log_nodes_bytes": sizes.nodes, "log_node_rows": sizes.node_rows}
        print(f"  storage: events {sizes.events / 2**20:,.0f} MiB, log_nodes {sizes.nodes / 2**20:,.0f} MiB "
              f"({sizes.node_rows:,} rows)", flush=True)
        cpu_ab = inprocess_ab(scratch.url, args.cpu_rounds, 10) if args.cpu_rounds else None
        if cpu_ab:
            print(f"  CPU per 100-event request (worker + its PostgreSQL backend): "
                  f"with log {cpu_ab['cpu_ms_per_request']['with log']} ms, without "
                  f"{cpu_ab['cpu_ms_per_request']['without log']} ms -> throughput ratio at saturation "
                  f"{cpu_ab['throughput_ratio_at_saturation']}", flush=True)
        ab = ingest_ab(scratch.url, args.ab_rounds, args.workers, args.ab_requests) if args.ab_rounds else None
        if ab:
            print(f"  ingest with the log / without: {ab['with_log_events_per_s_mean']:,} / "
                  f"{ab['without_log_events_per_s_mean']:,} events/s (median ratio of pairs "
                  f"{ab['rate_ratio_median_pair']}); CPU per event {ab['with_log_cpu_us_per_event_mean']} / "
                  f"{ab['without_log_cpu_us_per_event_mean']} us, throughput at saturation ratio (median of pairs) "
                  f"{ab['throughput_at_saturation_ratio_median_pair']}; WAL per event "
                  f"{ab['with_log_wal_bytes_per_event_mean']} / {ab['without_log_wal_bytes_per_event_mean']} bytes",
                  flush=True)
        results = {"events": args.events, "postgresql": pg_version, "python": platform.python_version(),
                   "cpus": os.cpu_count(), "load_average": os.getloadavg(), "build": build, "reads": reads,
                   "storage": storage, "ingest_cpu_ab": cpu_ab, "ingest_ab": ab}
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        scratch.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
