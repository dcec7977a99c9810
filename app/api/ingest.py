"""Ingest endpoints: signed VES envelopes and the unsigned simple form. Outcomes are reported per event."""

from __future__ import annotations

import uuid

from flask import Blueprint
from flask import jsonify

from app import runtime
from app.api.parsing import json_body
from app.api.parsing import parse_uuid_value
from app.auth import require_permission
from app.errors import BadRequest
from app.errors import Forbidden
from app.errors import PayloadTooLarge
from app.services import ingest as service
from app.services.envelopes import NIL_UUID
from app.services.ingest import IngestOutcome
from app.services.ingest import receipt_view

bp = Blueprint("ingest", __name__)


def _events_of(body: dict) -> list:
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise BadRequest("The request needs a non-empty 'events' array.", code="INVALID_REQUEST")
    limit = runtime.current().settings.max_events_per_batch
    if len(events) > limit:
        raise PayloadTooLarge(f"The request has {len(events)} events; at most {limit} are allowed per batch "
                              "(MAX_EVENTS_PER_BATCH).", code="TOO_MANY_EVENTS")
    return events


def _agent_id_of(body: dict) -> uuid.UUID | None:
    raw = body.get("agentId", body.get("agent_id"))
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise BadRequest("agentId must be a UUID string.", code="INVALID_REQUEST")
    return parse_uuid_value(raw, "agentId")


def _streams_view(outcome: IngestOutcome) -> list[dict]:
    return [
        {"tenant_id": str(s.tenant_id), "store_id": str(s.store_id), "sequence_start": s.sequence_start,
         "sequence_end": s.sequence_end, "head_sequence": s.head_sequence}
        for s in outcome.streams
    ]


def _rejections_view(outcome: IngestOutcome) -> list[dict]:
    return [{"event_id": r.event_id, "index": r.index, "reason": r.reason, "message": r.message}
            for r in outcome.rejections]


@bp.post("/api/v1/ves/events/ingest")
def ingest_ves_events():
    """Verify, sequence and receipt a batch of signed VES envelopes."""
    body = json_body()
    events = _events_of(body)
    _agent_id_of(body)
    principal = require_permission("read_write")
    rt = runtime.current()
    outcome = service.ingest_signed(
        rt.engine, rt.settings, rt.signer, rt.schemas, events,
        may_write=lambda tenant, store: principal.allows("read_write", tenant, store),
        key_agent_id=principal.agent_id,
    )
    first = outcome.streams[0] if outcome.streams else None
    return jsonify({
        "batchId": str(outcome.batch_id),
        "eventsAccepted": outcome.events_accepted,
        "eventsRejected": outcome.events_rejected,
        "sequenceStart": first.sequence_start if first else None,
        "sequenceEnd": first.sequence_end if first else None,
        "headSequence": first.head_sequence if first else None,
        "rejections": _rejections_view(outcome),
        "receipts": [receipt_view(r) for r in outcome.receipts],
        "streams": _streams_view(outcome),
    })


@bp.post("/api/v1/events/ingest")
def ingest_unsigned_events():
    """Sequence events without agent signatures (refused when REQUIRE_AGENT_SIGNATURES=1)."""
    rt = runtime.current()
    if rt.settings.require_agent_signatures:
        require_permission("read")
        raise Forbidden("Unsigned ingest is disabled (REQUIRE_AGENT_SIGNATURES=1); use /api/v1/ves/events/ingest.",
                        code="SIGNATURES_REQUIRED")
    body = json_body()
    events = _events_of(body)
    principal = require_permission("read_write")
    agent_id = _agent_id_of(body) or principal.agent_id or NIL_UUID
    if principal.agent_id is not None and agent_id != principal.agent_id:
        raise Forbidden("This API key may only submit events of its own agent.")
    outcome = service.ingest_unsigned(
        rt.engine, rt.settings, rt.signer, rt.schemas, events, agent_id,
        may_write=lambda tenant, store: principal.allows("read_write", tenant, store),
    )
    first = outcome.streams[0] if outcome.streams else None
    return jsonify({
        "batch_id": str(outcome.batch_id),
        "events_accepted": outcome.events_accepted,
        "events_rejected": outcome.events_rejected,
        "assigned_sequence_start": first.sequence_start if first else None,
        "assigned_sequence_end": first.sequence_end if first else None,
        "head_sequence": first.head_sequence if first else None,
        "rejections": _rejections_view(outcome),
        "receipts": [receipt_view(r, camel=False) for r in outcome.receipts],
        "streams": _streams_view(outcome),
    })
