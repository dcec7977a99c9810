"""Transparency-log endpoints (LOG.md §HTTP): the stream's latest signed checkpoint, inclusion and consistency
proofs, each bounded by the checkpoint served now. Read permission on the stream, like every other read."""

from __future__ import annotations

from flask import Blueprint

from app import runtime
from app.api import wire
from app.api.operations import operation
from app.api.operations import path
from app.api.operations import query
from app.api.operations import render
from app.api.operations import render_text
from app.auth import require
from app.services import stream_logs as service

bp = Blueprint("log", __name__, url_prefix="/api/v1/ves/log")


@bp.get("/checkpoint")
@operation(tags="log", query=wire.StreamQuery, responses={200: "text/plain"}, headers={200: wire.LOG_VKEY_HEADERS},
           errors=(403,))
def get_checkpoint():
    """The stream's latest signed checkpoint (C2SP signed note); `X-Log-Vkey` is the stream's verifier key.

    An empty stream has the size-0 checkpoint. 503 LOG_NOT_READY while the stream's log is being backfilled.
    """
    args = query()
    require("read", args["tenant_id"], args["store_id"])
    rt = runtime.current()
    signed, vkey = service.serve_checkpoint(rt.engine, args["tenant_id"], args["store_id"], rt.log_key,
                                            rt.settings.log_max_delay_seconds)
    return render_text(signed.note, headers={"X-Log-Vkey": vkey})


@bp.get("/inclusion/<sequence_number>")
@operation(tags="log", path=wire.SequenceNumberPath, query=wire.LogInclusionQuery,
           responses={200: wire.LogInclusionOut}, errors=(403, 404))
def get_inclusion(sequence_number: str):
    """The RFC 9162 inclusion proof of event `sequence_number` (entry `sequence_number - 1`).

    `tree_size` defaults to the latest checkpoint's size; 400 when `sequence_number` exceeds it, 404 when
    `tree_size` exceeds the latest checkpoint's size.
    """
    number = path(sequence_number=sequence_number)["sequence_number"]
    args = query()
    require("read", args["tenant_id"], args["store_id"])
    rt = runtime.current()
    return render(service.serve_inclusion(rt.engine, args["tenant_id"], args["store_id"], rt.log_key,
                                          rt.settings.log_max_delay_seconds, number, args["tree_size"]))


@bp.get("/consistency")
@operation(tags="log", query=wire.LogConsistencyQuery, responses={200: wire.LogConsistencyOut}, errors=(403, 404))
def get_consistency():
    """The RFC 9162 consistency proof from the tree of `first` entries to the one of `second`.

    `0 <= first <= second <=` the latest checkpoint's size (400 for `first > second`, 404 beyond the checkpoint);
    the proof is empty when `first` is 0 or equals `second`.
    """
    args = query()
    require("read", args["tenant_id"], args["store_id"])
    rt = runtime.current()
    return render(service.serve_consistency(rt.engine, args["tenant_id"], args["store_id"], rt.log_key,
                                            rt.settings.log_max_delay_seconds, args["first"], args["second"]))
