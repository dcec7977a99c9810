"""Liveness and readiness probes (public, never rate limited)."""

from __future__ import annotations

import logging

from flask import Blueprint
from flask import jsonify
from sqlalchemy.exc import SQLAlchemyError

from app import __version__
from app import runtime
from app.api.errors import error_response
from app.auth import public
from app.db.migrations import current_revision
from app.db.migrations import head_revision

bp = Blueprint("health", __name__)
log = logging.getLogger("stateset_sequencer.api")


@bp.get("/health")
@public
def health():
    """Liveness: the process answers. No database access."""
    return jsonify(status="healthy", service="stateset-sequencer", version=__version__)


@bp.get("/ready")
@public
def ready():
    """Readiness: the database answers and its schema is at Alembic head; else 503."""
    try:
        revision = current_revision(runtime.current().engine)
    except SQLAlchemyError as exc:
        log.warning("readiness check failed: database unreachable", extra={"error_type": type(exc).__name__})
        return error_response(503, "DATABASE_UNAVAILABLE", "The database is unreachable.")
    head = head_revision()
    if revision != head:
        return error_response(
            503, "MIGRATIONS_PENDING", f"The database schema is not at head (current: {revision}, head: {head})."
        )
    return jsonify(status="ready", database="connected", migrations="current")
