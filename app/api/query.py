"""Reading the log: pages of events (with long poll), heads, entity histories, single events."""

from __future__ import annotations

from flask import Blueprint

from app import runtime
from app.api import wire
from app.api.operations import operation
from app.api.operations import path
from app.api.operations import query
from app.api.operations import render
from app.auth import require
from app.services import query as service

bp = Blueprint("query", __name__)


def _events_page(payload_copies: int):
    args = query()
    require("read", args["tenant_id"], args["store_id"])
    rt = runtime.current()
    wait = min(args["wait"], rt.settings.long_poll_max_seconds)
    page = service.events_page(rt.reads, rt.settings.sequencer_id, args["tenant_id"], args["store_id"],
                               wire.RangeQuery.first_wanted(args), args["limit"], wait, long_polls=rt.long_polls,
                               min_sequence=args["min_sequence"],
                               max_bytes=rt.settings.page_max_bytes // payload_copies)
    return render(page, headers=wire.retry_after_headers(page.retry_after))


@bp.get("/api/v1/ves/events")
@operation(tags="reading", query=wire.PageQuery, responses={200: wire.VesEventPageOut}, errors=(403,),
           headers={200: wire.PAGE_HEADERS})
def list_ves_events():
    """VES envelopes with receipts, ascending from `from` (or after `after`); `wait` long-polls an empty page."""
    return _events_page(wire.VesEventOut.PAYLOAD_COPIES)


@bp.get("/api/v1/events")
@operation(tags="reading", query=wire.PageQuery, responses={200: wire.SimpleEventPageOut}, errors=(403,),
           headers={200: wire.PAGE_HEADERS})
def list_events():
    """The same rows in the simple shape."""
    return _events_page(wire.SimpleEventOut.PAYLOAD_COPIES)


@bp.get("/api/v1/ves/head")
@bp.get("/api/v1/head")
@operation(tags="reading", query=wire.HeadQuery, responses={200: wire.StreamHeadOut}, errors=(403,))
def stream_head():
    """The stream's head sequence number (0 when empty)."""
    args = query()
    require("read", args["tenant_id"], args["store_id"])
    return render(service.stream_head(runtime.current().reads, args["tenant_id"], args["store_id"],
                                      args["min_sequence"]))


def _entity_history(entity_type: str, entity_id: str, by_offset: bool, payload_copies: int):
    entity = path(entity_type=entity_type, entity_id=entity_id)
    args = query()
    require("read", args["tenant_id"], args["store_id"])
    rt = runtime.current()
    first, offset = (1, args["from_"]) if by_offset else (wire.RangeQuery.first_wanted(args), 0)
    return render(service.entity_history(rt.reads, rt.settings.sequencer_id, args["tenant_id"], args["store_id"],
                                         entity["entity_type"], entity["entity_id"], first, args["limit"],
                                         args["min_sequence"], rt.settings.page_max_bytes // payload_copies,
                                         offset=offset))


@bp.get("/api/v1/ves/entities/<entity_type>/<path:entity_id>")
@operation(tags="reading", path=wire.EntityPath, query=wire.RangeQuery, responses={200: wire.VesEntityHistoryOut},
           errors=(403,))
def ves_entity_history(entity_type: str, entity_id: str):
    """One entity's events (VES shape) from a sequence number, its version (= `total`) and `has_more`."""
    return _entity_history(entity_type, entity_id, by_offset=False, payload_copies=wire.VesEventOut.PAYLOAD_COPIES)


@bp.get("/api/v1/entities/<entity_type>/<path:entity_id>")
@operation(tags="reading", path=wire.EntityPath, query=wire.EntityHistoryQuery,
           responses={200: wire.SimpleEntityHistoryOut}, errors=(403,))
def entity_history(entity_type: str, entity_id: str):
    """One entity's events (the original's shape): `from` is an offset into them, at most 100 per page."""
    return _entity_history(entity_type, entity_id, by_offset=True, payload_copies=wire.SimpleEventOut.PAYLOAD_COPIES)


@bp.get("/api/v1/ves/events/<id:event_id>")
@operation(tags="reading", path=wire.EventPath, query=wire.StreamQuery, responses={200: wire.VesEventOut},
           errors=(403, 404))
def get_ves_event(event_id: str):
    """One event with its receipt."""
    event_uuid = path(event_id=event_id)["event_id"]
    args = query()
    require("read", args["tenant_id"], args["store_id"])
    rt = runtime.current()
    return render(service.find_event(rt.reads, rt.settings.sequencer_id, args["tenant_id"], args["store_id"],
                                     event_uuid))
