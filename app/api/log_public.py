"""The public transparency-log paths (LOG.md §HTTP, registered only with `LOG_PUBLIC=1`): checkpoints and
consistency proofs by hex stream id, without a key, so outside monitors and witnesses can follow a stream. They
reveal only hashes; an unused stream id answers as an empty stream."""

from __future__ import annotations

from flask import Blueprint

from app import runtime
from app.api import wire
from app.api.operations import operation
from app.api.operations import path
from app.api.operations import query
from app.api.operations import render
from app.api.operations import render_text
from app.auth import public
from app.services import stream_logs as service

bp = Blueprint("log_public", __name__, url_prefix="/api/v1/ves/log/public")


@bp.get("/<stream_id>/checkpoint")
@public
@operation(tags="log", path=wire.StreamIdPath, responses={200: "text/plain"}, headers={200: wire.LOG_VKEY_HEADERS})
def get_public_checkpoint(stream_id: str):
    """The latest signed checkpoint of the stream with this VES stream id (64 hex digits); no key needed."""
    sid = path(stream_id=stream_id)["stream_id"]
    rt = runtime.current()
    signed, vkey = service.serve_public_checkpoint(rt.engine, sid, rt.log_key, rt.settings.log_max_delay_seconds)
    return render_text(signed.note, headers={"X-Log-Vkey": vkey})


@bp.get("/<stream_id>/consistency")
@public
@operation(tags="log", path=wire.StreamIdPath, query=wire.LogConsistencyParameters,
           responses={200: wire.LogConsistencyOut}, errors=(404,))
def get_public_consistency(stream_id: str):
    """The consistency proof between two tree sizes of the stream with this VES stream id; no key needed."""
    sid = path(stream_id=stream_id)["stream_id"]
    args = query()
    rt = runtime.current()
    return render(service.serve_public_consistency(rt.engine, sid, rt.log_key, rt.settings.log_max_delay_seconds,
                                                   args["first"], args["second"]))
