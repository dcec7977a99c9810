"""Start-up shared by the entry points: the gunicorn master (`config/gunicorn.conf.py` via `app/serving.py`), the
admin CLI (`app/cli.py`) and the anchoring job (`app/anchoring.py`).

Each reads its settings once with `settings_or_exit`, which stops the process with exit code 2 and one line naming
the bad variable. Commands report failures as `CommandError` (one line on stderr, exit code 1).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

from app.config import ConfigError
from app.config import Settings

CONFIGURATION_EXIT_CODE = 2


class CommandError(Exception):
    """A command failed: reported as `error: <message>` on stderr with exit code 1."""


def exit_misconfigured(message: str) -> NoReturn:
    """Print `configuration error: <message>` to stderr and exit 2."""
    print(f"configuration error: {message}", file=sys.stderr)
    raise SystemExit(CONFIGURATION_EXIT_CODE)


def settings_or_exit(*rules: Callable[[Settings], Settings]) -> Settings:
    """The settings validated from the environment, then refined by each of `rules` in turn (a rule may raise
    ConfigError, as the server's receipt-key rule does); on a bad value, `exit_misconfigured` naming it.

    Starts nothing (no embedded database): some callers must check other things before touching any state.
    """
    try:
        settings = Settings.from_env()
        for rule in rules:
            settings = rule(settings)
        return settings
    except ConfigError as exc:
        exit_misconfigured(str(exc))


def with_database(settings: Settings, export: bool = False) -> Settings:
    """`settings` with a database: unchanged when DATABASE_URL is set, else the embedded PostgreSQL under ./var/
    (development only). `export` also puts its URL into the environment, for processes forked later (workers)."""
    if settings.database_url:
        return settings
    from app.embedded import start_embedded_postgres

    url = start_embedded_postgres()
    if export:
        os.environ["DATABASE_URL"] = url
    return settings.replace(database_url=url)


def open_database(settings: Settings, pool_size: int = 2, migrate: bool = True):
    """An engine on `settings.database_url`, migrated to Alembic head first when `migrate` and DB_MIGRATE_ON_STARTUP
    (advisory-locked, so concurrent starts migrate once). The caller disposes of it."""
    from app.db.engine import make_engine
    from app.db.migrations import upgrade_to_head

    engine = make_engine(settings, pool_size=pool_size)
    if migrate and settings.db_migrate_on_startup:
        upgrade_to_head(engine)
    return engine
