"""`GET /api/openapi.json`: the OpenAPI 3.1 form of API.md, built as a plain dict (public, not rate limited).

Every route the app serves is described here, and tests/test_openapi.py checks both directions (no undocumented
route, no documented route the app lacks) and that the operations marked `security: []` are exactly the ones that
answer without a key. Schemas are JSON Schema 2020-12 (the OpenAPI 3.1 dialect).
"""

from __future__ import annotations

from flask import Blueprint
from flask import jsonify

from app import __version__
from app.auth import public

bp = Blueprint("openapi", __name__)

MAX_SEQUENCE = 2**63 - 1
MAX_U32 = 2**32 - 1
MAX_U64 = 2**64 - 1

_ERROR_DESCRIPTIONS = {
    400: "Malformed request: not JSON, a field of the wrong type or out of range, a bad query parameter.",
    401: "No API key, an unknown key or a revoked key (`WWW-Authenticate: ApiKey`).",
    403: "The key lacks the permission, or may not touch that tenant or store.",
    404: "Not found (also answered for another tenant's resource, so existence is not revealed).",
    409: "Conflict with the stored state.",
    413: "Body over MAX_BODY_SIZE_BYTES, or more than MAX_EVENTS_PER_BATCH events.",
    415: "A request body that is not `Content-Type: application/json`.",
    429: "Rate limit exceeded; retry after `Retry-After` seconds.",
    503: "The database (or, for anchoring, the chain) is unreachable or busy; retry after `Retry-After` seconds.",
}
_AUTHENTICATED = (401, 429, 503)
_WITH_BODY = (400, 413, 415)


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _string(**extra) -> dict:
    return {"type": "string", **extra}


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def _integer(minimum: int = 0, maximum: int = MAX_SEQUENCE) -> dict:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


