"""Real PostgreSQL for tests: a fresh database per run, on the embedded server (pgserver) by default or on the
server named by TEST_DATABASE_URL (e.g. the machine's PostgreSQL 15 at postgresql://postgres@127.0.0.1:5432)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app.embedded import database_url_from_server_uri
from app.embedded import import_pgserver


class EmbeddedPostgres:
    """A pgserver instance in its own temporary directory, which tests may stop and start again."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root or tempfile.mkdtemp(prefix="seqpg-"))
        self.root.chmod(0o755)
        self.pgdata = self.root / "pgdata"
        self._server = None

    def start(self) -> "EmbeddedPostgres":
        self._server = import_pgserver().get_server(str(self.pgdata), cleanup_mode=None)
        return self

    def server_url(self, database: str = "postgres") -> str:
        return database_url_from_server_uri(self._server.get_uri(), database)

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(list(args), pgdata=self.pgdata, user=self._server.system_user, timeout=30)

    def stop_server(self) -> None:
        """Fast shutdown: connections are cut, as in a database crash or failover."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def restart_server(self) -> None:
        type(self._server)._instances.pop(self.pgdata, None)
        self._server = import_pgserver().get_server(str(self.pgdata), cleanup_mode=None)

    def destroy(self) -> None:
        try:
            self._pg_ctl("-w", "-m", "immediate", "stop")
        except Exception:  # noqa: BLE001 - already stopped
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def create_database(admin_url: str, prefix: str = "seqtest") -> str:
    """Create a uniquely named database on the server of `admin_url` and return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def test_server_admin_url() -> str | None:
    raw = os.environ.get("TEST_DATABASE_URL")
    if not raw:
        return None
    from app.config import Settings

    return Settings.from_env({"DATABASE_URL": raw}).database_url


class ScratchDatabase:
    """A fresh database on the server of `admin_url` (an embedded server of its own when None); `close()` drops it
    and stops the embedded server. Used by the benchmarks, which run outside pytest."""

    def __init__(self, admin_url: str | None, prefix: str):
        self.embedded = None
        if admin_url is None:
            self.embedded = EmbeddedPostgres().start()
            admin_url = self.embedded.server_url()
        else:
            from app.config import Settings

            admin_url = Settings.from_env({"DATABASE_URL": admin_url}).database_url
        self.admin_url = admin_url
        self.url = create_database(admin_url, prefix=prefix)

    def close(self) -> None:
        try:
            drop_database(self.admin_url, self.url)
        finally:
            if self.embedded is not None:
                self.embedded.destroy()
