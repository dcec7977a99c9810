"""deploy/backup/backup.sh and restore.sh against real PostgreSQL: plain and encrypted round trips, retention,
the refusal to restore over a live log, and a restored ledger that the offline verifier (`ves-verify`) still
verifies stream by stream. Client binaries are pgserver's PostgreSQL 16 (>= any test server)."""

from __future__ import annotations

import os
import re
import subprocess
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app.config import Settings
from app.db.migrations import upgrade_to_head
from app.verify.cli import main as ves_verify
from tests.controls import Stream
from tests.support.pg import create_database
from tests.support.pg import drop_database
from tests.support.servers import start_gunicorn


@pytest.fixture
def source_database(database_server_url):
    """A migrated database holding two streams, so a dump has rows to carry."""
    url = create_database(database_server_url, prefix="seqbackup")
    engine = sa.create_engine(url)
    upgrade_to_head(engine)
    with engine.begin() as conn:
        for head in (3, 7):
            conn.execute(sa.text("INSERT INTO streams (tenant_id, store_id, head_sequence) VALUES (:t, :s, :h)"),
                         {"t": uuid.uuid4(), "s": uuid.uuid4(), "h": head})
    engine.dispose()
    yield url
    drop_database(database_server_url, url)


@pytest.fixture
def empty_database(database_server_url):
    url = create_database(database_server_url, prefix="seqrestore")
    yield url
    drop_database(database_server_url, url)


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def run_script(repo_root, postgres_bin_dir, name, *args, **env):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "PG", "RESTORE_"))}
    full_env.update(PG_BIN_DIR=str(postgres_bin_dir), **env)
    return subprocess.run(["bash", str(repo_root / "deploy" / "backup" / name), *args], env=full_env,
                          capture_output=True, text=True, timeout=60)


def snapshot(url):
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        streams = conn.execute(sa.text("SELECT tenant_id, store_id, head_sequence FROM streams ORDER BY 1")).all()
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        indexes = conn.execute(sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                                       "ORDER BY 1")).all()
    engine.dispose()
    return streams, version, indexes


def public_tables(url):
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        names = conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
    engine.dispose()
    return names


