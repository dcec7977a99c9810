"""The original sequencer's schema routes (`src/api/handlers/schemas.rs`): by id, status, deletion, by event type,
latest, and payload validation. Schemas are tenant-wide: any key of the tenant reads them; changing a status needs a
read_write key for the whole tenant, deleting an admin key for it (as the original). Another tenant's schema is a
404."""

from __future__ import annotations

from functools import partial

from flask import Blueprint

from app import runtime
from app.api import legacy_wire as wire
from app.api.operations import body
from app.api.operations import operation
from app.api.operations import path
from app.api.operations import query
from app.api.operations import render
from app.auth import authenticate
from app.auth import require
from app.auth import require_tenant_wide
from app.services import schemas as service

bp = Blueprint("legacy_schemas", __name__, url_prefix="/api/v1/schemas")


def _visible(schema_id: str):
    principal = authenticate()
    return service.schema_by_id(runtime.current().engine, path(schema_id=schema_id)["schema_id"],
                                partial(principal.allows, "read"))


@bp.get("/<id:schema_id>")
@operation(tags="schemas", path=wire.SchemaIdPath, responses={200: wire.SchemaOut}, errors=(404,))
def get_schema_by_id(schema_id: str):
    """One schema version by its id (`SchemaResponse`)."""
    return render(_visible(schema_id))


@bp.delete("/<id:schema_id>")
@operation(tags="schemas", path=wire.SchemaIdPath, responses={200: wire.SchemaDeletedOut}, errors=(403, 404))
def delete_schema(schema_id: str):
    """Delete one schema version (an admin key for the whole tenant): `{"success": true, "deleted_schema_id"}`."""
    record = _visible(schema_id)
    require_tenant_wide("admin", record.tenant_id)
    return render(service.delete_schema(runtime.current().engine, record))


@bp.put("/<id:schema_id>/status")
@operation(tags="schemas", path=wire.SchemaIdPath, body=wire.SchemaStatusBody,
           responses={200: wire.SchemaStatusChangedOut}, errors=(403, 404))
def update_schema_status(schema_id: str):
    """Set a schema version's status (`active`, `deprecated`, `archived`; a read_write key for the whole tenant)."""
    record = _visible(schema_id)
    status = body()["status"]
    require_tenant_wide("read_write", record.tenant_id)
    return render(service.set_schema_status(runtime.current().engine, record, status))


@bp.get("/event-type/<event_type>")
@operation(tags="schemas", path=wire.EventTypePath, query=wire.SchemaVersionsQuery,
           responses={200: wire.SchemasOfEventTypeOut}, errors=(403, 404))
def get_schemas_by_event_type(event_type: str):
    """Every version of an event type's schema (`{"schemas", "count"}`); with `version`, 200 `{"schema": ...}` or
    404."""
    name, args = path(event_type=event_type)["event_type"], query()
    require("read", args["tenant_id"])
    if args["version"] is not None:
        return render(service.get_schema(runtime.current().engine, args["tenant_id"], name, args["version"]))
    return render(service.list_schemas(runtime.current().engine, args["tenant_id"], name))


@bp.get("/event-type/<event_type>/latest")
@operation(tags="schemas", path=wire.EventTypePath, query=wire.LatestSchemaQuery, responses={200: wire.SchemaOut},
           errors=(403, 404))
def get_latest_schema(event_type: str):
    """The event type's highest `active` version."""
    name, tenant_id = path(event_type=event_type)["event_type"], query()["tenant_id"]
    require("read", tenant_id)
    return render(service.latest_active_schema(runtime.current().engine, tenant_id, name))


@bp.post("/validate")
@operation(tags="schemas", body=wire.ValidatePayloadBody, responses={200: wire.PayloadVerdictOut}, errors=(403, 404))
def validate_payload():
    """Check a payload against a version (404 when absent) or the latest active schema (valid when there is none)."""
    fields = body()
    require("read", fields["tenant_id"])
    rt = runtime.current()
    return render(service.validate_payload(rt.engine, **fields,
                                           timeout_seconds=rt.settings.schema_validation_timeout_ms / 1000))
