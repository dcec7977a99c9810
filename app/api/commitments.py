"""Commitments and proofs API (API.md §Commitments and proofs)."""

from __future__ import annotations

from functools import partial

from flask import Blueprint

from app import runtime
from app.api import wire
from app.api.operations import body
from app.api.operations import json_body
from app.api.operations import operation
from app.api.operations import path
from app.api.operations import query
from app.api.operations import render
from app.auth import authenticate
from app.auth import require
from app.services import commitments as service

bp = Blueprint("commitments", __name__, url_prefix="/api/v1/ves")


@bp.post("/commitments")
@operation(tags="commitments", body=wire.CreateCommitmentBody, responses={200: wire.CommitmentOut},
           errors=(403, 409))
def create_commitment():
    """Commit the stream's next uncommitted range (up to max_events, default 1024) or the given range.

    A range must start right after the last commitment (else 409 RANGE_SKIPS / RANGE_OVERLAPS) and may not end
    before it starts (400 INVALID_RANGE) or past the stream head (400 RANGE_PAST_HEAD); nothing left is 409
    NOTHING_TO_COMMIT.
    """
    fields = body()
    require("read_write", fields["tenant_id"], fields["store_id"])
    return render(service.create_commitment(runtime.current().engine, **fields))


@bp.get("/commitments")
@operation(tags="commitments", query=wire.CommitmentsQuery, responses={200: wire.CommitmentListOut}, errors=(403,))
def list_commitments():
    """A stream's commitments in sequence order, optionally only anchored or unanchored ones."""
    args = query()
    require("read", args["tenant_id"], args["store_id"])
    return render(service.list_commitments(runtime.current().engine, **args))


@bp.get("/commitments/<id:batch_id>")
@operation(tags="commitments", path=wire.BatchPath, responses={200: wire.CommitmentDetailOut}, errors=(404,))
def get_commitment(batch_id: str):
    """One commitment with its anchoring state (404 also for another tenant's, so existence is not revealed)."""
    batch_uuid = path(batch_id=batch_id)["batch_id"]
    principal = authenticate()
    return render(service.visible_commitment(runtime.current().engine, batch_uuid, partial(principal.allows, "read")))


@bp.get("/proofs/<id:sequence_number>")
@operation(tags="commitments", path=wire.SequenceNumberPath, query=wire.ProofQuery,
           responses={200: wire.InclusionProofOut}, errors=(403, 404))
def get_proof(sequence_number: str):
    """The inclusion proof of one event in the commitment that covers it (or in `batch_id`)."""
    number = path(sequence_number=sequence_number)["sequence_number"]
    args = query()
    require("read", args["tenant_id"], args["store_id"])
    return render(service.prove(runtime.current().engine, args["tenant_id"], args["store_id"], number,
                                args["batch_id"]))


@bp.post("/proofs/verify")
@operation(tags="commitments", body=wire.VerifyProofBody, responses={200: wire.ProofVerdictOut}, errors=(403,))
def verify_proof():
    """Check an inclusion proof strictly (VES.md): `{"valid": bool, "reason": str | null, "leaf_hash",
    "merkle_root", ...}`, the two hashes echoed as sent."""
    require("read", authenticate().tenant_id)
    return render((service.verify_proof(**body()), json_body()))
