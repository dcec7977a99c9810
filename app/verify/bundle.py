"""Export a self-contained audit bundle for one stream from a live sequencer.

Shape (`format` "ves-audit-bundle/1"): `{format, sequencer: {sequencer_id, public_key, signature_alg}, tenant_id,
store_id, range: {from, to}, head_sequence, events (as served by GET /api/v1/ves/events, with receipts),
agent_keys (GET /api/v1/agents/keys), commitments (GET /api/v1/ves/commitments), exported_at}`.
"""

from __future__ import annotations

import uuid

from app.client import SequencerClient
from app.client import rfc3339_millis
from app.verify.core import BUNDLE_FORMAT


def export_bundle(
    client: SequencerClient,
    tenant_id: uuid.UUID | str,
    store_id: uuid.UUID | str,
    from_: int = 1,
    to: int | None = None,
) -> dict:
    """Fetch everything `verify_bundle` needs. Reads commitments, then the head, then events up to that head, then
    keys, so a stream that grows during the export still yields a consistent bundle (every commitment's events
    and every event's key are included)."""
    sequencer = client.sequencer_info(refresh=True)
    commitments = client.commitments(tenant_id, store_id)
    head = client.head(tenant_id, store_id)
    last = head if to is None else min(to, head)
    events = list(client.iter_events(tenant_id, store_id, from_=from_, to=last)) if last >= from_ else []
    agent_keys = client.agent_keys(tenant_id)
    return {
        "format": BUNDLE_FORMAT,
        "sequencer": {
            "sequencer_id": sequencer.get("sequencer_id"),
            "public_key": sequencer.get("public_key"),
            "signature_alg": sequencer.get("signature_alg"),
        },
        "tenant_id": str(tenant_id),
        "store_id": str(store_id),
        "range": {"from": from_, "to": last},
        "head_sequence": head,
        "events": events,
        "agent_keys": agent_keys,
        "commitments": commitments,
        "exported_at": rfc3339_millis(),
    }
