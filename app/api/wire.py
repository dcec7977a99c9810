"""The wire contract of the HTTP API (docs/spec/API.md): every rule for reading requests and writing responses.

Every schema here is used three ways: to parse a request (`load`), to render a response (`dump`), and to generate the
OpenAPI document (`app/api/document.py`), so the served document cannot disagree with the server. No Flask here.

Rules decided once, here:
- **Names.** Request fields are snake_case; those API.md publishes in camelCase are also accepted in camelCase
  (`ALIASES` on a schema). A field given under both spellings is refused (400 `INVALID_REQUEST`, or for one event
  inside an ingest batch, that event's `InvalidEvent` rejection), whatever the two values: the document can state
  that exactly (`not: {required: [snake, camel]}`), so a client can never guess which spelling won.
- **Bytes in responses** are `hex_of(value)`: `RESPONSE_HEX_PREFIX` + lowercase hex. Fields of a VES envelope as
  the agent signed it keep the envelope form `"0x"` + lowercase hex (`EnvelopeHex`, VES.md §Primitives).
- **Timestamps** are RFC 3339: `sequenced_at` with microseconds and `Z` (`SequencedAt`), stored instants with
  their offset (`Instant`); `created_at` of an event is returned byte for byte as the agent sent it.
- **Integers** in query and path parameters are ASCII digits only; in bodies, JSON numbers without a fraction (`41`
  or `41.0`, as JSON Schema's `integer`; never booleans or strings). UUIDs are the canonical 8-4-4-4-12 text.
  Instants are normalised to UTC.
- **Errors** are `{"error", "code", "request_id"}`; `ERROR_STATUSES` is the one map from domain errors to statuses.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from types import SimpleNamespace

from marshmallow import EXCLUDE
from marshmallow import INCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import post_dump
from marshmallow import post_load
from marshmallow import pre_dump
from marshmallow import pre_load
from marshmallow import validate
from marshmallow import validates_schema

from app.errors import Conflict
from app.errors import IntegrityFailure
from app.errors import InvalidRequest
from app.errors import NotFound
from app.errors import NotPermitted
from app.errors import SequencerError
from app.errors import TooLarge
from app.errors import Unauthenticated
from app.errors import Unavailable
from app.services.api_keys import PERMISSIONS
from app.services.streams import MAX_STREAMS_PAGE
from app.services.commitments import DEFAULT_MAX_EVENTS
from app.services.commitments import MAX_COMMITMENT_EVENTS
from app.services.envelopes import ENTITY_ID_MAX
from app.services.envelopes import ENTITY_TYPE_MAX
from app.services.envelopes import EVENT_TYPE_MAX
from app.services.envelopes import EventRejected
from app.services.envelopes import is_storable_text
from app.services.fence import StreamDiverged
from app.services.fence import StreamFenced
from app.services.health import REPLICA_STATES
from app.ves.encoding import MAX_U32
from app.ves.encoding import MAX_U64
from app.ves.encoding import parse_hex
from app.ves.encoding import parse_key_material
from app.ves.errors import VesError
from app.ves.hashing import HASH_SIZE

MAX_SEQUENCE_NUMBER = 2**63 - 1
"""Sequence numbers are PostgreSQL BIGINTs."""
MAX_SCHEMA_VERSION = 2**31 - 1
MAX_PAGE = 1000
MAX_PROOF_LENGTH = 64
SIGNATURE_SIZE = 64

RESPONSE_HEX_PREFIX = ""
"""The one decision on how response byte fields are written (envelope fields are `EnvelopeHex`)."""
ENVELOPE_HEX_PREFIX = "0x"

_UUID_TEXT = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_ASCII_INTEGER = re.compile(r"-?[0-9]{1,20}")
HASH_INPUT_PATTERN = r"^(0[xX])?[0-9a-fA-F]{64}$"
PUBLIC_KEY_PATTERN = r"^(?:(?:0[xX])?[0-9a-fA-F]{64}|[A-Za-z0-9+/_-]{43}=*)$"
"""32 bytes as hex (with or without `0x`, any case) or base64 (standard or urlsafe alphabet, padding optional)."""


def hex_of(value: bytes) -> str:
    """A response byte field's wire form."""
    return RESPONSE_HEX_PREFIX + bytes(value).hex()


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def format_sequenced_at(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with microseconds and `Z`."""
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


# --- Field types ---------------------------------------------------------------------------------------------------


class Uuid(fields.UUID):
    """A UUID in canonical text form (`format: uuid`): 8-4-4-4-12 hex digits, any case."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _UUID_TEXT.fullmatch(value):
            raise self.make_error("invalid_uuid")
        return super()._deserialize(value, attr, data, **kwargs)


STORABLE_TEXT_PATTERN = r"^[^\u0000]*$"
"""No U+0000 (PostgreSQL text cannot hold it). Lone surrogates, which JSON can escape but UTF-8 cannot encode, are
refused too; the description says so, as generators cannot use such a pattern."""


class StorableString(fields.String):
    """A string PostgreSQL can store (no U+0000, no lone surrogates)."""

    def __init__(self, **kwargs):
        metadata = {"pattern": STORABLE_TEXT_PATTERN, **kwargs.pop("metadata", {})}
        metadata["description"] = " ".join(filter(None, [metadata.get("description"), "No lone surrogates."]))
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not is_storable_text(text):
            raise ValidationError("Must not contain U+0000 or lone surrogates.")
        return text


class Int(fields.Integer):
    """A JSON integer: a number with no fractional part (`41` or `41.0`, as JSON Schema's `integer`), never a
    boolean or a numeric string."""

    def __init__(self, minimum: int, maximum: int, **kwargs):
        super().__init__(validate=validate.Range(minimum, maximum), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return value


class QueryInt(fields.Integer):
    """An integer in a query or path parameter, written with ASCII digits only (`str.isdigit` also admits '²')."""

    def __init__(self, minimum: int, maximum: int, **kwargs):
        super().__init__(validate=validate.Range(minimum, maximum), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _ASCII_INTEGER.fullmatch(value):
            raise self.make_error("invalid")
        return int(value)


class QueryNumber(fields.Float):
    """A number in a query parameter, as Python's `float` reads it (not NaN)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            number = float(value)
        except ValueError:
            raise self.make_error("invalid") from None
        if math.isnan(number):
            raise self.make_error("invalid")
        return number


class QueryBool(fields.Boolean):
    """`true`/`false` in a query parameter (also `1`/`0`, `yes`/`no`, any case)."""

    truthy = {"true", "1", "yes"}
    falsy = {"false", "0", "no"}

    def _deserialize(self, value, attr, data, **kwargs):
        lowered = value.lower() if isinstance(value, str) else None
        if lowered in self.truthy:
            return True
        if lowered in self.falsy:
            return False
        raise self.make_error("invalid")


class AwareInstant(fields.AwareDateTime):
    """An RFC 3339 date-time with an offset, naming an instant from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z;
    loads in UTC (PostgreSQL refuses offsets beyond ±15:59, RFC 3339 allows ±23:59)."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"description": "An instant from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z."},
                         **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(datetime.timezone.utc)
        except OverflowError:
            raise ValidationError("Must be an instant from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.") from None


class StrictBool(fields.Boolean):
    """A JSON `true` or `false`, nothing else."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class HashInput(fields.String):
    """32 bytes given as hex, with or without `0x`, any case (VES.md §Primitives); loads as bytes."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"pattern": HASH_INPUT_PATTERN}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parse_hex(text, HASH_SIZE, attr or "hash")
        except VesError as exc:
            raise ValidationError(exc.message) from None


class PublicKeyInput(fields.String):
    """An Ed25519 public key: 32 bytes as hex or base64 (`PUBLIC_KEY_PATTERN`); loads as bytes."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"pattern": PUBLIC_KEY_PATTERN}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.fullmatch(PUBLIC_KEY_PATTERN, text):
            raise ValidationError("Invalid publicKey (expected 32 bytes as hex or base64).")
        try:
            return parse_key_material(text, 32, "publicKey")
        except VesError as exc:
            raise ValidationError(exc.message + ".") from None


def hex_pattern(size: int, prefix: str, empty_allowed: bool = False) -> str:
    """The document's pattern for `size` bytes written as `prefix` + lowercase hex (or `""` when allowed)."""
    digits = f"{re.escape(prefix)}[0-9a-f]{{{2 * size}}}"
    return f"^({digits})?$" if empty_allowed else f"^{digits}$"


class Hex(fields.Field):
    """Response bytes as `hex_of(value)`; `empty_when_none` writes `""` for a missing value instead of null."""

    def __init__(self, size: int, empty_when_none: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.size = size
        self.empty_when_none = empty_when_none

    @property
    def pattern(self) -> str:
        return hex_pattern(self.size, RESPONSE_HEX_PREFIX, self.empty_when_none)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None or (self.empty_when_none and not value):
            return "" if self.empty_when_none else None
        return hex_of(value)


class PlainHex(Hex):
    """Bytes as plain lowercase hex, no prefix (LOG.md's proofs and keys)."""

    @property
    def pattern(self) -> str:
        return hex_pattern(self.size, "", self.empty_when_none)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None or (self.empty_when_none and not value):
            return "" if self.empty_when_none else None
        return bytes(value).hex()


class EnvelopeHex(fields.Field):
    """Bytes of a VES envelope as the agent signed them: `"0x"` + lowercase hex."""

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    @property
    def pattern(self) -> str:
        return hex_pattern(self.size, ENVELOPE_HEX_PREFIX)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else ENVELOPE_HEX_PREFIX + bytes(value).hex()


class Instant(fields.DateTime):
    """A stored instant as RFC 3339 with its offset (`datetime.isoformat()`)."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else value.isoformat()


class SequencedAt(fields.DateTime):
    """When the sequencer sequenced an event: RFC 3339 in UTC with microseconds and `Z`."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format_sequenced_at(value)


def is_revoked() -> fields.Field:
    """`is_revoked`: whether the record's `revoked_at` is set."""
    return fields.Function(lambda record: record.revoked_at is not None, required=True, metadata={"type": "boolean"})


class Always(fields.String):
    """A string that is always the same value (`status: "healthy"`), whatever is dumped."""

    def __init__(self, value: str, **kwargs):
        super().__init__(required=True, dump_default=value, validate=validate.Equal(value), **kwargs)


# --- The alias policy ----------------------------------------------------------------------------------------------


def resolve_aliases(data: dict, names: Iterable[str]) -> dict:
    """`data` with each camelCase spelling of `names` renamed to its snake_case name.

    :raise ValidationError: a field is given under both spellings (whatever the values).
    """
    renamed = dict(data)
    for snake in names:
        camel = camel_case(snake)
        if camel in renamed:
            if snake in renamed:
                raise ValidationError(f"Give {snake} or {camel}, not both.", snake)
            renamed[snake] = renamed.pop(camel)
    return renamed


class RequestSchema(Schema):
    """A request body or parameter set. `ALIASES`: snake_case names also accepted in camelCase. `CONSTRAINTS`: JSON
    Schema the document adds for a rule between fields (each enforced by a `validates_schema` beside it)."""

    ALIASES: tuple[str, ...] = ()
    CONSTRAINTS: tuple[dict, ...] = ()

    @pre_load
    def _accept_camel_case(self, data, **kwargs):
        if not isinstance(data, dict) or not self.ALIASES:
            return data
        return resolve_aliases(data, self.ALIASES)


ENVELOPE_ALIASES = (
    "ves_version", "event_id", "tenant_id", "store_id", "source_agent_id", "agent_key_id", "entity_type", "entity_id",
    "event_type", "created_at", "payload_kind", "payload_encrypted", "payload_plain_hash", "payload_cipher_hash",
    "agent_signature", "command_id", "base_version",
)
"""Envelope fields (VES.md) also accepted in camelCase, by both ingest endpoints."""


def envelope_of(event: object) -> object:
    """One event of an ingest batch under VES.md's names, or an `EventRejected` the service reports for its index
    (a field given under both spellings). Anything else malformed is judged by the service."""
    if not isinstance(event, dict):
        return event
    try:
        return resolve_aliases(event, ENVELOPE_ALIASES)
    except ValidationError as exc:
        raw_id = event.get("event_id", event.get("eventId"))
        event_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 64 and raw_id.isascii() else None
        return EventRejected("InvalidEvent", f"Invalid event ({' '.join(exc.messages)})", event_id)


# --- Requests: bodies ----------------------------------------------------------------------------------------------


class CreateApiKeyBody(RequestSchema):
    """`tenant_id` may be null only for an admin key (a global admin)."""

    CONSTRAINTS = ({"anyOf": [{"required": ["permissions"], "properties": {"permissions": {"const": "admin"}}},
                              {"required": ["tenant_id"], "properties": {"tenant_id": {"type": "string"}}}]},)

    tenant_id = Uuid(load_default=None)
    store_ids = fields.List(Uuid(), load_default=list, validate=validate.Length(max=1000))
    permissions = fields.String(required=True, validate=validate.OneOf(PERMISSIONS))
    agent_id = Uuid(load_default=None)
    rate_limit = Int(1, 10_000_000, load_default=None)
    description = StorableString(load_default=None, validate=validate.Length(max=256))

    @validates_schema
    def _tenant_unless_admin(self, data, **kwargs):
        if data.get("tenant_id") is None and data.get("permissions") != "admin":
            raise ValidationError("Only admin keys may omit tenant_id.", "tenant_id")


class RegisterAgentKeyBody(RequestSchema):
    """camelCase as published, snake_case accepted; unknown fields are ignored. `validTo` before `validFrom` is a
    400."""

    ALIASES = ("tenant_id", "agent_id", "key_id", "public_key", "valid_from", "valid_to", "key_algorithm")

    class Meta:
        unknown = EXCLUDE

    tenant_id = Uuid(required=True)
    agent_id = Uuid(required=True)
    key_id = Int(0, MAX_U32, required=True)
    public_key = PublicKeyInput(required=True)
    valid_from = AwareInstant(load_default=None)
    valid_to = AwareInstant(load_default=None)
    key_algorithm = Int(0, 0, load_default=0, metadata={
        "description": "The original's algorithm number: only 0 (Ed25519) is supported; PQC keys are a 400."})

    @validates_schema
    def _validity_ordered(self, data, **kwargs):
        if data.get("valid_from") and data.get("valid_to") and data["valid_to"] < data["valid_from"]:
            raise ValidationError("validTo must not be before validFrom.", "valid_to")


class IngestBody(RequestSchema):
    """Each event is judged on its own: a bad one is reported in `rejections`, not as a 400."""

    ALIASES = ("agent_id",)

    class Meta:
        unknown = EXCLUDE

    agent_id = Uuid(load_default=None)
    events = fields.List(fields.Raw(allow_none=True), required=True, validate=validate.Length(min=1))


SCHEMA_COMPATIBILITIES = ("forward", "backward", "full", "none")


class RegisterSchemaBody(RequestSchema):
    """The original's `{tenantId, eventType, schemaJson, description, compatibility}` or ours (`schema`); exactly
    one of `schema` and `schema_json`/`schemaJson`. `compatibility` is stored, not enforced (as the original)."""

    ALIASES = ("tenant_id", "event_type", "schema_json")
    CONSTRAINTS = ({"oneOf": [{"required": ["schema"]}, {"required": ["schema_json"]}, {"required": ["schemaJson"]}]},)

    tenant_id = Uuid(required=True)
    event_type = StorableString(required=True, validate=validate.Length(min=1, max=EVENT_TYPE_MAX))
    schema = fields.Raw(metadata={
        "type": "object", "description": "A JSON Schema (draft 2020-12) without U+0000 or lone surrogates; "
                                         "anything else is a 400 INVALID_SCHEMA."})
    schema_json = fields.Raw(metadata={"type": "object", "description": "The original's name for `schema`."})
    description = StorableString(load_default=None, allow_none=True, validate=validate.Length(max=2048))
    compatibility = fields.String(load_default="backward", validate=validate.OneOf(SCHEMA_COMPATIBILITIES))

    @validates_schema
    def _one_schema(self, data, **kwargs):
        if ("schema" in data) == ("schema_json" in data):
            raise ValidationError("Give exactly one of schema and schemaJson.", "schema")

    @post_load
    def _as_schema(self, data, **kwargs):
        if "schema_json" in data:
            data["schema"] = data.pop("schema_json")
        return data


class CommitRangeBody(RequestSchema):
    ALIASES = ("tenant_id", "store_id", "sequence_start", "sequence_end", "max_events")

    tenant_id = Uuid(required=True)
    store_id = Uuid(required=True)
    sequence_start = Int(1, MAX_SEQUENCE_NUMBER, load_default=None)
    sequence_end = Int(1, MAX_SEQUENCE_NUMBER, load_default=None)


class CreateCommitmentBody(CommitRangeBody):
    """Without a range, the stream's next uncommitted events, at most `max_events`."""

    max_events = Int(1, MAX_COMMITMENT_EVENTS, load_default=DEFAULT_MAX_EVENTS)


class AnchorBody(CommitRangeBody):
    """Without a range, the next pending range (at most `max_events`, default ANCHOR_MAX_EVENTS), else the latest."""

    max_events = Int(1, MAX_COMMITMENT_EVENTS, load_default=None)


class VerifyProofBody(RequestSchema):
    """Unknown fields are ignored, so a proof response can be posted back as it is."""

    ALIASES = ("leaf_hash", "merkle_root", "proof_path", "leaf_index", "leaf_count")

    class Meta:
        unknown = EXCLUDE

    leaf_hash = HashInput(required=True)
    merkle_root = HashInput(required=True)
    proof_path = fields.List(HashInput(), required=True, validate=validate.Length(max=MAX_PROOF_LENGTH))
    leaf_index = Int(0, MAX_U64, required=True)
    leaf_count = Int(1, MAX_U32, load_default=None)
    directions = fields.List(StrictBool(), load_default=None, validate=validate.Length(max=MAX_PROOF_LENGTH))


# --- Requests: query and path parameters ---------------------------------------------------------------------------


class QuerySchema(RequestSchema):
    """Query parameters; others are ignored. A parameter given twice counts with its first value."""

    class Meta:
        unknown = EXCLUDE


class TenantQuery(QuerySchema):
    tenant_id = Uuid(required=True)


class StreamQuery(TenantQuery):
    store_id = Uuid(required=True)


def min_sequence_parameter() -> QueryInt:
    return QueryInt(0, MAX_SEQUENCE_NUMBER, load_default=None, metadata={"description": (
        "The answer's view of the stream reaches at least this sequence number (send your last receipt's, or the "
        "highest head you were shown). Without it: at least the primary's head when the request starts. With a "
        "read replica (DATABASE_READ_URL), it decides whether the replica may answer.")})


class HeadQuery(StreamQuery):
    min_sequence = min_sequence_parameter()


class RangeQuery(StreamQuery):
    """`from` (first wanted, default 1) or `after` (exclusive); giving both is a 400."""

    from_ = QueryInt(0, MAX_SEQUENCE_NUMBER, data_key="from", load_default=None,
                     metadata={"description": "First sequence number wanted (default 1; 0 also means the start)."})
    after = QueryInt(0, MAX_SEQUENCE_NUMBER - 1, load_default=None,
                     metadata={"description": "Exclusive start, instead of `from`; giving both is a 400."})
    limit = QueryInt(1, MAX_PAGE, load_default=100)
    min_sequence = min_sequence_parameter()

    @validates_schema
    def _one_start(self, data, **kwargs):
        if data.get("from_") is not None and data.get("after") is not None:
            raise ValidationError("Give either 'from' or 'after', not both.", "after")

    @staticmethod
    def first_wanted(args: dict) -> int:
        return args["after"] + 1 if args["after"] is not None else max(args["from_"] or 1, 1)


ENTITY_HISTORY_MAX = 100


class EntityHistoryQuery(StreamQuery):
    """The original's `EntityHistoryQuery`: `from` is an offset into the entity's events (default 0); `limit`
    0 means 100, and at most 100 events come back."""

    from_ = QueryInt(0, MAX_SEQUENCE_NUMBER, data_key="from", load_default=0,
                     metadata={"description": "How many of the entity's events to skip (an offset, default 0)."})
    limit = QueryInt(0, MAX_PAGE, load_default=ENTITY_HISTORY_MAX,
                     metadata={"description": "0 means 100; more than 100 is served as 100."})
    min_sequence = min_sequence_parameter()

    @post_load
    def _capped(self, data, **kwargs):
        data["limit"] = min(data["limit"] or ENTITY_HISTORY_MAX, ENTITY_HISTORY_MAX)
        return data


class PageQuery(RangeQuery):
    wait = QueryNumber(load_default=0.0, validate=validate.Range(0.0, 3600.0),
                       metadata={"description": "Seconds to hold an empty page open (long poll), capped by "
                                                "LONG_POLL_MAX_SECONDS."})


class AgentKeysQuery(TenantQuery):
    agent_id = Uuid(load_default=None)


class SchemasQuery(TenantQuery):
    event_type = StorableString(load_default=None, validate=validate.Length(max=EVENT_TYPE_MAX),
                                metadata={"description": "Only this event type (empty: every type)."})


class ApiKeysQuery(QuerySchema):
    tenant_id = Uuid(load_default=None, metadata={"description": "Default: the key's own tenant."})


class CommitmentsQuery(StreamQuery):
    anchored = QueryBool(load_default=None)
    limit = QueryInt(1, MAX_PAGE, load_default=100)
    after = QueryInt(0, MAX_SEQUENCE_NUMBER, load_default=0,
                     metadata={"description": "Only commitments whose sequence_start is after this number."})


class ProofQuery(StreamQuery):
    ALIASES = ("batch_id",)

    batch_id = Uuid(load_default=None,
                    metadata={"description": "Prove in this commitment (default: the covering one)."})


class PathSchema(RequestSchema):
    """Path parameters (always present; Flask routed them)."""


class ApiKeyPath(PathSchema):
    key_id = Uuid(required=True)


class AgentKeyPath(PathSchema):
    agent_id = Uuid(required=True)
    key_id = QueryInt(0, MAX_U32, required=True)


class EventPath(PathSchema):
    event_id = Uuid(required=True)


class EntityPath(PathSchema):
    entity_type = StorableString(required=True, validate=validate.Length(min=1, max=ENTITY_TYPE_MAX))
    entity_id = StorableString(required=True, validate=validate.Length(min=1, max=ENTITY_ID_MAX),
                               metadata={"description": "May contain `/`."})


class SchemaVersionPath(PathSchema):
    event_type = StorableString(required=True, validate=validate.Length(min=1, max=EVENT_TYPE_MAX))
    version = fields.Integer(required=True, validate=validate.Range(0, MAX_SCHEMA_VERSION))


class BatchPath(PathSchema):
    batch_id = Uuid(required=True)


class SequenceNumberPath(PathSchema):
    sequence_number = QueryInt(1, MAX_SEQUENCE_NUMBER, required=True)



class LogInclusionQuery(StreamQuery):
    tree_size = QueryInt(0, MAX_SEQUENCE_NUMBER, load_default=None, metadata={"description": (
        "Prove in the tree of this many entries (default: the latest checkpoint's size; 404 beyond it).")})


class LogConsistencyParameters(QuerySchema):
    first = QueryInt(0, MAX_SEQUENCE_NUMBER, required=True, metadata={"description": "The smaller tree size."})
    second = QueryInt(0, MAX_SEQUENCE_NUMBER, required=True, metadata={"description": (
        "The larger tree size, at most the latest checkpoint's (404 beyond it); `first > second` is a 400.")})


class LogConsistencyQuery(StreamQuery, LogConsistencyParameters):
    pass


STREAM_ID_PATTERN = r"^[0-9a-fA-F]{64}$"


class StreamIdSegment(fields.String):
    """A stream id (VES.md `SHA256("VES_STREAM_V1" || tenant || store)`) as 64 hex digits; loads as bytes."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"pattern": STREAM_ID_PATTERN}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.fullmatch(STREAM_ID_PATTERN, text):
            raise ValidationError("Not a stream id (64 hex digits).")
        return bytes.fromhex(text)


class StreamIdPath(PathSchema):
    stream_id = StreamIdSegment(required=True)

# --- Responses -----------------------------------------------------------------------------------------------------


class ResponseSchema(Schema):
    """A response body. Fields marked required are always present."""


class CamelCaseResponse(ResponseSchema):
    """Written with camelCase names (the published VES ingest response)."""

    def on_bind_field(self, field_name, field_obj):
        field_obj.data_key = camel_case(field_obj.data_key or field_name)


class ErrorOut(ResponseSchema):
    error = fields.String(required=True, metadata={"description": "A human sentence."})
    code = fields.String(required=True, validate=validate.Regexp(r"^([A-Z0-9_]+|[a-z0-9_]+)$"), metadata={
        "description": "Stable machine-readable code: UPPER_SNAKE, or the original sequencer's lowercase codes for "
                       "authentication and rate limiting (missing_auth, invalid_api_key, insufficient_permissions, "
                       "store_access_denied, rate_limited)."})
    request_id = fields.String(required=True, metadata={"description": "The request's X-Request-ID."})


class OpenApiDocumentOut(ResponseSchema):
    """An OpenAPI 3.1 document."""

    class Meta:
        unknown = INCLUDE

    openapi = fields.String(required=True)
    info = fields.Dict(required=True)
    paths = fields.Dict(required=True)
    components = fields.Dict(required=True)


class HealthOut(ResponseSchema):
    status = Always("healthy")
    service = fields.String(required=True)
    version = fields.String(required=True)
    timestamp = Instant(required=True, metadata={"description": "Now, RFC 3339 (as the original's)."})


class ReplicaOut(ResponseSchema):
    """The read replica as the readiness check saw it (it never makes the instance unready: reads fall back)."""

    status = fields.String(required=True, validate=validate.OneOf(REPLICA_STATES), metadata={"description": (
        "current (replayed all the primary has written), behind, unavailable (reads go to the primary), "
        "not_in_recovery (not a standby: lag unknown).")})
    lag_bytes = fields.Integer(required=True, allow_none=True, validate=validate.Range(0, None), metadata={
        "description": "WAL the primary has written and the replica not yet replayed."})
    lag_seconds = fields.Float(required=True, allow_none=True, validate=validate.Range(0, None), metadata={
        "description": "0 when current; else seconds since the last transaction it replayed was committed."})
    replay_paused = fields.Boolean(required=True, allow_none=True)


class ReadyPoolOut(ResponseSchema):
    """This worker's database connection pool (the original's `pool` of `/ready`)."""

    status = fields.String(required=True, validate=validate.OneOf(["healthy", "degraded"]))
    utilization = fields.Float(required=True, validate=validate.Range(0, None))
    active = fields.Integer(required=True, validate=validate.Range(0, None))
    idle = fields.Integer(required=True, validate=validate.Range(0, None))


class ReadyOut(ResponseSchema):
    status = Always("ready")
    database = Always("connected")
    migrations = Always("current")
    response_time_ms = fields.Float(required=True, validate=validate.Range(0, None), metadata={
        "description": "How long the database took to answer the check (the original's database.response_time_ms)."})
    pool = fields.Nested(ReadyPoolOut, required=True, allow_none=True)
    replica = fields.Nested(ReplicaOut, metadata={"description": "Only with DATABASE_READ_URL set."})


class SequencerKeyVersionOut(ResponseSchema):
    """One receipt-signing key version (docs/KEYS.md)."""

    version = fields.Integer(required=True, validate=validate.Range(1, MAX_U32))
    public_key = Hex(32, required=True)
    valid_from = Instant(required=True)
    valid_until = Instant(required=True, allow_none=True, metadata={
        "description": "When the next version took over (null for the newest). Receipts of this version sequenced "
                       "later were signed during a rolling restart; they still verify."})
    retired_at = Instant(required=True, allow_none=True, metadata={
        "description": "Compromise cutoff: receipts of this version sequenced at or after it are not trusted."})
    current = fields.Boolean(required=True, metadata={"description": "The key this instance signs with."})


class SequencerOut(ResponseSchema):
    """Dumps a `SequencerInfo`."""

    sequencer_id = fields.UUID(required=True)
    signature_alg = fields.String(required=True, validate=validate.OneOf(["ed25519", "none"]))
    public_key = Hex(32, empty_when_none=True, required=True,
                     metadata={"description": "The receipt-signing key; empty when receipts are unsigned."})
    key_version = fields.Integer(required=True, validate=validate.Range(0, MAX_U32), metadata={
        "description": "The running key's version (receipts' sequencerKeyVersion); 0 when receipts are unsigned."})
    keys = fields.List(fields.Nested(SequencerKeyVersionOut), required=True, metadata={
        "description": "Every key version this deployment has signed receipts with, oldest first."})
    log_origin = fields.String(required=True, metadata={"description": "LOG_ORIGIN (LOG.md)."})
    log_public_key = PlainHex(32, empty_when_none=True, required=True, metadata={
        "description": "The transparency-log key (plain hex); empty when no checkpoint can be signed."})


class ApiKeyOut(ResponseSchema):
    key_id = fields.UUID(required=True)
    key_prefix = fields.String(required=True)
    tenant_id = fields.UUID(required=True, allow_none=True)
    store_ids = fields.List(fields.UUID(), required=True)
    permissions = fields.String(required=True, validate=validate.OneOf(PERMISSIONS))
    agent_id = fields.UUID(required=True, allow_none=True)
    rate_limit = fields.Integer(required=True, allow_none=True, validate=validate.Range(1, 10_000_000))
    description = fields.String(required=True, allow_none=True)
    created_at = Instant(required=True)
    revoked_at = Instant(required=True, allow_none=True)
    is_revoked = is_revoked()


class _Secret(ResponseSchema):
    api_key = fields.String(required=True, metadata={"description": "The secret, shown only in this response."})


class NewApiKeyOut(ApiKeyOut, _Secret):
    """Dumps `(secret, ApiKeyRecord)`."""

    @pre_dump
    def _with_secret(self, issued, **kwargs):
        secret, record = issued
        return SimpleNamespace(api_key=secret, **vars(record))


class AgentKeyOut(ResponseSchema):
    tenant_id = fields.UUID(required=True)
    agent_id = fields.UUID(required=True)
    key_id = fields.Integer(required=True, validate=validate.Range(0, MAX_U32))
    public_key = Hex(32, required=True)
    valid_from = Instant(required=True, allow_none=True)
    valid_to = Instant(required=True, allow_none=True)
    revoked_at = Instant(required=True, allow_none=True)
    created_at = Instant(required=True)
    is_revoked = is_revoked()


class RegisteredAgentKeyOut(AgentKeyOut):
    """Dumps `(AgentKeyRecord, created)`: the original's answer `{success, tenantId, agentId, keyId, keyAlgorithm,
    message}` beside our record's fields; `created` is false when the same key was already registered."""

    success = fields.Boolean(required=True)
    tenantId = fields.UUID(required=True)
    agentId = fields.UUID(required=True)
    keyId = fields.Integer(required=True, validate=validate.Range(0, MAX_U32))
    keyAlgorithm = fields.Integer(required=True, validate=validate.Equal(0))
    message = fields.String(required=True)
    created = fields.Boolean(required=True)

    @pre_dump
    def _with_answer(self, registered, **kwargs):
        record, created = registered
        message = "Agent key registered successfully" if created else "Agent key already registered"
        return SimpleNamespace(**vars(record), success=True, tenantId=record.tenant_id, agentId=record.agent_id,
                               keyId=record.key_id, keyAlgorithm=0, message=message, created=created)


class PayloadSchemaOut(ResponseSchema):
    """One schema version: ours (snake_case) and the original's `SchemaResponse` (camelCase) side by side."""

    tenant_id = fields.UUID(required=True)
    event_type = fields.String(required=True)
    version = fields.Integer(required=True, validate=validate.Range(1, MAX_SCHEMA_VERSION))
    schema = fields.Raw(required=True, metadata={"type": "object"})
    created_at = Instant(required=True)
    id = fields.UUID(required=True)
    tenantId = fields.UUID(required=True)
    eventType = fields.String(required=True)
    schemaJson = fields.Raw(required=True, metadata={"type": "object"})
    status = fields.String(required=True, validate=validate.OneOf(["active", "deprecated", "archived"]))
    compatibility = fields.String(required=True, validate=validate.OneOf(SCHEMA_COMPATIBILITIES))
    description = fields.String(required=True, allow_none=True)
    createdAt = Instant(required=True)
    updatedAt = Instant(required=True)
    createdBy = fields.String(required=True, allow_none=True)

    @pre_dump
    def _both_spellings(self, record, **kwargs):
        return SimpleNamespace(**{**vars(record), "tenantId": record.tenant_id, "eventType": record.event_type,
                                  "schemaJson": record.schema, "createdAt": record.created_at,
                                  "updatedAt": record.updated_at or record.created_at,
                                  "createdBy": record.created_by})


class ReceiptOut(ResponseSchema):
    """A sequencer receipt (VES.md §Sequencer receipt) of a stored event. `sequencer_key_version` names the key
    that signed it (`GET /api/v1/ves/sequencer` lists them); `receipt_signature_scheme` is 1 for an Ed25519
    signature and absent when the receipt is unsigned, as the original's."""

    sequencer_id = fields.UUID(required=True)
    event_id = fields.UUID(required=True)
    sequence_number = fields.Integer(required=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER))
    sequenced_at = SequencedAt(required=True)
    receipt_hash = Hex(32, required=True)
    signature_alg = fields.String(required=True, validate=validate.OneOf(["ed25519", "none"]))
    sequencer_signature = Hex(SIGNATURE_SIZE, empty_when_none=True, required=True,
                              metadata={"description": "Empty when receipts are unsigned."})
    sequencer_key_version = fields.Integer(required=True, validate=validate.Range(0, MAX_U32),
                                           metadata={"description": "0 when the receipt is unsigned."})
    receipt_signature_scheme = fields.Integer(attribute="signature_scheme", validate=validate.Equal(1))

    @post_dump
    def _scheme_when_signed(self, data, **kwargs):
        for name in ("receipt_signature_scheme", "receiptSignatureScheme"):
            if name in data and data[name] is None:
                del data[name]
        return data


class IngestReceiptOut(ReceiptOut):
    """`duplicate`: an idempotent replay answered with the original receipt."""

    duplicate = fields.Boolean(required=True)


class CamelIngestReceiptOut(IngestReceiptOut, CamelCaseResponse):
    pass


REJECTION_CODES = [
    "InvalidEvent", "UnsupportedVesVersion", "PayloadHashMismatch", "UnknownAgentKey", "AgentKeyRevoked",
    "AgentKeyNotValid", "SignatureVerificationFailed", "DuplicateEventConflict", "VersionConflict",
    "SchemaValidationFailed", "SchemaMissing", "PayloadTooLarge", "Forbidden"]
"""API.md's rejection reasons: each rejection's `code`."""


class RejectionOut(ResponseSchema):
    """One rejected event. `reason` is the original sequencer's string (its `VesRejectionReason` Display, e.g.
    `invalid_signature`, `agent_key_invalid: Agent key not found`); `code` is API.md's reason."""

    event_id = fields.String(required=True, allow_none=True)
    index = fields.Integer(required=True, validate=validate.Range(0, MAX_U32))
    reason = fields.String(required=True, attribute="ves_reason", validate=validate.Regexp(
        r"^(duplicate_event_id|duplicate_command_id|invalid_payload_hash|invalid_cipher_hash|invalid_signature|"
        r"unsupported_version|forbidden|payload_too_large|agent_key_invalid: .+|schema_validation(: .+)?|"
        r"version_conflict: .+)$"))
    code = fields.String(required=True, attribute="reason", validate=validate.OneOf(REJECTION_CODES))
    message = fields.String(required=True)


class UnsignedRejectionOut(RejectionOut):
    """On the unsigned endpoint `reason` is the original's legacy `RejectionReason` name."""

    reason = fields.String(required=True, attribute="legacy_reason", validate=validate.OneOf([
        "DuplicateEventId", "DuplicateCommandId", "SchemaValidation", "Unauthorized", "RateLimited",
        "InvalidPayloadHash", "VersionConflict", "Other"]))


class StreamOutcomeOut(ResponseSchema):
    tenant_id = fields.UUID(required=True)
    store_id = fields.UUID(required=True)
    sequence_start = fields.Integer(required=True, allow_none=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER))
    sequence_end = fields.Integer(required=True, allow_none=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER))
    head_sequence = fields.Integer(required=True, validate=validate.Range(0, MAX_SEQUENCE_NUMBER))


def _omit_empty_lists(data: dict) -> dict:
    """`rejections` and `receipts` are absent when empty (the original's `skip_serializing_if = "Vec::is_empty"`)."""
    for name in ("rejections", "receipts"):
        if not data.get(name):
            data.pop(name, None)
    return data


def _first_stream(outcome) -> dict:
    first = outcome.streams[0] if outcome.streams else None
    return {"batch_id": outcome.batch_id, "events_accepted": outcome.events_accepted,
            "events_rejected": outcome.events_rejected,
            "sequence_start": first.sequence_start if first else None,
            "sequence_end": first.sequence_end if first else None,
            "head_sequence": first.head_sequence if first else outcome.head_sequence,
            "rejections": outcome.rejections, "receipts": outcome.receipts, "streams": outcome.streams}


class VesIngestOut(ResponseSchema):
    """Dumps an `IngestOutcome`. `sequenceStart/End` and `headSequence` are the first stream's; `streams` lists all."""

    batch_id = fields.UUID(required=True, data_key="batchId")
    events_accepted = fields.Integer(required=True, data_key="eventsAccepted")
    events_rejected = fields.Integer(required=True, data_key="eventsRejected")
    sequence_start = fields.Integer(required=True, allow_none=True, data_key="sequenceStart")
    sequence_end = fields.Integer(required=True, allow_none=True, data_key="sequenceEnd")
    head_sequence = fields.Integer(required=True, data_key="headSequence", validate=validate.Range(
        0, MAX_SEQUENCE_NUMBER), metadata={"description": "The first stream's head (0 when it is empty)."})
    rejections = fields.List(fields.Nested(RejectionOut), validate=validate.Length(min=1),
                             metadata={"description": "Absent when no event was rejected."})
    receipts = fields.List(fields.Nested(CamelIngestReceiptOut), validate=validate.Length(min=1),
                           metadata={"description": "Absent when no event was sequenced or replayed."})
    streams = fields.List(fields.Nested(StreamOutcomeOut), required=True)

    @pre_dump
    def _summarise(self, outcome, **kwargs):
        return _first_stream(outcome)

    @post_dump
    def _omit_empty(self, data, **kwargs):
        return _omit_empty_lists(data)


class UnsignedIngestOut(ResponseSchema):
    """Dumps an `IngestOutcome` in snake_case (the unsigned endpoint's published form)."""

    batch_id = fields.UUID(required=True)
    events_accepted = fields.Integer(required=True)
    events_rejected = fields.Integer(required=True)
    assigned_sequence_start = fields.Integer(required=True, allow_none=True, attribute="sequence_start")
    assigned_sequence_end = fields.Integer(required=True, allow_none=True, attribute="sequence_end")
    head_sequence = fields.Integer(required=True, validate=validate.Range(0, MAX_SEQUENCE_NUMBER),
                                   metadata={"description": "The first stream's head (0 when it is empty)."})
    rejections = fields.List(fields.Nested(UnsignedRejectionOut), validate=validate.Length(min=1),
                             metadata={"description": "Absent when no event was rejected."})
    receipts = fields.List(fields.Nested(IngestReceiptOut), validate=validate.Length(min=1),
                           metadata={"description": "Absent when no event was sequenced or replayed."})
    streams = fields.List(fields.Nested(StreamOutcomeOut), required=True)

    @pre_dump
    def _summarise(self, outcome, **kwargs):
        return _first_stream(outcome)

    @post_dump
    def _omit_empty(self, data, **kwargs):
        return _omit_empty_lists(data)


class VesEventOut(ResponseSchema):
    """The stored envelope as the agent signed it, plus its sequencing and receipt. `command_id` and `base_version`
    appear only when the agent sent them (so the envelope re-hashes to `event_signing_hash`), and `payload` or
    `payload_encrypted` by `payload_kind`. Unsigned events carry `agent_signature: null`."""

    PAYLOAD_COPIES = 1
    """How many times a page of this shape writes each payload (the page byte budget is divided by it)."""

    ves_version = fields.Integer(required=True, validate=validate.Range(1, 2))
    event_id = fields.UUID(required=True)
    tenant_id = fields.UUID(required=True)
    store_id = fields.UUID(required=True)
    source_agent_id = fields.UUID(required=True)
    agent_key_id = fields.Integer(required=True, validate=validate.Range(0, MAX_U32))
    entity_type = fields.String(required=True)
    entity_id = fields.String(required=True)
    event_type = fields.String(required=True)
    created_at = fields.String(required=True, attribute="created_at_raw")
    payload_kind = fields.Integer(required=True, validate=validate.Range(0, 1))
    payload = fields.Raw(allow_none=True)
    payload_encrypted = fields.Dict()
    payload_plain_hash = EnvelopeHex(HASH_SIZE, required=True)
    payload_cipher_hash = EnvelopeHex(HASH_SIZE, required=True)
    agent_signature = EnvelopeHex(SIGNATURE_SIZE, required=True, allow_none=True)
    command_id = fields.UUID()
    base_version = fields.Integer(validate=validate.Range(0, MAX_U64))
    event_signing_hash = Hex(HASH_SIZE, required=True)
    sequence_number = fields.Integer(required=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER))
    sequenced_at = SequencedAt(required=True)
    entity_version = fields.Integer(required=True, validate=validate.Range(1, MAX_U64))
    sequencer_receipt = fields.Nested(ReceiptOut, required=True, attribute="receipt")

    @post_dump(pass_original=True)
    def _as_signed(self, data, event, **kwargs):
        del data["payload_encrypted" if event.payload_kind == 0 else "payload"]
        for optional in ("command_id", "base_version"):
            if data[optional] is None:
                del data[optional]
        return data


class LegacyEnvelopeOut(ResponseSchema):
    """The original's legacy `EventEnvelope` of a stored event: `payload_hash` is its legacy hash, SHA-256 of the
    canonical JSON payload (no domain tag), plain hex; an encrypted event has `payload: null` and our
    `payload_encrypted` beside it. `command_id` and `base_version` are absent when not set."""

    envelope_version = fields.Integer(required=True, validate=validate.Equal(1))
    event_id = fields.UUID(required=True)
    command_id = fields.UUID()
    tenant_id = fields.UUID(required=True)
    store_id = fields.UUID(required=True)
    entity_type = fields.String(required=True)
    entity_id = fields.String(required=True)
    event_type = fields.String(required=True)
    payload = fields.Raw(required=True, allow_none=True, attribute="plain_payload")
    payload_encrypted = fields.Dict()
    payload_hash = Hex(HASH_SIZE, required=True, attribute="legacy_payload_hash")
    base_version = fields.Integer(validate=validate.Range(0, MAX_U64))
    created_at = fields.String(required=True, attribute="created_at_raw")
    sequence_number = fields.Integer(required=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER))
    source_agent = fields.UUID(required=True, attribute="source_agent_id")

    @post_dump
    def _absent_when_unset(self, data, **kwargs):
        for optional in ("command_id", "base_version", "payload_encrypted"):
            if data.get(optional) is None:
                data.pop(optional, None)
        return data


class SimpleEventOut(ResponseSchema):
    """The simple (non-VES) shape of a stored event: the original's `SequencedEvent` (`envelope`, `sequenced_at`)
    with our flat fields beside it."""

    PAYLOAD_COPIES = 2
    """The payload is written twice (`envelope.payload` and `payload`): pages get half the PAGE_MAX_BYTES budget."""

    envelope = fields.Nested(LegacyEnvelopeOut, required=True, attribute="legacy_envelope")

    event_id = fields.UUID(required=True)
    tenant_id = fields.UUID(required=True)
    store_id = fields.UUID(required=True)
    sequence_number = fields.Integer(required=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER))
    entity_type = fields.String(required=True)
    entity_id = fields.String(required=True)
    event_type = fields.String(required=True)
    payload = fields.Raw(required=True, allow_none=True, attribute="plain_payload")
    payload_encrypted = fields.Dict(required=True, allow_none=True)
    payload_hash = Hex(HASH_SIZE, required=True, attribute="payload_plain_hash")
    source_agent_id = fields.UUID(required=True)
    command_id = fields.UUID(required=True, allow_none=True)
    base_version = fields.Integer(required=True, allow_none=True, validate=validate.Range(0, MAX_U64))
    entity_version = fields.Integer(required=True, validate=validate.Range(1, MAX_U64))
    created_at = fields.String(required=True, attribute="created_at_raw")
    sequenced_at = SequencedAt(required=True)
    receipt_hash = Hex(HASH_SIZE, required=True, attribute="receipt.receipt_hash")
    sequencer_signature = Hex(SIGNATURE_SIZE, empty_when_none=True, required=True,
                              attribute="receipt.sequencer_signature")


def _page_of(event_schema: type[ResponseSchema], name: str) -> type[ResponseSchema]:
    """`{"events", "count", "head_sequence", "next_from"}` of an `EventPage`."""

    class Page(ResponseSchema):
        events = fields.List(fields.Nested(event_schema), required=True)
        count = fields.Integer(required=True, validate=validate.Range(0, MAX_PAGE))
        head_sequence = fields.Integer(required=True, validate=validate.Range(0, MAX_SEQUENCE_NUMBER))
        next_from = fields.Integer(required=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER))

    Page.__name__ = Page.__qualname__ = name
    return Page


def _history_of(event_schema: type[ResponseSchema], name: str) -> type[ResponseSchema]:
    """`{"entity_type", "entity_id", "version", "events", "count", "next_from", "total", "has_more"}` of an
    `EntityHistory` (`next_from`: where the next page starts; a page ends early at PAGE_MAX_BYTES of payloads)."""

    class History(ResponseSchema):
        entity_type = fields.String(required=True)
        entity_id = fields.String(required=True)
        version = fields.Integer(required=True, validate=validate.Range(0, MAX_U64))
        events = fields.List(fields.Nested(event_schema), required=True)
        count = fields.Integer(required=True, validate=validate.Range(0, MAX_PAGE))
        next_from = fields.Integer(required=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER))
        total = fields.Integer(required=True, validate=validate.Range(0, MAX_U64),
                               metadata={"description": "How many events the entity has (its version)."})
        has_more = fields.Boolean(required=True, metadata={"description": "More events follow this page."})

    History.__name__ = History.__qualname__ = name
    return History


VesEventPageOut = _page_of(VesEventOut, "VesEventPageOut")
SimpleEventPageOut = _page_of(SimpleEventOut, "SimpleEventPageOut")
VesEntityHistoryOut = _history_of(VesEventOut, "VesEntityHistoryOut")
SimpleEntityHistoryOut = _history_of(SimpleEventOut, "SimpleEntityHistoryOut")


class StreamHeadOut(ResponseSchema):
    tenant_id = fields.UUID(required=True)
    store_id = fields.UUID(required=True)
    head_sequence = fields.Integer(required=True, validate=validate.Range(0, MAX_SEQUENCE_NUMBER))


class CommitmentOut(ResponseSchema):
    batch_id = fields.UUID(required=True)
    tenant_id = fields.UUID(required=True)
    store_id = fields.UUID(required=True)
    ves_version = fields.Integer(required=True, validate=validate.Range(1, MAX_U32))
    tree_depth = fields.Integer(required=True, validate=validate.Range(0, 64))
    leaf_count = fields.Integer(required=True, validate=validate.Range(1, MAX_U32))
    padded_leaf_count = fields.Integer(required=True, validate=validate.Range(1, MAX_U64))
    merkle_root = Hex(HASH_SIZE, required=True)
    prev_state_root = Hex(HASH_SIZE, required=True)
    new_state_root = Hex(HASH_SIZE, required=True)
    sequence_start = fields.Integer(required=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER))
    sequence_end = fields.Integer(required=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER))
    committed_at = Instant(required=True)


class CommitmentDetailOut(CommitmentOut):
    """The commitment with its anchoring state."""

    chain_id = fields.Integer(required=True, allow_none=True, validate=validate.Range(0, MAX_U64))
    chain_tx_hash = Hex(HASH_SIZE, required=True, allow_none=True)
    chain_block_number = fields.Integer(required=True, allow_none=True, validate=validate.Range(0, MAX_U64))
    anchored_at = Instant(required=True, allow_none=True)
    is_anchored = fields.Boolean(required=True)


class InclusionProofOut(ResponseSchema):
    """Dumps an `EventProof`."""

    sequence_number = fields.Integer(required=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER))
    batch_id = fields.UUID(required=True, attribute="commitment.batch_id")
    merkle_root = Hex(HASH_SIZE, required=True, attribute="proof.merkle_root")
    leaf_hash = Hex(HASH_SIZE, required=True, attribute="proof.leaf_hash")
    leaf_index = fields.Integer(required=True, validate=validate.Range(0, MAX_U64), attribute="proof.leaf_index")
    proof_path = fields.List(Hex(HASH_SIZE), required=True, validate=validate.Length(max=MAX_PROOF_LENGTH),
                             attribute="proof.proof_path")
    directions = fields.List(fields.Boolean(), required=True, validate=validate.Length(max=MAX_PROOF_LENGTH),
                             attribute="proof.directions")
    leaf_count = fields.Integer(required=True, validate=validate.Range(1, MAX_U32), attribute="commitment.leaf_count")
    tree_depth = fields.Integer(required=True, validate=validate.Range(0, 64), attribute="commitment.tree_depth")
    sequence_start = fields.Integer(required=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER),
                                    attribute="commitment.sequence_start")
    sequence_end = fields.Integer(required=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER),
                                  attribute="commitment.sequence_end")


class ProofVerdictOut(ResponseSchema):
    """Dumps `(ProofVerdict, request body)`: `leaf_hash` and `merkle_root` are echoed exactly as sent, as the
    original does."""

    valid = fields.Boolean(required=True)
    reason = fields.String(required=True, allow_none=True, metadata={"description": "Why the proof fails."})
    leaf_index = fields.Integer(required=True, validate=validate.Range(0, MAX_U64))
    leaf_count = fields.Integer(required=True, allow_none=True, validate=validate.Range(1, MAX_U32))
    tree_depth = fields.Integer(required=True, validate=validate.Range(0, MAX_PROOF_LENGTH))
    merkle_root = fields.String(required=True, metadata={"pattern": HASH_INPUT_PATTERN,
                                                         "description": "The request's merkle_root, as sent."})
    leaf_hash = fields.String(required=True, metadata={"pattern": HASH_INPUT_PATTERN,
                                                       "description": "The request's leaf_hash, as sent."})

    @pre_dump
    def _echo(self, answered, **kwargs):
        verdict, sent = answered
        sent = resolve_aliases(sent, ("leaf_hash", "merkle_root"))
        return SimpleNamespace(**{**vars(verdict), "leaf_hash": sent["leaf_hash"], "merkle_root": sent["merkle_root"]})


class AnchorStatusOut(ResponseSchema):
    anchor_enabled = fields.Boolean(required=True)
    chain_id = fields.Integer(required=True, allow_none=True, validate=validate.Range(0, MAX_U64))
    registry_address = fields.String(required=True, allow_none=True)
    signer_address = fields.String(required=True, allow_none=True)
    message = fields.String(required=True)


class AnchorResultOut(ResponseSchema):
    """Dumps an `AnchorOutcome`; a commitment found on chain from an earlier run counts as `anchored`."""

    batch_id = fields.UUID(required=True, attribute="commitment.batch_id")
    status = fields.Method("_status", required=True,
                           metadata={"type": "string", "enum": ["anchored", "already_anchored"]})
    chain_id = fields.Integer(required=True, validate=validate.Range(0, MAX_U64))
    chain_tx_hash = Hex(HASH_SIZE, required=True)
    chain_block_number = fields.Integer(required=True, validate=validate.Range(0, MAX_U64))
    merkle_root = Hex(HASH_SIZE, required=True, attribute="commitment.merkle_root")
    prev_state_root = Hex(HASH_SIZE, required=True, attribute="commitment.prev_state_root")
    new_state_root = Hex(HASH_SIZE, required=True, attribute="commitment.new_state_root")
    sequence_start = fields.Integer(required=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER),
                                    attribute="commitment.sequence_start")
    sequence_end = fields.Integer(required=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER),
                                  attribute="commitment.sequence_end")

    def _status(self, outcome) -> str:
        return "already_anchored" if outcome.status == "already_anchored" else "anchored"


class AnchorVerificationOut(ResponseSchema):
    """Dumps an `AnchorVerification`: the registry's record of one commitment compared field by field with ours."""

    batch_id = fields.UUID(required=True)
    anchored_on_chain = fields.Boolean(required=True)
    root_matches = fields.Boolean(required=True)
    prev_state_root_matches = fields.Boolean(required=True)
    new_state_root_matches = fields.Boolean(required=True)
    range_matches = fields.Boolean(required=True)
    recorded_as_anchored = fields.Boolean(required=True)
    chain_id = fields.Integer(required=True, allow_none=True, validate=validate.Range(0, MAX_U64))
    chain_tx_hash = Hex(HASH_SIZE, required=True, allow_none=True)
    chain_block_number = fields.Integer(required=True, allow_none=True, validate=validate.Range(0, MAX_U64))
    stream_id = Hex(HASH_SIZE, required=True)


def listing(item_schema: type[ResponseSchema], key: str, name: str) -> type[ResponseSchema]:
    """`{key: [items], "count": n}` of a list of domain objects."""
    schema = type(name, (ResponseSchema,), {
        key: fields.List(fields.Nested(item_schema), required=True),
        "count": fields.Integer(required=True, validate=validate.Range(0, MAX_U32)),
        "_wrap": pre_dump(lambda self, items, **kwargs: {key: items, "count": len(items)}),
    })
    schema.LISTING = (key, item_schema)  # for app.api.operations.render_listing, which streams it
    return schema


ApiKeyListOut = listing(ApiKeyOut, "api_keys", "ApiKeyListOut")
AgentKeyListOut = listing(AgentKeyOut, "keys", "AgentKeyListOut")
PayloadSchemaListOut = listing(PayloadSchemaOut, "schemas", "PayloadSchemaListOut")
CommitmentListOut = listing(CommitmentDetailOut, "commitments", "CommitmentListOut")


class LogInclusionOut(ResponseSchema):
    """LOG.md's inclusion proof: `entry` is the VES leaf hash, `leaf_hash` its RFC 9162 leaf hash, `proof` the audit
    path in RFC 9162 order (plain lowercase hex)."""

    leaf_index = fields.Integer(required=True, validate=validate.Range(0, MAX_SEQUENCE_NUMBER - 1))
    tree_size = fields.Integer(required=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER))
    entry = PlainHex(HASH_SIZE, required=True)
    leaf_hash = PlainHex(HASH_SIZE, required=True)
    proof = fields.List(PlainHex(HASH_SIZE), required=True, validate=validate.Length(max=MAX_PROOF_LENGTH))


class LogConsistencyOut(ResponseSchema):
    """LOG.md's consistency proof from the tree of `first` entries to the one of `second` (RFC 9162 order; empty
    when `first` is 0 or equals `second`)."""

    first = fields.Integer(required=True, validate=validate.Range(0, MAX_SEQUENCE_NUMBER))
    second = fields.Integer(required=True, validate=validate.Range(0, MAX_SEQUENCE_NUMBER))
    proof = fields.List(PlainHex(HASH_SIZE), required=True, validate=validate.Length(max=2 * MAX_PROOF_LENGTH))


LOG_VKEY_HEADERS = {"X-Log-Vkey": {"schema": {"type": "string"}, "required": True, "description": (
    "The stream's verifier key (C2SP signed-note): `<origin>+<key id>+<base64(0x01 || public key)>`.")}}


PAGE_HEADERS = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}, "description": (
    "Present when a long poll was answered at once, without waiting, because every long-poll slot of the worker was "
    "taken: poll again after this many seconds.")}}


def retry_after_headers(seconds: int | None) -> dict[str, str]:
    return {} if seconds is None else {"Retry-After": str(seconds)}


# --- Streams and the caller (the console) ---------------------------------------------------------------------------

class StreamsQuery(TenantQuery):
    after = Uuid(load_default=None, metadata={"description": "Continue after this store id (the previous page's "
                                                             "`next_after`)."})
    limit = QueryInt(1, MAX_STREAMS_PAGE, load_default=100)


class StreamSummaryOut(ResponseSchema):
    tenant_id = fields.UUID(required=True)
    store_id = fields.UUID(required=True)
    head_sequence = fields.Integer(required=True, validate=validate.Range(0, MAX_SEQUENCE_NUMBER))
    last_committed_sequence = fields.Integer(required=True, validate=validate.Range(0, MAX_SEQUENCE_NUMBER))
    uncommitted = fields.Integer(required=True, validate=validate.Range(0, MAX_SEQUENCE_NUMBER),
                                 metadata={"description": "Events after the last commitment's end."})
    last_anchored_sequence = fields.Integer(required=True, validate=validate.Range(0, MAX_SEQUENCE_NUMBER))
    anchoring_lag = fields.Integer(required=True, validate=validate.Range(0, MAX_SEQUENCE_NUMBER),
                                   metadata={"description": "Events after the last anchored commitment's end."})
    last_batch_id = fields.UUID(required=True, allow_none=True)
    last_committed_at = Instant(required=True, allow_none=True)
    last_anchor_tx = Hex(HASH_SIZE, required=True, allow_none=True)
    last_anchored_at = Instant(required=True, allow_none=True)
    checkpoint_size = fields.Integer(required=True, allow_none=True, validate=validate.Range(1, MAX_SEQUENCE_NUMBER),
                                     metadata={"description": "Tree size of the stream's latest signed checkpoint."})
    checkpoint_signed_at = Instant(required=True, allow_none=True)
    updated_at = Instant(required=True)


class StreamListOut(ResponseSchema):
    tenant_id = fields.UUID(required=True)
    streams = fields.List(fields.Nested(StreamSummaryOut), required=True)
    count = fields.Integer(required=True, validate=validate.Range(0, MAX_STREAMS_PAGE))
    next_after = fields.UUID(required=True, allow_none=True)


class ConsoleAssetPath(PathSchema):
    name = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9-]{0,63}$"),
                         metadata={"description": "A console file's name without its extension."})


class CallerOut(ResponseSchema):
    """The calling key's own scope (never its secret)."""

    key_id = fields.UUID(required=True, allow_none=True, metadata={"description": "None for the bootstrap key."})
    tenant_id = fields.UUID(required=True, allow_none=True, metadata={"description": "None: every tenant."})
    store_ids = fields.List(fields.UUID(), required=True, metadata={"description": "Empty: every store."})
    permissions = fields.String(required=True, validate=validate.OneOf(PERMISSIONS))
    agent_id = fields.UUID(required=True, allow_none=True)


# --- Errors --------------------------------------------------------------------------------------------------------


class UnsupportedMediaType(SequencerError):
    """A request body that is not `Content-Type: application/json`."""

    code = "UNSUPPORTED_MEDIA_TYPE"


ERROR_STATUSES: dict[type[Exception], int] = {
    InvalidRequest: 400,
    VesError: 400,
    Unauthenticated: 401,
    NotPermitted: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    UnsupportedMediaType: 415,
    IntegrityFailure: 500,
    Unavailable: 503,
    StreamFenced: 503,
    StreamDiverged: 503,
}
"""Domain error class → HTTP status; a subclass answers as its nearest listed ancestor. Unlisted: 400.
`StreamFenced` (`STREAM_FENCED`, with `Retry-After`) and `StreamDiverged` (`STREAM_DIVERGED`) are the writes
refused on a stream fenced after a restore (docs/RESTORE.md, "After a restore: the fence"); listed so the document
names them."""

WWW_AUTHENTICATE = 'ApiKey realm="stateset-sequencer"'


@dataclass(frozen=True)
class ErrorAnswer:
    status: int
    code: str
    message: str
    headers: dict[str, str]


def answer_for(error: SequencerError | VesError) -> ErrorAnswer:
    """How a domain error is answered: status from `ERROR_STATUSES`, its `code`, `Retry-After` when transient and
    `WWW-Authenticate` on 401."""
    status = next((ERROR_STATUSES[k] for k in type(error).__mro__ if k in ERROR_STATUSES), 400)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    if getattr(error, "retry_after", None):
        headers["Retry-After"] = str(error.retry_after)
    return ErrorAnswer(status, error.code, error.message, headers)


def status_of(error: SequencerError | VesError) -> int:
    return answer_for(error).status


def error_body(code: str, message: str, request_id: str | None) -> dict:
    return ErrorOut().dump({"error": message, "code": code, "request_id": request_id})
