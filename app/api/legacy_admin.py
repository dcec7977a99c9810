"""The original sequencer's operator reads: `GET /health/detailed` (a global admin key: it describes the whole
instance) and `GET /api/v1/admin/overview`, `/tenants`, `/stores`, `/agents` (an admin key; a tenant's admin sees its
own tenant only, a global admin every tenant). Lists are bounded pages (`limit` ≤ 1000, `offset`)."""

from __future__ import annotations

from flask import Blueprint

from app import runtime
from app.api import legacy_wire as wire
from app.api.operations import operation
from app.api.operations import query
from app.api.operations import render
from app.auth import authenticate
from app.auth import require
from app.auth import require_tenant_wide
from app.services import operations_reads as service

bp = Blueprint("legacy_admin", __name__)


def _admin_scope():
    """The tenant an admin key may read (None: every tenant, for a global admin)."""
    tenant_id = authenticate().tenant_id
    require_tenant_wide("admin", tenant_id)
    return tenant_id


@bp.get("/health/detailed")
@operation(tags="operations", responses={200: wire.DetailedHealthOut}, errors=(403,))
def detailed_health():
    """Database round trip, this worker's pool and anchoring (a global admin key); 503 UNHEALTHY when the database
    does not answer within 500 ms."""
    require("admin")
    rt = runtime.current()
    return render(service.detailed_health(rt.engine, rt.settings.anchoring_configured))


@bp.get("/api/v1/admin/overview")
@operation(tags="admin", responses={200: wire.AdminOverviewOut}, errors=(403,))
def admin_overview():
    """Counts over the tenants the admin key may read."""
    return render(service.overview(runtime.current().engine, _admin_scope()))


@bp.get("/api/v1/admin/tenants")
@operation(tags="admin", query=wire.AdminPageQuery, responses={200: wire.AdminTenantOut(many=True)}, errors=(403,))
def admin_tenants():
    """One summary per tenant (a bare array, as the original), ordered by tenant id."""
    tenant_id, page = _admin_scope(), query()
    return render(service.tenants(runtime.current().engine, tenant_id, page["limit"], page["offset"]))


@bp.get("/api/v1/admin/stores")
@operation(tags="admin", query=wire.AdminPageQuery, responses={200: wire.AdminStoreOut(many=True)}, errors=(403,))
def admin_stores():
    """One summary per stream (tenant, store), ordered by tenant then store."""
    tenant_id, page = _admin_scope(), query()
    return render(service.stores(runtime.current().engine, tenant_id, page["limit"], page["offset"]))


@bp.get("/api/v1/admin/agents")
@operation(tags="admin", query=wire.AdminPageQuery, responses={200: wire.AdminAgentOut(many=True)}, errors=(403,))
def admin_agents():
    """One summary per agent holding API keys, ordered by tenant then agent."""
    tenant_id, page = _admin_scope(), query()
    return render(service.agents(runtime.current().engine, tenant_id, page["limit"], page["offset"]))
