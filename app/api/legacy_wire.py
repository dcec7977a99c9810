"""Requests and renderers of the original sequencer's routes that issue 18 added (docs/spec/API.md, "Routes of the
original sequencer"): legacy commitments and proofs, anchoring by batch, the anchor service's compatibility routes,
agents and their API keys, self-registration, schemas by id, admin reads and the detailed health report.

Kept apart from `app/api/wire.py` (which they build on) so the two change independently. Shapes are the original's
handlers' (`src/api/handlers/`), not ours: plain lowercase hex (`hex::encode`) for byte fields, whatever
`wire.RESPONSE_HEX_PREFIX` says, except where the original writes `0x` (the anchor service routes) or arrays of 32
numbers (serde's `[u8; 32]`, `GET /api/v1/commitments/{batch_id}`). No Flask here.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from marshmallow import EXCLUDE
from marshmallow import fields
from marshmallow import pre_dump
from marshmallow import validate

from app.api import wire
from app.api.wire import MAX_PAGE
from app.api.wire import MAX_SEQUENCE_NUMBER
from app.api.wire import QueryInt
from app.api.wire import RequestSchema
from app.api.wire import ResponseSchema
from app.api.wire import StorableString
from app.api.wire import StrictBool
from app.api.wire import Uuid
from app.services.api_keys import PERMISSIONS
from app.services.envelopes import EVENT_TYPE_MAX
from app.services.schemas import COMPATIBILITY_MODES
from app.services.schemas import SCHEMA_STATUSES
from app.ves.encoding import MAX_U32
from app.ves.encoding import MAX_U64
from app.ves.hashing import HASH_SIZE

MAX_PROOF_LENGTH = wire.MAX_PROOF_LENGTH
PENDING_DEFAULT = 1000
PENDING_MAX = 5000
ADMIN_PAGE_DEFAULT = 100
ADMIN_OFFSET_MAX = 1_000_000
REGISTRATION_NAME_MAX = 128
REGISTRATION_DESCRIPTION_MAX = 1024
REGISTRATION_STORE_IDS_MAX = 50
REGISTRATION_RATE_LIMIT_MAX = 10_000


def rfc3339(moment: datetime.datetime | None) -> str | None:
    """chrono's `to_rfc3339()` of a UTC instant: `…+00:00`."""
    return None if moment is None else moment.astimezone(datetime.timezone.utc).isoformat()


def rfc3339_z(moment: datetime.datetime | None) -> str | None:
    """serde's form of a `DateTime<Utc>`: `…Z`."""
    return None if moment is None else wire.format_sequenced_at(moment)


# --- Field types ---------------------------------------------------------------------------------------------------


class PlainHex(wire.Hex):
    """Bytes as `hex::encode` writes them: lowercase hex, no prefix."""

    @property
    def pattern(self) -> str:
        return wire.hex_pattern(self.size, "")

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else bytes(value).hex()


class PrefixedHex(wire.Hex):
    """Bytes as `format!("0x{}", hex::encode(..))` (the anchor service's compatibility routes)."""

    @property
    def pattern(self) -> str:
        return wire.hex_pattern(self.size, "0x")

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else "0x" + bytes(value).hex()


