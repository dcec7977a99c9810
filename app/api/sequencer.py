"""Public information about this sequencer: its id and the keys that sign receipts (docs/KEYS.md)."""

from __future__ import annotations

import dataclasses

from flask import Blueprint

from app import runtime
from app.api import wire
from app.api.operations import operation
from app.api.operations import render
from app.auth import public
from app.services import sequencer_keys as service

bp = Blueprint("sequencer", __name__)


@bp.get("/api/v1/ves/sequencer")
@public
@operation(tags="operations", responses={200: wire.SequencerOut})
def sequencer_info():
    """The sequencer id, the Ed25519 key that signs receipts now (empty with signature_alg "none"), every key version
    it has signed with (validity and retirement cutoffs), and the log's: `log_origin` is LOG_ORIGIN and
    `log_public_key` the key that signs every stream's checkpoints (LOG.md), plain hex; empty when disabled."""
    rt = runtime.current()
    return render({**dataclasses.asdict(service.sequencer_info(rt.engine, rt.signer)),
                   "log_origin": rt.settings.log_origin,
                   "log_public_key": rt.log_key.public_key if rt.log_key is not None else None})