def test_shellcheck_finds_nothing(repo_root, find_tool):
    scripts = [str(repo_root / "deploy" / "backup" / name)
               for name in ("backup.sh", "restore.sh", "restore-pitr.sh")]
    result = subprocess.run([find_tool("shellcheck"), *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_plain_backup_restores_rows_schema_and_migration_state(repo_root, postgres_bin_dir, source_database,
                                                                empty_database, tmp_path):
    backup = run_script(repo_root, postgres_bin_dir, "backup.sh", DATABASE_URL=source_database,
                        BACKUP_DIR=str(tmp_path))
    assert backup.returncode == 0, backup.stderr
    dump = backup.stdout.strip()
    assert dump.startswith(str(tmp_path / "sequencer_")) and dump.endswith(".dump")
    assert open(dump, "rb").read(5) == b"PGDMP"
    assert not list(tmp_path.glob("*.partial"))

    restore = run_script(repo_root, postgres_bin_dir, "restore.sh", dump, DATABASE_URL=libpq_url(empty_database))
    assert restore.returncode == 0, restore.stderr
    assert snapshot(empty_database) == snapshot(source_database)
    assert len(snapshot(empty_database)[0]) == 2


def test_encrypted_backup_hides_the_dump_and_needs_the_key(repo_root, postgres_bin_dir, source_database,
                                                            empty_database, tmp_path):
    key_file = tmp_path / "backup.key"
    key_file.write_text("correct horse battery staple\n")
    backup_dir = tmp_path / "out"
    backup = run_script(repo_root, postgres_bin_dir, "backup.sh", DATABASE_URL=source_database,
                        BACKUP_DIR=str(backup_dir), BACKUP_ENCRYPTION_KEY_FILE=str(key_file))
    assert backup.returncode == 0, backup.stderr
    encrypted = backup.stdout.strip()
    assert encrypted.endswith(".dump.enc")
    head = open(encrypted, "rb").read(16)
    assert head.startswith(b"Salted__") and b"PGDMP" not in head
    assert oct(os.stat(encrypted).st_mode & 0o777) == "0o600"

    wrong = run_script(repo_root, postgres_bin_dir, "restore.sh", encrypted, DATABASE_URL=libpq_url(empty_database),
                       BACKUP_ENCRYPTION_KEY="not the key")
    assert wrong.returncode != 0
    assert public_tables(empty_database) == []

    right = run_script(repo_root, postgres_bin_dir, "restore.sh", encrypted, DATABASE_URL=libpq_url(empty_database),
                       BACKUP_ENCRYPTION_KEY_FILE=str(key_file))
    assert right.returncode == 0, right.stderr
    assert snapshot(empty_database) == snapshot(source_database)


def test_restore_refuses_a_database_that_already_has_events(repo_root, postgres_bin_dir, source_database, tmp_path):
    backup = run_script(repo_root, postgres_bin_dir, "backup.sh", DATABASE_URL=source_database,
                        BACKUP_DIR=str(tmp_path))
    restore = run_script(repo_root, postgres_bin_dir, "restore.sh", backup.stdout.strip(),
                         DATABASE_URL=libpq_url(source_database))
    assert restore.returncode != 0
    assert "already has an events table" in restore.stderr


def test_retention_deletes_only_old_backups(repo_root, postgres_bin_dir, source_database, tmp_path):
    old = tmp_path / "sequencer_20000101T000000Z.dump"
    unrelated = tmp_path / "notes.txt"
    for path in (old, unrelated):
        path.write_text("x")
        os.utime(path, (0, 946684800))
    backup = run_script(repo_root, postgres_bin_dir, "backup.sh", DATABASE_URL=source_database,
                        BACKUP_DIR=str(tmp_path), BACKUP_RETENTION_DAYS="7")
    assert backup.returncode == 0, backup.stderr
    assert not old.exists()
    assert unrelated.exists()
    assert os.path.exists(backup.stdout.strip())


def test_failed_dump_leaves_no_backup_behind(repo_root, postgres_bin_dir, tmp_path):
    result = run_script(repo_root, postgres_bin_dir, "backup.sh", BACKUP_DIR=str(tmp_path),
                        DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    assert result.returncode != 0
    assert list(tmp_path.iterdir()) == []


SEQUENCER_SEED = bytes(range(32))
"""The `settings` fixture's receipt key; the restored server gets the same one, as a real switch-over would."""


def ingest_unsigned(client, stream: Stream, count: int, first: int) -> None:
    response = client.post("/api/v1/events/ingest", headers=stream.headers, json={
        "agent_id": str(stream.agent_id), "events": [
            {"event_id": str(uuid.uuid4()), "tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id),
             "entity_type": "note", "entity_id": f"note-{first + i}", "event_type": "note.added",
             "payload": {"n": first + i}} for i in range(count)]})
    assert response.status_code == 200, response.json
    assert response.json["events_accepted"] == count


def signed_v2(stream: Stream, entity_id: str) -> dict:
    """A version 2 event binding a command id and base version 0 (the entity is new)."""
    return stream.event(entity_id, {"entity": entity_id}, ves_version=2, command_id=uuid.uuid4(), base_version=0)


def commit(client, stream: Stream, start: int, end: int) -> None:
    response = client.post("/api/v1/ves/commitments", headers=stream.headers, json={
        "tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id),
        "sequence_start": start, "sequence_end": end})
    assert response.status_code == 200, response.json


@pytest.fixture
def ledger_database(database_server_url, make_app):
    """A migrated database filled through the real HTTP ingest and commitment endpoints. Yields `(url, streams,
    sequencer public key)`; `streams` maps a name to `(Stream, events ingested, commitments created)`:
    mixed (signed v1, unsigned, signed v2; 2 commitments), signed_v2 (3 of 5 events uncommitted), unsigned."""
    url = create_database(database_server_url, prefix="seqledger")
    engine = sa.create_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    app = make_app(database_url=Settings.from_env({"DATABASE_URL": url}).database_url)
    client, app_engine = app.test_client(), app.extensions["sequencer"].engine

    mixed = Stream(client, app_engine)
    mixed.ingest([mixed.event(f"order-{i}", {"i": i}) for i in range(3)])
    ingest_unsigned(client, mixed, 2, first=4)
    mixed.ingest([signed_v2(mixed, f"order-{i}") for i in (6, 7)])
    commit(client, mixed, 1, 3)
    commit(client, mixed, 4, 7)

    v2_only = Stream(client, app_engine, ves_version=2)
    v2_only.ingest([signed_v2(v2_only, f"item-{i}") for i in range(4)])
    ingest_unsigned(client, v2_only, 1, first=5)
    commit(client, v2_only, 1, 2)

    unsigned = Stream(client, app_engine)
    ingest_unsigned(client, unsigned, 3, first=1)
    commit(client, unsigned, 1, 3)

    public_key = client.get("/api/v1/ves/sequencer").json["public_key"]
    yield url, {"mixed": (mixed, 7, 2), "signed_v2": (v2_only, 5, 1), "unsigned": (unsigned, 3, 1)}, public_key
    app_engine.dispose()
    drop_database(database_server_url, url)


def runbook_gap_query(repo_root) -> str:
    """docs/RESTORE.md step 6's SQL check (streams whose head is not their gapless highest number)."""
    text = (repo_root / "docs" / "RESTORE.md").read_text()
    match = re.search(r'psql "\$RESTORED" -Atc "(SELECT s\.tenant_id[^"]*HAVING[^"]*)"', text)
    assert match, "docs/RESTORE.md step 6 no longer shows the gap query"
    return match.group(1)


def verify_stream(server, stream: Stream, public_key: str, capsys) -> tuple[int, str]:
    """`ves-verify verify --url …` exactly as docs/RESTORE.md step 6 runs it, with the stream's own API key."""
    code = ves_verify(["verify", "--url", server.url, "--api-key", stream.key, "--tenant", str(stream.tenant_id),
                       "--store", str(stream.store_id), "--sequencer-public-key", public_key])
    return code, capsys.readouterr().out.strip()


def change_stored_payload(url: str, stream: Stream, number: int) -> None:
    """Alter one stored payload value in place, lifting the append-only trigger inside this transaction only."""
    engine = sa.create_engine(url)
    key = {"t": stream.tenant_id, "s": stream.store_id, "n": number}
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
        payload = conn.execute(sa.text("SELECT payload FROM events WHERE tenant_id = :t AND store_id = :s "
                                       "AND sequence_number = :n"), key).scalar_one()
        changed = {**payload, "n": payload["n"] + 1}
        conn.execute(sa.text("UPDATE events SET payload = :p WHERE tenant_id = :t AND store_id = :s "
                             "AND sequence_number = :n").bindparams(sa.bindparam("p", type_=sa.JSON)),
                     {**key, "p": changed})
        conn.execute(sa.text("ALTER TABLE events ENABLE TRIGGER events_append_only"))
    engine.dispose()


@pytest.mark.slow
def test_restored_ledger_verifies_stream_by_stream_and_a_changed_byte_is_caught(
        repo_root, postgres_bin_dir, ledger_database, empty_database, tmp_path, capsys):
    source_url, streams, public_key = ledger_database
    backup = run_script(repo_root, postgres_bin_dir, "backup.sh", DATABASE_URL=source_url, BACKUP_DIR=str(tmp_path))
    assert backup.returncode == 0, backup.stderr
    restore = run_script(repo_root, postgres_bin_dir, "restore.sh", backup.stdout.strip(),
                         DATABASE_URL=libpq_url(empty_database))
    assert restore.returncode == 0, restore.stderr
    assert restore.stdout.strip().endswith("restored 15 events in 3 streams")
    restored = sa.create_engine(empty_database)
    with restored.connect() as conn:
        assert conn.execute(sa.text(runbook_gap_query(repo_root))).all() == []
        assert conn.execute(sa.text("SELECT count(*) FROM streams")).scalar_one() == 3
    restored.dispose()

    env = {"VES_SEQUENCER_SIGNING_KEY": SEQUENCER_SEED.hex()}
    with start_gunicorn(empty_database, env=env, workers=1) as server:
        for name, (stream, events, commitments) in streams.items():
            assert verify_stream(server, stream, public_key, capsys) == (
                0, f"verified {events} events in {commitments} commitments"), name

        mixed = streams["mixed"][0]
        change_stored_payload(empty_database, mixed, 4)
        code, output = verify_stream(server, mixed, public_key, capsys)
        assert code == 1
        assert output.startswith("FAILED: event sequence 4: payload_plain_hash failed:")
        unsigned = streams["unsigned"][0]
        assert verify_stream(server, unsigned, public_key, capsys) == (0, "verified 3 events in 1 commitments")
