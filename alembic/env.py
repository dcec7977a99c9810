"""Alembic environment: target metadata is `app.db.tables.metadata`; the URL comes from DATABASE_URL.

Programmatic callers (app.db.migrations) pass an open connection in `config.attributes["connection"]`.
"""

from __future__ import annotations

import sys
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy import pool

from app.config import ConfigError
from app.config import Settings
from app.db.locks import MIGRATION_LOCK_KEY
from app.db.locks import lock_transaction
from app.db.tables import metadata

config = context.config
if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return url
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    if not settings.database_url:
        sys.exit("configuration error: DATABASE_URL is not set (alembic needs the database to migrate)")
    return settings.database_url


def _configure(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)


def run_migrations_offline() -> None:
    context.configure(url=_database_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_database_url(), poolclass=pool.NullPool, hide_parameters=True)
    with engine.connect() as connection, connection.begin():
        # The same transaction-level lock as app.db.migrations.upgrade_to_head (works through PgBouncer).
        lock_transaction(connection, MIGRATION_LOCK_KEY)
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
