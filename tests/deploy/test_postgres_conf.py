"""deploy/postgres/postgresql.conf.d/sequencer.conf parsed by the real PostgreSQL 16 server (`postgres -C`), which
rejects unknown names, bad units and out-of-range values in the whole file before printing anything."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def scratch(repo_root):
    """A world-readable directory with the config files and an empty data directory the postgres user owns.

    Not under pytest's tmp_path: its parents are private to the current user, and postgres runs as `postgres`.
    """
    tmp_path = Path(tempfile.mkdtemp(prefix="seq-pgconf-"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "pg_hba.conf").write_text("")
    (data / "pg_ident.conf").write_text("")
    shutil.copy(repo_root / "deploy/postgres/postgresql.conf.d/sequencer.conf", tmp_path / "sequencer.conf")
    os.chmod(tmp_path, 0o755)
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def show(postgres_bin_dir, postgres_user_command, scratch, config_name, setting):
    data = scratch / "data"
    argv = [str(postgres_bin_dir / "postgres"), f"--config-file={scratch / config_name}",
            "-c", f"data_directory={data}", "-c", f"hba_file={data / 'pg_hba.conf'}",
            "-c", f"ident_file={data / 'pg_ident.conf'}", "-C", setting]
    return subprocess.run(postgres_user_command(argv), capture_output=True, text=True)


def settings_in(path):
    return dict(re.findall(r"^([a-z_]+)\s*=\s*(\S+)", path.read_text(), re.M))


def test_every_setting_is_accepted_by_postgres(repo_root, postgres_bin_dir, postgres_user_command, scratch):
    settings = settings_in(repo_root / "deploy/postgres/postgresql.conf.d/sequencer.conf")
    assert len(settings) >= 18
    for name in settings:
        result = show(postgres_bin_dir, postgres_user_command, scratch, "sequencer.conf", name)
        assert result.returncode == 0 and result.stdout.strip(), f"{name}: {result.stderr}"
    shared_buffers = show(postgres_bin_dir, postgres_user_command, scratch, "sequencer.conf", "shared_buffers")
    assert int(shared_buffers.stdout) * 8 * 1024 == 4 * 1024**3


@pytest.mark.parametrize("mutation", [("shared_buffers = 4GB", "shared_bufers = 4GB"),
                                      ("shared_buffers = 4GB", "shared_buffers = 4GiB"),
                                      ("effective_io_concurrency = 200", "effective_io_concurrency = 2000")])
def test_postgres_rejects_mutated_settings(postgres_bin_dir, postgres_user_command, scratch, mutation):
    path = scratch / "sequencer.conf"
    text = path.read_text()
    assert mutation[0] in text
    path.write_text(text.replace(*mutation))
    assert show(postgres_bin_dir, postgres_user_command, scratch, "sequencer.conf", "work_mem").returncode != 0


def test_kubernetes_base_config_includes_the_drop_in_and_overrides_memory(repo_root, postgres_bin_dir,
                                                                         postgres_user_command, scratch):
    import yaml

    docs = yaml.safe_load_all((repo_root / "deploy/k8s/postgres-statefulset.yaml").read_text())
    data = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    (scratch / "postgresql.conf").write_text(data["postgresql.conf"])
    shared_buffers = show(postgres_bin_dir, postgres_user_command, scratch, "postgresql.conf", "shared_buffers")
    assert shared_buffers.returncode == 0, shared_buffers.stderr
    assert int(shared_buffers.stdout) * 8 * 1024 == 1024**3
    work_mem = show(postgres_bin_dir, postgres_user_command, scratch, "postgresql.conf", "work_mem")
    assert int(work_mem.stdout) == 64 * 1024


def test_guide_indexes_exist_after_migration(database_url):
    """The deployment guide's indexes, as created by the Alembic migrations (docs/DEPLOYMENT.md, PostgreSQL)."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        indexes = dict(conn.execute(sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"))
                       .all())
        primary_key = conn.execute(sa.text(
            "SELECT array_agg(a.attname ORDER BY k.ordinality) FROM pg_constraint c "
            "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ordinality) "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
            "WHERE c.conrelid = 'events'::regclass AND c.contype = 'p'")).scalar_one()
    engine.dispose()
    assert primary_key == ["tenant_id", "store_id", "sequence_number"]
    assert "(tenant_id, store_id, entity_type, entity_id" in indexes["idx_events_entity"]
    assert indexes["idx_commitments_unanchored"].startswith(
        "CREATE INDEX idx_commitments_unanchored ON public.batch_commitments USING btree (tenant_id, store_id")
    assert indexes["idx_commitments_unanchored"].endswith("WHERE (chain_tx_hash IS NULL)")


def test_archive_command_copies_once_accepts_an_identical_retry_and_refuses_different_bytes(repo_root, tmp_path):
    """sequencer.conf's archive_command run by /bin/sh as PostgreSQL runs it (%p and %f substituted): a new
    segment is copied whole, archiving it again succeeds (a retry after a crash between copy and bookkeeping), and
    different bytes under an archived name fail without touching the archived copy."""
    text = (repo_root / "deploy/postgres/postgresql.conf.d/sequencer.conf").read_text()
    command = re.search(r"^archive_command = '(.*)'$", text, re.M).group(1)
    assert "/var/lib/postgresql/wal-archive/" in command
    archive = tmp_path / "archive"
    archive.mkdir()
    pg_wal = tmp_path / "pg_wal"
    pg_wal.mkdir()
    name = "000000010000000000000003"
    segment = pg_wal / name
    segment.write_bytes(os.urandom(4096))

    def archive_segment() -> int:
        shell = command.replace("/var/lib/postgresql/wal-archive", str(archive))
        shell = shell.replace("%p", f"pg_wal/{name}").replace("%f", name)
        return subprocess.run(["/bin/sh", "-c", shell], cwd=tmp_path).returncode

    assert archive_segment() == 0
    assert (archive / name).read_bytes() == segment.read_bytes()
    assert archive_segment() == 0
    original = segment.read_bytes()
    segment.write_bytes(os.urandom(4096))
    assert archive_segment() != 0
    assert (archive / name).read_bytes() == original
    assert sorted(p.name for p in archive.iterdir()) == [name]
