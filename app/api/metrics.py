"""`GET /metrics`: Prometheus text over all gunicorn workers. Open unless METRICS_REQUIRE_AUTH=1 (admin key)."""

from __future__ import annotations

import logging

from flask import Blueprint
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from app import runtime
from app.api.operations import operation
from app.auth import public
from app.auth import require
from app.metrics import observe_pool
from app.metrics import refresh_anchor_gauges
from app.metrics import render_metrics

bp = Blueprint("metrics", __name__)
log = logging.getLogger("stateset_sequencer.api")


@bp.get("/metrics")
@public
@operation(tags="operations", responses={200: "text/plain"}, errors=(401, 403), rate_limited=False)
def metrics():
    """Prometheus text over all workers. Open unless METRICS_REQUIRE_AUTH=1, then an admin key is needed."""
    rt = runtime.current()
    if rt.settings.metrics_require_auth:
        require("admin")
    try:
        refresh_anchor_gauges(rt.engine)
    except SQLAlchemyError:
        log.warning("metrics: could not read anchoring lag from the database")
    observe_pool(rt.engine)
    return render_metrics(current_app)
