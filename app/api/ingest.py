"""Ingest endpoints: signed VES envelopes and the unsigned simple form. Outcomes are reported per event."""

from __future__ import annotations

from functools import partial

from flask import Blueprint

from app import runtime
from app.api import wire
from app.api.operations import body
from app.api.operations import operation
from app.api.operations import render
from app.auth import require_permission
from app.services import ingest as service

bp = Blueprint("ingest", __name__)


@bp.post("/api/v1/ves/events/ingest")
@operation(tags="ingest", body=wire.IngestBody, responses={200: wire.VesIngestOut}, errors=(403,))
def ingest_ves_events():
    """Verify, sequence and receipt a batch of signed VES envelopes; outcome per event.

    With `agentId`, every envelope's `source_agent_id` must be that agent (else 400 SOURCE_AGENT_MISMATCH).
    """
    fields = body()
    principal = require_permission("read_write")
    rt = runtime.current()
    outcome = service.ingest_signed(
        rt.engine, rt.settings, rt.signer, rt.schemas, [wire.envelope_of(e) for e in fields["events"]],
        may_write=partial(principal.allows, "read_write"),
        key_agent_id=principal.agent_id, agent_id=fields["agent_id"],
    )
    return render(outcome)


@bp.post("/api/v1/events/ingest")
@operation(tags="ingest", body=wire.IngestBody, responses={200: wire.UnsignedIngestOut}, errors=(403,))
def ingest_unsigned_events():
    """Sequence events without agent signatures (403 SIGNATURES_REQUIRED when REQUIRE_AGENT_SIGNATURES=1)."""
    fields = body()
    principal = require_permission("read_write")
    rt = runtime.current()
    outcome = service.ingest_unsigned(
        rt.engine, rt.settings, rt.signer, rt.schemas, [wire.envelope_of(e) for e in fields["events"]],
        fields["agent_id"], may_write=partial(principal.allows, "read_write"),
        key_agent_id=principal.agent_id,
    )
    return render(outcome)
