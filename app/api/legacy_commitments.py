"""The original sequencer's legacy commitment, proof and anchoring routes (`src/api/handlers/commitments.rs`,
`proofs.rs`, `anchoring.rs`, `ves/anchoring.rs`) and its anchor-service compatibility routes (`/v1/commitments/
pending`, `/v1/commitments/{batch_id}/anchored`, also under `/api`).

They serve our commitments (VES.md trees) under the original's field names (`events_root` is the Merkle root,
`event_count` its leaf count): one commitment chain per stream, whichever routes made it. Authorisation as on our
own routes: read on the stream to read, read_write to commit, admin to anchor; the anchor service's routes need a
global admin key. Another tenant's commitment is a 404. Chain work is bounded (ANCHOR_REQUEST_TIMEOUT_SECONDS):
past it the answer is 503 ANCHOR_PENDING and the anchoring job finishes the work.
"""

from __future__ import annotations

from functools import partial

from flask import Blueprint

from app import runtime
from app.api import legacy_wire as wire
from app.api import wire as our_wire
from app.api.anchoring import registry_client
from app.api.anchoring import request_deadline
from app.api.operations import body
from app.api.operations import operation
from app.api.operations import path
from app.api.operations import query
from app.api.operations import render
from app.auth import authenticate
from app.auth import require
from app.services import anchoring as anchoring_service
from app.services import commitments as service

bp = Blueprint("legacy_commitments", __name__)


@bp.post("/api/v1/commitments")
@operation(tags="commitments", body=our_wire.CreateCommitmentBody, responses={200: wire.LegacyCommitmentCreatedOut},
           errors=(403, 409))
def create_legacy_commitment():
    """Commit a range of the stream (the original's `CreateCommitmentRequest`; the range may be omitted): 200."""
    fields = body()
    require("read_write", fields["tenant_id"], fields["store_id"])
    return render(service.create_commitment(runtime.current().engine, **fields))


@bp.get("/api/v1/commitments")
@operation(tags="commitments", query=wire.LegacyCommitmentsQuery, responses={200: wire.LegacyCommitmentListOut},
           errors=(403,))
def list_legacy_commitments():
    """The stream's unanchored commitments, oldest first (as the original), at most `limit`."""
    args = query()
    require("read", args["tenant_id"], args["store_id"])
    return render(service.list_commitments(runtime.current().engine, anchored=False, **args))


@bp.get("/api/v1/commitments/<id:batch_id>")
@operation(tags="commitments", path=our_wire.BatchPath, responses={200: wire.LegacyBatchCommitmentOut},
           errors=(404,))
def get_legacy_commitment(batch_id: str):
    """One commitment as serde writes the original's `BatchCommitment` (hashes as arrays of 32 numbers)."""
    batch_uuid, principal = path(batch_id=batch_id)["batch_id"], authenticate()
    return render(service.visible_commitment(runtime.current().engine, batch_uuid, partial(principal.allows, "read")))


@bp.get("/api/v1/proofs/<id:sequence_number>")
@operation(tags="commitments", path=our_wire.SequenceNumberPath, query=wire.LegacyProofQuery,
           responses={200: wire.LegacyProofOut}, errors=(403, 404))
def get_legacy_proof(sequence_number: str):
    """The inclusion proof of one event, with `events_root` (plain hex)."""
    number, args = path(sequence_number=sequence_number)["sequence_number"], query()
    require("read", args["tenant_id"], args["store_id"])
    return render(service.prove(runtime.current().engine, args["tenant_id"], args["store_id"], number,
                                args["batch_id"]))


@bp.post("/api/v1/proofs/verify")
@operation(tags="commitments", body=wire.LegacyVerifyProofBody, responses={200: wire.LegacyProofVerdictOut},
           errors=(403,))
def verify_legacy_proof():
    """Check an inclusion proof strictly: `{"valid", "leaf_hash", "events_root"}` (echoed as sent) and `reason`."""
    require("read", authenticate().tenant_id)
    fields = body()
    verdict = service.verify_proof(fields["leaf_hash"].value, fields["events_root"].value, fields["proof_path"],
                                   fields["leaf_index"], fields["leaf_count"], fields["directions"])
    return render({"valid": verdict.valid, "reason": verdict.reason, "leaf_hash": fields["leaf_hash"].text,
                   "events_root": fields["events_root"].text})


def _anchor(batch_id):
    """Anchor the stream through a commitment the admin key may anchor (404 for another tenant's)."""
    principal = authenticate()
    commitment = service.visible_commitment(runtime.current().engine, batch_id, partial(principal.allows, "read"))
    require("admin", commitment.tenant_id, commitment.store_id)
    return anchoring_service.anchor_batch(runtime.current().engine, registry_client(), commitment,
                                          request_deadline())


@bp.post("/api/v1/ves/anchor")
@operation(tags="anchoring", body=wire.BatchBody, responses={200: wire.VesAnchorOut}, errors=(403, 404, 409))
def anchor_ves_commitment():
    """Anchor one commitment (and its unanchored predecessors) now (admin); 503 ANCHOR_PENDING past the budget."""
    return render(_anchor(body()["batch_id"]))


@bp.post("/api/v1/anchor")
@operation(tags="anchoring", body=wire.BatchBody, responses={200: wire.LegacyAnchorOut}, errors=(403, 404, 409))
def anchor_legacy_commitment():
    """As `POST /api/v1/ves/anchor`, answered with `events_root`."""
    return render(_anchor(body()["batch_id"]))


@bp.get("/api/v1/anchor/<id:batch_id>/verify")
@operation(tags="anchoring", path=our_wire.BatchPath, responses={200: wire.AnchoredOnChainOut}, errors=(404,))
def verify_legacy_anchor(batch_id: str):
    """Whether the registry holds the commitment: `{"batch_id", "anchored_on_chain"}`."""
    batch_uuid, principal = path(batch_id=batch_id)["batch_id"], authenticate()
    return render(anchoring_service.verify_anchor(runtime.current().engine, partial(registry_client, read_only=True),
                                                  batch_uuid, partial(principal.allows, "read")))


@bp.get("/v1/commitments/pending")
@bp.get("/api/v1/commitments/pending")
@operation(tags="anchoring", query=wire.PendingCommitmentsQuery, responses={200: wire.PendingCommitmentsOut},
           errors=(403,))
def pending_commitments():
    """Every stream's unanchored commitments, oldest first (`0x` hex; a global admin key: the anchor service)."""
    require("admin")
    return render(anchoring_service.pending_commitments(runtime.current().engine, query()["limit"]))


@bp.post("/v1/commitments/<id:batch_id>/anchored")
@bp.post("/api/v1/commitments/<id:batch_id>/anchored")
@operation(tags="anchoring", path=our_wire.BatchPath, body=wire.AnchoredNotificationBody,
           responses={200: wire.AnchoredNotificationOut}, errors=(403, 404, 409))
def commitment_anchored(batch_id: str):
    """Record the transaction an external anchor service anchored a commitment with (a global admin key); the same
    again is `already_anchored`, another one a 409 ANCHOR_MISMATCH."""
    batch_uuid = path(batch_id=batch_id)["batch_id"]
    require("admin")
    fields = body()
    return render(anchoring_service.record_external_anchor(runtime.current().engine, batch_uuid,
                                                          fields["chain_tx_hash"], fields["chain_id"],
                                                          fields["block_number"]))