class ByteArray(fields.List):
    """Bytes as serde writes a `[u8; 32]`: an array of numbers 0-255."""

    def __init__(self, size: int, **kwargs):
        super().__init__(fields.Integer(validate=validate.Range(0, 255)), validate=validate.Length(size, size),
                         **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else list(bytes(value))


class Rfc3339(fields.DateTime):
    def _serialize(self, value, attr, obj, **kwargs):
        return rfc3339(value)


class Rfc3339Z(fields.DateTime):
    def _serialize(self, value, attr, obj, **kwargs):
        return rfc3339_z(value)


@dataclass(frozen=True)
class EchoedHash:
    """A hash input with the text it was given as, for answers that echo it unchanged."""

    value: bytes
    text: str


class EchoedHashInput(wire.HashInput):
    def _deserialize(self, value, attr, data, **kwargs):
        return EchoedHash(super()._deserialize(value, attr, data, **kwargs), value)


def _sequence(**kwargs) -> fields.Integer:
    return fields.Integer(validate=validate.Range(1, MAX_SEQUENCE_NUMBER), **kwargs)


def _count(**kwargs) -> fields.Integer:
    return fields.Integer(validate=validate.Range(0, MAX_U64), **kwargs)


# --- Requests ------------------------------------------------------------------------------------------------------


class LegacyCommitmentsQuery(wire.StreamQuery):
    limit = QueryInt(1, MAX_PAGE, load_default=MAX_PAGE,
                     metadata={"description": "At most this many (the original has no limit; ours is bounded)."})
    after = QueryInt(0, MAX_SEQUENCE_NUMBER, load_default=0,
                     metadata={"description": "Only commitments whose sequence_start is after this number."})


class LegacyProofQuery(wire.StreamQuery):
    ALIASES = ("batch_id",)

    batch_id = Uuid(load_default=None,
                    metadata={"description": "Prove in this commitment (the original requires it; default: the "
                                             "covering one)."})


class LegacyVerifyProofBody(RequestSchema):
    """The original's `VerifyProofRequest`; `leaf_hash` and `events_root` are echoed as sent."""

    ALIASES = ("leaf_hash", "events_root", "proof_path", "leaf_index", "leaf_count")

    class Meta:
        unknown = EXCLUDE

    leaf_hash = EchoedHashInput(required=True)
    events_root = EchoedHashInput(required=True)
    proof_path = fields.List(wire.HashInput(), required=True, validate=validate.Length(max=MAX_PROOF_LENGTH))
    leaf_index = wire.Int(0, MAX_U64, required=True)
    leaf_count = wire.Int(1, MAX_U32, load_default=None)
    directions = fields.List(StrictBool(), load_default=None, validate=validate.Length(max=MAX_PROOF_LENGTH))


class PendingCommitmentsQuery(wire.QuerySchema):
    limit = QueryInt(1, PENDING_MAX, load_default=PENDING_DEFAULT)


class AnchoredNotificationBody(RequestSchema):
    """`AnchorNotificationRequest`: an external anchor service reports the transaction that anchored a commitment."""

    class Meta:
        unknown = EXCLUDE

    chain_tx_hash = wire.HashInput(required=True)
    chain_id = wire.Int(0, MAX_U32, required=True)
    block_number = wire.Int(0, MAX_U64, load_default=None)
    gas_used = wire.Int(0, MAX_U64, load_default=None)


class BatchBody(RequestSchema):
    """`AnchorRequest`."""

    ALIASES = ("batch_id",)

    class Meta:
        unknown = EXCLUDE

    batch_id = Uuid(required=True)


class AgentPath(wire.PathSchema):
    agent_id = Uuid(required=True)


class AgentApiKeyPath(wire.PathSchema):
    agent_id = Uuid(required=True)
    key_hash_prefix = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-fA-F]{8,64}$"), metadata={
        "description": "The leading hex digits (at least 8) of the key's SHA-256, as `keyHashPrefix` shows."})


class CreateAgentApiKeyBody(RequestSchema):
    """`CreateApiKeyRequest`: a new key for the agent, never broader than the caller's own (unless admin)."""

    ALIASES = ("store_ids", "read_only", "rate_limit")

    class Meta:
        unknown = EXCLUDE

    store_ids = fields.List(Uuid(), load_default=None, validate=validate.Length(max=1000))
    read_only = StrictBool(load_default=None)
    admin = StrictBool(load_default=None)
    rate_limit = wire.Int(1, 10_000_000, load_default=None)


