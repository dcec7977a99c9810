"""Public information about this sequencer: its id and the key that signs receipts."""

from __future__ import annotations

from flask import Blueprint
from flask import jsonify

from app import runtime
from app.auth import public
from app.ves.encoding import to_hex

bp = Blueprint("sequencer", __name__)


@bp.get("/api/v1/ves/sequencer")
@public
def sequencer_info():
    """The receipt-signing public key (empty with signature_alg "none" when no key is configured)."""
    rt = runtime.current()
    key = rt.signer.public_key
    return jsonify({"sequencer_id": rt.settings.sequencer_id, "signature_alg": rt.signer.signature_alg,
                    "public_key": to_hex(key) if key else ""})
