import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from app.db.migrations import current_revision
from app.db.migrations import head_revision
from app.db.migrations import upgrade_to_head
from app.db.tables import metadata
from tests.support.pg import create_database
from tests.support.pg import drop_database
from tests.support.servers import ROOT

EXPECTED_TABLES = {"streams", "events", "entity_versions", "agent_keys", "batch_commitments", "api_keys",
                   "event_schemas", "stream_logs", "log_nodes", "log_checkpoints", "agent_registrations",
                   "stream_fences", "fence_audit", "sequencer_keys"}


@pytest.fixture
def empty_database(database_server_url):
    url = create_database(database_server_url, prefix="seqmig")
    yield url
    drop_database(database_server_url, url)


def _alembic(url, *args):
    env = dict(os.environ, DATABASE_URL=url)
    return subprocess.run([sys.executable, "-m", "alembic", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def _tables(engine):
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_alembic_cli_upgrade_downgrade_upgrade_with_database_url_from_env(empty_database):
    engine = sa.create_engine(empty_database)
    try:
        result = _alembic(empty_database, "upgrade", "head")
        assert result.returncode == 0, result.stderr
        assert _tables(engine) == EXPECTED_TABLES
        assert current_revision(engine) == head_revision()

        result = _alembic(empty_database, "downgrade", "base")
        assert result.returncode == 0, result.stderr
        assert _tables(engine) == set()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM pg_proc WHERE proname IN ('refuse_event_mutation', "
                                        "'refuse_log_mutation', 'refuse_log_shrink', 'refuse_smaller_checkpoint')")
                                ).scalar() == 0

        result = _alembic(empty_database, "upgrade", "head")
        assert result.returncode == 0, result.stderr
        assert _tables(engine) == EXPECTED_TABLES
    finally:
        engine.dispose()


def test_alembic_cli_without_database_url_says_so(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    result = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DATABASE_URL is not set" in result.stderr


def test_table_definitions_and_migrated_database_agree(database_url):
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_guide_indexes_exist(engine):
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname='public'")).all())
    assert "(tenant_id, store_id, sequence_number)" in rows["pk_events"]
    assert "(tenant_id, store_id, entity_type, entity_id, sequence_number)" in rows["idx_events_entity"]
    assert rows["idx_commitments_unanchored"].endswith("(tenant_id, store_id) WHERE (chain_tx_hash IS NULL)")
    assert "UNIQUE" in rows["uq_batch_commitments_tenant_id_store_id_sequence_start"]


def test_concurrent_start_ups_migrate_exactly_once(empty_database):
    engines = [sa.create_engine(empty_database) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            applied = list(pool.map(upgrade_to_head, engines))
        assert applied.count(True) == 1
        assert current_revision(engines[0]) == head_revision()
        assert upgrade_to_head(engines[0]) is False
    finally:
        for engine in engines:
            engine.dispose()


def test_events_are_append_only(engine):
    tenant, store = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO events (tenant_id, store_id, sequence_number, event_id, ves_version, source_agent_id,"
            " agent_key_id, entity_type, entity_id, event_type, created_at_raw, sequenced_at, payload_kind,"
            " payload_plain_hash, payload_cipher_hash, event_signing_hash, entity_version, receipt_hash)"
            " VALUES (:t, :s, 1, :e, 1, :a, 0, 'x', 'y', 'z', 'now', now(), 0, :h, :h, :h, 1, :h)"),
            {"t": tenant, "s": store, "e": uuid.uuid4(), "a": uuid.uuid4(), "h": b"\x00" * 32})
    for statement in ("UPDATE events SET entity_id = 'tampered' WHERE tenant_id = :t",
                      "DELETE FROM events WHERE tenant_id = :t"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(sa.text(statement), {"t": tenant})
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT entity_id FROM events WHERE tenant_id = :t"), {"t": tenant}).scalar() == "y"
