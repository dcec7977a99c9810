"""Run Alembic migrations programmatically, once per deployment.

`upgrade_to_head` holds a session advisory lock while it migrates, so several gunicorn masters or replicas starting
together migrate exactly once: the others wait, then find the schema at head and do nothing.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy import text

from app.db.locks import MIGRATION_LOCK_KEY

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("stateset_sequencer.db")


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["database_url"] = database_url
    return config


@functools.lru_cache(maxsize=1)
def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused"))
    return script.get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_to_head(engine: Engine) -> bool:
    """Migrate the database to Alembic head under an advisory lock. Returns True when anything was applied."""
    with engine.connect() as lock_conn:
        lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        lock_conn.commit()
        try:
            before = MigrationContext.configure(lock_conn).get_current_revision()
            lock_conn.commit()
            head = head_revision()
            if before == head:
                return False
            config = alembic_config(engine.url.render_as_string(hide_password=False))
            config.attributes["connection"] = lock_conn
            command.upgrade(config, "head")
            lock_conn.commit()
            log.info("database migrated", extra={"from_revision": before, "to_revision": head})
            return True
        finally:
            lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            lock_conn.commit()
