"""Run Alembic migrations programmatically, once per deployment.

`upgrade_to_head` runs every pending migration in one transaction that first takes the transaction-level advisory
lock MIGRATION_LOCK_KEY, so several gunicorn masters or replicas starting together migrate exactly once: the others
wait, then find the schema at head and do nothing. A transaction-level lock (not a session lock) is what holds
through PgBouncer in transaction pooling mode; PostgreSQL's DDL is transactional, so a migration that fails or whose
client vanishes leaves nothing behind and releases the lock.
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

from app.db.bounds import no_answer_deadline
from app.db.engine import lift_transaction_bounds
from app.db.locks import MIGRATION_LOCK_KEY
from app.db.locks import lock_transaction

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
    """Migrate the database to Alembic head under the migration lock. Returns True when anything was applied.

    The request-time bounds on database waits are lifted for this transaction: DDL and the wait for another
    instance's migration may take as long as they take (connects stay bounded).
    """
    with no_answer_deadline(), engine.connect() as conn:
        with conn.begin():
            lift_transaction_bounds(conn)
            lock_transaction(conn, MIGRATION_LOCK_KEY)
            before = MigrationContext.configure(conn).get_current_revision()
            head = head_revision()
            if before == head:
                return False
            config = alembic_config(engine.url.render_as_string(hide_password=False))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        log.info("database migrated", extra={"from_revision": before, "to_revision": head})
        return True