class AgentRegistrationBody(RequestSchema):
    """`AgentRegistrationRequest`. `tenantId` must be absent (each registration gets a new tenant) and `admin` absent
    or false."""

    ALIASES = ("tenant_id", "store_ids", "read_only", "rate_limit")

    class Meta:
        unknown = EXCLUDE

    name = StorableString(required=True, validate=validate.Length(min=1, max=REGISTRATION_NAME_MAX))
    description = StorableString(load_default=None, allow_none=True,
                                 validate=validate.Length(max=REGISTRATION_DESCRIPTION_MAX))
    tenant_id = Uuid(load_default=None, allow_none=True,
                     metadata={"description": "Not allowed: a 400 TENANT_ID_NOT_ALLOWED when given."})
    store_ids = fields.List(Uuid(), load_default=None, allow_none=True,
                            validate=validate.Length(max=REGISTRATION_STORE_IDS_MAX))
    read_only = StrictBool(load_default=None, allow_none=True)
    admin = StrictBool(load_default=None, allow_none=True,
                       metadata={"description": "Only false: true is a 403 ADMIN_NOT_ALLOWED."})
    rate_limit = wire.Int(1, REGISTRATION_RATE_LIMIT_MAX, load_default=None, allow_none=True)


class SchemaIdPath(wire.PathSchema):
    schema_id = Uuid(required=True)


class EventTypePath(wire.PathSchema):
    event_type = StorableString(required=True, validate=validate.Length(min=1, max=EVENT_TYPE_MAX))


class SchemaVersionsQuery(wire.TenantQuery):
    event_type = StorableString(load_default=None, validate=validate.Length(max=EVENT_TYPE_MAX), metadata={
        "description": "Ignored (the original's query struct requires it; the path names the event type)."})
    version = QueryInt(1, wire.MAX_SCHEMA_VERSION, load_default=None)


class LatestSchemaQuery(wire.TenantQuery):
    event_type = StorableString(load_default=None, validate=validate.Length(max=EVENT_TYPE_MAX), metadata={
        "description": "Ignored (the original's query struct requires it; the path names the event type)."})


class SchemaStatusBody(RequestSchema):
    class Meta:
        unknown = EXCLUDE

    status = fields.String(required=True, validate=validate.OneOf(SCHEMA_STATUSES))


class ValidatePayloadBody(RequestSchema):
    ALIASES = ("tenant_id", "event_type", "schema_version")

    class Meta:
        unknown = EXCLUDE

    tenant_id = Uuid(required=True)
    event_type = StorableString(required=True, validate=validate.Length(min=1, max=EVENT_TYPE_MAX))
    payload = fields.Raw(required=True, allow_none=True, metadata={"description": "Any JSON value."})
    schema_version = wire.Int(1, wire.MAX_SCHEMA_VERSION, load_default=None)


class AdminPageQuery(wire.QuerySchema):
    limit = QueryInt(1, MAX_PAGE, load_default=ADMIN_PAGE_DEFAULT)
    offset = QueryInt(0, ADMIN_OFFSET_MAX, load_default=0)


# --- Responses: legacy commitments and proofs ----------------------------------------------------------------------


class LegacyCommitmentCreatedOut(ResponseSchema):
    batch_id = fields.UUID(required=True)
    tenant_id = fields.UUID(required=True)
    store_id = fields.UUID(required=True)
    prev_state_root = PlainHex(HASH_SIZE, required=True)
    new_state_root = PlainHex(HASH_SIZE, required=True)
    events_root = PlainHex(HASH_SIZE, required=True, attribute="merkle_root")
    event_count = fields.Integer(required=True, validate=validate.Range(1, MAX_U32), attribute="leaf_count")
    sequence_start = _sequence(required=True)
    sequence_end = _sequence(required=True)
    committed_at = Rfc3339Z(required=True)


