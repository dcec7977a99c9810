"""The agent key registry (VES): register, list and revoke agents' Ed25519 public keys."""

from __future__ import annotations

from flask import Blueprint
from flask import jsonify
from marshmallow import EXCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import pre_load
from marshmallow import validate
from marshmallow import validates_schema

from app import runtime
from app.api.parsing import json_body
from app.api.parsing import load
from app.api.parsing import parse_int_value
from app.api.parsing import parse_uuid_value
from app.api.parsing import uuid_arg
from app.auth import require
from app.db.agent_keys import AgentKeyRecord
from app.errors import BadRequest
from app.services import agent_keys as service
from app.ves.encoding import parse_key_material
from app.ves.encoding import to_hex
from app.ves.errors import VesError

bp = Blueprint("agents", __name__, url_prefix="/api/v1/agents")

_ALIASES = {"tenantId": "tenant_id", "agentId": "agent_id", "keyId": "key_id", "publicKey": "public_key",
            "validFrom": "valid_from", "validTo": "valid_to"}


class RegisterAgentKeyRequest(Schema):
    class Meta:
        unknown = EXCLUDE

    tenant_id = fields.UUID(required=True)
    agent_id = fields.UUID(required=True)
    key_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=2**32 - 1))
    public_key = fields.String(required=True, validate=validate.Length(max=128))
    valid_from = fields.AwareDateTime(load_default=None, allow_none=True)
    valid_to = fields.AwareDateTime(load_default=None, allow_none=True)

    @pre_load
    def accept_camel_case(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        result = dict(data)
        for camel, snake in _ALIASES.items():
            if camel in result:
                result.setdefault(snake, result.pop(camel))
        return result

    @validates_schema
    def validity_ordered(self, data, **kwargs):
        if data.get("valid_from") and data.get("valid_to") and data["valid_to"] < data["valid_from"]:
            raise ValidationError("validTo must not be before validFrom.", "valid_to")


def agent_key_view(record: AgentKeyRecord) -> dict:
    def ts(value):
        return value.isoformat() if value else None

    return {
        "tenant_id": str(record.tenant_id),
        "agent_id": str(record.agent_id),
        "key_id": record.key_id,
        "public_key": to_hex(record.public_key),
        "valid_from": ts(record.valid_from),
        "valid_to": ts(record.valid_to),
        "revoked_at": ts(record.revoked_at),
        "created_at": ts(record.created_at),
        "is_revoked": record.revoked_at is not None,
    }


@bp.post("/keys")
def register_agent_key():
    """Register a key: 201 when new, 200 when the same key was already registered, 409 for a different key."""
    body = load(RegisterAgentKeyRequest(), json_body())
    require("read_write", body["tenant_id"])
    try:
        public_key = parse_key_material(body["public_key"], 32, "publicKey")
    except VesError as exc:
        raise BadRequest(exc.message + ".", code="INVALID_REQUEST") from None
    record, created = service.register_agent_key(runtime.current().engine, body["tenant_id"], body["agent_id"],
                                                 body["key_id"], public_key, body["valid_from"], body["valid_to"])
    return jsonify(agent_key_view(record)), 201 if created else 200


@bp.get("/keys")
def list_agent_keys():
    """A tenant's keys, optionally of one agent."""
    tenant_id = uuid_arg("tenant_id")
    agent_id = uuid_arg("agent_id", required=False)
    require("read", tenant_id)
    records = service.list_agent_keys(runtime.current().engine, tenant_id, agent_id)
    return jsonify({"keys": [agent_key_view(r) for r in records], "count": len(records)})


@bp.delete("/keys/<agent_id>/<key_id>")
def revoke_agent_key(agent_id: str, key_id: str):
    """Revoke a key (the row stays; events signed with it are rejected from now on)."""
    agent_uuid = parse_uuid_value(agent_id, "agent_id")
    key_number = parse_int_value(key_id, "key_id", 0, 2**32 - 1)
    tenant_id = uuid_arg("tenant_id")
    require("read_write", tenant_id)
    record = service.revoke_agent_key(runtime.current().engine, tenant_id, agent_uuid, key_number)
    return jsonify(agent_key_view(record))
