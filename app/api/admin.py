"""Admin API: API keys. Requires an admin key; a tenant-scoped admin manages only its own tenant's keys."""

from __future__ import annotations

from flask import Blueprint
from flask import jsonify
from marshmallow import Schema
from marshmallow import fields
from marshmallow import validate

from app import runtime
from app.api.parsing import StorableString
from app.api.parsing import json_body
from app.api.parsing import load
from app.api.parsing import parse_uuid_value
from app.api.parsing import uuid_arg
from app.auth import PERMISSIONS
from app.auth import authenticate
from app.auth import require
from app.db.api_keys import ApiKeyRecord
from app.errors import Forbidden
from app.errors import NotFound
from app.services import api_keys as service

bp = Blueprint("admin", __name__, url_prefix="/api/v1/admin")


class CreateApiKeyRequest(Schema):
    tenant_id = fields.UUID(load_default=None, data_key="tenant_id")
    store_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=1000))
    permissions = fields.String(required=True, validate=validate.OneOf(PERMISSIONS))
    agent_id = fields.UUID(load_default=None)
    rate_limit = fields.Integer(load_default=None, strict=True, validate=validate.Range(min=1, max=10_000_000))
    description = StorableString(load_default=None, validate=validate.Length(max=256))


def api_key_view(record: ApiKeyRecord) -> dict:
    return {
        "key_id": str(record.key_id),
        "key_prefix": record.key_prefix,
        "tenant_id": str(record.tenant_id) if record.tenant_id else None,
        "store_ids": [str(s) for s in record.store_ids],
        "permissions": record.permissions,
        "agent_id": str(record.agent_id) if record.agent_id else None,
        "rate_limit": record.rate_limit,
        "description": record.description,
        "created_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "is_revoked": record.revoked_at is not None,
    }


@bp.post("/api-keys")
def create_api_key():
    """Create an API key; the secret is in this response only."""
    body = load(CreateApiKeyRequest(), json_body())
    require("admin", body["tenant_id"])
    secret, record = service.create_api_key(runtime.current().engine, **body)
    return jsonify({"api_key": secret, **api_key_view(record)}), 201


@bp.get("/api-keys")
def list_api_keys():
    """List keys (never their secrets), optionally for one tenant."""
    tenant_id = uuid_arg("tenant_id", required=False) or authenticate().tenant_id
    require("admin", tenant_id)
    records = service.list_api_keys(runtime.current().engine, tenant_id)
    return jsonify({"api_keys": [api_key_view(r) for r in records], "count": len(records)})


@bp.delete("/api-keys/<key_id>")
def revoke_api_key(key_id: str):
    """Revoke a key; it is refused from its next request on."""
    key_uuid = parse_uuid_value(key_id, "key_id")
    principal = require("admin", authenticate().tenant_id)
    engine = runtime.current().engine
    record = service.get_api_key(engine, key_uuid)
    if record is None or (principal.tenant_id is not None and record.tenant_id != principal.tenant_id):
        raise NotFound("No such API key.")
    if principal.key_id == record.key_id:
        raise Forbidden("An API key cannot revoke itself.", code="SELF_REVOCATION")
    service.revoke_api_key(engine, key_uuid)
    return "", 204