class LegacyCommitmentItemOut(ResponseSchema):
    batch_id = fields.UUID(required=True)
    tenant_id = fields.UUID(required=True)
    store_id = fields.UUID(required=True)
    events_root = PlainHex(HASH_SIZE, required=True, attribute="merkle_root")
    event_count = fields.Integer(required=True, validate=validate.Range(1, MAX_U32), attribute="leaf_count")
    sequence_start = _sequence(required=True)
    sequence_end = _sequence(required=True)
    committed_at = Rfc3339Z(required=True)
    is_anchored = fields.Boolean(required=True)


LegacyCommitmentListOut = wire.listing(LegacyCommitmentItemOut, "commitments", "LegacyCommitmentListOut")


class LegacyBatchCommitmentOut(ResponseSchema):
    """serde's `BatchCommitment`: hashes as arrays of 32 numbers, the range as `[start, end]`."""

    batch_id = fields.UUID(required=True)
    tenant_id = fields.UUID(required=True)
    store_id = fields.UUID(required=True)
    prev_state_root = ByteArray(HASH_SIZE, required=True)
    new_state_root = ByteArray(HASH_SIZE, required=True)
    events_root = ByteArray(HASH_SIZE, required=True, attribute="merkle_root")
    event_count = fields.Integer(required=True, validate=validate.Range(1, MAX_U32), attribute="leaf_count")
    sequence_range = fields.Function(lambda c: [c.sequence_start, c.sequence_end], required=True, metadata={
        "type": "array", "items": {"type": "integer", "minimum": 1, "maximum": MAX_SEQUENCE_NUMBER},
        "minItems": 2, "maxItems": 2})
    committed_at = Rfc3339Z(required=True)
    chain_tx_hash = ByteArray(HASH_SIZE, required=True, allow_none=True)


class LegacyProofOut(ResponseSchema):
    """Dumps an `EventProof`."""

    sequence_number = _sequence(required=True)
    batch_id = fields.UUID(required=True, attribute="commitment.batch_id")
    events_root = PlainHex(HASH_SIZE, required=True, attribute="proof.merkle_root")
    leaf_hash = PlainHex(HASH_SIZE, required=True, attribute="proof.leaf_hash")
    leaf_index = fields.Integer(required=True, validate=validate.Range(0, MAX_U64), attribute="proof.leaf_index")
    proof_path = fields.List(PlainHex(HASH_SIZE), required=True, validate=validate.Length(max=MAX_PROOF_LENGTH),
                             attribute="proof.proof_path")
    directions = fields.List(fields.Boolean(), required=True, validate=validate.Length(max=MAX_PROOF_LENGTH),
                             attribute="proof.directions")


class LegacyProofVerdictOut(ResponseSchema):
    """`leaf_hash` and `events_root` exactly as the request gave them; `reason` (ours) says why a proof fails."""

    valid = fields.Boolean(required=True)
    leaf_hash = fields.String(required=True)
    events_root = fields.String(required=True)
    reason = fields.String(required=True, allow_none=True)


# --- Responses: anchoring ------------------------------------------------------------------------------------------


class VesAnchorOut(ResponseSchema):
    """`POST /api/v1/ves/anchor`: every field when `anchored`; only `batch_id`, `status`, `chain_tx_hash` when
    `already_anchored` (as the original)."""

    batch_id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["anchored", "already_anchored"]))
    chain_tx_hash = PlainHex(HASH_SIZE, required=True, allow_none=True)
    chain_block_number = fields.Integer(validate=validate.Range(0, MAX_U64), allow_none=True)
    merkle_root = PlainHex(HASH_SIZE)
    sequence_start = _sequence()
    sequence_end = _sequence()

    @pre_dump
    def _from_outcome(self, outcome, **kwargs):
        return _anchor_answer(outcome, {"chain_block_number": outcome.chain_block_number,
                                        "merkle_root": outcome.commitment.merkle_root})


