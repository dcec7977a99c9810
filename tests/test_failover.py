"""Failover with no lost receipts: two PostgreSQL 15 nodes under Patroni with etcd (the shipped
deploy/patroni/patroni.yml: synchronous_mode_strict), gunicorn on the documented multi-host DATABASE_URL
(`target_session_attrs=read-write`), clients ingesting steadily on several streams with idempotent retries.

The whole primary node dies at once (SIGKILL of its Patroni, its postmaster and every backend). The synchronous
standby is promoted; with two nodes and strict synchronous mode the new primary acknowledges writes only once a
standby is back, so the dead node is then restarted (as systemd or a reboot would) and rejoins as the standby.
Checked: every receipt a client holds is on the new primary with the same number and receipt hash, every stream
is gapless 1..head with nothing unreceipted in it, clients saw only 200, 503 (retryable codes) or connection
errors, and no 500 or traceback reached the log. The measured recovery time (kill to first receipt) is printed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections import Counter

import psycopg2
import pytest

from tests.support.load import StreamWriter
from tests.support.load import register_signer
from tests.support.patroni import TEST_TIMING
from tests.support.patroni import PatroniCluster
from tests.support.patroni import shipped_timing
from tests.support.patroni import describe
from tests.support.servers import ROOT
from tests.support.servers import start_gunicorn

pytestmark = pytest.mark.slow

ADMIN_KEY = "failover-bootstrap-admin-key-0123"
ADMIN = {"Authorization": f"ApiKey {ADMIN_KEY}"}
STREAMS = 4
RECOVERY_GOAL_SECONDS = 30


def cluster_timing():
    """The test's fast timing, or with TEST_FAILOVER_TIMING=shipped the production values of patroni.yml (how the
    recovery time in docs/DEPLOYMENT.md was measured)."""
    return shipped_timing() if os.environ.get("TEST_FAILOVER_TIMING") == "shipped" else TEST_TIMING


@pytest.fixture(scope="module")
def cluster():
    with PatroniCluster(size=2, timing=cluster_timing()) as running:
        running.create_database("sequencer", "sequencer-test-pw", "stateset_sequencer")
        yield running


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_multi_host_url_migrates_the_primary_through_alembic_and_the_admin_cli(cluster):
    """The documented DATABASE_URL with the hot standby listed FIRST: libpq skips it (target_session_attrs=
    read-write) for `alembic upgrade head` (the Kubernetes migrate Job) and `stateset-sequencer-admin migrate`."""
    leader, standby = cluster.wait_for_leader_and_sync_standby()
    hosts = f"{standby.host_port},{leader.host_port}"
    for tool, database in (([sys.executable, "-m", "alembic", "upgrade", "head"], "migrate_alembic"),
                           ([sys.executable, "-m", "app.cli", "migrate"], "migrate_admin")):
        cluster.create_database(f"{database}_owner", "pw", database)
        url = f"postgresql://{database}_owner:pw@{hosts}/{database}?target_session_attrs=read-write"
        env = {"PATH": os.environ["PATH"], "DATABASE_URL": url, "ALLOW_UNSIGNED_RECEIPTS": "1"}
        result = subprocess.run(tool, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        with contextlib.closing(psycopg2.connect(leader.superuser_dsn(database), connect_timeout=5)) as conn, \
                conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM alembic_version")
            assert cursor.fetchone()[0] == 1, tool


def stored_events(node, tenant_id) -> dict[str, list[tuple]]:
    """store_id -> [(sequence_number, event_id, receipt_hash hex)] in sequence order, read on `node` itself."""
    dsn = node.superuser_dsn("stateset_sequencer")
    with contextlib.closing(psycopg2.connect(dsn, connect_timeout=5)) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT NOT pg_is_in_recovery()")
        assert cursor.fetchone()[0], f"{node.name} is not the primary"
        cursor.execute("SELECT store_id::text, sequence_number, event_id::text, encode(receipt_hash, 'hex') "
                       "FROM events WHERE tenant_id = %s ORDER BY store_id, sequence_number", (str(tenant_id),))
        streams: dict[str, list[tuple]] = {}
        for store_id, number, event_id, receipt_hash in cursor.fetchall():
            streams.setdefault(store_id, []).append((number, event_id, receipt_hash))
        cursor.execute("SELECT store_id::text, head_sequence FROM streams WHERE tenant_id = %s", (str(tenant_id),))
        heads = dict(cursor.fetchall())
    return streams, heads


def commits_waiting_for_a_standby(node) -> tuple[str, int] | None:
    """(synchronous_standby_names, number of sessions waiting in SyncRep) while some commit waits for a standby."""
    with contextlib.closing(psycopg2.connect(node.superuser_dsn(), connect_timeout=2)) as conn, \
            conn.cursor() as cursor:
        cursor.execute("SELECT current_setting('synchronous_standby_names'), "
                       "(SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep')")
        names, waiting = cursor.fetchone()
    return (names, waiting) if waiting else None


def test_killing_the_whole_primary_node_loses_no_receipt(cluster):
    url = cluster.libpq_url("sequencer", "sequencer-test-pw", "stateset_sequencer")
    env = {"BOOTSTRAP_ADMIN_API_KEY": ADMIN_KEY, "LOG_LEVEL": "warning"}
    with start_gunicorn(url, env=env, workers=2) as server:
        tenant_id = uuid.uuid4()
        writers = []
        for _ in range(STREAMS):
            signer, agent_id = register_signer(server.url, ADMIN, tenant_id)
            writers.append(StreamWriter(server.url, ADMIN, tenant_id, signer, agent_id).start())
        try:
            wait_until(lambda: all(w.batches_done >= 3 for w in writers), 30, "steady ingest before the kill")
            old_primary, standby = cluster.wait_for_leader_and_sync_standby()

            killed_at = cluster.kill_node(old_primary)
            new_primary = cluster.wait_for_leader(timeout=60, not_node=old_primary)
            promoted_at = time.monotonic()
            assert new_primary is standby, "only the synchronous standby may be promoted"
            held = wait_until(lambda: commits_waiting_for_a_standby(new_primary), 30,
                              "an ingest commit on the new primary waiting for a synchronous standby")
            unreplicated = [a for w in writers for a in w.successes_after(killed_at)]
            restarted_at = time.monotonic()
            cluster.start_node(old_primary)
            first_receipt = wait_until(
                lambda: min((a.ended for w in writers for a in w.successes_after(killed_at)), default=None),
                90, "the first receipt after the kill")
            cluster.wait_for_leader_and_sync_standby(timeout=60, leader=new_primary)
            resynced_at = time.monotonic()
            wait_until(lambda: all(len(w.successes_after(resynced_at)) >= 3 for w in writers), 60,
                       "steady ingest after the failover")
        finally:
            for writer in writers:
                writer.stop()
            for writer in writers:
                writer.join(90)
        log = server.log_text()

    recovery = first_receipt - killed_at
    attempts = [a for w in writers for a in w.attempts]
    around_switch = Counter(_label(a) for a in attempts if killed_at - 1 <= a.started and a.ended <= first_receipt + 1)
    print(f"\nfailover ({cluster.timing}): promoted {promoted_at - killed_at:.1f} s after the kill; failed node "
          f"restarted at {restarted_at - killed_at:.1f} s; first new receipt {recovery:.1f} s after the kill; failed "
          f"node back as synchronous standby at {resynced_at - killed_at:.1f} s; meanwhile {held[1]} commit(s) "
          f"held for a standby (synchronous_standby_names={held[0]!r}); requests around the switch: "
          f"{dict(around_switch)}; members now: {describe(cluster.members())}")

    assert "Traceback" not in log and '"status": 500' not in log, _around_traceback(log)
    assert not unreplicated, "new writes acknowledged while no standby could have them: " + ", ".join(
        f"+{a.started - killed_at:.2f}..+{a.ended - killed_at:.2f} s" for a in unreplicated)
    assert held[0] not in ("", None), "strict synchronous mode must keep naming a standby"
    assert [u for w in writers for u in w.unexpected] == []
    assert {_label(a) for a in attempts} <= ALLOWED_OUTCOMES
    assert around_switch["200"] < sum(around_switch.values()), "the kill should have cost some requests their answer"
    assert recovery < RECOVERY_GOAL_SECONDS

    streams, heads = stored_events(new_primary, tenant_id)
    assert len(streams) == STREAMS
    for writer in writers:
        rows = streams[str(writer.store_id)]
        assert [number for number, _, _ in rows] == list(range(1, len(rows) + 1)), "gap in the stream"
        assert heads[str(writer.store_id)] == len(rows)
        in_database = {event_id: (number, receipt_hash) for number, event_id, receipt_hash in rows}
        held_by_client = {event_id: (r.sequence_number, r.receipt_hash) for event_id, r in writer.receipts.items()}
        assert in_database == held_by_client, "the stream differs from the receipts its client holds"
        assert writer.batches_done >= 9


ALLOWED_OUTCOMES = {"200", "200 (all duplicates)", "503 DATABASE_UNAVAILABLE", "503 DATABASE_BUSY",
                    "503 DATABASE_TIMEOUT", "503 STREAM_BUSY", "ConnectionError"}
"""What a client may see: receipts, retryable 503s, or a connection it retries (never 500 or another 4xx)."""


def _around_traceback(log: str) -> str:
    at = max(log.find("Traceback"), log.find('"status": 500'))
    return log[max(0, at - 3000):at + 3000]


def _label(attempt) -> str:
    return "200 (all duplicates)" if attempt.outcome == "200" and not attempt.new_receipts else attempt.outcome
