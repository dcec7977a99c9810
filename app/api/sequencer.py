"""Public information about this sequencer: its id and the key that signs receipts."""

from __future__ import annotations

from flask import Blueprint

from app import runtime
from app.api import wire
from app.api.operations import operation
from app.api.operations import render
from app.auth import public

bp = Blueprint("sequencer", __name__)


@bp.get("/api/v1/ves/sequencer")
@public
@operation(tags="operations", responses={200: wire.SequencerOut}, touches_database=False)
def sequencer_info():
    """The sequencer id, the Ed25519 key that signs receipts (empty with signature_alg "none") and the log's.

    `log_origin` is LOG_ORIGIN and `log_public_key` the key that signs every stream's checkpoints (LOG.md), plain
    hex; empty when checkpoints are disabled.
    """
    rt = runtime.current()
    return render({"sequencer_id": rt.settings.sequencer_id, "signature_alg": rt.signer.signature_alg,
                   "public_key": rt.signer.public_key, "log_origin": rt.settings.log_origin,
                   "log_public_key": rt.log_key.public_key if rt.log_key is not None else None})