class LegacyAnchorOut(ResponseSchema):
    """`POST /api/v1/anchor`: as `VesAnchorOut`, with `events_root` for the root and no block number."""

    batch_id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["anchored", "already_anchored"]))
    chain_tx_hash = PlainHex(HASH_SIZE, required=True, allow_none=True)
    events_root = PlainHex(HASH_SIZE)
    sequence_start = _sequence()
    sequence_end = _sequence()

    @pre_dump
    def _from_outcome(self, outcome, **kwargs):
        return _anchor_answer(outcome, {"events_root": outcome.commitment.merkle_root})


def _anchor_answer(outcome, extra: dict) -> dict:
    answer = {"batch_id": outcome.commitment.batch_id, "chain_tx_hash": outcome.chain_tx_hash}
    if outcome.status == "already_anchored":
        return {**answer, "status": "already_anchored"}
    return {**answer, **extra, "status": "anchored", "sequence_start": outcome.commitment.sequence_start,
            "sequence_end": outcome.commitment.sequence_end}


class AnchoredOnChainOut(ResponseSchema):
    batch_id = fields.UUID(required=True)
    anchored_on_chain = fields.Boolean(required=True)


class PendingCommitmentOut(ResponseSchema):
    batch_id = fields.UUID(required=True)
    tenant_id = fields.UUID(required=True)
    store_id = fields.UUID(required=True)
    prev_state_root = PrefixedHex(HASH_SIZE, required=True)
    new_state_root = PrefixedHex(HASH_SIZE, required=True)
    events_root = PrefixedHex(HASH_SIZE, required=True, attribute="merkle_root")
    sequence_start = _sequence(required=True)
    sequence_end = _sequence(required=True)
    event_count = fields.Integer(required=True, validate=validate.Range(1, MAX_U32), attribute="leaf_count")
    committed_at = Rfc3339Z(required=True)
    chain_tx_hash = PrefixedHex(HASH_SIZE, required=True, allow_none=True)


class PendingCommitmentsOut(ResponseSchema):
    commitments = fields.List(fields.Nested(PendingCommitmentOut), required=True)
    total = fields.Integer(required=True, validate=validate.Range(0, PENDING_MAX))

    @pre_dump
    def _wrap(self, items, **kwargs):
        return {"commitments": items, "total": len(items)}


class AnchoredNotificationOut(ResponseSchema):
    """`anchored` with the recorded transaction; `already_anchored` (only `batch_id` and `status`) when the same
    transaction was reported before."""

    batch_id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["anchored", "already_anchored"]))
    chain_tx_hash = PrefixedHex(HASH_SIZE)
    chain_id = fields.Integer(validate=validate.Range(0, MAX_U32))
    block_number = fields.Integer(allow_none=True, validate=validate.Range(0, MAX_U64))

    @pre_dump
    def _from_result(self, result, **kwargs):
        if not result.newly_recorded:
            return {"batch_id": result.commitment.batch_id, "status": "already_anchored"}
        return {"batch_id": result.commitment.batch_id, "status": "anchored",
                "chain_tx_hash": result.commitment.chain_tx_hash, "chain_id": result.commitment.chain_id,
                "block_number": result.commitment.chain_block_number}


# --- Responses: agents ---------------------------------------------------------------------------------------------


class CamelCase(ResponseSchema):
    def on_bind_field(self, field_name, field_obj):
        field_obj.data_key = wire.camel_case(field_obj.data_key or field_name)


def _permission(**kwargs) -> fields.String:
    return fields.String(validate=validate.OneOf(PERMISSIONS), **kwargs)


class AgentOut(CamelCase):
    agent_id = fields.UUID(required=True)
    tenant_id = fields.UUID(required=True)
    active = fields.Boolean(required=True)
    permissions = _permission(required=True)
    store_ids = fields.List(fields.UUID(), required=True)
    rate_limit = fields.Integer(required=True, allow_none=True, validate=validate.Range(1, 10_000_000))


