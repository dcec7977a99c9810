"""Liveness and readiness probes (public, never rate limited)."""

from __future__ import annotations

import datetime

from flask import Blueprint

from app import __version__
from app import runtime
from app.api import wire
from app.api.operations import operation
from app.api.operations import render
from app.auth import public
from app.services.health import check_ready

bp = Blueprint("health", __name__)


@bp.get("/health")
@public
@operation(tags="operations", responses={200: wire.HealthOut}, touches_database=False, rate_limited=False)
def health():
    """Liveness (no database access)."""
    return render({"service": "stateset-sequencer", "version": __version__,
                   "timestamp": datetime.datetime.now(datetime.timezone.utc)})


@bp.get("/ready")
@public
@operation(tags="operations", responses={200: wire.ReadyOut}, rate_limited=False)
def ready():
    """Readiness: the database answers and its schema is at Alembic head; else 503. With a read replica, also where
    it stands (`replica`); a lagging or unavailable replica does not make the instance unready."""
    rt = runtime.current()
    return render(check_ready(rt.engine, rt.read_engine))
