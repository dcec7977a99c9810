"""Anchoring API (API.md §Anchoring): status, anchor-now, and on-chain verification of one commitment.

Errors: 503 ANCHORING_NOT_CONFIGURED (L2_RPC_URL, SET_REGISTRY_ADDRESS or SEQUENCER_PRIVATE_KEY unset),
503 CHAIN_UNAVAILABLE (RPC unreachable; Retry-After), 503 REGISTRY_UNAVAILABLE (no registry at the address or another
chain), 409 ANCHOR_FORK_DETECTED, 409 ANCHOR_REJECTED (the contract reverted), 409 ANCHOR_RUN_IN_PROGRESS.
The registry client comes from `app.extensions["anchor_registry_client"]` when set (tests inject an eth-tester
client there), else from the settings.
"""

from __future__ import annotations

from eth_account import Account
from flask import Blueprint
from flask import current_app
from flask import jsonify
from marshmallow import Schema
from marshmallow import fields
from marshmallow import validate

from app import runtime
from app.api.parsing import json_body
from app.api.parsing import load
from app.api.parsing import parse_uuid_value
from app.auth import authenticate
from app.auth import require
from app.chain import ChainError
from app.chain import RegistryClient
from app.db import commitments as store
from app.errors import BadRequest
from app.errors import NotFound
from app.services import anchoring as service
from app.services.commitments import MAX_COMMITMENT_EVENTS
from app.ves.encoding import to_hex
from app.ves.hashing import stream_id

bp = Blueprint("anchoring", __name__, url_prefix="/api/v1")

CLIENT_EXTENSION = "anchor_registry_client"
_MAX_SEQUENCE = 2**63 - 1
_ALIASES = {"tenantId": "tenant_id", "storeId": "store_id", "sequenceStart": "sequence_start",
            "sequenceEnd": "sequence_end", "maxEvents": "max_events"}


class AnchorRequest(Schema):
    tenant_id = fields.UUID(required=True)
    store_id = fields.UUID(required=True)
    sequence_start = fields.Integer(load_default=None, strict=True, validate=validate.Range(1, _MAX_SEQUENCE))
    sequence_end = fields.Integer(load_default=None, strict=True, validate=validate.Range(1, _MAX_SEQUENCE))
    max_events = fields.Integer(load_default=None, strict=True, validate=validate.Range(1, MAX_COMMITMENT_EVENTS))


def _registry_client(read_only: bool = False) -> RegistryClient:
    injected = current_app.extensions.get(CLIENT_EXTENSION)
    if injected is not None:
        return injected
    return service.registry_client(runtime.current().settings, read_only=read_only)


def _snake_case(body: dict) -> dict:
    renamed = dict(body)
    for camel, snake in _ALIASES.items():
        if camel in renamed:
            if snake in renamed:
                raise BadRequest(f"Give {snake} or {camel}, not both.", code="INVALID_REQUEST")
            renamed[snake] = renamed.pop(camel)
    return renamed


def _hex_or_none(value: bytes | None) -> str | None:
    return to_hex(value) if value is not None else None


@bp.get("/anchor/status")
def anchor_status():
    """Whether anchoring is configured, for which chain, registry and signer. Never contacts the chain."""
    authenticate()
    settings = runtime.current().settings
    injected = current_app.extensions.get(CLIENT_EXTENSION)
    enabled = injected is not None or settings.anchoring_configured
    if injected is not None:
        signer, registry = injected.sender, injected.address
    else:
        signer = Account.from_key(settings.sequencer_private_key).address if settings.sequencer_private_key else None
        registry = settings.set_registry_address
    missing = [name for name, value in (("L2_RPC_URL", settings.l2_rpc_url),
                                        ("SET_REGISTRY_ADDRESS", settings.set_registry_address),
                                        ("SEQUENCER_PRIVATE_KEY", settings.sequencer_private_key)) if not value]
    message = ("Anchoring is enabled: run `stateset-sequencer-admin anchor` from cron or the systemd timer."
               if enabled else f"Anchoring is disabled (unset: {', '.join(missing)}).")
    return jsonify({"anchor_enabled": enabled, "chain_id": settings.l2_chain_id, "registry_address": registry,
                    "signer_address": signer, "message": message})


@bp.post("/ves/commitments/anchor")
def anchor_commitment_now():
    """Commit the stream's pending events if needed and anchor through that commitment (older ones first)."""
    body = load(AnchorRequest(), _snake_case(json_body()))
    require("admin", body["tenant_id"], body["store_id"])
    rt = runtime.current()
    client = _registry_client()
    try:
        outcome = service.anchor_now(rt.engine, client, body["tenant_id"], body["store_id"], body["sequence_start"],
                                     body["sequence_end"], body["max_events"] or rt.settings.anchor_max_events)
    except ChainError as error:
        raise service.as_sequencer_error(error) from None
    record = outcome.commitment
    return jsonify({
        "batch_id": str(record.batch_id),
        "status": "already_anchored" if outcome.status == "already_anchored" else "anchored",
        "chain_id": outcome.chain_id,
        "chain_tx_hash": to_hex(outcome.chain_tx_hash),
        "chain_block_number": outcome.chain_block_number,
        "merkle_root": to_hex(record.merkle_root),
        "prev_state_root": to_hex(record.prev_state_root),
        "new_state_root": to_hex(record.new_state_root),
        "sequence_start": record.sequence_start,
        "sequence_end": record.sequence_end,
    })


@bp.get("/ves/anchor/<batch_id>/verify")
def verify_anchor(batch_id: str):
    """Read the registry's record of one commitment and compare every field with ours."""
    batch_uuid = parse_uuid_value(batch_id, "batch_id")
    principal = authenticate()
    rt = runtime.current()
    with rt.engine.connect() as conn:
        record = store.get_commitment(conn, batch_uuid)
    if record is None or not principal.allows("read", record.tenant_id, record.store_id):
        raise NotFound("No such commitment.")
    require("read", record.tenant_id, record.store_id)
    client = _registry_client(read_only=True)
    try:
        on_chain = client.get_batch(batch_uuid)
        differences = ([] if on_chain is None else
                       service.chain_mismatches(service.commitment_fields(record), on_chain))
        chain_tx_hash = record.chain_tx_hash
        if on_chain is not None and chain_tx_hash is None:
            chain_tx_hash = client.find_commit_transaction(batch_uuid)
    except ChainError as error:
        raise service.as_sequencer_error(error) from None
    differing = {name for name, _, _ in differences}
    anchored = on_chain is not None
    return jsonify({
        "batch_id": str(batch_uuid),
        "anchored_on_chain": anchored,
        "root_matches": anchored and "merkle_root" not in differing,
        "prev_state_root_matches": anchored and "prev_state_root" not in differing,
        "new_state_root_matches": anchored and "new_state_root" not in differing,
        "range_matches": anchored and not differing & {"stream_id", "sequence_start", "sequence_end", "leaf_count"},
        "recorded_as_anchored": record.is_anchored,
        "chain_id": record.chain_id if record.chain_id is not None else client.chain_id,
        "chain_tx_hash": _hex_or_none(chain_tx_hash),
        "chain_block_number": on_chain.block_number if on_chain is not None else None,
        "stream_id": to_hex(stream_id(record.tenant_id, record.store_id)),
    })
