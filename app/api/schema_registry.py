"""The payload schema registry: versioned JSON Schemas (draft 2020-12) per tenant and event type."""

from __future__ import annotations

from flask import Blueprint
from flask import jsonify
from marshmallow import Schema
from marshmallow import fields
from marshmallow import validate

from app import runtime
from app.api.parsing import StorableString
from app.api.parsing import check_path_text
from app.api.parsing import json_body
from app.api.parsing import load
from app.api.parsing import text_arg
from app.api.parsing import uuid_arg
from app.auth import require
from app.db.schemas import SchemaRecord
from app.errors import BadRequest
from app.services import schemas as service
from app.services.envelopes import EVENT_TYPE_MAX

bp = Blueprint("schemas", __name__, url_prefix="/api/v1/schemas")


class RegisterSchemaRequest(Schema):
    tenant_id = fields.UUID(required=True)
    event_type = StorableString(required=True, validate=validate.Length(min=1, max=EVENT_TYPE_MAX))
    schema = fields.Raw(required=True)


def schema_view(record: SchemaRecord) -> dict:
    return {"tenant_id": str(record.tenant_id), "event_type": record.event_type, "version": record.version,
            "schema": record.schema, "created_at": record.created_at.isoformat()}


@bp.post("")
def register_schema():
    """Store a new version of an event type's payload schema."""
    body = load(RegisterSchemaRequest(), json_body())
    require("read_write", body["tenant_id"])
    record = service.register_schema(runtime.current().engine, body["tenant_id"], body["event_type"], body["schema"])
    return jsonify(schema_view(record)), 201


@bp.get("")
def list_schemas():
    """Every version of a tenant's schemas, optionally for one event type."""
    tenant_id = uuid_arg("tenant_id")
    require("read", tenant_id)
    event_type = text_arg("event_type", EVENT_TYPE_MAX)
    records = service.list_schemas(runtime.current().engine, tenant_id, event_type)
    return jsonify({"schemas": [schema_view(r) for r in records], "count": len(records)})


@bp.get("/<event_type>/versions/<int:version>")
def get_schema(event_type: str, version: int):
    """One version of one event type's schema."""
    check_path_text(event_type, "event_type", EVENT_TYPE_MAX)
    tenant_id = uuid_arg("tenant_id")
    require("read", tenant_id)
    if version > 2**31 - 1:
        raise BadRequest("version is out of range.", code="INVALID_REQUEST")
    record = service.get_schema(runtime.current().engine, tenant_id, event_type, version)
    return jsonify(schema_view(record))
