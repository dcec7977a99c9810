"""Anchoring API (API.md §Anchoring): status, anchor-now, and on-chain verification of one commitment.

Errors: 503 ANCHORING_NOT_CONFIGURED (L2_RPC_URL, SET_REGISTRY_ADDRESS or SEQUENCER_PRIVATE_KEY unset),
503 CHAIN_UNAVAILABLE (RPC unreachable; Retry-After), 503 REGISTRY_UNAVAILABLE (no registry at the address or another
chain), 409 ANCHOR_FORK_DETECTED, 409 ANCHOR_REJECTED (the contract reverted), 409 ANCHOR_RUN_IN_PROGRESS.
The registry client comes from `app.extensions["anchor_registry_client"]` when set (tests inject an eth-tester
client there), else from the settings.
"""

from __future__ import annotations

from functools import partial

from flask import Blueprint
from flask import current_app

from app import runtime
from app.api import wire
from app.api.operations import body
from app.api.operations import operation
from app.api.operations import path
from app.api.operations import render
from app.auth import authenticate
from app.auth import require
from app.chain import RegistryClient
from app.services import anchoring as service

bp = Blueprint("anchoring", __name__, url_prefix="/api/v1")

CLIENT_EXTENSION = "anchor_registry_client"


def registry_client(read_only: bool = False) -> RegistryClient:
    """The injected client, else one for the configured registry (AnchoringNotConfigured when unset) whose every
    RPC is bounded by a quarter of ANCHOR_REQUEST_TIMEOUT_SECONDS."""
    injected = current_app.extensions.get(CLIENT_EXTENSION)
    if injected is not None:
        return injected
    settings = runtime.current().settings
    return service.registry_client(settings, read_only=read_only, timeout=service.request_rpc_timeout(settings))


def request_deadline() -> service.Deadline:
    """The time budget of one request's chain work (ANCHOR_REQUEST_TIMEOUT_SECONDS)."""
    return service.Deadline(runtime.current().settings.anchor_request_timeout_seconds)


@bp.get("/anchor/status")
@operation(tags="anchoring", responses={200: wire.AnchorStatusOut})
def anchor_status():
    """Whether anchoring is configured, for which chain, registry and signer (never contacts the chain)."""
    authenticate()
    return render(service.anchor_status(runtime.current().settings, current_app.extensions.get(CLIENT_EXTENSION)))


@bp.post("/ves/commitments/anchor")
@operation(tags="anchoring", body=wire.AnchorBody, responses={200: wire.AnchorResultOut}, errors=(403, 409))
def anchor_commitment_now():
    """Commit the stream's pending events if needed and anchor through that commitment, oldest first (admin).

    A range follows the commitment rules (400 INVALID_RANGE / RANGE_PAST_HEAD, 409 RANGE_MISMATCH when it cuts an
    existing commitment); 503 ANCHORING_NOT_CONFIGURED / CHAIN_UNAVAILABLE / REGISTRY_UNAVAILABLE; 409
    ANCHOR_FORK_DETECTED / ANCHOR_REJECTED / ANCHOR_RUN_IN_PROGRESS; 503 ANCHOR_PENDING when not anchored within
    ANCHOR_REQUEST_TIMEOUT_SECONDS (the anchoring job finishes it).
    """
    fields = body()
    require("admin", fields["tenant_id"], fields["store_id"])
    max_events = fields.pop("max_events") or runtime.current().settings.anchor_max_events
    return render(service.anchor_now(runtime.current().engine, registry_client(), **fields, max_events=max_events,
                                     deadline=request_deadline()))


@bp.get("/ves/anchor/<id:batch_id>/verify")
@operation(tags="anchoring", path=wire.BatchPath, responses={200: wire.AnchorVerificationOut}, errors=(404,))
def verify_anchor(batch_id: str):
    """Read the registry's record of one commitment and compare every field with ours."""
    batch_uuid = path(batch_id=batch_id)["batch_id"]
    principal = authenticate()
    return render(service.verify_anchor(runtime.current().engine, partial(registry_client, read_only=True),
                                        batch_uuid, partial(principal.allows, "read")))
