"""Wire renderings of stored rows (events, receipts), shared by the read and ingest blueprints."""

from __future__ import annotations

from app.services.ingest import Receipt
from app.services.ingest import format_timestamp
from app.services.ingest import receipt_view
from app.ves.encoding import to_hex


def _hex_or_none(value: bytes | None) -> str | None:
    return to_hex(value) if value is not None else None


def receipt_from_row(row, sequencer_id: str) -> dict:
    """The stored event's receipt in the same shape the unsigned ingest endpoint returns (without `duplicate`)."""
    receipt = Receipt(sequencer_id, row.tenant_id, row.store_id, row.event_id, row.sequence_number,
                      row.sequenced_at, row.receipt_hash, row.sequencer_signature)
    view = receipt_view(receipt, camel=False)
    del view["duplicate"]
    return view


def ves_event_view(row, sequencer_id: str) -> dict:
    """The stored event as the VES envelope the agent signed, plus its sequencing and receipt.

    Optional agent fields (`command_id`, `base_version`) appear only when the agent sent them, so the envelope
    re-hashes to the stored `event_signing_hash`. Unsigned events carry `agent_signature: null`.
    """
    view = {
        "ves_version": row.ves_version,
        "event_id": str(row.event_id),
        "tenant_id": str(row.tenant_id),
        "store_id": str(row.store_id),
        "source_agent_id": str(row.source_agent_id),
        "agent_key_id": row.agent_key_id,
        "entity_type": row.entity_type,
        "entity_id": row.entity_id,
        "event_type": row.event_type,
        "created_at": row.created_at_raw,
        "payload_kind": row.payload_kind,
    }
    if row.payload_kind == 0:
        view["payload"] = row.payload
    else:
        view["payload_encrypted"] = row.payload_encrypted
    view.update({
        "payload_plain_hash": to_hex(row.payload_plain_hash),
        "payload_cipher_hash": to_hex(row.payload_cipher_hash),
        "agent_signature": _hex_or_none(row.agent_signature),
    })
    if row.command_id is not None:
        view["command_id"] = str(row.command_id)
    if row.base_version is not None:
        view["base_version"] = row.base_version
    view.update({
        "event_signing_hash": to_hex(row.event_signing_hash),
        "sequence_number": row.sequence_number,
        "sequenced_at": format_timestamp(row.sequenced_at),
        "entity_version": row.entity_version,
        "sequencer_receipt": receipt_from_row(row, sequencer_id),
    })
    return view


def simple_event_view(row, sequencer_id: str) -> dict:
    """The simple (non-VES) shape of `/api/v1/events`."""
    return {
        "event_id": str(row.event_id),
        "tenant_id": str(row.tenant_id),
        "store_id": str(row.store_id),
        "sequence_number": row.sequence_number,
        "entity_type": row.entity_type,
        "entity_id": row.entity_id,
        "event_type": row.event_type,
        "payload": row.payload if row.payload_kind == 0 else None,
        "payload_encrypted": row.payload_encrypted if row.payload_kind == 1 else None,
        "payload_hash": to_hex(row.payload_plain_hash),
        "source_agent_id": str(row.source_agent_id),
        "command_id": str(row.command_id) if row.command_id else None,
        "base_version": row.base_version,
        "entity_version": row.entity_version,
        "created_at": row.created_at_raw,
        "sequenced_at": format_timestamp(row.sequenced_at),
        "receipt_hash": to_hex(row.receipt_hash),
        "sequencer_signature": to_hex(row.sequencer_signature) if row.sequencer_signature else "",
    }
