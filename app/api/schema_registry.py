"""The payload schema registry: versioned JSON Schemas (draft 2020-12) per tenant and event type.

A schema governs every store of its tenant, so registering one needs a `read_write` key for the whole tenant
(`require_tenant_wide`); any key of the tenant may read them (docs/SECURITY.md)."""

from __future__ import annotations

from flask import Blueprint

from app import runtime
from app.api import wire
from app.api.operations import body
from app.api.operations import operation
from app.api.operations import path
from app.api.operations import query
from app.api.operations import render
from app.api.operations import render_listing
from app.auth import require
from app.auth import require_tenant_wide
from app.services import schemas as service

bp = Blueprint("schemas", __name__, url_prefix="/api/v1/schemas")


@bp.post("")
@operation(tags="schemas", body=wire.RegisterSchemaBody, responses={200: wire.PayloadSchemaOut}, errors=(403,))
def register_schema():
    """Store a new version of an event type's payload JSON Schema (draft 2020-12); 200 with the new version."""
    fields = body()
    require_tenant_wide("read_write", fields["tenant_id"])
    return render(service.register_schema(runtime.current().engine, **fields))


@bp.get("")
@operation(tags="schemas", query=wire.SchemasQuery, responses={200: wire.PayloadSchemaListOut}, errors=(403,))
def list_schemas():
    """Every version of a tenant's schemas, optionally of one event type."""
    args = query()
    require("read", args["tenant_id"])
    rt = runtime.current()
    _, batches = service.schemas_in_batches(rt.engine, args["tenant_id"], args["event_type"] or None,
                                            rt.settings.page_max_bytes)
    return render_listing(batches)


@bp.get("/<event_type>/versions/<int:version>")
@operation(tags="schemas", path=wire.SchemaVersionPath, query=wire.TenantQuery, responses={200: wire.PayloadSchemaOut},
           errors=(403, 404))
def get_schema(event_type: str, version: int):
    """One version of one event type's schema."""
    key = path(event_type=event_type, version=version)
    tenant_id = query()["tenant_id"]
    require("read", tenant_id)
    return render(service.get_schema(runtime.current().engine, tenant_id, key["event_type"], key["version"]))