class AgentApiKeyCreatedOut(CamelCase):
    success = fields.Boolean(required=True, validate=validate.Equal(True))
    api_key = fields.String(required=True, metadata={"description": "The secret, shown only in this response."})
    key_hash_prefix = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{16}$"))
    permissions = _permission(required=True)
    message = fields.String(required=True)


class AgentApiKeyInfoOut(CamelCase):
    key_hash_prefix = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{16}$"))
    active = fields.Boolean(required=True)
    permissions = _permission(required=True)
    rate_limit = fields.Integer(required=True, allow_none=True, validate=validate.Range(1, 10_000_000))


AgentApiKeyListOut = wire.listing(AgentApiKeyInfoOut, "keys", "AgentApiKeyListOut")


class SuccessMessageOut(ResponseSchema):
    success = fields.Boolean(required=True, validate=validate.Equal(True))
    message = fields.String(required=True)


class AgentRegistrationOut(CamelCase):
    success = fields.Boolean(required=True, validate=validate.Equal(True))
    agent_id = fields.UUID(required=True)
    tenant_id = fields.UUID(required=True)
    api_key = fields.String(required=True, metadata={"description": "The secret, shown only in this response."})
    permissions = fields.String(required=True, validate=validate.OneOf(["read", "read_write"]))
    message = fields.String(required=True)


REGISTRATION_HEADERS = {
    "Cache-Control": {"schema": {"type": "string", "const": "no-store"}, "required": True},
}

# --- Responses: schemas --------------------------------------------------------------------------------------------


class SchemaOut(CamelCase):
    """The original's `SchemaResponse`."""

    id = fields.UUID(required=True)
    tenant_id = fields.UUID(required=True)
    event_type = fields.String(required=True)
    version = fields.Integer(required=True, validate=validate.Range(1, wire.MAX_SCHEMA_VERSION))
    schema_json = fields.Raw(required=True, attribute="schema", metadata={"type": "object"})
    status = fields.String(required=True, validate=validate.OneOf(SCHEMA_STATUSES))
    compatibility = fields.String(required=True, validate=validate.OneOf(COMPATIBILITY_MODES))
    description = fields.String(required=True, allow_none=True)
    created_at = Rfc3339(required=True)
    updated_at = Rfc3339(required=True)
    created_by = fields.String(required=True, allow_none=True)


class SchemasOfEventTypeOut(ResponseSchema):
    """Without `version`: `{"schemas": [SchemaResponse], "count"}`; with it: `{"schema": SchemaResponse}` (the
    original's two answers of one route)."""

    schemas = fields.List(fields.Nested(SchemaOut))
    count = fields.Integer(validate=validate.Range(0, MAX_U32))
    schema = fields.Nested(SchemaOut)

    @pre_dump
    def _wrap(self, found, **kwargs):
        if isinstance(found, list):
            return {"schemas": found, "count": len(found)}
        return {"schema": found}


class SchemaStatusChangedOut(ResponseSchema):
    success = fields.Boolean(required=True, validate=validate.Equal(True))
    schema_id = fields.UUID(required=True)
    new_status = fields.String(required=True, validate=validate.OneOf(SCHEMA_STATUSES))

    @pre_dump
    def _from_change(self, change, **kwargs):
        return {"success": True, "schema_id": change.schema_id, "new_status": change.new_status}


class SchemaDeletedOut(ResponseSchema):
    success = fields.Boolean(required=True, validate=validate.Equal(True))
    deleted_schema_id = fields.UUID(required=True)

    @pre_dump
    def _from_deletion(self, deletion, **kwargs):
        return {"success": True, "deleted_schema_id": deletion.deleted_schema_id}


class PayloadIssueOut(CamelCase):
    path = fields.String(required=True, metadata={"description": "JSON Pointer into the payload (`` for the root)."})
    message = fields.String(required=True)