def _object(properties: dict, required: tuple[str, ...] | None = None, additional: bool = False) -> dict:
    """An object schema; `required` defaults to every property (the server always sends them)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
        "additionalProperties": additional,
    }


def _array(items: dict, **extra) -> dict:
    return {"type": "array", "items": items, **extra}


UUID = _string(format="uuid")
HASH = _string(pattern="^0x[0-9a-f]{64}$", description="32 bytes as \"0x\" + lowercase hex.")
TIMESTAMP = _string(format="date-time")


def _query(name: str, schema: dict, required: bool = False, description: str | None = None) -> dict:
    parameter = {"name": name, "in": "query", "required": required, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def _path(name: str, schema: dict, description: str | None = None) -> dict:
    parameter = {"name": name, "in": "path", "required": True, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


TENANT_QUERY = _query("tenant_id", UUID, required=True)
STORE_QUERY = _query("store_id", UUID, required=True)
LIMIT_QUERY = _query("limit", {**_integer(1, 1000), "default": 100})
FROM_QUERY = _query("from", {**_integer(1), "default": 1}, description="First sequence number wanted.")
AFTER_QUERY = _query("after", _integer(0, MAX_SEQUENCE - 1),
                     description="Exclusive start (instead of `from`; giving both is a 400).")


def _json_content(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _body(schema: dict) -> dict:
    return {"required": True, "content": _json_content(schema)}


def _operation(summary: str, responses: dict, errors: tuple[int, ...], *, parameters: list | None = None,
               body: dict | None = None, public_view: bool = False, tags: tuple[str, ...] = ()) -> dict:
    """One operation: documented success responses plus the `Error` body for every status in `errors`."""
    statuses = set(errors)
    if not public_view:
        statuses.update(_AUTHENTICATED)
    if body is not None:
        statuses.update(_WITH_BODY)
    operation = {"summary": summary, "tags": list(tags), "responses": dict(responses)}
    for status in sorted(statuses):
        operation["responses"][str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    if public_view:
        operation["security"] = []
    return operation


def _ok(description: str, schema: dict, status: int = 200) -> dict:
    return {str(status): {"description": description, "content": _json_content(schema)}}


RECEIPT_FIELDS = {
    "sequencer_id": _string(), "event_id": UUID, "sequence_number": _integer(1), "sequenced_at": TIMESTAMP,
    "receipt_hash": HASH, "signature_alg": _string(enum=["ed25519", "none"]),
    "sequencer_signature": _string(description="\"0x\" + 64 bytes of hex, or \"\" when unsigned."),
}

API_KEY_FIELDS = {
    "key_id": UUID, "key_prefix": _string(), "tenant_id": _nullable(UUID), "store_ids": _array(UUID),
    "permissions": _string(enum=["read", "read_write", "admin"]), "agent_id": _nullable(UUID),
    "rate_limit": _nullable(_integer(1, 10_000_000)), "description": _nullable(_string()),
    "created_at": TIMESTAMP, "revoked_at": _nullable(TIMESTAMP), "is_revoked": {"type": "boolean"},
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _schemas() -> dict:
    stream = _object({"tenant_id": UUID, "store_id": UUID, "sequence_start": _integer(1),
                      "sequence_end": _integer(1), "head_sequence": _integer(0)})
    rejection = _object({"event_id": _nullable(_string()), "index": _integer(0),
                         "reason": _string(enum=[
                             "InvalidEvent", "UnsupportedVesVersion", "PayloadHashMismatch", "UnknownAgentKey",
                             "AgentKeyRevoked", "AgentKeyNotValid", "SignatureVerificationFailed",
                             "DuplicateEventConflict", "VersionConflict", "SchemaValidationFailed", "SchemaMissing",
                             "PayloadTooLarge", "Forbidden"]),
                         "message": _string()})
    receipt = _object(RECEIPT_FIELDS)
    ingest_receipt = {**RECEIPT_FIELDS, "duplicate": {"type": "boolean"}}
    commitment = _object({
        "batch_id": UUID, "tenant_id": UUID, "store_id": UUID, "ves_version": _integer(1, MAX_U32),
        "tree_depth": _integer(0, 64), "leaf_count": _integer(1, MAX_U32), "padded_leaf_count": _integer(1),
        "merkle_root": HASH, "prev_state_root": HASH, "new_state_root": HASH, "sequence_start": _integer(1),
        "sequence_end": _integer(1), "committed_at": TIMESTAMP,
    })
    anchoring = {"chain_id": _nullable(_integer(0)), "chain_tx_hash": _nullable(HASH),
                 "chain_block_number": _nullable(_integer(0)), "anchored_at": _nullable(TIMESTAMP),
                 "is_anchored": {"type": "boolean"}}
    return {
        "Error": _object({
            "error": _string(description="A human sentence."),
            "code": _string(pattern="^[A-Z0-9_]+$", description="Stable machine-readable code."),
            "request_id": _string(description="The request's X-Request-ID."),
        }),
        "VesEnvelope": {
            "type": "object",
            "description": "A signed VES envelope (VES.md); camelCase names are accepted too. Each envelope is "
                           "judged on its own: a bad one is reported in `rejections`, not as a 400.",
            "properties": {
                "ves_version": _integer(1, 2), "event_id": UUID, "tenant_id": UUID, "store_id": UUID,
                "source_agent_id": UUID, "agent_key_id": _integer(0, MAX_U32),
                "entity_type": _string(minLength=1, maxLength=64), "entity_id": _string(minLength=1, maxLength=256),
                "event_type": _string(minLength=1, maxLength=64), "created_at": _string(maxLength=64),
                "payload_kind": _integer(0, 1), "payload": {}, "payload_encrypted": {"type": "object"},
                "payload_plain_hash": HASH, "payload_cipher_hash": HASH,
                "agent_signature": _string(description="\"0x\" + 64 bytes of hex."),
                "command_id": UUID, "base_version": _integer(0, MAX_U64),
            },
        },
        "UnsignedEvent": {
            "type": "object",
            "properties": {
                "event_id": UUID, "tenant_id": UUID, "store_id": UUID,
                "entity_type": _string(minLength=1, maxLength=64), "entity_id": _string(minLength=1, maxLength=256),
                "event_type": _string(minLength=1, maxLength=64), "payload": {}, "created_at": _string(maxLength=64),
                "command_id": UUID, "base_version": _integer(0, MAX_U64),
            },
        },
        "StreamOutcome": stream,
        "Rejection": rejection,
        "Receipt": receipt,
        "IngestReceipt": _object({_camel(name): schema for name, schema in ingest_receipt.items()}),
        "UnsignedIngestReceipt": _object(ingest_receipt),
        "VesEvent": {
            "type": "object",
            "description": "The stored envelope as signed, plus `event_signing_hash`, `sequence_number`, "
                           "`sequenced_at`, `entity_version` and `sequencer_receipt`. `command_id` and "
                           "`base_version` appear only when the agent sent them; `payload` or "
                           "`payload_encrypted` by `payload_kind`.",
            "properties": {
                "ves_version": _integer(1, 2), "event_id": UUID, "tenant_id": UUID, "store_id": UUID,
                "source_agent_id": UUID, "agent_key_id": _integer(0, MAX_U32), "entity_type": _string(),
                "entity_id": _string(), "event_type": _string(), "created_at": _string(),
                "payload_kind": _integer(0, 1), "payload": {}, "payload_encrypted": {"type": "object"},
                "payload_plain_hash": HASH, "payload_cipher_hash": HASH, "agent_signature": _nullable(_string()),
                "command_id": UUID, "base_version": _integer(0, MAX_U64), "event_signing_hash": HASH,
                "sequence_number": _integer(1), "sequenced_at": TIMESTAMP, "entity_version": _integer(1),
                "sequencer_receipt": _ref("Receipt"),
            },
            "required": ["ves_version", "event_id", "tenant_id", "store_id", "source_agent_id", "agent_key_id",
                         "entity_type", "entity_id", "event_type", "created_at", "payload_kind",
                         "payload_plain_hash", "payload_cipher_hash", "agent_signature", "event_signing_hash",
                         "sequence_number", "sequenced_at", "entity_version", "sequencer_receipt"],
            "additionalProperties": False,
        },
        "SimpleEvent": _object({
            "event_id": UUID, "tenant_id": UUID, "store_id": UUID, "sequence_number": _integer(1),
            "entity_type": _string(), "entity_id": _string(), "event_type": _string(), "payload": {},
            "payload_encrypted": _nullable({"type": "object"}), "payload_hash": HASH, "source_agent_id": UUID,
            "command_id": _nullable(UUID), "base_version": _nullable(_integer(0, MAX_U64)),
            "entity_version": _integer(1), "created_at": _string(), "sequenced_at": TIMESTAMP,
            "receipt_hash": HASH, "sequencer_signature": _string(),
        }),
        "ApiKey": _object(API_KEY_FIELDS),
        "NewApiKey": _object({"api_key": _string(description="The secret, shown only here."), **API_KEY_FIELDS}),
        "AgentKey": _object({
            "tenant_id": UUID, "agent_id": UUID, "key_id": _integer(0, MAX_U32),
            "public_key": _string(pattern="^0x[0-9a-f]{64}$"), "valid_from": _nullable(TIMESTAMP),
            "valid_to": _nullable(TIMESTAMP), "revoked_at": _nullable(TIMESTAMP), "created_at": TIMESTAMP,
            "is_revoked": {"type": "boolean"},
        }),
        "PayloadSchema": _object({"tenant_id": UUID, "event_type": _string(), "version": _integer(1, 2**31 - 1),
                                  "schema": {}, "created_at": TIMESTAMP}),
        "Commitment": commitment,
        "CommitmentDetail": _object({**commitment["properties"], **anchoring}),
        "InclusionProof": _object({
            "sequence_number": _integer(1), "batch_id": UUID, "merkle_root": HASH, "leaf_hash": HASH,
            "leaf_index": _integer(0, MAX_U64), "proof_path": _array(HASH, maxItems=64),
            "directions": _array({"type": "boolean"}, maxItems=64), "leaf_count": _integer(1, MAX_U32),
            "tree_depth": _integer(0, 64), "sequence_start": _integer(1), "sequence_end": _integer(1),
        }),
    }


def _camel_and_snake(properties: dict, camel_names: tuple[str, ...] = ()) -> dict:
    """Request properties under their snake_case names plus the camelCase aliases the server also accepts."""
    aliased = dict(properties)
    for name in camel_names:
        aliased[_camel(name)] = properties[name]
    return aliased


def _range_request() -> dict:
    properties = {"tenant_id": UUID, "store_id": UUID, "sequence_start": _integer(1), "sequence_end": _integer(1),
                  "max_events": _integer(1)}
    return {**_object(_camel_and_snake(properties, tuple(properties)), required=()),
            "description": "`tenant_id` and `store_id` are required (either spelling; giving both is a 400)."}


def _paths() -> dict:
    stream_page = _object({"events": _array({}), "count": _integer(0), "head_sequence": _integer(0),
                           "next_from": _integer(1)})
    page_parameters = [TENANT_QUERY, STORE_QUERY, FROM_QUERY, AFTER_QUERY, LIMIT_QUERY,
                       _query("wait", {"type": "number", "minimum": 0, "maximum": 3600, "default": 0},
                              description="Seconds to hold an empty page open (long poll), capped by "
                                          "LONG_POLL_MAX_SECONDS.")]
    entity_parameters = [
        _path("entity_type", _string(minLength=1, maxLength=64)),
        _path("entity_id", _string(minLength=1, maxLength=256), "May contain `/`."),
        TENANT_QUERY, STORE_QUERY, FROM_QUERY, AFTER_QUERY, LIMIT_QUERY,
    ]
    head = _operation("The stream's head sequence number (0 when empty).",
                      _ok("Head.", _object({"tenant_id": UUID, "store_id": UUID, "head_sequence": _integer(0)})),
                      (400, 403), parameters=[TENANT_QUERY, STORE_QUERY], tags=("reading",))

    def events_page(summary: str, item: str) -> dict:
        schema = {**stream_page, "properties": {**stream_page["properties"], "events": _array(_ref(item))}}
        return _operation(summary, _ok("A page of events in ascending sequence order.", schema), (400, 403),
                          parameters=page_parameters, tags=("reading",))

    def entity_history(item: str) -> dict:
        schema = _object({"entity_type": _string(), "entity_id": _string(), "version": _integer(0),
                          "events": _array(_ref(item)), "count": _integer(0)})
        return _operation("One entity's events and its current version.", _ok("History.", schema), (400, 403),
                          parameters=entity_parameters, tags=("reading",))

    ingest_common = {"eventsRejected": _integer(0), "rejections": _array(_ref("Rejection")),
                     "streams": _array(_ref("StreamOutcome"))}
    ves_ingest_response = _object({
        "batchId": UUID, "eventsAccepted": _integer(0), "sequenceStart": _nullable(_integer(1)),
        "sequenceEnd": _nullable(_integer(1)), "headSequence": _nullable(_integer(0)),
        "receipts": _array(_ref("IngestReceipt")), **ingest_common,
    })
    unsigned_ingest_response = _object({
        "batch_id": UUID, "events_accepted": _integer(0), "events_rejected": _integer(0),
        "assigned_sequence_start": _nullable(_integer(1)), "assigned_sequence_end": _nullable(_integer(1)),
        "head_sequence": _nullable(_integer(0)), "rejections": _array(_ref("Rejection")),
        "receipts": _array(_ref("UnsignedIngestReceipt")), "streams": _array(_ref("StreamOutcome")),
    })
    batch_path = _path("batch_id", UUID)

    return {
        "/health": {"get": _operation(
            "Liveness (no database access).",
            _ok("Alive.", _object({"status": _string(const="healthy"), "service": _string(), "version": _string()})),
            (), public_view=True, tags=("operations",))},
        "/ready": {"get": _operation(
            "Readiness: the database answers and its schema is at Alembic head.",
            _ok("Ready.", _object({"status": _string(const="ready"), "database": _string(const="connected"),
                                   "migrations": _string(const="current")})),
            (503,), public_view=True, tags=("operations",))},
        "/metrics": {"get": _operation(
            "Prometheus text over all workers. Open unless METRICS_REQUIRE_AUTH=1, then an admin key is needed.",
            {"200": {"description": "Prometheus text exposition.",
                     "content": {"text/plain": {"schema": _string()}}}},
            (401, 403), public_view=True, tags=("operations",))},
        "/api/openapi.json": {"get": _operation(
            "This document.", _ok("OpenAPI 3.1 document.", {"type": "object"}), (), public_view=True,
            tags=("operations",))},
        "/api/v1/ves/sequencer": {"get": _operation(
            "The sequencer id and the Ed25519 key that signs receipts.",
            _ok("Sequencer.", _object({"sequencer_id": _string(), "signature_alg": _string(enum=["ed25519", "none"]),
                                       "public_key": _string(description="\"0x\" + 32 bytes of hex, or \"\".")})),
            (429,), public_view=True, tags=("operations",))},
        "/api/v1/admin/api-keys": {
            "post": _operation(
                "Create an API key (admin); the secret is in this response only.",
                _ok("Created.", _ref("NewApiKey"), 201),
                (403,), tags=("keys",),
                body=_body(_object({
                    "tenant_id": _nullable(UUID), "store_ids": _array(UUID, maxItems=1000),
                    "permissions": _string(enum=["read", "read_write", "admin"]), "agent_id": _nullable(UUID),
                    "rate_limit": _nullable(_integer(1, 10_000_000)), "description": _nullable(_string(maxLength=256)),
                }, required=("permissions",)))),
            "get": _operation(
                "List API keys without their secrets (admin).",
                _ok("Keys.", _object({"api_keys": _array(_ref("ApiKey")), "count": _integer(0)})),
                (400, 403), parameters=[_query("tenant_id", UUID)], tags=("keys",)),
        },
        "/api/v1/admin/api-keys/{key_id}": {"delete": _operation(
            "Revoke an API key (admin); it is refused from its next request on.",
            {"204": {"description": "Revoked."}}, (400, 403, 404), parameters=[_path("key_id", UUID)],
            tags=("keys",))},
        "/api/v1/agents/keys": {
            "post": _operation(
                "Register an agent's Ed25519 public key (read_write on the tenant).",
                {**_ok("Registered.", _ref("AgentKey"), 201),
                 **_ok("The same key was already registered (idempotent).", _ref("AgentKey"))},
                (403, 409), tags=("agents",),
                body=_body({**_object(_camel_and_snake({
                    "tenant_id": UUID, "agent_id": UUID, "key_id": _integer(0, MAX_U32),
                    "public_key": _string(maxLength=128, description="32 bytes: \"0x\" + hex, hex or base64."),
                    "valid_from": _nullable(TIMESTAMP), "valid_to": _nullable(TIMESTAMP),
                }, ("tenant_id", "agent_id", "key_id", "public_key", "valid_from", "valid_to")), required=(),
                    additional=True),
                    "description": "tenantId, agentId, keyId and publicKey are required (camelCase as published, "
                                   "snake_case accepted). Unknown fields are ignored."})),
            "get": _operation(
                "A tenant's agent keys, optionally of one agent.",
                _ok("Keys.", _object({"keys": _array(_ref("AgentKey")), "count": _integer(0)})),
                (400, 403), parameters=[TENANT_QUERY, _query("agent_id", UUID)], tags=("agents",)),
        },
        "/api/v1/agents/keys/{agent_id}/{key_id}": {"delete": _operation(
            "Revoke an agent key; events signed with it are rejected from then on.",
            _ok("Revoked.", _ref("AgentKey")), (400, 403, 404),
            parameters=[_path("agent_id", UUID), _path("key_id", _integer(0, MAX_U32)), TENANT_QUERY],
            tags=("agents",))},
        "/api/v1/ves/events/ingest": {"post": _operation(
            "Verify, sequence and receipt a batch of signed VES envelopes; outcome per event.",
            _ok("Outcome per event.", ves_ingest_response), (403,), tags=("ingest",),
            body=_body(_object({"agentId": UUID, "agent_id": UUID,
                                "events": _array(_ref("VesEnvelope"), minItems=1)},
                               required=("events",), additional=True)))},
        "/api/v1/events/ingest": {"post": _operation(
            "Sequence events without agent signatures (403 SIGNATURES_REQUIRED when REQUIRE_AGENT_SIGNATURES=1).",
            _ok("Outcome per event.", unsigned_ingest_response), (403,), tags=("ingest",),
            body=_body(_object({"agent_id": UUID, "agentId": UUID,
                                "events": _array(_ref("UnsignedEvent"), minItems=1)},
                               required=("events",), additional=True)))},
        "/api/v1/ves/events": {"get": events_page("VES envelopes with receipts; `wait` long-polls an empty page.",
                                                  "VesEvent")},
        "/api/v1/events": {"get": events_page("The same rows in the simple shape.", "SimpleEvent")},
        "/api/v1/ves/head": {"get": head},
        "/api/v1/head": {"get": head},
        "/api/v1/ves/entities/{entity_type}/{entity_id}": {"get": entity_history("VesEvent")},
        "/api/v1/entities/{entity_type}/{entity_id}": {"get": entity_history("SimpleEvent")},
        "/api/v1/ves/events/{event_id}": {"get": _operation(
            "One event with its receipt.", _ok("The event.", _ref("VesEvent")), (400, 403, 404),
            parameters=[_path("event_id", UUID), TENANT_QUERY, STORE_QUERY], tags=("reading",))},
        "/api/v1/schemas": {
            "post": _operation(
                "Store a new version of an event type's payload JSON Schema (draft 2020-12).",
                _ok("Stored.", _ref("PayloadSchema"), 201), (403,), tags=("schemas",),
                body=_body(_object({"tenant_id": UUID, "event_type": _string(minLength=1, maxLength=64),
                                    "schema": {}}))),
            "get": _operation(
                "Every version of a tenant's schemas, optionally of one event type.",
                _ok("Schemas.", _object({"schemas": _array(_ref("PayloadSchema")), "count": _integer(0)})),
                (400, 403), parameters=[TENANT_QUERY, _query("event_type", _string(maxLength=64))],
                tags=("schemas",)),
        },
        "/api/v1/schemas/{event_type}/versions/{version}": {"get": _operation(
            "One version of one event type's schema.", _ok("The schema.", _ref("PayloadSchema")), (400, 403, 404),
            parameters=[_path("event_type", _string(minLength=1)), _path("version", _integer(0, 2**31 - 1)),
                        TENANT_QUERY],
            tags=("schemas",))},
        "/api/v1/ves/commitments": {
            "post": _operation(
                "Commit the stream's next uncommitted range (up to max_events, default 1024) or the given range.",
                _ok("Committed.", _ref("Commitment"), 201), (403, 409), tags=("commitments",),
                body=_body(_range_request())),
            "get": _operation(
                "A stream's commitments in sequence order.",
                _ok("Commitments.", _object({"commitments": _array(_ref("CommitmentDetail")),
                                             "count": _integer(0)})),
                (400, 403), tags=("commitments",),
                parameters=[TENANT_QUERY, STORE_QUERY, _query("anchored", {"type": "boolean"}), LIMIT_QUERY,
                            _query("after", {**_integer(0), "default": 0},
                                   description="Only commitments whose sequence_start is after this number.")]),
        },
        "/api/v1/ves/commitments/{batch_id}": {"get": _operation(
            "One commitment with its anchoring state.", _ok("The commitment.", _ref("CommitmentDetail")),
            (400, 404), parameters=[batch_path], tags=("commitments",))},
        "/api/v1/ves/proofs/{sequence_number}": {"get": _operation(
            "The inclusion proof of one event in the commitment that covers it (or in `batch_id`).",
            _ok("The proof.", _ref("InclusionProof")), (400, 403, 404), tags=("commitments",),
            parameters=[_path("sequence_number", _integer(1)), TENANT_QUERY, STORE_QUERY,
                        _query("batch_id", UUID), _query("batchId", UUID)])},
        "/api/v1/ves/proofs/verify": {"post": _operation(
            "Check an inclusion proof strictly (VES.md).",
            _ok("The verdict.", _object({"valid": {"type": "boolean"}, "reason": _nullable(_string()),
                                         "leaf_index": _integer(0, MAX_U64),
                                         "leaf_count": _nullable(_integer(1, MAX_U32)),
                                         "tree_depth": _integer(0, 64), "merkle_root": HASH})),
            (403,), tags=("commitments",),
            body=_body({**_object(_camel_and_snake({
                "leaf_hash": HASH, "merkle_root": HASH, "proof_path": _array(HASH, maxItems=64),
                "leaf_index": _integer(0, MAX_U64), "leaf_count": _integer(1, MAX_U32),
                "directions": _array({"type": "boolean"}, maxItems=64),
            }, ("leaf_hash", "merkle_root", "proof_path", "leaf_index", "leaf_count")), required=(), additional=True),
                "description": "leaf_hash, merkle_root, proof_path and leaf_index are required; unknown fields are "
                               "ignored, so a proof response can be posted back as it is."}))},
        "/api/v1/anchor/status": {"get": _operation(
            "Whether anchoring is configured, for which chain, registry and signer (never contacts the chain).",
            _ok("Status.", _object({"anchor_enabled": {"type": "boolean"}, "chain_id": _nullable(_integer(0)),
                                    "registry_address": _nullable(_string()),
                                    "signer_address": _nullable(_string()), "message": _string()})),
            (), tags=("anchoring",))},
        "/api/v1/ves/commitments/anchor": {"post": _operation(
            "Commit the stream's pending events if needed and anchor through that commitment, oldest first (admin). "
            "503 ANCHORING_NOT_CONFIGURED / CHAIN_UNAVAILABLE / REGISTRY_UNAVAILABLE; 409 ANCHOR_FORK_DETECTED / "
            "ANCHOR_REJECTED / ANCHOR_RUN_IN_PROGRESS.",
            _ok("Anchored.", _object({
                "batch_id": UUID, "status": _string(enum=["anchored", "already_anchored"]),
                "chain_id": _integer(0), "chain_tx_hash": HASH, "chain_block_number": _integer(0),
                "merkle_root": HASH, "prev_state_root": HASH, "new_state_root": HASH,
                "sequence_start": _integer(1), "sequence_end": _integer(1),
            })),
            (403, 409), tags=("anchoring",), body=_body(_range_request()))},
        "/api/v1/ves/anchor/{batch_id}/verify": {"get": _operation(
            "Read the registry's record of one commitment and compare every field with ours.",
            _ok("The comparison.", _object({
                "batch_id": UUID, "anchored_on_chain": {"type": "boolean"}, "root_matches": {"type": "boolean"},
                "prev_state_root_matches": {"type": "boolean"}, "new_state_root_matches": {"type": "boolean"},
                "range_matches": {"type": "boolean"}, "recorded_as_anchored": {"type": "boolean"},
                "chain_id": _nullable(_integer(0)), "chain_tx_hash": _nullable(HASH),
                "chain_block_number": _nullable(_integer(0)), "stream_id": HASH,
            })),
            (400, 404), parameters=[batch_path], tags=("anchoring",))},
    }


def _error_responses() -> dict:
    headers = {
        401: {"WWW-Authenticate": {"schema": _string()}},
        429: {"Retry-After": {"schema": _integer(1)}},
        503: {"Retry-After": {"schema": _integer(1)}},
    }
    responses = {}
    for status, description in _ERROR_DESCRIPTIONS.items():
        response = {"description": description, "content": _json_content(_ref("Error"))}
        if status in headers:
            response["headers"] = headers[status]
        responses[f"Error{status}"] = response
    return responses


def openapi_document() -> dict:
    """The whole document, freshly built (callers may mutate it)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "StateSet Sequencer",
            "version": __version__,
            "description": "Multi-tenant verifiable event sequencer (VES v1). The machine-readable form of API.md. "
                           "Every response carries X-Request-ID (echoed when the client sent a valid one).",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [{"url": "/"}],
        "security": [{"ApiKeyHeader": []}, {"BearerAuth": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "Authorization",
                                 "description": "`Authorization: ApiKey <key>`."},
                "BearerAuth": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <key>`."},
            },
            "schemas": _schemas(),
            "responses": _error_responses(),
        },
    }


@bp.get("/api/openapi.json")
@public
def openapi():
    """This server's OpenAPI 3.1 document."""
    return jsonify(openapi_document())
