"""Commitments and proofs API (API.md §Commitments and proofs). Hashes on the wire are `"0x"` + lowercase hex."""

from __future__ import annotations

from flask import Blueprint
from flask import jsonify
from marshmallow import EXCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate

from app import runtime
from app.api.parsing import parse_int_value
from app.api.parsing import bool_arg
from app.api.parsing import int_arg
from app.api.parsing import json_body
from app.api.parsing import load
from app.api.parsing import parse_uuid_value
from app.api.parsing import uuid_arg
from app.auth import authenticate
from app.auth import require
from app.db import commitments as store
from app.db.commitments import CommitmentRecord
from app.errors import BadRequest
from app.errors import NotFound
from app.services import commitments as service
from app.ves.encoding import MAX_U32
from app.ves.encoding import MAX_U64
from app.ves.encoding import parse_hex
from app.ves.encoding import to_hex
from app.ves.errors import InvalidEncoding
from app.ves.hashing import HASH_SIZE
from app.ves.merkle import InclusionProof

bp = Blueprint("commitments", __name__, url_prefix="/api/v1/ves")

MAX_PROOF_LENGTH = 64
_MAX_SEQUENCE = 2**63 - 1

_CREATE_ALIASES = {"tenantId": "tenant_id", "storeId": "store_id", "sequenceStart": "sequence_start",
                   "sequenceEnd": "sequence_end", "maxEvents": "max_events"}
_VERIFY_ALIASES = {"leafHash": "leaf_hash", "merkleRoot": "merkle_root", "proofPath": "proof_path",
                   "leafIndex": "leaf_index", "leafCount": "leaf_count"}


def _validate_booleans(values: list) -> None:
    if not all(isinstance(value, bool) for value in values):
        raise ValidationError("Every direction must be true or false.")


class CreateCommitmentRequest(Schema):
    tenant_id = fields.UUID(required=True)
    store_id = fields.UUID(required=True)
    sequence_start = fields.Integer(load_default=None, strict=True, validate=validate.Range(1, _MAX_SEQUENCE))
    sequence_end = fields.Integer(load_default=None, strict=True, validate=validate.Range(1, _MAX_SEQUENCE))
    max_events = fields.Integer(load_default=service.DEFAULT_MAX_EVENTS, strict=True,
                                validate=validate.Range(1, service.MAX_COMMITMENT_EVENTS))


class VerifyProofRequest(Schema):
    """Unknown fields are ignored, so a proof response can be posted back as it is."""

    class Meta:
        unknown = EXCLUDE

    leaf_hash = fields.String(required=True)
    merkle_root = fields.String(required=True)
    proof_path = fields.List(fields.String(), required=True, validate=validate.Length(max=MAX_PROOF_LENGTH))
    leaf_index = fields.Integer(required=True, strict=True, validate=validate.Range(0, MAX_U64))
    leaf_count = fields.Integer(load_default=None, strict=True, validate=validate.Range(1, MAX_U32))
    directions = fields.List(fields.Raw(), load_default=None,
                             validate=[validate.Length(max=MAX_PROOF_LENGTH), _validate_booleans])


def _snake_case(body: dict, aliases: dict[str, str]) -> dict:
    """`body` with the published camelCase names renamed to snake_case; naming one field both ways is a 400."""
    renamed = dict(body)
    for camel, snake in aliases.items():
        if camel in renamed:
            if snake in renamed:
                raise BadRequest(f"Give {snake} or {camel}, not both.", code="INVALID_REQUEST")
            renamed[snake] = renamed.pop(camel)
    return renamed


def _hash_field(value: str, field: str) -> bytes:
    try:
        return parse_hex(value, HASH_SIZE, field)
    except InvalidEncoding as exc:
        raise BadRequest(exc.message, code=exc.code) from None


def commitment_view(record: CommitmentRecord) -> dict:
    return {
        "batch_id": str(record.batch_id),
        "tenant_id": str(record.tenant_id),
        "store_id": str(record.store_id),
        "ves_version": record.ves_version,
        "tree_depth": record.tree_depth,
        "leaf_count": record.leaf_count,
        "padded_leaf_count": record.padded_leaf_count,
        "merkle_root": to_hex(record.merkle_root),
        "prev_state_root": to_hex(record.prev_state_root),
        "new_state_root": to_hex(record.new_state_root),
        "sequence_start": record.sequence_start,
        "sequence_end": record.sequence_end,
        "committed_at": record.committed_at.isoformat(),
    }


