"""What a key may look at: the streams in its scope (`GET /api/v1/streams`) and its own scope (`GET
/api/v1/whoami`), so a client such as the console can show only what the key may do."""

from __future__ import annotations

from flask import Blueprint

from app import runtime
from app.api import wire
from app.api.operations import operation
from app.api.operations import query
from app.api.operations import render
from app.auth import authenticate
from app.auth import require
from app.services import streams as service

bp = Blueprint("streams", __name__)


@bp.get("/api/v1/streams")
@operation(tags="reading", query=wire.StreamsQuery, responses={200: wire.StreamListOut}, errors=(403,))
def list_streams():
    """The tenant's streams with head, last commitment, anchoring lag and last checkpoint (a store-scoped key sees
    its own stores only), ordered by store id; continue with `after=next_after`."""
    args = query()
    principal = require("read", args["tenant_id"])
    return render(service.list_streams(runtime.current().engine, args["tenant_id"], principal.store_ids,
                                       args["after"], args["limit"]))


@bp.get("/api/v1/whoami")
@operation(tags="keys", responses={200: wire.CallerOut})
def whoami():
    """The calling key's tenant, stores, permission and agent binding (never its secret)."""
    return render(authenticate())
