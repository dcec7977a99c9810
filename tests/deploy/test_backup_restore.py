"""deploy/backup/backup.sh and restore.sh against real PostgreSQL: plain and encrypted round trips, retention,
and the refusal to restore over a live log. Client binaries are pgserver's PostgreSQL 16 (>= any test server)."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app.db.migrations import upgrade_to_head
from tests.support.pg import create_database
from tests.support.pg import drop_database


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
    scripts = [str(repo_root / "deploy" / "backup" / name) for name in ("backup.sh", "restore.sh")]
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
