"""Export a self-contained audit bundle for one stream from a live sequencer.

Shape (`format` "ves-audit-bundle/1"): `{format, sequencer: {sequencer_id, public_key, signature_alg, keys (every
receipt key version, docs/KEYS.md; absent in bundles written before key versions), log_origin, log_public_key},
tenant_id, store_id, range: {from, to}, head_sequence, events (as served by GET /api/v1/ves/events, with receipts),
agent_keys (GET /api/v1/agents/keys), commitments (GET /api/v1/ves/commitments), log: {checkpoint (the signed note),
verifier_key, inclusion: {sequence number: proof}} or {unavailable: code}, exported_at}`. The checkpoint is read
before the head, so it never covers more events than the bundle's range can hold; the inclusion proofs are at the
checkpoint's size, for the range's events it covers (at most `log_proofs`, evenly spread, always the first and last).
"""

from __future__ import annotations

import uuid

from app.client import SequencerClient
from app.client import rfc3339_millis
from app.client import SequencerAPIError
from app.client import VerifiedCheckpoint
from app.verify.core import BUNDLE_FORMAT

DEFAULT_LOG_PROOFS = 1000
LOG_ABSENT_CODES = ("LOG_DISABLED", "LOG_NOT_READY", "NOT_FOUND")
LOG_INTEGRITY = "LOG_INTEGRITY"


def export_bundle(
    client: SequencerClient,
    tenant_id: uuid.UUID | str,
    store_id: uuid.UUID | str,
    from_: int = 1,
    to: int | None = None,
    log_proofs: int = DEFAULT_LOG_PROOFS,
) -> dict:
    """Fetch everything `verify_bundle` needs. Reads commitments, then the head, then events up to that head, then
    keys, so a stream that grows during the export still yields a consistent bundle (every commitment's events
    and every event's key are included)."""
    sequencer = client.sequencer_info(refresh=True)
    commitments = client.commitments(tenant_id, store_id)
    log, checkpoint = _checkpoint(client, tenant_id, store_id)
    head = client.head(tenant_id, store_id)
    last = head if to is None else min(to, head)
    events = list(client.iter_events(tenant_id, store_id, from_=from_, to=last)) if last >= from_ else []
    agent_keys = client.agent_keys(tenant_id)
    if checkpoint is not None:
        covered = range(from_, min(last, checkpoint.tree_size) + 1)
        log["inclusion"] = {str(n): _inclusion(client, tenant_id, store_id, n, checkpoint.tree_size)
                            for n in _spread(covered, log_proofs)}
    return {
        "format": BUNDLE_FORMAT,
        "sequencer": {
            "sequencer_id": sequencer.get("sequencer_id"),
            "public_key": sequencer.get("public_key"),
            "signature_alg": sequencer.get("signature_alg"),
            "keys": sequencer.get("keys") or [],
            "log_origin": sequencer.get("log_origin"),
            "log_public_key": sequencer.get("log_public_key"),
        },
        "log": log,
        "tenant_id": str(tenant_id),
        "store_id": str(store_id),
        "range": {"from": from_, "to": last},
        "head_sequence": head,
        "events": events,
        "agent_keys": agent_keys,
        "commitments": commitments,
        "exported_at": rfc3339_millis(),
    }


def _checkpoint(client: SequencerClient, tenant_id, store_id) -> tuple[dict, VerifiedCheckpoint | None]:
    """The stream's checkpoint as the bundle records it. Not verified here (the verifier does that, so a bad one is
    reported, not refused): only fetched. A sequencer without logs is recorded as `unavailable`."""
    try:
        note, verifier_key = client.log_checkpoint_note(tenant_id, store_id)
    except SequencerAPIError as error:
        if error.code in LOG_ABSENT_CODES or error.status == 404:
            return {"unavailable": error.code}, None
        if error.code == LOG_INTEGRITY:
            return {"unavailable": error.code, "message": error.message}, None
        raise
    from app.client.log import LogVerificationError
    from app.client.log import open_log_checkpoint

    record = {"checkpoint": note.decode("utf-8"), "verifier_key": verifier_key}
    try:
        return record, open_log_checkpoint(note, verifier_key)
    except LogVerificationError:
        return record, None


def _inclusion(client: SequencerClient, tenant_id, store_id, number: int, tree_size: int) -> dict:
    """One inclusion proof as served; a sequencer that refuses to prove the entry (LOG_INTEGRITY: its stored log
    contradicts itself) is recorded as `{"error": code}`, which the verifier reports for that event."""
    try:
        return client.log_inclusion_proof(tenant_id, store_id, number, tree_size)
    except SequencerAPIError as error:
        if error.code != LOG_INTEGRITY:
            raise
        return {"error": error.code, "message": error.message}


def _spread(numbers: range, limit: int) -> list[int]:
    """At most `limit` of `numbers`, evenly spread, always the first and the last."""
    if limit <= 0 or not numbers:
        return []
    if len(numbers) <= limit:
        return list(numbers)
    step = (len(numbers) - 1) / max(limit - 1, 1)
    return sorted({numbers[round(i * step)] for i in range(limit)} | {numbers[0], numbers[-1]})
