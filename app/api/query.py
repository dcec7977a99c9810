"""Reading the log: pages of events (with long poll), heads, entity histories, single events."""

from __future__ import annotations

from flask import Blueprint
from flask import jsonify

from app import runtime
from app.api.parsing import float_arg
from app.api.parsing import int_arg
from app.api.parsing import parse_uuid_value
from app.api.parsing import uuid_arg
from app.api.views import simple_event_view
from app.api.views import ves_event_view
from app.auth import require
from app.errors import BadRequest
from app.errors import NotFound
from app.services import query as service
from app.services.envelopes import ENTITY_ID_MAX
from app.services.envelopes import ENTITY_TYPE_MAX

bp = Blueprint("query", __name__)
MAX_SEQUENCE = 2**63 - 1


def _stream():
    tenant_id = uuid_arg("tenant_id")
    store_id = uuid_arg("store_id")
    require("read", tenant_id, store_id)
    return tenant_id, store_id


def _from_sequence() -> int:
    after = int_arg("after", None, minimum=0, maximum=MAX_SEQUENCE - 1)
    start = int_arg("from", None, minimum=1, maximum=MAX_SEQUENCE)
    if after is not None and start is not None:
        raise BadRequest("Give either 'from' or 'after', not both.", code="INVALID_REQUEST")
    return after + 1 if after is not None else (start or 1)


def _limit() -> int:
    return int_arg("limit", 100, minimum=1, maximum=1000)


def _events_page(render):
    tenant_id, store_id = _stream()
    start, limit = _from_sequence(), _limit()
    rt = runtime.current()
    wait = float_arg("wait", 0.0, minimum=0.0, maximum=3600.0)
    wait = min(wait, rt.settings.long_poll_max_seconds)
    page = service.read_page(rt.engine, tenant_id, store_id, start, limit, wait, long_polls=rt.long_polls)
    rows, head = page.rows, page.head
    sequencer_id = rt.settings.sequencer_id
    response = jsonify({
        "events": [render(row, sequencer_id) for row in rows],
        "count": len(rows),
        "head_sequence": head,
        "next_from": rows[-1].sequence_number + 1 if rows else start,
    })
    if page.retry_after is not None:
        response.headers["Retry-After"] = str(page.retry_after)
    return response


@bp.get("/api/v1/ves/events")
def list_ves_events():
    """VES envelopes with receipts, ascending from `from` (or after `after`); `wait` long-polls an empty page."""
    return _events_page(ves_event_view)


@bp.get("/api/v1/events")
def list_events():
    """The same rows in the simple shape."""
    return _events_page(simple_event_view)


@bp.get("/api/v1/ves/head")
@bp.get("/api/v1/head")
def stream_head():
    """The stream's head sequence number (0 when empty)."""
    tenant_id, store_id = _stream()
    return jsonify({"tenant_id": str(tenant_id), "store_id": str(store_id),
                    "head_sequence": service.read_head(runtime.current().engine, tenant_id, store_id)})


def _entity_history(entity_type: str, entity_id: str, render):
    if not 1 <= len(entity_type) <= ENTITY_TYPE_MAX or not 1 <= len(entity_id) <= ENTITY_ID_MAX:
        raise BadRequest("entity_type or entity_id has an invalid length.", code="INVALID_REQUEST")
    if "\x00" in entity_type or "\x00" in entity_id:
        raise BadRequest("entity_type and entity_id may not contain U+0000.", code="INVALID_REQUEST")
    tenant_id, store_id = _stream()
    rt = runtime.current()
    rows, version = service.read_entity(rt.engine, tenant_id, store_id, entity_type, entity_id,
                                        _from_sequence(), _limit())
    return jsonify({"entity_type": entity_type, "entity_id": entity_id, "version": version,
                    "events": [render(row, rt.settings.sequencer_id) for row in rows], "count": len(rows)})


@bp.get("/api/v1/ves/entities/<entity_type>/<path:entity_id>")
def ves_entity_history(entity_type: str, entity_id: str):
    """One entity's events (VES shape) and its current version."""
    return _entity_history(entity_type, entity_id, ves_event_view)


@bp.get("/api/v1/entities/<entity_type>/<path:entity_id>")
def entity_history(entity_type: str, entity_id: str):
    """One entity's events (simple shape) and its current version."""
    return _entity_history(entity_type, entity_id, simple_event_view)


@bp.get("/api/v1/ves/events/<event_id>")
def get_ves_event(event_id: str):
    """One event with its receipt."""
    event_uuid = parse_uuid_value(event_id, "event_id")
    tenant_id, store_id = _stream()
    rt = runtime.current()
    row = service.read_event(rt.engine, tenant_id, store_id, event_uuid)
    if row is None:
        raise NotFound("No such event in this stream.")
    return jsonify(ves_event_view(row, rt.settings.sequencer_id))