class PayloadVerdictOut(CamelCase):
    valid = fields.Boolean(required=True)
    schema_id = fields.UUID(required=True, allow_none=True)
    schema_version = fields.Integer(required=True, allow_none=True, validate=validate.Range(1, wire.MAX_SCHEMA_VERSION))
    errors = fields.List(fields.Nested(PayloadIssueOut), required=True)


# --- Responses: admin reads and the detailed health report ---------------------------------------------------------


class AdminOverviewOut(CamelCase):
    tenants = _count(required=True)
    stores = _count(required=True)
    agents = _count(required=True)
    api_keys = _count(required=True)
    active_api_keys = _count(required=True)
    total_head_sequence = _count(required=True)
    active_stores_24h = _count(required=True, data_key="activeStores24h")
    max_projection_lag = _count(required=True)
    last_activity_at = Rfc3339(required=True, allow_none=True)


class AdminTenantOut(CamelCase):
    tenant_id = fields.UUID(required=True)
    agent_count = _count(required=True)
    api_key_count = _count(required=True)
    active_api_keys = _count(required=True)
    store_count = _count(required=True)
    total_head_sequence = _count(required=True)
    active_stores_24h = _count(required=True, data_key="activeStores24h")
    max_projection_lag = _count(required=True)
    last_key_at = Rfc3339(required=True, allow_none=True)
    last_activity_at = Rfc3339(required=True, allow_none=True)


class AdminStoreOut(CamelCase):
    tenant_id = fields.UUID(required=True)
    store_id = fields.UUID(required=True)
    head_sequence = _count(required=True)
    last_projected_sequence = _count(required=True)
    projection_lag = _count(required=True)
    agent_count = _count(required=True)
    last_agent_sync_at = Rfc3339(required=True, allow_none=True)
    updated_at = Rfc3339(required=True)


class AdminAgentOut(CamelCase):
    tenant_id = fields.UUID(required=True)
    agent_id = fields.UUID(required=True)
    permissions = _permission(required=True)
    store_scope = fields.String(required=True, validate=validate.OneOf(["all", "scoped"]))
    api_key_count = _count(required=True)
    active_api_keys = _count(required=True)
    first_key_at = Rfc3339(required=True, allow_none=True)
    last_key_at = Rfc3339(required=True, allow_none=True)
    store_id = fields.UUID(required=True, allow_none=True)
    last_sync_at = Rfc3339(required=True, allow_none=True)
    last_pushed_sequence = _count(required=True, allow_none=True)
    last_pulled_sequence = _count(required=True, allow_none=True)


HEALTH_STATES = ("healthy", "degraded", "unhealthy")


class ComponentOut(ResponseSchema):
    name = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(HEALTH_STATES))
    message = fields.String()
    response_time_ms = fields.Integer(validate=validate.Range(0, MAX_U64))

    @pre_dump
    def _omit_none(self, component, **kwargs):
        return {k: v for k, v in vars(component).items() if v is not None}


class PoolOut(ResponseSchema):
    status = fields.String(required=True, validate=validate.OneOf(HEALTH_STATES))
    total_connections = _count(required=True)
    active_connections = _count(required=True)
    idle_connections = _count(required=True)
    max_connections = _count(required=True)
    utilization_percent = fields.Float(required=True, validate=validate.Range(0.0, 100.0))


class ComponentsOut(ResponseSchema):
    database = fields.Nested(ComponentOut, required=True)
    pool = fields.Nested(PoolOut, required=True)
    anchor_service = fields.Nested(ComponentOut, metadata={"description": "Present when anchoring is configured."})

    @pre_dump
    def _omit_none(self, components, **kwargs):
        return {k: v for k, v in vars(components).items() if v is not None}


class DetailedHealthOut(ResponseSchema):
    status = fields.String(required=True, validate=validate.OneOf(HEALTH_STATES))
    service = wire.Always("stateset-sequencer")
    version = fields.String(required=True)
    timestamp = Rfc3339(required=True)
    components = fields.Nested(ComponentsOut, required=True)