def commitment_detail_view(record: CommitmentRecord) -> dict:
    return {
        **commitment_view(record),
        "chain_id": record.chain_id,
        "chain_tx_hash": to_hex(record.chain_tx_hash) if record.chain_tx_hash is not None else None,
        "chain_block_number": record.chain_block_number,
        "anchored_at": record.anchored_at.isoformat() if record.anchored_at else None,
        "is_anchored": record.is_anchored,
    }


def proof_view(sequence_number: int, record: CommitmentRecord, proof: InclusionProof) -> dict:
    return {
        "sequence_number": sequence_number,
        "batch_id": str(record.batch_id),
        "merkle_root": to_hex(proof.merkle_root),
        "leaf_hash": to_hex(proof.leaf_hash),
        "leaf_index": proof.leaf_index,
        "proof_path": [to_hex(sibling) for sibling in proof.proof_path],
        "directions": proof.directions,
        "leaf_count": record.leaf_count,
        "tree_depth": record.tree_depth,
        "sequence_start": record.sequence_start,
        "sequence_end": record.sequence_end,
    }


@bp.post("/commitments")
def create_commitment():
    """Commit the stream's next range (or the given one) and return the commitment."""
    body = load(CreateCommitmentRequest(), _snake_case(json_body(), _CREATE_ALIASES))
    require("read_write", body["tenant_id"], body["store_id"])
    record = service.create_commitment(runtime.current().engine, **body)
    return jsonify(commitment_view(record)), 201


@bp.get("/commitments")
def list_commitments():
    """List a stream's commitments in sequence order, optionally only anchored or unanchored ones."""
    tenant_id = uuid_arg("tenant_id")
    store_id = uuid_arg("store_id")
    anchored = bool_arg("anchored")
    limit = int_arg("limit", 100, minimum=1, maximum=1000)
    after = int_arg("after", 0, minimum=0)
    require("read", tenant_id, store_id)
    with runtime.current().engine.connect() as conn:
        records = store.list_commitments(conn, tenant_id, store_id, anchored=anchored, limit=limit, after=after)
    return jsonify({"commitments": [commitment_detail_view(r) for r in records], "count": len(records)})


@bp.get("/commitments/<batch_id>")
def get_commitment(batch_id: str):
    """One commitment with its anchoring state.

    :raise 404: unknown, or of a tenant/store the key may not read (the same answer, so existence is not revealed).
    """
    batch_uuid = parse_uuid_value(batch_id, "batch_id")
    principal = authenticate()
    with runtime.current().engine.connect() as conn:
        record = store.get_commitment(conn, batch_uuid)
    if record is None or not principal.allows("read", record.tenant_id, record.store_id):
        raise NotFound("No such commitment.")
    require("read", record.tenant_id, record.store_id)
    return jsonify(commitment_detail_view(record))


@bp.get("/proofs/<sequence_number>")
def get_proof(sequence_number: str):
    """The inclusion proof of one event in the commitment that covers it (or in `batch_id`)."""
    number = parse_int_value(sequence_number, "sequence_number", 1, _MAX_SEQUENCE)
    tenant_id = uuid_arg("tenant_id")
    store_id = uuid_arg("store_id")
    batch_id = uuid_arg("batch_id", required=False) or uuid_arg("batchId", required=False)
    require("read", tenant_id, store_id)
    record, proof = service.build_proof(runtime.current().engine, tenant_id, store_id, number, batch_id)
    return jsonify(proof_view(number, record, proof))


@bp.post("/proofs/verify")
def verify_proof():
    """Check an inclusion proof strictly (VES.md): `{"valid": bool, "reason": str | null, ...}`."""
    require("read", authenticate().tenant_id)
    body = load(VerifyProofRequest(), _snake_case(json_body(), _VERIFY_ALIASES))
    leaf_hash = _hash_field(body["leaf_hash"], "leaf_hash")
    merkle_root = _hash_field(body["merkle_root"], "merkle_root")
    proof_path = [_hash_field(sibling, f"proof_path[{i}]") for i, sibling in enumerate(body["proof_path"])]
    reason = service.proof_rejection(leaf_hash, merkle_root, proof_path, body["leaf_index"], body["leaf_count"],
                                     body["directions"])
    return jsonify({
        "valid": reason is None,
        "reason": reason,
        "leaf_index": body["leaf_index"],
        "leaf_count": body["leaf_count"],
        "tree_depth": len(proof_path),
        "merkle_root": to_hex(merkle_root),
    })
