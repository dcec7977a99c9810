"""Readiness: the database answers and its schema is at Alembic head."""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.db.migrations import current_revision
from app.db.migrations import head_revision
from app.errors import Unavailable

log = logging.getLogger("stateset_sequencer.api")


def check_ready(engine: Engine) -> None:
    """:raise Unavailable DATABASE_UNAVAILABLE: the database does not answer.
    :raise Unavailable MIGRATIONS_PENDING: its schema is not at Alembic head."""
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        log.warning("readiness check failed: database unreachable", extra={"error_type": type(exc).__name__})
        raise Unavailable("The database is unreachable.", code="DATABASE_UNAVAILABLE") from None
    head = head_revision()
    if revision != head:
        raise Unavailable(f"The database schema is not at head (current: {revision}, head: {head}).",
                          code="MIGRATIONS_PENDING")
